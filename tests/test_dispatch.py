"""dispatch: which core runs each layer, and why the host when it does.

Oracles are not tinyc: small QDQ graphs written here whose placement is known by hand from DIANA's
digital-core constraints (docs/accelerators.md), the zoo networks' layers counted in their ONNX graphs,
and the official MLPerf Tiny models, whose scales are not powers of two.
"""
import json
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc.zoo
from conftest import MLPERF_MODELS
from onnx_builders import const, model, tensor
from tinyc import targets
from tinyc.frontend.onnx import from_onnx
from tinyc.ir.graph import Placement
from tinyc.ir.verify import verify
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import LOWERINGS, dispatch
from tinyc.report import build_report
from tinyc.targets.base import Core, Memory, Param, Pattern, Target
from tinyc.targets.jobs import Cycles, JobKind, Requantizer

DIANA = targets.get("diana")
KERNEL = "digital: kernel 1, 3, 5 or 7 on each side"


def placed(onnx_model, config="digital", target=DIANA):
    return dispatch(canonicalize(from_onnx(onnx_model)), target, config)


def only(g, op):
    """The placement of the graph's one node of `op`."""
    nodes = [n for n in g.nodes() if n.op == op]
    assert len(nodes) == 1, [n.op for n in g.nodes()]
    return nodes[0].placement


# ---------------------------------------------------------------- hand-built QDQ graphs
def _dq(name, scale, zp=0, axis=None):
    """DequantizeLinear of `name` with its scale and zero point as initializers."""
    scale = np.asarray(scale, np.float32)
    zp = np.full(scale.shape, zp, np.int32 if name.endswith("_b") else np.int8)
    kw = {} if axis is None else {"axis": axis}
    node = helper.make_node("DequantizeLinear", [name, name + "_dq_s", name + "_dq_zp"], [name + "_f"], **kw)
    return node, [const(name + "_dq_s", scale), const(name + "_dq_zp", zp)]


def _q(src, out, scale, zp=0):
    node = helper.make_node("QuantizeLinear", [src, out + "_s", out + "_zp"], [out])
    return node, [const(out + "_s", np.float32(scale)), const(out + "_zp", np.int8(zp))]


