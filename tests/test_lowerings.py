"""The lowering passes (tinyc/passes/lower_*.py): layers no accelerator takes as they are, rewritten into
jobs a core takes, computing the same integers.

Oracles: the host-only build (config cpu), which runs every layer with the portable C kernels, bit for bit
(a lowering changes where a layer runs, never its result); onnxruntime on the QDQ models built here, for
the interpreter itself; the report's reason where a lowering does not apply."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import tinyc
import tinyc.report
import tinyc.zoo
from tinyc.passes.tiling import solved_tiling
from onnx_builders import const, model, tensor


def qdq_convs(shape, layers, seed=0):
    """int8 x[shape] -> (DQ -> Conv(DQ w, DQ b) -> Relu -> Q) per layer -> int8 y; every scale a power of
    two. layers: (out channels, kernel, strides, pads, group) each."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def dq(name, scale, dtype):
        inits.extend([const(name + "_dq_s", np.float32(scale)), const(name + "_dq_zp", np.zeros((), dtype))])
        nodes.append(helper.make_node("DequantizeLinear", [name, name + "_dq_s", name + "_dq_zp"], [name + "_f"]))
        return name + "_f"

    x, c, size = "x", shape[1], list(shape)
    for i, (c_out, kernel, strides, pads, group) in enumerate(layers):
        w = rng.integers(-30, 30, (c_out, c // group) + tuple(kernel)).astype(np.int8)
        inits += [const(f"w{i}", w), const(f"b{i}", rng.integers(-200, 200, c_out).astype(np.int32))]
        conv = helper.make_node("Conv", [dq(x, 2.0 ** -4, np.int8), dq(f"w{i}", 2.0 ** -6, np.int8),
                                         dq(f"b{i}", 2.0 ** -10, np.int32)], [f"c{i}"], kernel_shape=list(kernel),
                                strides=list(strides), pads=list(pads), group=group)
        inits += [const(f"y{i}_s", np.float32(2.0 ** -4)), const(f"y{i}_zp", np.int8(0))]
        nodes += [conv, helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("QuantizeLinear", [f"r{i}", f"y{i}_s", f"y{i}_zp"], [f"y{i}"])]
        n = len(kernel)
        size = size[:1] + [c_out] + [(size[2 + d] + pads[d] + pads[d + n] - kernel[d]) // strides[d] + 1
                                     for d in range(n)]
        x, c = f"y{i}", c_out
    return model(nodes, [tensor("x", list(shape), TensorProto.INT8)], [tensor(x, size, TensorProto.INT8)], inits)


def host_and(model_proto, config, sanitize=False):
    """The model for diana's `config` and for the host only, run on the same seeded input: the diana build's
    report and its outputs, which must equal the host build's bit for bit."""
    cm = tinyc.compile(model_proto, target="diana", config=config)
    x = cm.random_inputs(3)
    got, want = cm.run(x, sanitize=sanitize), tinyc.compile(model_proto, target="diana", config="cpu").run(x)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    return cm, x


def layer(cm, name):
    return next(entry for entry in cm.report["layers"] if entry["name"] == name)


def conv_layers(cm):
    return [entry for entry in cm.report["layers"] if entry["op"] == "qconv"]


# ---------------------------------------------------------------- 1-D convs
CONV1D = qdq_convs((1, 40, 98), [(32, (3,), (1,), (1, 1), 1), (32, (3,), (2,), (1, 1), 32),
                                 (16, (1,), (1,), (0, 0), 1)])


def test_interpreter_equals_onnxruntime_on_the_1d_model():
    cm = tinyc.compile(CONV1D, target="cpu")
    x = cm.random_inputs(3)
    want = ort.InferenceSession(CONV1D.SerializeToString()).run(None, x)[0]
    got = cm.interpret(x)[cm.graph.outputs[0]]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # onnxruntime requantizes in float


def test_1d_convs_run_on_the_digital_core_bit_exact_sanitized():
    cm, _ = host_and(CONV1D, "digital", sanitize=True)
    convs = conv_layers(cm)
    assert len(convs) == 3 and all(entry["core"] == "digital" for entry in convs)
    assert {entry["pattern"] for entry in convs} == {"conv2d", "depthwise"}


# ---------------------------------------------------------------- weights past the cores' memories
WIDE = qdq_convs((1, 512, 6, 6), [(24, (3, 3), (1, 1), (1, 1, 1, 1), 1)])  # 4608 B of weights per channel


@pytest.mark.parametrize("config", ["cpu", "digital", "analog", "mixed"])
def test_a_3x3_conv_of_512_input_channels_compiles_and_runs_in_every_config(config):
    cm, _ = host_and(WIDE, config, sanitize=config == "digital")
    convs = conv_layers(cm)
    if config in ("digital", "mixed"):  # a channel's weights and bias: 512 * 9 + 4 = 4612 B; 64000 B hold 13
        assert [entry["core"] for entry in convs] == ["digital", "digital"]
        assert [entry["shapes"]["outputs"] for entry in convs] == [[[1, 13, 6, 6]], [[1, 11, 6, 6]]]
    else:
        assert [entry["core"] for entry in convs] == ["host"]


def test_one_channel_too_large_stays_on_the_host_with_the_reason():
    """7200 * 9 + 4 = 64804 B of weights and bias per output channel: more than the 64000 B weight memory."""
    cm = tinyc.compile(qdq_convs((1, 7200, 1, 1), [(2, (3, 3), (1, 1), (1, 1, 1, 1), 1)]), target="diana",
                       config="digital")
    conv, = conv_layers(cm)
    assert conv["core"] == "host"
    assert "and 64804 B of weights memory (has 64000 B)" in conv["reason"]
    assert "lower_channel_split: even one output channel per layer" in conv["reason"]


# ---------------------------------------------------------------- kernels and pools of the zoo
def test_kws_first_conv_on_the_digital_core_bit_exact_sanitized():
    cm, _ = host_and(tinyc.zoo.build("kws", "int8"), "digital", sanitize=True)
    first = layer(cm, "conv1_q")  # 10x4 stride 2 over 49x10, transposed (tests/test_transpose_planes.py):
    # 5x5 of stride (2, 1) over the 1x2 space-to-depth input (fewer taps than 3x5 over the 2x2 one's 4 channels)
    assert (first["core"], first["pattern"]) == ("digital", "conv2d")
    assert first["shapes"]["inputs"][:2] == [[1, 2, 10, 29], [64, 2, 5, 5]]
    assert first["shapes"]["outputs"] == [[1, 64, 5, 25]]
    pool = layer(cm, "avgpool1_q")  # 25x5 = 125 values: no shift divides by it
    assert pool["core"] == "host"
    assert "lower_global_pool: a window of 125 values: a shift divides by a power of two only" in pool["reason"]


def test_resnet8_average_pool_on_the_digital_core_bit_exact_sanitized():
    cm, _ = host_and(tinyc.zoo.build("ic", "int8"), "digital", sanitize=True)
    pool = layer(cm, "avgpool1_q")  # 8x8 = 64 values after a ReLU: a sum and a shift by 6
    assert (pool["core"], pool["op"]) == ("digital", "qconv")
    assert pool["shapes"]["inputs"] == [[1, 64, 1, 64], [1, 64, 1, 1]]
    # a pool counts no MACs in the model; as a conv the core sums 64 values for each of 64 channels
    assert (pool["macs"], pool["lowered_macs"], pool["modeled"]["macs"]) == (0, 64 * 64, 0)


def test_a_lowered_layer_counts_the_models_macs():
    """DS-CNN's first conv by hand: 64 output channels of 25x5, each a 10x4 window of 1 channel; lowered,
    the digital core runs a 5x5 window of 2 channels (a row of zero taps). The report counts the model's
    MACs (its utilization too), the cost model the job's cycles."""
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="diana", config="digital")
    first = layer(cm, "conv1_q")
    assert first["macs"] == 64 * 25 * 5 * 10 * 4 == 320_000
    assert first["lowered_macs"] == 64 * 25 * 5 * 5 * 5 * 2 == 400_000
    job = cm.graph.node("conv1_q").placement.cost  # what the core runs: the tiler's and emulator's figures
    assert job["macs"] == 400_000 and first["modeled"]["cycles"] == job["cycles"]
    assert first["modeled"]["macs"] == 320_000
    assert first["modeled"]["utilization"] == pytest.approx(320_000 / (16 * 16 * job["cycles"]))
    # the whole network by hand: that conv, 4 depthwise 3x3 and 4 pointwise 64->64 convs over 25x5, the
    # dense 64->12: the same on every target
    total = 320_000 + 4 * 64 * 125 * 9 + 4 * 64 * 125 * 64 + 64 * 12
    assert cm.report["totals"]["macs"] == total == 2_656_768
    text = tinyc.report.format_text(cm.report).splitlines()
    assert any(row.startswith("conv1_q ") and " 320000 " in row for row in text)
    assert "  conv1_q: 400000" in text


def test_why_a_lowering_does_not_apply():
    nine = tinyc.compile(qdq_convs((1, 4, 12, 12), [(8, (9, 9), (1, 1), (4, 4, 4, 4), 1)]), target="diana",
                         config="digital")
    conv, = conv_layers(nine)  # stride 1: no space-to-depth; 9 + 2 taps reach no size in 1, 3, 5, 7
    assert conv["core"] == "host"
    assert "lower_kernel: 35 rewrite(s) tried, none taken; the last, as a 11x11 conv (taps of weight 0 added): " \
           "digital: kernel 1, 3, 5 or 7 on each side (is 11x11)" in conv["reason"]


def test_a_pool_of_signed_values_stays_on_the_host():
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["xf"]),
             helper.make_node("GlobalAveragePool", ["xf"], ["p"]),
             helper.make_node("QuantizeLinear", ["p", "s", "zp"], ["y"])]
    pool_model = model(nodes, [tensor("x", [1, 8, 4, 4], TensorProto.INT8)],
                       [tensor("y", [1, 8, 1, 1], TensorProto.INT8)],
                       [const("s", np.float32(2.0 ** -4)), const("zp", np.int8(0))])
    cm = tinyc.compile(pool_model, target="diana", config="digital")
    x = cm.random_inputs(5)
    want = ort.InferenceSession(pool_model.SerializeToString()).run(None, x)[0]
    assert np.abs(cm.interpret(x)["y"].astype(int) - want.astype(int)).max() <= 1
    pool, = [entry for entry in cm.report["layers"] if entry["op"] == "qavgpool"]
    assert "lower_global_pool: the input may be negative (-128..127 from the graph input's dtype (int8))" \
           in pool["reason"]


