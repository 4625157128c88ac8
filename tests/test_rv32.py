"""The RV32 build on qemu (tinyc.rv32): the host build's outputs exactly, per-layer instruction counts
that repeat to the instruction, and the RV32 code size, for the four zoo int8 networks and the official
MLPerf Tiny models. The tools are required: without them these tests fail, naming `make rv32-tools`."""
import json
import subprocess
import sys

import numpy as np
import pytest

import tinyc
import tinyc.zoo
from conftest import MLPERF_MODELS, REPO, random_inputs
from tinyc import rv32
from tinyc.errors import ToolchainError
from tinyc.toolchain import build, run_executable


def need_rv32_tools():
    """A failure, not a skip, where the tools are missing: the message names `make rv32-tools`."""
    try:
        rv32.require_tools()
    except ToolchainError as e:
        pytest.fail(str(e), pytrace=False)


def check_on_qemu(what, cm, tmp_path, seed=0):
    need_rv32_tools()
    inputs = random_inputs(cm.graph, seed)
    expected = cm.run(inputs)
    outputs, layers, total = rv32.run_model(cm, inputs, tmp_path / "first")
    for name in expected:
        np.testing.assert_array_equal(outputs[name], expected[name])
    assert len(layers) == len(cm.report["layers"])
    assert all(count > 0 for count in layers), layers
    assert sum(layers) <= total
    again = rv32.run_model(cm, inputs, tmp_path / "again")
    assert (again[1], again[2]) == (layers, total)  # icount makes minstret exact: same counts every run
    size = rv32.code_size_rv32(cm.sources)
    assert size["text"] > cm.report["totals"]["weights_bytes"]
    assert size["bss"] >= cm.report["totals"]["arena_bytes"]
    print(f"\n{what}: {total} instructions on RV32, code size {size['text']} B text, "
          f"{size['data']} B data, {size['bss']} B bss")


@pytest.mark.parametrize("name", tinyc.zoo.names())
def test_zoo_int8_on_qemu(name, tmp_path):
    check_on_qemu(f"zoo {name} int8", tinyc.compile(tinyc.zoo.build(name, "int8"), target="cpu"), tmp_path)


@pytest.mark.parametrize("task", sorted(MLPERF_MODELS))
def test_official_on_qemu(task, mlperf_dir, tmp_path):
    check_on_qemu(f"official {task}", tinyc.compile(mlperf_dir / MLPERF_MODELS[task][0], target="cpu"), tmp_path,
                  seed=1)


def test_counter_calls_leave_the_host_build_unchanged(tmp_path):
    """With the counter calls in, the host build still compiles warning-free and computes the same."""
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="cpu")
    inputs = random_inputs(cm.graph, 0)
    counted = rv32.with_counters(cm.sources)
    assert counted["model.c"].count("tinyc_counter_layer_begin(") == len(cm.report["layers"])
    outputs = [(cm.graph.values[o].shape, cm.graph.values[o].dtype) for o in cm.graph.outputs]
    got = run_executable(build(counted, tmp_path), [inputs[n] for n in cm.graph.inputs], outputs)
    expected = cm.run(inputs)
    for name, out in zip(cm.graph.outputs, got):
        np.testing.assert_array_equal(out, expected[name])


def test_rv32_benchmark_writes_json(tmp_path):
    need_rv32_tools()
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rv32_cycles.py"), "--models", "zoo:ad",
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "counted on qemu (instructions retired, icount shift=0)" in run.stdout
    figures = json.loads(out.read_text())
    row, = figures["models"]
    assert row["model"] == "zoo:ad" and row["total_instret"] >= sum(layer["instret"] for layer in row["layers"])
    dense = [layer for layer in row["layers"] if layer["macs"]]
    assert dense and row["macs"] == sum(layer["macs"] for layer in dense)
    assert row["instret_per_mac"] == row["mac_layers_instret"] / row["macs"] > 1
    assert row["code_size"]["text"] > 0