def qconv(kernel=(3, 3), c_in=4, c_out=4, size=12, strides=(1, 1), pads=None, dilations=(1, 1), group=1,
          x_scale=2.0 ** -4, w_scale=2.0 ** -6, y_scale=2.0 ** -3, x_zp=0):
    """x int8 -> DQ -> Conv(DQ w, DQ b) -> Relu -> Q -> y int8; w_scale a number or one per output channel."""
    rng = np.random.default_rng(0)
    pads = pads if pads is not None else [k // 2 for k in kernel] * 2
    w = rng.integers(-20, 20, (c_out, c_in // group) + tuple(kernel)).astype(np.int8)
    bias_scale = np.float32(x_scale) * np.asarray(w_scale, np.float32)
    nodes, inits = [], [const("w", w), const("w_b", rng.integers(-50, 50, c_out).astype(np.int32))]
    for name, scale, zp, axis in (("x", x_scale, x_zp, None), ("w", w_scale, 0, 0 if np.size(w_scale) > 1 else None),
                                  ("w_b", bias_scale, 0, 0 if np.size(bias_scale) > 1 else None)):
        node, consts = _dq(name, scale, zp, axis)
        nodes.append(node)
        inits += consts
    nodes += [helper.make_node("Conv", ["x_f", "w_f", "w_b_f"], ["c"], kernel_shape=list(kernel),
                               strides=list(strides), pads=list(pads), dilations=list(dilations), group=group),
              helper.make_node("Relu", ["c"], ["r"])]
    q, consts = _q("r", "y", y_scale)
    out_hw = [(size + pads[i] + pads[i + 2] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in (0, 1)]
    return model(nodes + [q], [tensor("x", [1, c_in, size, size], TensorProto.INT8)],
                 [tensor("y", [1, c_out] + out_hw, TensorProto.INT8)], inits + consts)


def qadd(a_shape=(1, 4, 8, 8), b_shape=(1, 4, 8, 8), scales=(2.0 ** -4, 2.0 ** -5, 2.0 ** -3)):
    nodes, inits = [], []
    for name, scale in zip("ab", scales):
        node, consts = _dq(name, scale)
        nodes.append(node)
        inits += consts
    q, consts = _q("s", "y", scales[2])
    out = list(np.broadcast_shapes(a_shape, b_shape))
    return model(nodes + [helper.make_node("Add", ["a_f", "b_f"], ["s"]), q],
                 [tensor("a", list(a_shape), TensorProto.INT8), tensor("b", list(b_shape), TensorProto.INT8)],
                 [tensor("y", out, TensorProto.INT8)], inits + consts)


def qdense_softmax(k=16, n=4):
    """x int8 [1, k] -> dense (MatMul + bias Add) -> Q -> DQ -> Softmax -> Q."""
    rng = np.random.default_rng(1)
    nodes, inits = [], [const("w", rng.integers(-20, 20, (k, n)).astype(np.int8)),
                        const("w_b", rng.integers(-50, 50, n).astype(np.int32))]
    for name, scale in (("x", 2.0 ** -4), ("w", 2.0 ** -6), ("w_b", 2.0 ** -10)):
        node, consts = _dq(name, scale)
        nodes.append(node)
        inits += consts
    q1, c1 = _q("d", "logits", 2.0 ** -3)
    dq, c2 = _dq("logits", 2.0 ** -3)
    q2, c3 = _q("p", "probs", 2.0 ** -8, -128)
    nodes += [helper.make_node("MatMul", ["x_f", "w_f"], ["m"]), helper.make_node("Add", ["m", "w_b_f"], ["d"]),
              q1, dq, helper.make_node("Softmax", ["logits_f"], ["p"], axis=-1), q2]
    return model(nodes, [tensor("x", [1, k], TensorProto.INT8)], [tensor("probs", [1, n], TensorProto.INT8)],
                 inits + c1 + c2 + c3)


def test_pow2_3x3_conv_runs_on_digital():
    g = placed(qconv())
    p = only(g, "qconv")
    conv = next(n for n in g.nodes() if n.op == "qconv")
    assert (p.core, p.pattern, p.anchor, p.reason) == ("digital", "conv2d", conv.name, "")


@pytest.mark.parametrize("kernel", [(1, 1), (5, 5), (7, 7), (3, 5), (1, 7)])
def test_kernels_of_1_3_5_7_run_on_digital_square_or_not(kernel):
    assert only(placed(qconv(kernel)), "qconv").core == "digital"


@pytest.mark.parametrize("kernel,found", [((9, 9), "9x9"), ((10, 4), "10x4"), ((2, 3), "2x3")])
def test_other_kernels_stay_on_host_saying_which(kernel, found):
    p = only(placed(qconv(kernel, pads=[0, 0, 0, 0])), "qconv")
    assert (p.core, p.pattern) == ("host", "")
    assert p.reason == f"{KERNEL} (is {found})"


def test_per_channel_shifts_stay_on_host():
    p = only(placed(qconv(w_scale=[2.0 ** -6, 2.0 ** -7, 2.0 ** -6, 2.0 ** -8])), "qconv")
    assert p.core == "host"
    assert p.reason == "digital: one requantization shift 0..31 for the layer (has 3 shifts, 7..9)"


def test_non_power_of_two_scale_stays_on_host():
    p = only(placed(qconv(x_scale=0.01)), "qconv")
    assert p.core == "host"
    assert p.reason.startswith("digital: power-of-two scales, requantization by a shift (requantizes by 0.0")


@pytest.mark.parametrize("kw,reason", [
    (dict(dilations=(2, 2), pads=[2, 2, 2, 2]), "digital: dilation 1 (is 2x2)"),
    (dict(strides=(3, 3)), "digital: stride 1 or 2 on each side (is 3x3)"),
    (dict(pads=[2, 1, 2, 1]), "digital: padding at most kernel // 2 on each side (is 2, 1, 2, 1 for a 3x3 kernel)"),
    (dict(x_zp=3), "digital: zero points 0 (input 3)"),
])
def test_each_failed_constraint_is_named(kw, reason):
    p = only(placed(qconv(**kw)), "qconv")
    assert (p.core, p.reason) == ("host", reason)


def test_stride_2_and_non_square_stride_run_on_digital():
    assert only(placed(qconv(strides=(2, 2))), "qconv").core == "digital"
    assert only(placed(qconv(strides=(1, 2))), "qconv").core == "digital"


def test_depthwise_runs_on_digital_and_grouped_conv_does_not():
    p = only(placed(qconv(group=4)), "qconv")
    assert (p.core, p.pattern) == ("digital", "depthwise")
    p = only(placed(qconv(group=2)), "qconv")
    assert (p.core, p.reason) == ("host", "digital: groups 1 (is 2)")


def test_depthwise_reason_is_its_own_pattern_failure():
    """A depthwise conv fails conv2d at once (groups) and depthwise later: the report quotes the later."""
    p = only(placed(qconv(group=4, kernel=(9, 9), pads=[0, 0, 0, 0])), "qconv")
    assert p.reason == f"{KERNEL} (is 9x9)"


def test_same_shape_add_runs_on_digital_broadcast_add_does_not():
    p = only(placed(qadd()), "qadd")
    assert (p.core, p.pattern) == ("digital", "add")
    p = only(placed(qadd(b_shape=(1, 4, 1, 1))), "qadd")
    assert (p.core, p.reason) == ("host", "digital: both inputs the output's shape (no broadcast) "
                                          "(adds [1, 4, 8, 8] and [1, 4, 1, 1])")


def test_add_with_scales_not_powers_of_two_stays_on_host():
    p = only(placed(qadd(scales=(0.03, 0.02, 0.05))), "qadd")
    assert p.core == "host" and "power-of-two scales" in p.reason


def test_dense_on_digital_softmax_has_no_pattern():
    g = placed(qdense_softmax())
    assert (only(g, "qmatmul").core, only(g, "qmatmul").pattern) == ("digital", "dense")
    assert only(g, "qsoftmax").reason == "digital: no pattern for op qsoftmax"


def test_cpu_configuration_puts_everything_on_host():
    g = placed(qconv(), config="cpu")
    assert {n.placement.core for n in g.nodes()} == {"host"}
    assert all(n.placement.reason == "configuration cpu uses no accelerator" for n in g.nodes())


def test_dispatch_leaves_its_input_alone_and_verifies():
    g = canonicalize(from_onnx(qconv()))
    out = dispatch(g, DIANA, "mixed")
    assert all(n.placement is None for n in g.nodes())
    assert verify(out) is out


# ---------------------------------------------------------------- the matcher on a made-up target
def _chip(*cores):
    return Target("chip", "test", 1e8, Memory("L2", 1 << 20), (Core("cpu", "cpu"),) + cores,
                  configs={"ab": ("a", "b"), "ba": ("b", "a")},
                  params={"dma_setup_cycles": Param(70, "t"), "dma_bytes_per_cycle": Param(8, "t")})


def _conv2d(pe=16):
    """A conv pattern the cost model prices as a pe x pe array's job."""
    job = JobKind("conv2d", "conv", Requantizer("shift"), Cycles(pe, pe, reduction="window"))
    return Pattern("conv2d", ("qconv",), job=job)


def _accel(name, *patterns, pe=16):
    """An accelerator the cost model can price: a pe x pe array with the digital core's memories."""
    return Core(name, "accelerator", patterns=patterns,
                memories=(Memory("act", 1 << 16, role="activations"), Memory("w", 1 << 16, role="weights")),
                params={"pe_rows": Param(pe, "t"), "pe_cols": Param(pe, "t"), "job_setup_cycles": Param(100, "t")})


def conv_pool(second_reader=False):
    """x -> qconv -> qavgpool (global), the conv's output also read by a maxpool when asked."""
    m = qconv()
    nodes = list(m.graph.node)
    dq, consts = _dq("y", 2.0 ** -3)
    pool_q, c1 = _q("pooled", "z", 2.0 ** -3)
    extra = [dq, helper.make_node("GlobalAveragePool", ["y_f"], ["pooled"]), pool_q]
    outputs = [tensor("z", [1, 4, 1, 1], TensorProto.INT8)]
    if second_reader:
        max_q, c2 = _q("maxed", "m", 2.0 ** -3)
        extra += [helper.make_node("MaxPool", ["y_f"], ["maxed"], kernel_shape=[2, 2], strides=[2, 2]), max_q]
        outputs.append(tensor("m", [1, 4, 6, 6], TensorProto.INT8))
        consts += c2
    return model(nodes + extra, [tensor("x", [1, 4, 12, 12], TensorProto.INT8)], outputs,
                 list(m.graph.initializer) + consts + c1)


def test_longest_pattern_first_and_single_reader_chains():
    chip = _chip(_accel("a", Pattern("conv", ("qconv",)), Pattern("conv_pool", ("qconv", "qavgpool"))),
                 _accel("b"))
    g = placed(conv_pool(), "ab", chip)
    pool = next(n for n in g.nodes() if n.op == "qavgpool")
    assert only(g, "qconv") == Placement("a", "conv_pool", pool.name)
    assert pool.placement == Placement("a", "conv_pool", pool.name)
    g = placed(conv_pool(second_reader=True), "ab", chip)  # the conv's output has two readers: no chain
    assert (only(g, "qconv").pattern, only(g, "qavgpool").core) == ("conv", "cpu")
    assert only(g, "qavgpool").reason == \
        "a: qavgpool only inside a conv_pool chain whose inner values have one reader; b: no pattern for op qavgpool"


def test_a_valid_chain_that_overlaps_an_earlier_one_says_so():
    m = conv_pool()
    m.graph.node.append(helper.make_node("Flatten", ["z"], ["flat"]))
    m.graph.output.pop()
    m.graph.output.append(tensor("flat", [1, 4], TensorProto.INT8))
    chip = _chip(_accel("a", Pattern("conv_pool", ("qconv", "qavgpool")),
                        Pattern("pool_flat", ("qavgpool", "reshape"))), _accel("b"))
    g = placed(m, "ab", chip)
    pool = next(n for n in g.nodes() if n.op == "qavgpool")
    assert only(g, "qconv").pattern == pool.placement.pattern == "conv_pool"
    assert only(g, "reshape").reason == \
        f"a: its pool_flat job would overlap the conv_pool job of {pool.name}; b: no pattern for op reshape"


def test_same_job_on_two_equal_cores_goes_to_the_first_of_the_configuration():
    chip = _chip(_accel("a", _conv2d()), _accel("b", _conv2d()))
    p = only(placed(qconv(), "ab", chip), "qconv")
    assert p.core == "a" and p.candidates["a"] == p.candidates["b"]
    assert only(placed(qconv(), "ba", chip), "qconv").core == "b"


def test_same_job_on_two_cores_goes_to_the_cheaper_by_the_cost_model():
    """A 4x4 array is slower than a 16x16 one whatever the configuration's order."""
    chip = _chip(_accel("a", _conv2d(pe=4), pe=4), _accel("b", _conv2d()))
    for config in ("ab", "ba"):
        p = only(placed(qconv(), config, chip), "qconv")
        assert p.core == "b" and p.candidates["b"] < p.candidates["a"]


# ---------------------------------------------------------------- the zoo and the official models
def expected_jobs(m: onnx.ModelProto) -> tuple[Counter, list[str]]:
    """Digital jobs by kind counted in the ONNX graph, and the Conv nodes whose kernel DIANA lacks."""
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    weight_dq = {n.output[0] for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}
    jobs, odd = Counter(), []
    for n in m.graph.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if n.op_type == "Conv" and any(k not in (1, 3, 5, 7) for k in inits[_source(m, n.input[1])].shape[2:]):
            odd.append(n.name)
        elif n.op_type == "Conv":
            jobs["conv2d" if group == 1 else "depthwise"] += 1
        elif n.op_type in ("MatMul", "Gemm"):
            jobs["dense"] += 1
        elif n.op_type == "Add" and not weight_dq & set(n.input):  # a residual add, not a dense's bias
            jobs["add"] += 1
    return jobs, odd


def _source(m, value):
    """The initializer a DequantizeLinear output reads."""
    return next(n.input[0] for n in m.graph.node if n.output[0] == value)


@pytest.mark.parametrize("name", ["kws", "vww", "ic", "ad"])
def test_zoo_int8_runs_every_layer_on_digital_but_kws_first_conv(name):
    m = tinyc.zoo.build(name, "int8")
    jobs, odd = expected_jobs(m)
    g = placed(m, "mixed")
    on_digital = Counter(n.placement.pattern for n in g.nodes() if n.placement.core == "digital")
    assert on_digital == jobs
    assert [n.name for n in g.nodes() if n.op == "qconv" and n.placement.core == "host"] == [o + "_q" for o in odd]
    assert len(odd) == (1 if name == "kws" else 0)
    for n in g.nodes():
        if n.op == "qconv" and n.placement.core == "host":
            assert n.placement.reason.startswith(f"{KERNEL} (is 10x4); analog: weights in {{-1, 0, 1}} (has ")


@pytest.mark.parametrize("task", sorted(MLPERF_MODELS))
def test_official_models_stay_on_host_for_their_scales(mlperf_dir, task):
    path = mlperf_dir / MLPERF_MODELS[task][0]
    m = onnx.load(path)
    g = placed(m, "mixed")
    assert {n.placement.core for n in g.nodes()} == {"host"}
    convs = [n for n in g.nodes() if n.op == "qconv"]
    assert len(convs) == sum(n.op_type == "Conv" for n in m.graph.node)
    for n in convs + [n for n in g.nodes() if n.op in ("qmatmul", "qadd")]:
        assert n.placement.reason.startswith("digital: power-of-two scales, requantization by a shift (requantizes by")


# ---------------------------------------------------------------- the report
def test_report_says_where_each_layer_runs_and_why():
    g = placed(qdense_softmax(), "mixed")
    dense = next(n for n in g.nodes() if n.op == "qmatmul")
    tile, cost = {"c_out": np.int64(4), "buffers": 2}, {"cycles": np.int64(120), "utilization": np.float64(0.5)}
    g.set_node(dense.name, placement=Placement("digital", "dense", dense.name, tile=tile, cost=cost))
    layers = {entry["op"]: entry for entry in json.loads(json.dumps(build_report(g, DIANA, "mixed")))["layers"]}
    assert layers["qmatmul"]["core"] == "digital" and layers["qmatmul"]["pattern"] == "dense"
    assert layers["qmatmul"]["tile"] == {"c_out": 4, "buffers": 2}
    assert layers["qmatmul"]["modeled"] == {"cycles": 120, "utilization": 0.5}
    assert "reason" not in layers["qmatmul"]
    assert layers["qsoftmax"]["core"] == "host"
    assert layers["qsoftmax"]["reason"] == "digital: no pattern for op qsoftmax; analog: no pattern for op qsoftmax"


def test_every_pattern_lowering_is_one_dispatch_has():
    """The targets name their chains' rewrites as data (Pattern.lowering); dispatch must know each name."""
    named = {p.lowering for t in map(targets.get, targets.names()) for core in t.cores for p in core.patterns
             if p.lowering is not None}
    assert "adc" in named  # DIANA's analog patterns
    assert named <= set(LOWERINGS)
