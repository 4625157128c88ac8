"""Targets wholly as data: job kinds are records (tinyc.targets.jobs) that the cost model, tiler, driver and
emulator read, so a made-up target with job kinds of its own runs end to end without a line of code under
tinyc/, and nothing under passes/, backends/ or the emulator names a core or a job kind."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import tinyc
import tinyc.zoo
from conftest import MLPERF_MODELS
from tinyc import targets
from tinyc.ir import OPS
from tinyc.targets import constraints as c
from tinyc.targets.base import Core, Memory, Param, Pattern, Target
from tinyc.targets.jobs import COMPUTES, REDUCTIONS, REQUANTIZERS, Cycles, JobKind, Requantizer

TINYC = Path(tinyc.__file__).parent
HAL = TINYC / "runtime" / "tinyc_hal.h"


@pytest.mark.parametrize("prefix, names", [("TINYC_COMPUTE_", COMPUTES), ("TINYC_REQUANT_", REQUANTIZERS),
                                           ("TINYC_REDUCE_", REDUCTIONS)])
def test_the_hal_enums_are_the_records_tuples_in_order(prefix, names):
    enum = re.search(r"enum \{ (" + prefix + r"[^}]*)\};", HAL.read_text()).group(1)
    assert [e.strip()[len(prefix):].lower() for e in enum.split(",")] == list(names)


def _job_kinds():
    return {k.name for t in map(targets.get, targets.names()) for core in t.cores for k in core.job_kinds}


def test_no_pass_backend_or_emulator_names_a_core_or_a_job_kind():
    """Core names as words, job kind names as string literals; an IR op's name (qadd's "add") is the op's."""
    kinds = sorted(_job_kinds() - set(OPS))
    assert {"conv2d", "analog_dense", "conv3x3", "depthwise3x3"} <= set(kinds)
    words = re.compile(r"diana|digital|analog|ne16", re.IGNORECASE)
    literals = re.compile("[\"'](" + "|".join(kinds) + ")[\"']")
    files = [*(TINYC / "passes").rglob("*.py"), *(TINYC / "backends").rglob("*.py"),
             *(TINYC / "runtime").glob("tinyc_hal*")]
    assert len(files) > 10
    found = [f"{f.relative_to(TINYC)}:{i}: {line.strip()}" for f in files
             for i, line in enumerate(f.read_text().splitlines(), 1) if words.search(line) or literals.search(line)]
    assert not found, "\n".join(found)


# ---------------------------------------------------------------- a made-up third target, in this file only
# a conv whose weights lie input-major (w[rows][co]), requantized per channel by TFLite's multiplier and
# shift, on an 8-channel x 4-column array stepping over two window elements a cycle; a dense kept as
# w[co][rows] (unlike DIANA's) with one multiplier+shift for the layer; neither kind exists elsewhere
TOY_CONV = JobKind("toy_conv", "conv", Requantizer("multiplier", per_channel=True, shifts=(-1, 31), zero_points=True),
                   Cycles(8, 4, 2, reduction="window", reduction_lanes=2, per_step=1, per_pass=5),
                   weights_by_input=True)
TOY_FC = JobKind("toy_fc", "dense", Requantizer("multiplier", shifts=(-1, 31), zero_points=True),
                 Cycles(8, 1, 1, reduction="channels", reduction_lanes=4, per_step=3, per_pass=2))
_RQ = (c.int8_operands(),)
TOY = Target(
    name="toy", description="a made-up SoC: one host and an 8-lane MAC array", clock_hz=100e6,
    main_memory=Memory("L2", 1 << 20, "made up"),
    cores=(Core("cpu", "cpu", params={"cycles_per_mac": Param(4, "made up"), "cycles_per_element": Param(10, "made up")}),
           Core("mac", "accelerator", "an 8-lane MAC array",
                memories=(Memory("act", 24000, "made up", role="activations"),
                          Memory("wts", 6000, "made up", role="weights")),
                patterns=(Pattern("toy_conv", ("qconv",), (c.groups_one(),) + _RQ + c.requantization(TOY_CONV.requantizer)
                                  + (c.image_batch_one(), c.dilation_one(), c.pads_within_half_kernel()), job=TOY_CONV),
                          Pattern("toy_fc", ("qmatmul",), _RQ + c.requantization(TOY_FC.requantizer)
                                  + (c.vector_input(),), job=TOY_FC)),
                params={"pe_rows": Param(8, "made up"), "pe_cols": Param(4, "made up"),
                        "job_setup_cycles": Param(20, "made up")})),
    configs={"mac": ("mac",), "cpu": ()},
    params={"dma_setup_cycles": Param(10, "made up"), "dma_bytes_per_cycle": Param(4, "made up")})


def _run_on_toy(model):
    cm = tinyc.compile(model, target=TOY)
    x = cm.random_inputs(3)
    got, want = cm.run(x, sanitize=True), cm.interpret(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    return cm


def test_a_made_up_target_with_new_job_kinds_runs_the_official_ic_model_bit_exact(mlperf_dir):
    """Per-channel scales that are no powers of two (TFLite's), on kinds declared in this file alone."""
    cm = _run_on_toy(mlperf_dir / MLPERF_MODELS["ic"][0])
    on = {layer["pattern"] for layer in cm.report["layers"] if layer["core"] == "mac"}
    assert on == {"toy_conv", "toy_fc"}
    profiled = cm.profile(cm.random_inputs(3))["report"]["layers"]  # the emulator counts by the record
    jobs = [layer for layer in profiled if layer["core"] == "mac"]
    assert jobs and all(layer["cycles"] == layer["modeled"]["cycles"] for layer in jobs)


def test_a_made_up_target_runs_a_zoo_network_and_says_why_not_elsewhere():
    cm = _run_on_toy(tinyc.zoo.build("kws", "int8"))
    assert any(layer["core"] == "mac" for layer in cm.report["layers"])
    depthwise = [layer for layer in cm.report["layers"] if layer["op"] == "qconv" and layer["core"] == "cpu"]
    assert depthwise and all("groups 1" in layer["reason"] for layer in depthwise)
