"""The RV32 build on qemu (tinyc.rv32, profile(on="qemu")): the host build's outputs exactly, per-layer
instruction counts of the host layers that repeat to the instruction, the modeled cycles of the
accelerator layers, the emitted Makefile's `rv32` target, and the RV32 code size without the HAL
emulator, for the four zoo int8 networks and the official MLPerf Tiny models. The tools are required:
without them these tests fail, naming `make rv32-tools`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyc
import tinyc.zoo
from conftest import MLPERF_MODELS, REPO
from tinyc import rv32, toolchain
from tinyc.errors import ToolchainError


def need_rv32_tools():
    """A failure, not a skip, where the tools are missing: the message names `make rv32-tools`."""
    try:
        rv32.require_tools()
    except ToolchainError as e:
        pytest.fail(str(e), pytrace=False)


def assert_same_outputs(got, expected):
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def check_on_qemu(what, cm, seed=0):
    """The whole model on the host: every layer counted, the same count every run."""
    need_rv32_tools()
    inputs = cm.random_inputs(seed)
    first = cm.profile(inputs, on="qemu")
    assert_same_outputs(first["outputs"], cm.run(inputs))
    report = first["report"]
    layers = report["layers"]
    assert all(layer["cycles_source"] == "counted on qemu" and layer["instret"] > 0 for layer in layers)
    assert report["total_cycles"] == report["counted_cycles"] == report["instret"] == \
        sum(layer["instret"] for layer in layers) == report["cycles_per_core"]["host"]
    assert report["modeled_cycles"] == 0 and report["profiled_on"] == "qemu"
    again = cm.profile(inputs, on="qemu")["report"]  # icount makes minstret exact: same counts every run
    assert [layer["instret"] for layer in again["layers"]] == [layer["instret"] for layer in layers]
    size = report["totals"]["code_size"]
    assert size["text"] > cm.report["totals"]["weights_bytes"]
    assert size["bss"] >= cm.report["totals"]["arena_bytes"]
    json.dumps(report)
    print(f"\n{what}: {report['instret']} instructions on RV32, code size {size['text']} B text, "
          f"{size['data']} B data, {size['bss']} B bss")


@pytest.mark.parametrize("name", tinyc.zoo.names())
def test_zoo_int8_on_qemu(name):
    check_on_qemu(f"zoo {name} int8", tinyc.compile(tinyc.zoo.build(name, "int8"), target="cpu"))


@pytest.mark.parametrize("task", sorted(MLPERF_MODELS))
def test_official_on_qemu(task, mlperf_dir):
    check_on_qemu(f"official {task}", tinyc.compile(mlperf_dir / MLPERF_MODELS[task][0], target="cpu"), seed=1)


@pytest.mark.parametrize("name", tinyc.zoo.names())
def test_digital_profile_on_qemu(name):
    """Host layers counted, accelerator layers with the host profile's modeled figures."""
    need_rv32_tools()
    cm = tinyc.compile(tinyc.zoo.build(name, "int8"), target="diana", config="digital")
    inputs = cm.random_inputs(0)
    on_qemu, on_host = cm.profile(inputs, on="qemu"), cm.profile(inputs)
    assert_same_outputs(on_qemu["outputs"], on_host["outputs"])
    qemu, host = on_qemu["report"], on_host["report"]
    assert any(layer["core"] == "digital" for layer in qemu["layers"])
    for q, h in zip(qemu["layers"], host["layers"]):
        if q["core"] == "host":
            assert q["cycles_source"] == "counted on qemu" and q["instret"] > 0 and q["cycles"] == q["instret"]
            assert q["cycles_per_core"] == {**h["cycles_per_core"], "host": q["instret"]}
        else:
            assert q["cycles_source"] == "modeled" and "instret" not in q
            assert (q["cycles"], q["cycles_per_core"], q["dma_bytes"]) == \
                (h["cycles"], h["cycles_per_core"], h["dma_bytes"])
    accelerated = sum(h["cycles"] for h in host["layers"] if h["core"] != "host")
    assert qemu["modeled_cycles"] == accelerated
    assert qemu["total_cycles"] == qemu["counted_cycles"] + qemu["modeled_cycles"]
    assert qemu["counted_cycles"] == qemu["instret"] == qemu["cycles_per_core"]["host"]
    assert {c: v for c, v in qemu["cycles_per_core"].items() if c != "host"} == \
        {c: v for c, v in host["cycles_per_core"].items() if c != "host"}
    assert qemu["dma_bytes"] == host["dma_bytes"]
    print(f"\nzoo {name} int8, digital: {qemu['counted_cycles']} counted host + {qemu['modeled_cycles']} "
          f"modeled accelerator = {qemu['total_cycles']} cycles")


