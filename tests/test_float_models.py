"""Float models compiled to C and run, against onnxruntime (issue 2): the zoo's float networks and small
hand-built models covering every float op's attributes, each within RTOL relative of onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

import tinyc
from tinyc.errors import UnsupportedError

from onnx_builders import const, model, tensor

RTOL = 1e-4
# Relative error means nothing for a value near 0 that is a sum of larger terms of both signs (a conv or
# dense output, a softmax probability): float32 sums taken in another order than onnxruntime's (MLAS
# blocks them and uses FMA) differ by ulps of the partial sums, not of the result. With K <= 640 terms
# and partial sums of size <= ~10 here, that is about sqrt(K) * 2^-24 * 10 ~ 2e-5 at worst; the zoo's
# networks measure 7e-7 at most.
ATOL = 1e-5
RNG = np.random.default_rng(2024)


def weights(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def check_against_onnxruntime(m: onnx.ModelProto, target: str = "cpu", seed: int = 0):
    cm = tinyc.compile(m, target=target)
    feeds = cm.random_inputs(seed)
    got = cm.run(feeds)
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    for name, e in zip(cm.graph.outputs, expected):
        assert got[name].shape == e.shape, name
        np.testing.assert_allclose(got[name], e, rtol=RTOL, atol=ATOL, err_msg=name)


def typed_outputs(m: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its outputs' types filled in by ONNX shape inference (the checker requires them)."""
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph.output
    for o, typed in zip(m.graph.output, inferred):
        o.type.CopyFrom(typed.type)
    return m


def one_node(op: str, x_shape, inits=(), opset: int = 17, extra_inputs=(), **attrs) -> onnx.ModelProto:
    """x (and extra runtime inputs) -> op(x, *extra, *inits) -> y, its shape left to inference."""
    inputs = [tensor("x", list(x_shape))] + [tensor(n, list(s)) for n, s in extra_inputs]
    names = ["x"] + [n for n, _ in extra_inputs] + [i.name for i in inits]
    node = helper.make_node(op, names, ["y"], name=op.lower(), **attrs)
    return typed_outputs(model([node], inputs, [tensor("y", None)], inits, opset=opset, name=op.lower()))


# ---------------------------------------------------------------- the zoo's float networks
# vww and ad hold more than DIANA's 512000 B of L2 in float32 weights: they run on the unbounded host.
ZOO_TARGETS = {"kws": "cpu", "vww": "host", "ic": "cpu", "ad": "host"}


@pytest.mark.parametrize("name", list(ZOO_TARGETS))
def test_zoo_float_network(name):
    check_against_onnxruntime(tinyc.zoo.build(name, "float"), ZOO_TARGETS[name], seed=3)


