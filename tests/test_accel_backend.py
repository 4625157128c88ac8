"""Accelerator layers through the HAL and its host emulator: bit-exact with the reference interpreter
and the host-only build, bounds and hazards caught with the layer and tile, and the emulator's modeled
cycles equal to the cost model's."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tinyc.zoo as zoo
from tinyc import toolchain
from tinyc.backends.c.emit import emit_c, runtime_sources
from tinyc.compiler import CompiledModel
from tinyc.errors import InputError, ToolchainError
from tinyc.frontend.onnx import from_onnx
from tinyc.ir import interpret, ops
from tinyc.ir.graph import Graph, Placement, Value
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import dispatch
from tinyc.passes.memory import plan_memory
from tinyc.passes.tiling import tiling
from tinyc.targets import cost, host_cost
from tinyc.targets.base import Memory
from tinyc.targets.diana import DIANA, DIGITAL

RNG = np.random.default_rng(7)


def small_chip(activations: int, weights: int):
    """DIANA with smaller L1 memories, to make a tiling overflow."""
    digital = dataclasses.replace(DIGITAL, memories=(Memory("L1_activations", activations, role="activations"),
                                                     Memory("L1_weights", weights, role="weights")))
    return dataclasses.replace(DIANA, name="small", cores=(DIANA.host, digital))


def feeds(g: Graph) -> dict:
    return {n: RNG.integers(-128, 128, g.values[n].shape).astype(np.int8) for n in g.inputs}


def place(g: Graph, tiles: dict) -> Graph:
    """Nodes named in `tiles` ({name: (job kind, (tc, th, tw, buffers))}) on the digital core, the rest on
    the host."""
    for n in g.nodes():
        if n.name in tiles:
            kind, (tc, th, tw, buffers) = tiles[n.name]
            tile = {"c_out": tc, "h_out": th, "w_out": tw, "buffers": buffers}
            g.set_node(n.name, placement=Placement("digital", kind, n.name, tile=tile))
        else:
            g.set_node(n.name, placement=Placement(DIANA.host.name))
    return g


def build(g: Graph, target=DIANA) -> CompiledModel:
    g = plan_memory(g.connect())
    return CompiledModel(g, target, "digital", "model")


def host_only(g: Graph) -> CompiledModel:
    g = g.copy()
    for n in g.nodes():
        g.set_node(n.name, placement=None)
    return CompiledModel(g, DIANA, "cpu", "model")


def assert_bit_exact(cm: CompiledModel, sanitize: bool = False) -> dict:
    x = feeds(cm.graph)
    got = cm.run(x, sanitize=sanitize)
    want = interpret(cm.graph, x)
    baseline = host_only(cm.graph).run(x)
    for name in cm.graph.outputs:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        np.testing.assert_array_equal(got[name], baseline[name], err_msg=name)
    return x


def kind_of(g: Graph, n) -> str | None:
    """The job kind a hand placement gives a node of the zoo (kws' 10x4 first layer stays on the host)."""
    if n.op == "qconv" and max(g.values[n.inputs[1]].shape[2:]) <= 7:
        return "depthwise" if n.attrs["group"] > 1 else "conv2d"
    return {"qmatmul": "dense", "qadd": "add"}.get(n.op)


def zoo_graph(net: str) -> Graph:
    return canonicalize(from_onnx(zoo.build(net, "int8")))


def layer_cycles(cm: CompiledModel, x: dict) -> list[int]:
    return [layer["cycles"] for layer in cm.profile(x)["report"]["layers"]]


def expected_cycles(g: Graph, target=DIANA) -> dict:
    m = cost.machine(target, target.core("digital"))
    out = {}
    for n in g.nodes():
        p = n.placement
        if p is not None and p.core == "digital":
            layer = cost.layer_geometry(g, n, target.core(p.core).job(p.pattern))
            out[n.name] = cost.evaluate(layer, cost.tile_of(p.tile), m).cycles
    return out


# ---------------------------------------------------------------- the zoo
@pytest.mark.parametrize("net", ["kws", "vww", "ic", "ad"])
def test_zoo_hand_tiled_bit_exact_and_cycles(net):
    """Awkward tiles on purpose: 16-channel blocks, a third of the rows, 7 columns (edge tiles everywhere),
    alternating double and single buffering."""
    g = zoo_graph(net)
    tiles = {}
    for i, n in enumerate(g.nodes()):
        kind = kind_of(g, n)
        if kind:
            y = g.values[n.outputs[0]].shape
            h = y[2] if len(y) == 4 else 1
            tiles[n.name] = (kind, (min(16, y[1]), max(1, h // 3), 7, 1 + i % 2))
    cm = build(place(g, tiles))
    x = assert_bit_exact(cm)
    want = expected_cycles(cm.graph)
    got = dict(zip([n.name for n in cm.graph.nodes()], layer_cycles(cm, x)))
    assert want and {k: got[k] for k in want} == want


@pytest.mark.parametrize("net", ["kws", "ic"])
def test_zoo_hand_tiled_sanitized(net):
    g = zoo_graph(net)
    tiles = {}
    for n in g.nodes():
        kind = kind_of(g, n)
        if kind:
            tiles[n.name] = (kind, (16, 5, 5, 2))
    assert_bit_exact(build(place(g, tiles)), sanitize=True)


@pytest.mark.parametrize("net", ["kws", "vww", "ic", "ad"])
def test_zoo_dispatched_and_tiled(net):
    """The whole flow: dispatch, the CP-SAT tiler, the driver; each layer's emulated cycles are the
    cycles the tiler minimized."""
    g = tiling(dispatch(zoo_graph(net), DIANA, "digital"), DIANA)
    cm = build(g)
    x = assert_bit_exact(cm)
    got = dict(zip([n.name for n in g.nodes()], layer_cycles(cm, x)))
    accelerated = {n.name: n.placement.cost["cycles"] for n in g.nodes() if n.placement.tile}
    assert accelerated and {k: got[k] for k in accelerated} == accelerated


# ---------------------------------------------------------------- odd geometries
def conv_graph(c_in, h, w, c_out, kernel, strides, pads, group=1, bias=True, clip=(-128, 127)) -> Graph:
    g = Graph("conv")
    g.add_value(Value("x", (1, c_in, h, w), "int8"))
    g.inputs = ["x"]
    wt = g.add_const("w", RNG.integers(-128, 128, (c_out, c_in // group) + kernel).astype(np.int8)).name
    b = g.add_const("b", RNG.integers(-5000, 5000, c_out).astype(np.int32)).name if bias else ""
    g.outputs = [ops.add(g, "qconv", ["x", wt, b], "conv", strides=strides, pads=pads, dilations=(1, 1),
                         group=group, x_zp=0, w_zp=np.zeros(c_out, np.int32),
                         multiplier=np.full(c_out, 1 << 30, np.int32), shift=np.full(c_out, -9, np.int32),
                         out_zp=0, out_min=clip[0], out_max=clip[1], rounding="single")]
    return g


def dense_graph(k, n) -> Graph:
    g = Graph("dense")
    g.add_value(Value("x", (1, k), "int8"))
    g.inputs = ["x"]
    wt = g.add_const("w", RNG.integers(-128, 128, (k, n)).astype(np.int8)).name
    b = g.add_const("b", RNG.integers(-5000, 5000, n).astype(np.int32)).name
    g.outputs = [ops.add(g, "qmatmul", ["x", wt, b], "fc", x_zp=0, w_zp=np.zeros(n, np.int32),
                         multiplier=np.full(n, 1 << 30, np.int32), shift=np.full(n, -6, np.int32), out_zp=0,
                         out_min=-128, out_max=127, rounding="single")]
    return g


def add_graph(shape) -> Graph:
    g = Graph("add")
    for name in ("a", "b"):
        g.add_value(Value(name, shape, "int8"))
    g.inputs = ["a", "b"]
    g.outputs = [ops.add(g, "qadd", ["a", "b"], "sum", a_zp=0, b_zp=0, out_zp=0, left_shift=20,
                         a_multiplier=1 << 30, a_shift=0, b_multiplier=1 << 30, b_shift=-1,
                         out_multiplier=1 << 30, out_shift=-18, out_min=-128, out_max=127, rounding="single")]
    return g


ODD = {
    "stride 2, pads only after": (lambda: conv_graph(3, 17, 13, 24, (3, 3), (2, 2), (0, 0, 1, 1)),
                                  "conv2d", (16, 3, 4, 2)),
    "asymmetric pads, non-square kernel": (lambda: conv_graph(5, 11, 9, 8, (5, 1), (1, 1), (2, 0, 1, 0)),
                                           "conv2d", (8, 4, 9, 1)),
    "stride 2 one way, 1x7": (lambda: conv_graph(4, 6, 20, 16, (1, 7), (1, 2), (0, 3, 0, 2)), "conv2d",
                              (16, 6, 3, 2)),
    "no bias, relu clip": (lambda: conv_graph(16, 8, 8, 32, (3, 3), (1, 1), (1, 1, 1, 1), bias=False,
                                              clip=(0, 127)), "conv2d", (16, 8, 8, 2)),
    "depthwise, channel and edge tiles": (lambda: conv_graph(40, 9, 10, 40, (3, 3), (2, 2), (1, 1, 1, 1), group=40),
                                          "depthwise", (16, 2, 3, 2)),
    "depthwise single buffered": (lambda: conv_graph(24, 7, 7, 24, (5, 5), (1, 1), (2, 2, 2, 2), group=24),
                                  "depthwise", (16, 7, 7, 1)),
    "dense, c_out tiles": (lambda: dense_graph(100, 40), "dense", (16, 1, 1, 2)),
    "dense single buffered": (lambda: dense_graph(33, 50), "dense", (16, 1, 1, 1)),
    "add, edge tiles": (lambda: add_graph((1, 20, 7, 9)), "add", (16, 3, 4, 2)),
    "add of vectors": (lambda: add_graph((1, 37)), "add", (16, 1, 1, 1)),
}


@pytest.mark.parametrize("case", list(ODD))
def test_odd_geometry_bit_exact_sanitized(case):
    make, kind, tile = ODD[case]
    g = make()
    node = g.nodes()[0].name
    cm = build(place(g, {node: (kind, tile)}))
    x = assert_bit_exact(cm, sanitize=True)
    assert layer_cycles(cm, x) == [expected_cycles(cm.graph)[node]]


# ---------------------------------------------------------------- the cost model by hand
def test_cycles_by_hand():
    """16->16 channels, 8x8, 3x3 pad 1, tiles of 4 rows: two boxes of 5 input rows. With DIANA's numbers
    (DMA 70 + bytes/8, job 100 + passes): in_0 = input 150 + weights 358 + bias 78 = 586, in_1 = 150,
    compute 4 rows x 16 x 9 + 100 = 676, out = 70 + 512/8 = 134."""
    expected = {2: 586 + max(676, 150) + max(676, 134) + 134, 1: (586 + 676 + 134) + (150 + 676 + 134)}
    for buffers, cycles in expected.items():
        g = conv_graph(16, 8, 8, 16, (3, 3), (1, 1), (1, 1, 1, 1))
        cm = build(place(g, {"conv": ("conv2d", (16, 4, 8, buffers))}))
        x = feeds(cm.graph)
        result = cm.profile(x)
        report = result["report"]
        np.testing.assert_array_equal(result["outputs"]["conv"], interpret(cm.graph, x)["conv"])
        layer, = report["layers"]
        assert layer["cycles"] == cycles == report["total_cycles"]
        assert layer["cycles_per_core"] == {"host": 0, "digital": 2 * 676, "analog": 0, "dma": 586 + 150 + 2 * 134}
        assert layer["dma_bytes"] == 2 * 640 + 16 * 16 * 9 + 64 + 2 * 512 == report["dma_bytes"]
        assert report["modeled"] is True and report["cycles_per_core"] == layer["cycles_per_core"]


def test_host_layers_profiled_with_the_host_estimate():
    cm = build(place(zoo_graph("kws"), {}))
    report = cm.profile(feeds(cm.graph))["report"]
    per_layer = [layer["cycles"] for layer in report["layers"]]
    assert per_layer == [host_cost.host_cycles(cm.graph, n, DIANA.host) for n in cm.graph.nodes()]
    assert report["total_cycles"] == sum(per_layer) == report["cycles_per_core"]["host"]
    assert report["cycles_per_core"]["digital"] == report["cycles_per_core"]["dma"] == 0


def test_profile_on_an_unknown_machine_is_an_input_error():
    cm = build(place(dense_graph(16, 16), {}))
    with pytest.raises(InputError, match="'host' or 'qemu'"):
        cm.profile(feeds(cm.graph), on="fpga")


# ---------------------------------------------------------------- checks
def overflow_case(activations: int) -> CompiledModel:
    """Double buffered: 2 input buffers of 16 x 9 x 16 = 2304 B, then 2 output buffers of 2048 B; job 0
    writes [4608, 6656), job 1 [6656, 8704)."""
    g = conv_graph(16, 16, 16, 16, (3, 3), (1, 1), (1, 1, 1, 1))
    return build(place(g, {"conv": ("conv2d", (16, 8, 16, 2))}), small_chip(activations, 4000))


def test_overflowing_tiling_is_caught_with_layer_and_tile():
    cm = overflow_case(6000)
    with pytest.raises(ToolchainError, match=r"exit 3\): tinyc-emu: layer conv tile 0: job output \[4608, 6656\) "
                                             r"overflows memory digital\.L1_activations \(6000 B\)"):
        cm.run(feeds(cm.graph))


def test_overflow_of_a_later_tile_names_it():
    cm = overflow_case(8703)
    with pytest.raises(ToolchainError, match=r"tinyc-emu: layer conv tile 1: job output \[6656, 8704\) overflows"):
        cm.run(feeds(cm.graph))
    assert_bit_exact(overflow_case(8704))


HAL_PROBE = r"""#include <stdio.h>
#include "tinyc_hal.h"
static const tinyc_hal_memory memories[2] = {{"act", 64}, {"w", 64}};
static const tinyc_hal_core cores[1] = {{"acc", 0, 1, 100, 0, 0, 8}};
/* dense on a 16x16 PE array, requantized by a shift */
static const tinyc_hal_job_kind kinds[1] = {{"dense", 0, TINYC_COMPUTE_DENSE, TINYC_REQUANT_SHIFT, 0, 0, 31, 0, 8, 1,
                                             16, 1, 16, TINYC_REDUCE_CHANNELS, 16, 1, 0, 0}};
static const tinyc_hal_target chip = {"host", 2, memories, 1, cores, 70, 8, 1, kinds};
static const int8_t x[4] = {1, 2, 3, 4}, w[64] = {5};
static int8_t y[16];
int main(void)
{
    const tinyc_hal_box in = {{1, 1, 4}, {0, 0}}, weights = {{1, 1, 64}, {0, 0}}, out = {{1, 1, 16}, {0, 0}};
    /* a dense job: x[4] in act [0, 4), w[4][16] in w [0, 64), no bias, y[16] to act [32, 48) */
    const tinyc_hal_job job = {0, 4, 1, 1, 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, -128, 127, 0, 0, 0, 0,
                               0, 0, 32, 0, -1, NULL, {0, 0, 0, 0, 0, 0, 0}, 0};
    tinyc_hal_init(&chip);
    tinyc_hal_layer_begin(0, "probe");
    tinyc_hal_dma_in(0, 0, @IN_AT@, x, &in);
    tinyc_hal_dma_in(0, 1, 0, w, &weights);
    @BEFORE_JOB@
    tinyc_hal_job_start(0, 5, &job);
    @DURING_JOB@
    tinyc_hal_job_wait(0);
    tinyc_hal_dma_out(5, y, 0, 32, &out);
    tinyc_hal_dma_wait();
    tinyc_hal_layer_end();
    printf("%llu %d\n", (unsigned long long)tinyc_hal_cycles(), y[0]);
    tinyc_hal_finish();
    return 0;
}
"""


def run_hal_probe(tmp_path, in_at=0, before_job="tinyc_hal_dma_wait();", during_job="") -> str:
    main = HAL_PROBE.replace("@IN_AT@", str(in_at)).replace("@BEFORE_JOB@", before_job)
    exe = toolchain.build({**runtime_sources(), "main.c": main.replace("@DURING_JOB@", during_job)}, tmp_path,
                          sanitize=True)
    return toolchain.run_tool([str(exe)], tmp_path, "the HAL probe").stdout


def test_hal_timeline_and_result(tmp_path):
    """Both transfers queue on one DMA engine: 70 + ceil(4/8), then 70 + 64/8; the job one pass of
    ceil(4/16) + 100; the output 70 + 16/8. y[0] = 1 * 5, shift 0."""
    assert run_hal_probe(tmp_path).split() == [str(71 + 78 + 101 + 72), "5"]


def test_hal_out_of_bounds_dma(tmp_path):
    with pytest.raises(ToolchainError, match=r"exit 3\): tinyc-emu: layer probe tile 0: DMA in \[62, 66\) "
                                             r"overflows memory act \(64 B\)"):
        run_hal_probe(tmp_path, in_at=62)


def test_hal_job_on_an_unwaited_transfer(tmp_path):
    with pytest.raises(ToolchainError, match=r"tile 5: job uses \[0, 4\) of memory act while a DMA transfer"):
        run_hal_probe(tmp_path, before_job="")


def test_hal_transfer_into_a_running_job(tmp_path):
    with pytest.raises(ToolchainError, match=r"tile 6: \[0, 4\) of memory act is in use by the unwaited job of "
                                             r"core acc"):
        run_hal_probe(tmp_path, during_job="tinyc_hal_dma_in(6, 0, 0, x, &in);")


def test_no_accelerator_no_driver_code():
    """Host layers keep their kernels, between the HAL's layer markers and with the host estimate."""
    g = dense_graph(16, 16)
    g = plan_memory(g.connect())
    c = emit_c(g, "model", DIANA)["model.c"]
    assert "accel_" not in c and "tinyc_qdense_plan_s8(" in c
    assert f"tinyc_hal_host_work(UINT64_C({host_cost.host_cycles(g, 'fc', DIANA.host)}));" in c
