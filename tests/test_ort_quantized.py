"""Models quantized the way onnxruntime.quantization quantizes them, compiled by tinyc, against onnxruntime.

Per op: every quantized op of onnxruntime's QOperator format (its com.microsoft contrib ops beside ONNX's
QLinearConv and QLinearMatMul), written directly with chosen scales, for uint8 and int8 tensors. Where
onnxruntime's arithmetic is a table (QLinearSigmoid, QLinearLeakyRelu, QLinearConcat's rescaling) tinyc
builds the same table and must agree exactly; elsewhere onnxruntime requantizes in float and tinyc in
TFLite's fixed point, so they may differ by 1 LSB, never more.

Networks: the zoo's float MLPerf Tiny networks quantized by onnxruntime.quantization.quantize_static in both
formats, per tensor and per channel, built at test time.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tinyc
from onnx_builders import const, model, tensor

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
DTYPES = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


def _zp(dtype: str, centre: int) -> np.ndarray:
    """A zero point `centre` codes above the middle of the dtype's range."""
    return np.array(centre + (128 if dtype == "uint8" else 0), dtype)


def _qparams(prefix: str, scale: float, dtype: str, centre: int):
    return [const(prefix + "_scale", np.float32(scale)), const(prefix + "_zp", _zp(dtype, centre))]


def float_layers(cm) -> list[str]:
    """The layers that compute in float (a dequantize of the graph's output aside)."""
    return [f"{n.name}: {n.op}" for n in cm.graph.nodes() if cm.graph.values[n.outputs[0]].dtype == "float32"
            and not (n.op == "dequantize" and n.outputs[0] in cm.graph.outputs)]


def _run_both(m: onnx.ModelProto, seed: int = 0, integer: bool = True):
    """(onnxruntime's outputs, tinyc's C outputs, tinyc's interpreter outputs) on seeded full-range inputs;
    `integer`: every layer must have been folded into integer ops."""
    cm = tinyc.compile(m, target="cpu")
    assert not integer or not float_layers(cm), f"left in float: {float_layers(cm)}"
    x = cm.random_inputs(seed)
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = session.run(None, x)
    got = cm.run(x)
    return ref, [got[o.name] for o in m.graph.output], cm.interpret(x)


def _lsb(ref: np.ndarray, got: np.ndarray) -> int:
    assert ref.dtype == got.dtype and ref.shape == got.shape
    return int(np.abs(ref.astype(np.int64) - got.astype(np.int64)).max())


def _check(m: onnx.ModelProto, max_lsb: int, seeds=(0, 1)):
    worst = 0
    for seed in seeds:
        ref, got, spec = _run_both(m, seed)
        for r, g, o in zip(ref, got, m.graph.output):
            np.testing.assert_array_equal(g, spec[o.name])  # the C is the interpreter's twin
            worst = max(worst, _lsb(r, g))
    print(f"{m.graph.node[0].op_type}: {worst} LSB from onnxruntime")
    assert worst <= max_lsb, f"{worst} LSB from onnxruntime (at most {max_lsb} expected)"
    return worst


def _unary_model(op_type: str, dtype: str, shape, x_scale: float, y_scale: float, y_centre: int = 0,
                 out_shape=None, **attrs) -> onnx.ModelProto:
    t = DTYPES[dtype]
    node = helper.make_node(op_type, ["x", "x_scale", "x_zp", "y_scale", "y_zp"], ["y"], domain=MS, **attrs)
    inits = _qparams("x", x_scale, dtype, 3) + _qparams("y", y_scale, dtype, y_centre)
    return model([node], [tensor("x", shape, t)], [tensor("y", out_shape, t)], inits, domains=[MS])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op_type", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("b_shape", [[1, 8, 4, 4], [8, 1, 1]], ids=["same", "broadcast"])
