"""GAP9 with its NE16 engine: a second SoC in data alone (tinyc/targets/gap9.py). The zoo's and the official
int8 models compile for it and run on the emulator bit-exact with the reference interpreter; NE16 takes
the official models' convs, whose per-channel scales are no powers of two, which DIANA's shift-only cores
cannot (their report says so)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyc
import tinyc.zoo
from conftest import MLPERF_MODELS
from tinyc import targets
from tinyc.targets.constraints import POWER_OF_TWO_MULTIPLIER
from tinyc.targets.gap9 import GAP9

NE16_KINDS = {"conv3x3", "conv1x1", "depthwise3x3"}


def test_gap9_is_a_target_and_every_number_has_a_source():
    assert "gap9" in targets.names() and targets.get("gap9") is GAP9
    params = [*GAP9.params.values(), *(p for core in GAP9.cores for p in core.params.values())]
    memories = [GAP9.main_memory, *(m for core in GAP9.cores for m in core.memories)]
    records = [r for core in GAP9.cores for k in core.job_kinds for r in (k, k.requantizer, k.cycles)]
    assert params and memories and records
    assert all(x.source for x in params + memories + records)


def _run(model, seed=0):
    cm = tinyc.compile(model, target="gap9")
    x = cm.random_inputs(seed)
    got, want = cm.run(x), cm.interpret(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    return cm


@pytest.mark.parametrize("net", tinyc.zoo.names())
def test_zoo_int8_on_gap9_bit_exact_and_dense_layers_say_why_they_stay_on_the_host(net):
    cm = _run(tinyc.zoo.build(net, "int8"))
    layers = cm.report["layers"]
    on_ne16 = {layer["pattern"] for layer in layers if layer["core"] == "ne16"}
    assert on_ne16 <= NE16_KINDS and (on_ne16 or net == "ad")  # ad is dense layers only
    dense = [layer for layer in layers if layer["op"] == "qmatmul"]
    assert dense and all(layer["core"] == "host" and "no pattern for op qmatmul" in layer["reason"] for layer in dense)


@pytest.mark.parametrize("task", ["kws", "vww", "ic"])
def test_official_models_run_their_convs_on_ne16_and_not_on_diana(mlperf_dir, task):
    path = mlperf_dir / MLPERF_MODELS[task][0]
    cm = _run(path)
    ne16 = {n.name: n for n in cm.graph.nodes() if n.placement is not None and n.placement.core == "ne16"}
    assert ne16
    per_channel = [n for n in ne16.values() if np.unique(n.attrs["multiplier"]).size > 1]
    assert per_channel and all(np.any(np.asarray(n.attrs["multiplier"]) != POWER_OF_TWO_MULTIPLIER)
                               for n in per_channel)
    diana = {layer["name"]: layer for layer in tinyc.compile(path, target="diana").report["layers"]}
    assert all(diana[name]["core"] == "host" and "requantizes by" in diana[name]["reason"] for name in ne16)


def test_ne16_clean_under_sanitizers_and_its_cycles_on_the_emulator_are_the_records(mlperf_dir):
    cm = tinyc.compile(mlperf_dir / MLPERF_MODELS["ic"][0], target="gap9")
    x = cm.random_inputs(1)
    got, want = cm.run(x, sanitize=True), cm.interpret(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    report = cm.profile(x)["report"]
    jobs = [layer for layer in report["layers"] if layer["core"] == "ne16"]
    assert jobs and all(layer["cycles"] == layer["modeled"]["cycles"] for layer in jobs)