# ---------------------------------------------------------------- convolutions
CONVS = {  # id: (input shape, weight shape, attributes); every case has a bias
    "1d": ((1, 3, 20), (4, 3, 5), dict(pads=[2, 1])),
    "1d_strided_dilated": ((1, 3, 23), (4, 3, 3), dict(strides=[2], dilations=[3], pads=[1, 2])),
    "2d_grouped": ((1, 4, 9, 9), (6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),
    "2d_depthwise_strided": ((1, 4, 10, 10), (4, 1, 3, 3), dict(group=4, strides=[2, 2], pads=[1, 1, 1, 1])),
    "2d_dilated_asymmetric_pads": ((1, 3, 11, 12), (5, 3, 3, 3), dict(dilations=[2, 3], pads=[1, 0, 2, 3])),
    "2d_strided_nonsquare": ((1, 2, 13, 11), (3, 2, 3, 2), dict(strides=[2, 3], pads=[0, 1, 2, 0])),
    "2d_same_upper": ((1, 2, 9, 10), (3, 2, 4, 4), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "2d_same_lower": ((1, 2, 9, 10), (3, 2, 4, 4), dict(strides=[2, 2], auto_pad="SAME_LOWER")),
    "2d_valid": ((1, 2, 9, 10), (3, 2, 4, 3), dict(strides=[2, 1], auto_pad="VALID")),
    "3d": ((1, 2, 5, 6, 7), (4, 2, 3, 3, 3), dict(strides=[1, 2, 2], pads=[1, 1, 1, 1, 0, 1])),
    "3d_grouped_dilated": ((1, 4, 6, 7, 7), (4, 2, 2, 3, 2), dict(group=2, dilations=[2, 1, 2])),
    "3d_same_lower": ((1, 2, 5, 6, 7), (2, 2, 2, 3, 2), dict(strides=[2, 2, 3], auto_pad="SAME_LOWER")),
}


@pytest.mark.parametrize("case", list(CONVS))
def test_conv(case):
    x_shape, w_shape, attrs = CONVS[case]
    inits = [const("w", weights(*w_shape)), const("b", weights(w_shape[0]))]
    check_against_onnxruntime(one_node("Conv", x_shape, inits, **attrs))


# ---------------------------------------------------------------- pooling
POOLS = {  # id: (op, input shape, attributes)
    "max_1d_ceil": ("MaxPool", (1, 3, 20), dict(kernel_shape=[3], strides=[2], ceil_mode=1)),
    "max_2d_pads_ceil": ("MaxPool", (1, 2, 9, 10), dict(kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 1, 1],
                                                         ceil_mode=1)),
    "max_2d_dilated": ("MaxPool", (1, 2, 10, 10), dict(kernel_shape=[2, 3], dilations=[2, 2])),
    "max_2d_same_upper": ("MaxPool", (1, 2, 9, 9), dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")),
    "max_3d_ceil": ("MaxPool", (1, 2, 5, 7, 6), dict(kernel_shape=[2, 3, 2], strides=[2, 2, 2], ceil_mode=1)),
    "avg_1d": ("AveragePool", (1, 3, 20), dict(kernel_shape=[4], strides=[3], pads=[1, 2])),
    "avg_2d_exclude_pad_ceil": ("AveragePool", (1, 2, 9, 10), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                   pads=[1, 1, 0, 1], ceil_mode=1)),
    "avg_2d_include_pad": ("AveragePool", (1, 2, 9, 10), dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 0],
                                                              count_include_pad=1)),
    "avg_2d_same_lower": ("AveragePool", (1, 2, 9, 9), dict(kernel_shape=[4, 4], strides=[2, 2],
                                                            auto_pad="SAME_LOWER")),
    "avg_3d_ceil": ("AveragePool", (1, 2, 5, 7, 6), dict(kernel_shape=[2, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
    "global_avg_2d": ("GlobalAveragePool", (1, 3, 7, 5), {}),
    "global_avg_3d": ("GlobalAveragePool", (1, 2, 3, 4, 5), {}),
}


@pytest.mark.parametrize("case", list(POOLS))
def test_pool(case):
    op, x_shape, attrs = POOLS[case]
    check_against_onnxruntime(one_node(op, x_shape, **attrs))


# ---------------------------------------------------------------- dense
GEMMS = {  # id: (A shape, B shape, C shape or None, attributes)
    "plain": ((3, 5), (5, 4), None, {}),
    "bias_row": ((3, 5), (5, 4), (4,), {}),
    "transA": ((5, 3), (5, 4), (3, 4), dict(transA=1)),
    "transB_alpha_beta": ((3, 5), (4, 5), (4,), dict(transB=1, alpha=0.5, beta=-2.0)),
    "both_transposed_scalar_bias": ((5, 3), (4, 5), (1,), dict(transA=1, transB=1, alpha=1.5, beta=0.25)),
}


@pytest.mark.parametrize("case", list(GEMMS))
def test_gemm(case):
    a_shape, b_shape, c_shape, attrs = GEMMS[case]
    inits = [const("B", weights(*b_shape))] + ([const("C", weights(*c_shape))] if c_shape else [])
    check_against_onnxruntime(one_node("Gemm", a_shape, inits, **attrs))


@pytest.mark.parametrize("x_shape, w_shape", [((3, 5), (5, 4)), ((1, 2, 6), (6, 3))], ids=["2d", "3d_by_2d"])
def test_matmul_by_weights(x_shape, w_shape):
    check_against_onnxruntime(one_node("MatMul", x_shape, [const("w", weights(*w_shape))]))


def test_matmul_of_two_inputs():
    check_against_onnxruntime(one_node("MatMul", (4, 6), extra_inputs=[("w", (6, 3))]))


# ---------------------------------------------------------------- element-wise, softmax
@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_softmax_axis(axis):
    check_against_onnxruntime(one_node("Softmax", (2, 3, 4), axis=axis))


def test_softmax_opset11_flattens_from_axis():
    """Before opset 13 Softmax normalizes over every axis from `axis` on, not over `axis` alone."""
    check_against_onnxruntime(one_node("Softmax", (2, 3, 4), opset=11, axis=1))


def test_sigmoid():
    check_against_onnxruntime(one_node("Sigmoid", (2, 50)))


@pytest.mark.parametrize("bounds", [(-0.5, 0.7), (0.0, None), (None, 0.3)], ids=["both", "min", "max"])
def test_clip(bounds):
    lo, hi = bounds
    inits = [const(n, np.float32(v)) for n, v in (("lo", lo), ("hi", hi)) if v is not None]
    node = helper.make_node("Clip", ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""], ["y"])
    check_against_onnxruntime(typed_outputs(model([node], [tensor("x", [3, 7])], [tensor("y", None)], inits)))


def test_clip_opset6_attributes():
    check_against_onnxruntime(one_node("Clip", (3, 7), opset=6, min=-0.25, max=0.5))


# ---------------------------------------------------------------- data movement
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat(axis):
    shapes = {1: [(2, 3, 4), (2, 1, 4), (2, 2, 4)], -1: [(2, 3, 1), (2, 3, 4), (2, 3, 2)],
              0: [(1, 3, 4), (3, 3, 4), (1, 3, 4)]}[axis]
    node = helper.make_node("Concat", ["x", "x2", "k"], ["y"], axis=axis)
    m = model([node], [tensor("x", list(shapes[0])), tensor("x2", list(shapes[1]))], [tensor("y", None)],
              [const("k", weights(*shapes[2]))])
    check_against_onnxruntime(typed_outputs(m))


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [3, 1, 0, 2], None], ids=["nhwc", "shuffle", "reversed"])
def test_transpose(perm):
    check_against_onnxruntime(one_node("Transpose", (2, 3, 4, 5), **({"perm": perm} if perm else {})))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(mode):
    inits = [const("pads", np.array([0, 1, 2, 1, 0, 2, 1, 3], np.int64))]
    if mode == "constant":
        inits.append(const("value", np.float32(-1.5)))
    check_against_onnxruntime(one_node("Pad", (1, 3, 5, 6), inits, mode=mode))


