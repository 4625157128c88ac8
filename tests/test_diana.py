"""DIANA through the public API: what `tinyc.compile(model, target="diana", config=...)` gives a user.

The zoo's int8 networks on the digital core compute exactly what the host-only build computes (the
accelerator changes where a layer runs, never its result); the official trained models compile for
DIANA too, and the report says why their layers stay on the host."""
import numpy as np
import pytest

import tinyc
import tinyc.zoo
from conftest import MLPERF_MODELS


@pytest.mark.parametrize("net", tinyc.zoo.names())
def test_zoo_int8_on_the_digital_core_equals_the_host_build(net):
    model = tinyc.zoo.build(net, "int8")
    diana = tinyc.compile(model, target="diana", config="digital")
    cpu = tinyc.compile(model, target="cpu")
    x = diana.random_inputs(1)
    got, want = diana.run(x, sanitize=net in ("kws", "ad")), cpu.run(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    on_digital = [layer for layer in diana.report["layers"] if layer["core"] == "digital"]
    assert on_digital and all(layer["tile"] and layer["modeled"]["cycles"] > 0 for layer in on_digital)


@pytest.mark.parametrize("task", sorted(MLPERF_MODELS))
def test_official_models_compile_for_diana_and_say_why_layers_stay_on_the_host(mlperf_dir, task):
    cm = tinyc.compile(mlperf_dir / MLPERF_MODELS[task][0], target="diana")
    x = cm.random_inputs(0)
    for name, value in tinyc.compile(mlperf_dir / MLPERF_MODELS[task][0], target="cpu").run(x).items():
        np.testing.assert_array_equal(cm.run(x)[name], value)
    compute = [layer for layer in cm.report["layers"] if layer["macs"]]
    assert compute and all(layer["core"] == "host" for layer in compute)
    assert all("requantizes by" in layer["reason"] for layer in compute)  # a scale that is no power of two


def test_unknown_configuration_and_tiler_are_input_errors():
    model = tinyc.zoo.build("ad", "int8")
    with pytest.raises(tinyc.InputError, match="configurations"):
        tinyc.compile(model, target="diana", config="quantum")
    with pytest.raises(tinyc.InputError, match="tiler"):
        tinyc.compile(model, target="diana", tiler="greedy")