def test_binary(op_type, dtype, b_shape):
    t = DTYPES[dtype]
    c_scale = 0.09 if op_type == "QLinearAdd" else 0.05
    node = helper.make_node(op_type, ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "c_scale", "c_zp"], ["c"],
                            domain=MS)
    inits = _qparams("a", 0.03, dtype, -5) + _qparams("b", 0.07, dtype, 9) + _qparams("c", c_scale, dtype, 2)
    m = model([node], [tensor("a", [1, 8, 4, 4], t), tensor("b", b_shape, t)], [tensor("c", [1, 8, 4, 4], t)],
              inits, domains=[MS])
    _check(m, max_lsb=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat(dtype):
    """Inputs quantized unlike the output are rescaled by onnxruntime's own table: exact."""
    t = DTYPES[dtype]
    ins = ["y_scale", "y_zp"]
    inits = _qparams("y", 0.05, dtype, -3)
    for i, (scale, centre) in enumerate([(0.05, -3), (0.02, 7), (0.11, -20)]):
        ins += [f"x{i}", f"x{i}_scale", f"x{i}_zp"]
        inits += _qparams(f"x{i}", scale, dtype, centre)
    node = helper.make_node("QLinearConcat", ins, ["y"], domain=MS, axis=1)
    m = model([node], [tensor(f"x{i}", [1, 2 + i, 3, 3], t) for i in range(3)], [tensor("y", [1, 9, 3, 3], t)],
              inits, domains=[MS])
    _check(m, max_lsb=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op_type, attrs, y_scale, y_centre", [
    ("QLinearSigmoid", {}, 1 / 256, -128), ("QLinearLeakyRelu", {"alpha": 0.1}, 0.04, -100)])
def test_lookup(op_type, attrs, dtype, y_scale, y_centre):
    """onnxruntime tabulates these in float32; tinyc builds the same table."""
    _check(_unary_model(op_type, dtype, [1, 4, 8, 8], 0.05, y_scale, y_centre, [1, 4, 8, 8], **attrs), max_lsb=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("attrs, out_shape, y_scale", [
    (dict(kernel_shape=[3, 3], strides=[2, 2]), [1, 4, 4, 4], 0.03),
    (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), [1, 4, 5, 5], 0.03),
    (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), [1, 4, 5, 5], 0.03),
    (dict(kernel_shape=[2, 2], strides=[2, 2]), [1, 4, 5, 5], 0.05),  # the input's quantization
], ids=["valid", "padded-counted", "padded", "same-quant"])
def test_average_pool(dtype, attrs, out_shape, y_scale):
    centre = 3 if y_scale == 0.05 else -4
    _check(_unary_model("QLinearAveragePool", dtype, [1, 4, 10, 10], 0.05, y_scale, centre, out_shape, **attrs),
           max_lsb=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [0, 1])
def test_global_average_pool(dtype, channels_last):
    shape, out_shape = ([1, 5, 6, 8], [1, 1, 1, 8]) if channels_last else ([1, 8, 5, 6], [1, 8, 1, 1])
    _check(_unary_model("QLinearGlobalAveragePool", dtype, shape, 0.05, 0.01, 1, out_shape,
                        channels_last=channels_last), max_lsb=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(dtype):
    _check(_unary_model("QLinearSoftmax", dtype, [1, 3, 10], 0.1, 1 / 256, -128, [1, 3, 10], axis=-1, opset=13),
           max_lsb=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("float_out", [False, True])
def test_gemm(dtype, per_channel, float_out):
    """QGemm as onnxruntime writes it for a Dense layer: int8 weights [N, K] with transB, an int32 bias
    in the accumulator's scale; without y_scale the output is float, and so is tinyc's Gemm then."""
    rng = np.random.default_rng(3)
    t = DTYPES[dtype]
    n, k = 6, 16
    w_scale = (rng.uniform(0.005, 0.02, n) if per_channel else np.array(0.01)).astype(np.float32)
    inits = _qparams("a", 0.04, dtype, 5) + [
        const("w", rng.integers(-127, 128, (n, k)).astype(np.int8)), const("w_scale", w_scale),
        const("w_zp", np.zeros(w_scale.shape, np.int8)), const("bias", rng.integers(-3000, 3000, n).astype(np.int32))]
    ins = ["a", "a_scale", "a_zp", "w", "w_scale", "w_zp", "bias"]
    if not float_out:
        inits += _qparams("y", 0.2, dtype, -2)
        ins += ["y_scale", "y_zp"]
    node = helper.make_node("QGemm", ins, ["y"], domain=MS, transB=1)
    out = tensor("y", [1, n], TensorProto.FLOAT if float_out else t)
    m = model([node], [tensor("a", [1, k], t)], [out], inits, domains=[MS])
    if not float_out:
        _check(m, max_lsb=1)
        return
    for seed in (0, 1):
        ref, got, _ = _run_both(m, seed, integer=False)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-4)