def test_pad_axes():
    inits = [const("pads", np.array([2, 1, 0, 3], np.int64)), const("value", np.float32(0.0)),
             const("axes", np.array([-1, 1], np.int64))]
    check_against_onnxruntime(one_node("Pad", (1, 3, 5, 6), inits, opset=18))


# ---------------------------------------------------------------- exported the PyTorch way
def constant(name: str, **value):
    return helper.make_node("Constant", [], [name], name=name, **value)


def pytorch_style_cnn() -> onnx.ModelProto:
    """What torch.onnx.export writes for a small CNN: shapes, bounds and scalars as Constant nodes
    (every value attribute form), flatten as Reshape to a Constant shape, the classifier as Gemm(transB=1)."""
    inits = [const("conv.weight", weights(4, 2, 3, 3)), const("conv.bias", weights(4)),
             const("fc.weight", weights(3, 4 * 4 * 4)), const("fc.bias", weights(3))]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        constant("six", value_float=6.0), constant("zero", value=numpy_helper.from_array(np.float32(0.0))),
        helper.make_node("Clip", ["c", "zero", "six"], ["r"]),  # ReLU6
        constant("shape", value_ints=[1, -1]),
        helper.make_node("Reshape", ["r", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1),
        constant("gain", value_floats=[0.5, 1.0, 2.0]),
        helper.make_node("Mul", ["logits", "gain"], ["scaled"]),
        constant("axes", value_int=0),  # Unsqueeze's axes as one int64 scalar
        helper.make_node("Unsqueeze", ["scaled", "axes"], ["u"]),
        helper.make_node("Softmax", ["u"], ["probs"], axis=-1),
    ]
    return typed_outputs(model(nodes, [tensor("x", [1, 2, 8, 8])], [tensor("probs", None)], inits, opset=13,
                               name="torch_like"))


def test_pytorch_style_export_with_constant_nodes():
    check_against_onnxruntime(pytorch_style_cnn())


def test_sparse_constant_is_unsupported():
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.float32([1.0]), "v"),
                                       numpy_helper.from_array(np.int64([2]), "i"), [4])
    nodes = [constant("k", sparse_value=sparse), helper.make_node("Add", ["x", "k"], ["y"])]
    with pytest.raises(UnsupportedError, match="sparse_value"):
        tinyc.compile(model(nodes, [tensor("x", [4])], [tensor("y", [4])]))