def test_counters_only_around_host_layers():
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="diana", config="digital")
    hosted = [i for i, layer in enumerate(cm.report["layers"]) if layer["core"] == "host"]
    model_c = cm.sources["model.c"]
    assert [i for i in range(len(cm.report["layers"])) if f"tinyc_counter_layer_begin({i});" in model_c] == hosted
    assert model_c.count("tinyc_counter_layer_end(") == len(hosted)
    assert "tinyc_counter_dump();" in cm.sources["main.c"]


def test_make_rv32_builds_the_written_project(tmp_path):
    """The emitted Makefile's `rv32` target alone, emulator included, runs on qemu like the host build."""
    need_rv32_tools()
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="diana", config="digital")
    project = cm.write(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RV32_", "MAKEFLAGS"))}
    subprocess.run(["make", "-s", "rv32"], cwd=project, check=True, capture_output=True, timeout=300, env=env)
    inputs = cm.random_inputs(0)
    ins = toolchain.write_inputs([inputs[n] for n in cm.graph.inputs], tmp_path)
    outs = toolchain.output_paths(cm.graph.outputs, tmp_path)
    run = subprocess.run(rv32.qemu_command(project / rv32.ELF, [p.name for p in ins] + ["--"] + [p.name for p in outs]),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = toolchain.read_outputs([(cm.graph.values[o].shape, cm.graph.values[o].dtype) for o in cm.graph.outputs],
                                 tmp_path, rv32.ELF)
    assert_same_outputs(dict(zip(cm.graph.outputs, got)), cm.run(inputs))
    assert "tinyc-instret total" in run.stderr


def test_code_size_leaves_the_emulator_out():
    need_rv32_tools()
    cm = tinyc.compile(tinyc.zoo.build("ad", "int8"), target="diana", config="digital")
    deployed, emulated = rv32.code_size_rv32(cm.sources), rv32.code_size_rv32(cm.sources, with_emulator=True)
    assert 0 < deployed["text"] < emulated["text"]
    assert deployed["excludes"] == "the HAL implementation (the emulator stands in for DIANA's drivers)"
    host = cm.report["totals"]["code_size"]
    assert host["text"] > cm.report["totals"]["weights_bytes"] and "HAL implementation" in host["excludes"]
    print(f"\nzoo ad int8, digital, RV32 text: {deployed['text']} B without the emulator, "
          f"{emulated['text']} B with it")


def test_rv32_benchmark_writes_json(tmp_path):
    need_rv32_tools()
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "rv32_cycles.py"), "--models", "zoo:ad",
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "counted on qemu (instructions retired, icount shift=0)" in run.stdout
    figures = json.loads(out.read_text())
    row, = figures["models"]
    assert row["model"] == "zoo:ad" and row["total_instret"] == sum(layer["instret"] for layer in row["layers"])
    dense = [layer for layer in row["layers"] if layer["macs"]]
    assert dense and row["macs"] == sum(layer["macs"] for layer in dense)
    assert row["instret_per_mac"] == row["mac_layers_instret"] / row["macs"] > 1
    assert 0 < row["code_size"]["text"] < row["code_size_with_emulator"]["text"]
