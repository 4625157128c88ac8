"""Issue 13's op coverage against onnxruntime: every new op in float32 (within 1e-4 relative), and in int8
between DequantizeLinear and QuantizeLinear (within 1 LSB of onnxruntime running the same QDQ graph).

The ops are branches of one model off shared inputs, so a single C build (sanitized with ASan/UBSan)
covers them all; a failing output names its op. Also: PyTorch's flatten chain (Shape -> Gather ->
Unsqueeze -> Concat -> Reshape) folds to a constant, and a model with several unsupported ops names them all.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.errors import UnsupportedError

from onnx_builders import const, model, tensor

RTOL, ATOL = 1e-4, 1e-5  # ATOL: see tests/test_float_models.py (sums in another order than onnxruntime's)
RNG = np.random.default_rng(13)
X_SHAPE, SEQ_SHAPE = [1, 4, 6, 6], [3, 1, 5]


class Branches:
    """Nodes off the inputs x (normal), p (positive) and s (a sequence), one named output per branch."""

    def __init__(self):
        self.nodes, self.inits, self.outputs = [], [], []

    def const(self, name, array):
        self.inits.append(const(name, array))
        return name

    def node(self, op, inputs, out=None, **attrs):
        out = out or f"{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def branch(self, label, op, inputs, **attrs):
        """A branch whose output is a model output named after it."""
        self.outputs.append(label)
        self.nodes.append(helper.make_node(op, inputs, [label], name=label, **attrs))
        return label

    def multi(self, label, op, inputs, n, **attrs):
        names = [f"{label}_{k}" for k in range(n)]
        self.outputs += names
        self.nodes.append(helper.make_node(op, inputs, names, name=label, **attrs))

    def model(self, inputs) -> onnx.ModelProto:
        m = model(self.nodes, inputs, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                       for o in self.outputs], self.inits)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        del m.graph.output[:]
        m.graph.output.extend(v for o in self.outputs for v in
                              list(inferred.graph.value_info) + list(inferred.graph.output) if v.name == o)
        return m


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def float_branches() -> Branches:
    b = Branches()
    for op, attrs in [("Tanh", {}), ("Exp", {}), ("Erf", {}), ("Neg", {}), ("Abs", {}), ("Softplus", {}),
                      ("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
                      ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {})]:
        b.branch(op, op, ["x"], **attrs)
    for op in ("Reciprocal", "Log", "Sqrt"):
        b.branch(op, op, ["p"])
    b.branch("Pow_scalar", "Pow", ["p", b.const("e15", np.float32(1.5))])
    b.branch("Pow_tensor", "Pow", ["x", b.const("e_int", np.array([2, 3, 2, 1, 2, 3], np.int64))])
    b.branch("Sub", "Sub", ["x", "p"])
    b.branch("Div", "Div", ["x", "p"])
    b.branch("Max", "Max", ["x", "p", b.const("half", np.float32(0.5))])
    b.branch("Min", "Min", ["x", "p"])
    b.branch("PRelu", "PRelu", ["x", b.const("slope", w(4, 1, 1))])
    b.branch("ReduceMean", "ReduceMean", ["x"], axes=[2, 3])
    b.branch("ReduceMax", "ReduceMax", ["x"], axes=[1], keepdims=0)
    b.branch("ReduceSum", "ReduceSum", ["x", b.const("axes_last", np.array([-1], np.int64))])
    b.branch("ReduceMin", "ReduceMin", ["x"], axes=[0, 2])
    b.branch("ReduceL2", "ReduceL2", ["x"], axes=[3])
    b.branch("ReduceLogSumExp", "ReduceLogSumExp", ["x"], axes=[1])
    b.branch("ArgMax", "ArgMax", ["x"], axis=1)
    b.branch("ArgMin", "ArgMin", ["x"], axis=3, keepdims=0, select_last_index=1)
    b.branch("LogSoftmax", "LogSoftmax", ["x"], axis=1)
    b.branch("Slice", "Slice", ["x", b.const("st", np.array([1, -1], np.int64)), b.const("en", np.array([4, -100], np.int64)),
                                 b.const("ax", np.array([1, 3], np.int64)), b.const("sp", np.array([2, -2], np.int64))])
    b.multi("Split", "Split", ["x", b.const("sizes", np.array([1, 2, 3], np.int64))], 3, axis=2)
    b.branch("Gather", "Gather", ["x", b.const("idx", np.array([[0, 2], [3, -1]], np.int64))], axis=1)
    b.branch("Cast", "Cast", [b.node("Mul", ["x", b.const("ten", np.float32(10))])], to=TensorProto.INT32)
    b.branch("Expand", "Expand", [b.node("ReduceMean", ["x"], axes=[1]),
                                  b.const("shape", np.array([2, 3, 1, 1], np.int64))])
    b.branch("Tile", "Tile", ["x", b.const("reps", np.array([1, 2, 1, 2], np.int64))])
    b.branch("GlobalMaxPool", "GlobalMaxPool", ["x"])
    bn = [b.const(f"bn_{k}", v) for k, v in (("scale", w(4)), ("bias", w(4)), ("mean", w(4)),
                                              ("var", np.abs(w(4)) + 0.1))]
    b.branch("BatchNorm_alone", "BatchNormalization", [b.node("Relu", ["x"]), *bn])
    b.branch("BatchNorm_after_conv", "BatchNormalization", [b.node("Conv", ["x", b.const("cw", w(4, 4, 3, 3))],
                                                                   pads=[1, 1, 1, 1]), *bn], epsilon=1e-3)
    b.branch("LayerNorm", "LayerNormalization", ["x", b.const("ln_s", w(6, 6)), b.const("ln_b", w(6, 6))], axis=-2)
    b.branch("InstanceNorm", "InstanceNormalization", ["x", b.const("in_s", w(4)), b.const("in_b", w(4))])
    b.branch("ConvTranspose", "ConvTranspose", ["x", b.const("ctw", w(4, 3, 3, 2)), b.const("ctb", w(6))],
             strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 0], group=2)
    b.branch("ConvTranspose_dilated", "ConvTranspose", ["x", b.const("ctw2", w(4, 2, 2, 3))],
             dilations=[2, 1], auto_pad="SAME_UPPER", strides=[1, 2])
    b.branch("DepthToSpace_DCR", "DepthToSpace", ["x"], blocksize=2)
    b.branch("DepthToSpace_CRD", "DepthToSpace", ["x"], blocksize=2, mode="CRD")
    b.branch("SpaceToDepth", "SpaceToDepth", ["x"], blocksize=3)
    empty = b.const("roi", np.zeros(0, np.float32))
    b.branch("Resize_nearest", "Resize", ["x", empty, b.const("sc", np.array([1, 1, 2, 1.5], np.float32))],
             mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.branch("Resize_linear", "Resize", ["x", empty, "", b.const("sz", np.array([1, 4, 9, 4], np.int64))],
             mode="linear")
    b.branch("Resize_cubic", "Resize", ["x", empty, b.const("sc2", np.array([1, 1, 0.5, 2], np.float32))],
             mode="cubic", coordinate_transformation_mode="align_corners")
    lstm = [b.const("lw", w(2, 16, 5)), b.const("lr", w(2, 16, 4)), b.const("lb", w(2, 32))]
    b.multi("LSTM", "LSTM", ["s", *lstm], 3, hidden_size=4, direction="bidirectional")
    gru = [b.const("gw", w(1, 9, 5)), b.const("gr", w(1, 9, 3)), b.const("gb", w(1, 18))]
    b.multi("GRU", "GRU", ["s", *gru], 2, hidden_size=3, linear_before_reset=1)
    b.multi("GRU_reverse", "GRU", ["s", *gru], 2, hidden_size=3, direction="reverse")
    return b


def feeds():
    return {"x": RNG.standard_normal(X_SHAPE).astype(np.float32),
            "p": RNG.uniform(0.5, 2.0, X_SHAPE[-1:]).astype(np.float32),
            "s": RNG.standard_normal(SEQ_SHAPE).astype(np.float32)}


INPUTS = [tensor("x", X_SHAPE), tensor("p", X_SHAPE[-1:]), tensor("s", SEQ_SHAPE)]


def onnxruntime_run(m, feed):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # the QDQ graph as written
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def test_float_ops_match_onnxruntime():
    m = float_branches().model(INPUTS)
    feed = feeds()
    cm = tinyc.compile(m, "cpu")
    assert not [n for n in cm.graph.nodes() if n.op == "mul" and "BatchNorm_after_conv" in n.name], \
        "a BatchNormalization after a conv folds into its weights"
    got, want = cm.run(feed, sanitize=True), onnxruntime_run(m, feed)
    for name, expected in want.items():
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape, name
        np.testing.assert_allclose(got[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)


# op -> (ONNX op, attributes, extra constant inputs): the int8 forms, each DequantizeLinear -> op -> QuantizeLinear
INT8_OPS = {
    "Tanh": {}, "Exp": {}, "Erf": {}, "LeakyRelu": {"alpha": 0.1}, "Elu": {}, "HardSigmoid": {}, "HardSwish": {},
    "Sqrt_abs": {}, "GlobalMaxPool": {}, "ReduceMax": {"axes": [2, 3]}, "ReduceMean": {"axes": [1]},
    "DepthToSpace": {"blocksize": 2}, "SpaceToDepth": {"blocksize": 2}, "Tile": {}, "Slice": {}, "Gather": {"axis": 1},
    "Expand": {}, "Resize_nearest": {}, "Resize_linear": {"mode": "linear"}, "Sub": {}, "Max": {}, "PRelu": {},
    "LayerNormalization": {"axis": 1}, "BatchNormalization": {}, "ConvTranspose": {"strides": [2, 2]},
}


def int8_model(float_scales=None):
    """x (float) -> QuantizeLinear -> per op: DequantizeLinear -> op -> QuantizeLinear at the op's own scale."""
    b = Branches()
    scale_x = b.const("sx", np.float32(3.0 / 127))
    zero = b.const("zp", np.int8(0))
    xq = b.node("QuantizeLinear", ["x", scale_x, zero], "xq")
    for label, attrs in INT8_OPS.items():
        xd = b.node("DequantizeLinear", [xq, scale_x, zero])
        op = label.split("_")[0]
        extra = {
            "Slice": lambda: [b.const("s_st", np.array([0, 5], np.int64)), b.const("s_en", np.array([3, 0], np.int64)),
                              b.const("s_ax", np.array([1, 3], np.int64)), b.const("s_sp", np.array([1, -2], np.int64))],
            "Gather": lambda: [b.const("g_idx", np.array([3, 0, 0], np.int64))],
            "Tile": lambda: [b.const("t_rep", np.array([1, 1, 2, 1], np.int64))],
            "Expand": lambda: [b.const("e_shape", np.array([2, 4, 6, 6], np.int64))],
            "Sub": lambda: [b.const("sub_c", w(6))],
            "Max": lambda: [b.const("m_c", w(6))],
            "PRelu": lambda: [b.const("pr_s", w(4, 1, 1))],
            "LayerNormalization": lambda: [b.const("ln_s8", w(4, 6, 6))],
            "ConvTranspose": lambda: [b.node("DequantizeLinear", [
                b.const("ct_w8", RNG.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)),
                b.const("ct_ws", np.float32(0.01)), zero])],
            "BatchNormalization": lambda: [b.const(f"bn8_{k}", v) for k, v in
                                           (("s", w(4)), ("b", w(4)), ("m", w(4)), ("v", np.abs(w(4)) + 0.5))],
        }.get(op, list)()
        if label == "Resize_nearest":
            extra = ["", b.const("rn_sc", np.array([1, 1, 2, 2], np.float32))]
        if label == "Resize_linear":
            extra = ["", b.const("rl_sc", np.array([1, 1, 1.5, 0.5], np.float32))]
        if label == "Sqrt_abs":
            op, xd = "Sqrt", b.node("Abs", [xd])
        y = b.node(op, [xd, *extra], f"{label}_float", **attrs)
        scale = 1.0 if float_scales is None else float_scales[y]
        b.branch(label, "QuantizeLinear", [y, b.const(f"{label}_scale", np.float32(scale)), zero])
    return b