# ---------------------------------------------------------------- one solve per tiling
def test_dispatch_and_tiling_share_one_solve_per_layer_and_core():
    solved_tiling.cache_clear()
    model_proto = tinyc.zoo.build("ic", "ternary")
    first = tinyc.compile(model_proto, target="diana", config="mixed", l1_reuse=False)
    solves = solved_tiling.cache_info().misses
    priced = [entry for entry in first.report["layers"] if entry.get("candidates")]
    assert priced and solved_tiling.cache_info().hits >= len(priced)  # the tiling pass reused each figure
    for entry in priced:  # the figure behind the choice is the one the layer got (no L1 plan changes it)
        assert entry["modeled"]["cycles"] == entry["candidates"][entry["core"]]
    again = tinyc.compile(model_proto, target="diana", config="mixed", l1_reuse=False)
    assert solved_tiling.cache_info().misses == solves  # nothing solved twice
    assert again.report["layers"] == first.report["layers"]


@pytest.mark.parametrize("kernel, strides, pads, group", [
    ((2, 2), (2, 2), (0, 0, 0, 0), 1),  # space-to-depth to 1x1
    ((4, 4), (1, 1), (1, 2, 2, 1), 1),  # zero taps to 5x5
    ((10, 4), (2, 1), (4, 1, 5, 2), 1),  # strided rows only, odd pads
    ((10, 4), (2, 2), (4, 1, 5, 1), 1),  # DS-CNN's: rows folded, the columns' stride 2 kept: 5x5 over 2 channels
    ((4, 10), (2, 2), (1, 4, 2, 5), 1),  # its transpose: columns folded, the rows' stride and pads kept
    ((6, 3), (3, 3), (2, 1, 2, 1), 1),  # 3x3 blocks
    ((2, 4), (1, 1), (1, 1, 0, 2), 6),  # depthwise: zero taps only
])
def test_lowered_kernels_bit_exact_with_the_host_build(kernel, strides, pads, group):
    cm, _ = host_and(qdq_convs((1, 6, 15, 13), [(6, kernel, strides, pads, group)], seed=7), "digital")
    conv, = conv_layers(cm)
    assert conv["core"] == "digital"


def test_the_text_report_says_why_the_pool_stays_on_the_host():
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="diana", config="digital")
    pool = layer(cm, "avgpool1_q")
    assert pool["lowering"] == "lower_global_pool: a window of 125 values: a shift divides by a power of two only"
    assert f"  avgpool1_q: {pool['reason']}" in tinyc.report.format_text(cm.report).splitlines()
