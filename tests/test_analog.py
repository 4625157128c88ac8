"""DIANA's analog core: the aconv/amatmul semantics checked by hand, the 7-bit range analysis, dispatch
by the cost model between the digital and analog cores, the emulator's bounds and cycles, and the
accuracy the ADC costs on the ternary zoo.

Oracles are not the analog code itself: ADC read-outs computed by hand here, the qconv/qmatmul the
layer came from (the analog job stays within the ADC rule's documented error of it), the cost model's
figures recomputed per core, and the cpu configuration's outputs for the SNR bound.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyc
import tinyc.zoo as zoo
from conftest import snr_db
from tinyc.compiler import CompiledModel
from tinyc.errors import ToolchainError
from tinyc.frontend.onnx import from_onnx
from tinyc.ir import interpret, ops
from tinyc.passes.lower_adc import adc_rule
from tinyc.ir.graph import Graph, Placement, Value
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import dispatch
from tinyc.passes.memory import plan_memory
from tinyc.passes.tiling import tile_layer, tiling
from tinyc.targets import cost
from tinyc.targets.diana import DIANA

NETS = ["kws", "vww", "ic", "ad"]
SNR_DB = 15.0  # the bound asserted on every ternary zoo network's analog outputs against the cpu config's
UNIT = 1 << 30  # a power-of-two requantization multiplier


def rng(seed=0):
    return np.random.default_rng(seed)


def int8_inputs(g, seed=0):
    return {n: rng(seed).integers(-128, 128, g.values[n].shape).astype(np.int8) for n in g.inputs}


# ---------------------------------------------------------------- hand-built graphs
def q_attrs(s: int, lo: int, hi: int) -> dict:
    """A qmatmul/qconv requantization by a right shift s (the IR's shift is 1 - s)."""
    return dict(x_zp=0, w_zp=np.zeros(1, np.int32), multiplier=np.array([UNIT], np.int32),
                shift=np.array([1 - s], np.int32), out_zp=0, out_min=lo, out_max=hi, rounding="single")


def dense_chain(k: int, n: int, first_max: int = 63, s: int = 2, seed: int = 0) -> Graph:
    """x int8[1, 16] -> qmatmul (clip 0..first_max, int8 weights) -> qmatmul with ternary w[k, n]."""
    r = rng(seed)
    g = Graph("dense_chain")
    g.inputs = [g.add_value(Value("x", (1, 16), "int8")).name]
    w1 = g.add_const("w1", r.integers(-20, 21, (16, k)).astype(np.int8)).name
    h = ops.add(g, "qmatmul", ["x", w1, ""], "fc1", **q_attrs(6, 0, first_max))
    w2 = g.add_const("w2", r.integers(-1, 2, (k, n)).astype(np.int8)).name
    b2 = g.add_const("b2", r.integers(-50, 51, n).astype(np.int32)).name
    g.outputs = [ops.add(g, "qmatmul", [h, w2, b2], "fc2", **q_attrs(s, -128, 127))]
    return g.connect()


def conv_chain(c_in: int, c_out: int, size: int, kernel: int = 1, seed: int = 0) -> Graph:
    """x int8 -> qconv 3x3 depthwise-free first layer (clip 0..63) -> ternary qconv `kernel` x `kernel`."""
    r = rng(seed)
    g = Graph("conv_chain")
    g.inputs = [g.add_value(Value("x", (1, c_in, size, size), "int8")).name]
    conv = dict(strides=(1, 1), dilations=(1, 1), group=1)
    w1 = g.add_const("w1", r.integers(-3, 4, (c_in, c_in, 1, 1)).astype(np.int8)).name
    h = ops.add(g, "qconv", ["x", w1, ""], "conv1", pads=(0, 0, 0, 0), **conv, **q_attrs(6, 0, 63))
    w2 = g.add_const("w2", r.integers(-1, 2, (c_out, c_in, kernel, kernel)).astype(np.int8)).name
    b2 = g.add_const("b2", r.integers(-50, 51, c_out).astype(np.int32)).name
    pad = kernel // 2
    g.outputs = [ops.add(g, "qconv", [h, w2, b2], "conv2", pads=(pad,) * 4, **conv, **q_attrs(3, 0, 127))]
    return g.connect()


def node(g, name):
    return next(n for n in g.nodes() if n.name == name)


# ---------------------------------------------------------------- semantics by hand
HAND_ADC = dict(adc_shift=3, adc_min=-32, adc_max=31, post_multiplier=8, post_shift=2, out_min=-128, out_max=127)
HAND_X = np.array([[63, 63, -64, 63]], np.int8)
HAND_W = np.array([[1, 1, -1, -1], [1, 0, -1, -1], [-1, 0, 1, 1], [1, 1, 0, -1]], np.int8)  # w[K=4][N=4]
HAND_B = np.array([5, -3, 0, 0], np.int32)
# worked by hand, floor shifts with half added first (x = 63, 63, -64, 63):
# column 0, w (1, 1, -1, 1): acc = 253; ADC (253 + 4) >> 3 = 32, clipped to 31; 31 * 8 + 5 = 253; 255 >> 2 = 63
# column 1, w (1, 0, 0, 1): acc = 126; 130 >> 3 = 16; 16 * 8 - 3 = 125; 127 >> 2 = 31
# column 2, w (-1, -1, 1, 0): acc = -190; -186 >> 3 = -24 (floor of -23.25); -192; -190 >> 2 = -48
# column 3, w (-1, -1, 1, -1): acc = -253; -249 >> 3 = -32 (the ADC's least); -256; -254 >> 2 = -64
HAND_Y = np.array([[63, 31, -48, -64]], np.int8)


def hand_graph() -> Graph:
    g = Graph("hand")
    g.inputs = [g.add_value(Value("x", (1, 4), "int8")).name]
    w = g.add_const("w", HAND_W).name
    b = g.add_const("b", HAND_B).name
    g.outputs = [ops.add(g, "amatmul", ["x", w, b], "analog_fc", **HAND_ADC)]
    return g.connect()


def test_hand_calculated_adc_read_out():
    assert HAND_W.T.tolist() == [[1, 1, -1, 1], [1, 0, 0, 1], [-1, -1, 1, 0], [-1, -1, 1, -1]]
    g = hand_graph()
    assert interpret(g, {"x": HAND_X})[g.outputs[0]].tolist() == HAND_Y.tolist()
    # the host's C kernel of the op, and the analog core's emulated job, give the same
    host = host_graph(g)
    assert CompiledModel(host, DIANA, "cpu", "m").run({"x": HAND_X})[g.outputs[0]].tolist() == HAND_Y.tolist()
    placed = analog_placed(g, "analog_fc", "analog_dense", (4, 1, 1, 1))
    assert CompiledModel(placed, DIANA, "analog", "m").run({"x": HAND_X}, sanitize=True)[g.outputs[0]].tolist() \
        == HAND_Y.tolist()


def host_graph(g: Graph) -> Graph:
    g = g.copy()
    for n in g.nodes():
        g.set_node(n.name, placement=Placement("host"))
    g = plan_memory(g.connect())
    return g


def analog_placed(g: Graph, name: str, kind: str, tile) -> Graph:
    g = g.copy()
    for n in g.nodes():
        p = Placement("host")
        if n.name == name:
            tc, th, tw, buffers = tile
            p = Placement("analog", kind, name, tile={"c_out": tc, "h_out": th, "w_out": tw, "buffers": buffers})
        g.set_node(n.name, placement=p)
    g = plan_memory(g.connect())
    return g


def test_adc_rule_by_hand():
    """w = all ones over K = 4 rows, input clipped 0..63: acc in [0, 252]; s = 2, output 0..127 clips at
    acc 508, so the ADC must cover [0, 252]: (252 + 4) >> 3 = 32 > 31, (252 + 8) >> 4 = 16: adc_shift 4,
    post_multiplier 2**4, post_shift 2."""
    g = dense_chain(4, 1, s=2)
    g.values["w2"].data[:] = 1
    n = node(g, "fc2")
    g.set_node("fc2", attrs={**n.attrs, "out_min": 0})
    rule = adc_rule(g, node(g, "fc2"), 6)
    assert (rule["adc_shift"], rule["post_multiplier"], rule["post_shift"]) == (4, 16, 2)
    assert (rule["adc_min"], rule["adc_max"]) == (-32, 31)


def test_adc_rule_left_shift_goes_to_the_multiplier_and_bias():
    """s = -1 (a left shift): post_shift 0, the multiplier and the bias carry the factor 2."""
    g = dense_chain(4, 2, s=-1)
    out = dispatch(g, DIANA, "analog")
    fc2 = node(out, "fc2")
    assert fc2.op == "amatmul" and fc2.attrs["post_shift"] == 0
    assert fc2.attrs["post_multiplier"] == 2 ** (fc2.attrs["adc_shift"] + 1)
    np.testing.assert_array_equal(out.values[fc2.inputs[2]].data, 2 * g.values["b2"].data)


@pytest.mark.parametrize("net", NETS)
def test_every_analog_layer_within_the_rules_error_of_its_qconv(net):
    """Fed the same input, each aconv/amatmul differs from the q-op it replaced by at most
    2**(adc_shift - 1 - s) + 1 LSB (the ADC's rounding step at the output's scale, plus one rounding)."""
    g = canonicalize(from_onnx(zoo.build(net, "ternary")))
    placed = dispatch(g, DIANA, "analog")
    env = interpret(g, int8_inputs(g, 3), keep_all=True)
    for n in placed.nodes():
        if n.op not in ("aconv", "amatmul"):
            continue
        original = node(g, n.name)
        s = 1 - int(np.ravel(original.attrs["shift"])[0])
        args = [None if not v else env[v] if v in env else placed.values[v].data for v in n.inputs]
        got = ops.OPS[n.op].compute(args, n.attrs)[0].astype(int)
        bound = 2.0 ** (n.attrs["adc_shift"] - 1 - s) + 1
        assert np.abs(got - env[original.outputs[0]].astype(int)).max() <= bound, n.name


# ---------------------------------------------------------------- range analysis
def test_range_analysis_accepts_a_7_bit_producer():
    p = node(dispatch(dense_chain(32, 16), DIANA, "analog"), "fc2").placement
    assert (p.core, p.pattern) == ("analog", "analog_dense")


def test_range_analysis_refuses_an_8_bit_producer_with_the_reason():
    p = node(dispatch(dense_chain(32, 16, first_max=127), DIANA, "analog"), "fc2").placement
    assert p.core == "host"
    assert p.reason == "analog: input proven within 7 bits signed (-64..63) (0..127 from the clip of qmatmul fc1)"


def test_range_analysis_refuses_the_graph_inputs_int8_range():
    p = node(dispatch(dense_chain(32, 16), DIANA, "analog"), "fc1").placement
    assert p.core == "host" and p.reason.startswith("analog: weights in {-1, 0, 1} (has ")
    g = dense_chain(32, 16)
    g.values["w1"].data[:] = np.sign(g.values["w1"].data)
    p = node(dispatch(g, DIANA, "analog"), "fc1").placement
    assert p.reason == "analog: input proven within 7 bits signed (-64..63) (-128..127 from the graph input's " \
                       "dtype (int8))"


# ---------------------------------------------------------------- dispatch by cost
def figures(g, n):
    """Both cores' modeled cycles of the layer, recomputed from the cost model and the tiler."""
    out = {}
    for core, kind in (("digital", "conv2d" if n.op == "qconv" else "dense"),
                       ("analog", "analog_conv2d" if n.op == "qconv" else "analog_dense")):
        layer = cost.layer_geometry(g, n, DIANA.core(core).job(kind))
        out[core] = tile_layer(layer, cost.machine(DIANA, DIANA.core(core))).cost.cycles
    return out


@pytest.mark.parametrize("net", NETS)
def test_mixed_picks_the_cheaper_core_by_the_model(net):
    g = canonicalize(from_onnx(zoo.build(net, "ternary")))
    placed = tiling(dispatch(g, DIANA, "mixed"), DIANA)
    both = [n for n in placed.nodes() if n.placement.candidates]
    assert both, "the ternary layers are candidates for both cores"
    for n in both:
        want = figures(g, node(g, n.name))
        assert n.placement.candidates == want, n.name
        assert n.placement.core == min(want, key=lambda c: (want[c], c != "digital"))
        assert n.placement.cost["cycles"] == want[n.placement.core]


def test_hand_case_analog_wins():
    """A 1x1 conv of 64 -> 64 channels on 16x16: the digital core spends 64 cycles per 16 channels, row
    and 16 columns (4096 in all); the array one evaluation per pixel (256 x 8) plus 64 row writes."""
    g = conv_chain(64, 64, 16)
    p = node(dispatch(g, DIANA, "mixed"), "conv2").placement
    want = figures(g, node(g, "conv2"))
    assert p.core == "analog" and p.candidates == want and want["analog"] < want["digital"]


def test_hand_case_digital_wins():
    """A dense 256 -> 8: the array writes 256 rows (1024 cycles) for a single evaluation; the digital core
    computes it in 16 passes and moves 2 KiB of weights."""
    g = dense_chain(256, 8)
    p = node(dispatch(g, DIANA, "mixed"), "fc2").placement
    want = figures(g, node(g, "fc2"))
    assert p.core == "digital" and p.candidates == want and want["digital"] < want["analog"]


def test_default_config_is_mixed():
    assert DIANA.default_config == "mixed"
    assert DIANA.configs["analog"] == ("analog",) and set(DIANA.configs["mixed"]) == {"digital", "analog"}


# ---------------------------------------------------------------- the zoo end to end
@pytest.fixture(scope="module")
def runs():
    """Per network and configuration: the compiled model, its inputs and its outputs (shared by tests)."""
    out = {}
    for net in NETS:
        m = zoo.build(net, "ternary")
        for config in ("cpu", "analog", "mixed"):
            cm = tinyc.compile(m, target="diana", config=config)
            x = int8_inputs(cm.graph, 1)
            out[net, config] = (cm, x, cm.run(x))
    return out


@pytest.mark.parametrize("config", ["cpu", "analog", "mixed"])
@pytest.mark.parametrize("net", NETS)
def test_ternary_zoo_bit_exact_with_the_interpreter(runs, net, config):
    cm, x, got = runs[net, config]
    want = cm.interpret(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    if config != "cpu":
        sanitized = cm.run(x, sanitize=True)
        for name in want:
            np.testing.assert_array_equal(sanitized[name], want[name], err_msg=name)


@pytest.mark.parametrize("config", ["analog", "mixed"])
@pytest.mark.parametrize("net", NETS)
def test_emulator_cycles_equal_the_model(runs, net, config):
    cm, x, _ = runs[net, config]
    report = cm.profile(x)["report"]
    on_analog = 0
    for layer, n in zip(report["layers"], cm.graph.nodes()):
        p = n.placement
        if p.core in ("digital", "analog"):
            t = p.tile
            want = cost.evaluate(cost.layer_geometry(cm.graph, n, DIANA.core(p.core).job(p.pattern)),
                                 cost.tile_of(p.tile),
                                 cost.machine(DIANA, DIANA.core(p.core))).cycles
            assert layer["cycles"] == want == p.cost["cycles"], n.name
            on_analog += p.core == "analog"
    assert on_analog > 0


@pytest.mark.parametrize("net", NETS)
def test_analog_accuracy_cost_snr_bound(runs, net):
    """The ADC's cost in accuracy: outputs of the analog config against the cpu config's (int8 logits or
    the reconstruction; softmax outputs compared as they are), on 8 random inputs."""
    cpu, analog = runs[net, "cpu"][0], runs[net, "analog"][0]
    refs, gots = [], []
    for seed in range(8):
        x = int8_inputs(cpu.graph, 100 + seed)
        refs.append(np.concatenate([v.ravel() for v in cpu.run(x).values()]))
        gots.append(np.concatenate([v.ravel() for v in analog.run(x).values()]))
    snr = snr_db(np.concatenate(refs), np.concatenate(gots))
    print(f"{net}: SNR of the analog config against cpu {snr:.1f} dB")
    assert snr >= SNR_DB


# ---------------------------------------------------------------- the emulator catches a wrong tiling
def test_emulator_catches_more_output_channels_than_array_columns():
    g = dense_chain(64, 600)
    placed = dispatch(g, DIANA, "analog")
    wrong = analog_placed(placed, "fc2", "analog_dense", (600, 1, 1, 1))  # the array has 512 columns
    with pytest.raises(ToolchainError, match=r"tinyc-emu: layer fc2 tile 0: analog_dense job has 600 output channels; "
                                             r"core analog holds 512"):
        CompiledModel(wrong, DIANA, "analog", "m").run(int8_inputs(g))
    right = tiling(placed, DIANA)
    assert node(right, "fc2").placement.tile["c_out"] <= 512


def test_emulator_catches_an_8_bit_input():
    """An analog job hand-placed on the graph input (int8, not proven 7-bit): the emulator refuses it."""
    g = hand_graph()
    placed = analog_placed(g, "analog_fc", "analog_dense", (4, 1, 1, 1))
    x = {"x": np.array([[100, 0, 0, 0]], np.int8)}
    with pytest.raises(ToolchainError, match=r"analog_fc tile 0: job input 100 at 0 is outside 7 bits"):
        CompiledModel(placed, DIANA, "analog", "m").run(x)


def test_report_gives_the_cost_behind_each_choice(runs):
    cm = runs["ic", "mixed"][0]
    layers = {layer["name"]: layer for layer in cm.report["layers"]}
    chosen = [layer for layer in layers.values() if "candidates" in layer]
    # the chosen core is the cheapest candidate (L1 reuse, planned after the choice, then re-tiles some layers)
    assert chosen and all(layer["candidates"][layer["core"]] == min(layer["candidates"].values()) for layer in chosen)