def test_int8_ops_within_one_lsb_of_onnxruntime():
    # the output scales: each float op's own range on this input, over 127
    probe = int8_model()
    for label in INT8_OPS:
        probe.outputs.append(f"{label}_float")
    feed = {"x": RNG.standard_normal(X_SHAPE).astype(np.float32)}
    ranges = onnxruntime_run(probe.model(INPUTS[:1]), feed)
    scales = {k: max(float(np.abs(v).max()), 1e-3) / 127 for k, v in ranges.items() if k.endswith("_float")}
    m = int8_model(scales).model(INPUTS[:1])
    cm = tinyc.compile(m, "cpu")
    got, want = cm.run(feed), onnxruntime_run(m, feed)
    for name, expected in want.items():
        assert got[name].dtype == np.int8 and got[name].shape == expected.shape, name
        lsb = int(np.abs(got[name].astype(np.int32) - expected).max())
        assert lsb <= 1, f"{name}: {lsb} LSB from onnxruntime"
    tabled = {n.op for n in cm.graph.nodes()}
    assert "lut" in tabled and "tanh" not in tabled, "elementwise functions between DQ and Q become tables"
    on_codes = {n.op for n in cm.graph.nodes() if cm.graph.values[n.inputs[0]].dtype == "int8"}
    assert {"slice", "gather", "tile", "expand", "reduce_max", "maxpool"} <= on_codes, \
        "data movement between DQ and Q runs on the int8 codes"


def flatten_chain() -> onnx.ModelProto:
    """What torch.onnx.export writes for x.view(x.size(0), -1) after a conv."""
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv"),
             helper.make_node("Shape", ["c"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
             helper.make_node("Concat", ["batch1", "minus1"], ["target"], name="concat", axis=0),
             helper.make_node("Reshape", ["c", "target"], ["flat"], name="reshape"),
             helper.make_node("Gemm", ["flat", "fw"], ["y"], name="fc")]
    inits = [const("cw", w(2, 4, 3, 3)), const("zero", np.array(0, np.int64)), const("axes0", np.array([0], np.int64)),
             const("minus1", np.array([-1], np.int64)), const("fw", w(32, 3))]
    return model(nodes, [tensor("x", X_SHAPE)], [tensor("y", [1, 3])], inits)


def test_pytorch_flatten_chain_folds_to_a_constant_shape():
    m = flatten_chain()
    cm = tinyc.compile(m, "cpu")
    assert {n.op for n in cm.graph.nodes()} <= {"conv", "reshape", "matmul"}
    feed = {"x": RNG.standard_normal(X_SHAPE).astype(np.float32)}
    np.testing.assert_allclose(cm.run(feed)["y"], onnxruntime_run(m, feed)["y"], rtol=RTOL, atol=ATOL)


def test_every_unsupported_op_is_named_in_one_error():
    nodes = [helper.make_node("Hardmax", ["x"], ["a"], name="hm"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("CumSum", ["b", "axis"], ["c"], name="cs"),
             helper.make_node("Hardmax", ["c"], ["y"], name="hm2")]
    m = model(nodes, [tensor("x", [2, 3])], [tensor("y", [2, 3])], [const("axis", np.array(1, np.int64))])
    with pytest.raises(UnsupportedError) as err:
        tinyc.compile(m, "cpu")
    text = str(err.value)
    assert "2 ops are not supported" in text and "Hardmax (node hm)" in text and "CumSum (node cs)" in text, text
