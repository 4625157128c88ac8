"""onnxruntime's quantized contrib ops (domain com.microsoft), as onnxruntime.quantization writes them in
its QOperator format.

Each becomes what its QDQ form is: its inputs dequantized, the float op, the result quantized; canonicalize
folds that group into integer ops exactly as it folds a QDQ model, so both formats compile alike.
QLinearSigmoid and QLinearLeakyRelu are 256-entry tables, built as onnxruntime builds them
(QlinearBuildLookupTable: dequantize every code in float32, apply the function, quantize).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..errors import UnsupportedError
from ..ir.ops import OPS
from .onnx_ops import CONVERTERS, attr, converts, inp, out
from .onnx_qops import finish_requant, qparams, to_int8

DOMAIN = "com.microsoft"


def contrib(*op_types):
    return converts(*(f"{DOMAIN}.{t}" for t in op_types))


def _dequantized(ctx, x: str, scale_i: int, zp_i: int, axis: int | None = None) -> str:
    """x (int8/uint8) as float: the node's scale and zero point inputs at scale_i, zp_i."""
    scale, zp = qparams(ctx, scale_i, zp_i, ctx.value(x).dtype)
    if scale.size != 1 and axis is None:
        raise UnsupportedError(f"a per-channel scale for input {x!r} (per-tensor expected)")
    return ctx.emit("dequantize", [x], scale=scale.ravel(), zero_point=zp.astype(np.int32).ravel(),
                    axis=axis if scale.size != 1 else None)


def _quantized(ctx, y: str, scale_i: int, zp_i: int, like: str, name: str | None = None) -> str:
    """Quantize the float result y with the node's output scale and zero point (absent: the dtype of `like`)."""
    scale, zp = qparams(ctx, scale_i, zp_i, ctx.value(like).dtype)
    if scale.size != 1:
        raise UnsupportedError("a per-channel output scale")
    return ctx.emit("quantize", [y], name or out(ctx), scale=scale.ravel(), zero_point=zp.astype(np.int32).ravel(),
                    axis=None, dtype=str(zp.dtype))


def _float_op(ctx, op_type: str, inputs: list[str], out_name: str | None = None, drop=(), **attrs) -> str:
    """Run ONNX's float op_type on float inputs with this node's attributes (but `drop`) and `attrs`."""
    result = out_name or ctx.graph.unique_value_name(f"{out(ctx)}_float")
    node = helper.make_node(op_type, inputs, [result], name=ctx.node.name or op_type, **attrs)
    node.attribute.extend(a for a in ctx.node.attribute if a.name not in drop and a.name not in attrs)
    CONVERTERS[op_type](type(ctx)(ctx.graph, node, ctx.opset))
    return result


@contrib("QLinearAdd", "QLinearMul")
def binary(ctx):
    a = _dequantized(ctx, inp(ctx, 0), 1, 2)
    b = _dequantized(ctx, inp(ctx, 3), 4, 5)
    _quantized(ctx, _float_op(ctx, ctx.node.op_type[len("QLinear"):], [a, b]), 6, 7, inp(ctx, 0))


@contrib("QLinearConcat")
def concat(ctx):
    """Inputs: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input."""
    if (len(ctx.node.input) - 2) % 3 or len(ctx.node.input) < 5:
        raise UnsupportedError(f"QLinearConcat with {len(ctx.node.input)} inputs (2 + 3 per tensor expected)")
    xs = [_dequantized(ctx, inp(ctx, i), i + 1, i + 2) for i in range(2, len(ctx.node.input), 3)]
    _quantized(ctx, _float_op(ctx, "Concat", xs), 0, 1, inp(ctx, 2))


@contrib("QLinearAveragePool", "QLinearGlobalAveragePool")
def average_pool(ctx):
    """channels_last=1 pools an NHWC tensor: transposed to NCHW and back on the integer data, exactly."""
    x = inp(ctx, 0)
    rank = len(ctx.value(x).shape)
    channels_last = attr(ctx, "channels_last", 0)
    if channels_last:
        x = ctx.emit("transpose", [x], perm=(0, rank - 1) + tuple(range(1, rank - 1)))
    y = _float_op(ctx, ctx.node.op_type[len("QLinear"):], [_dequantized(ctx, x, 1, 2)], drop=("channels_last",))
    if not channels_last:
        _quantized(ctx, y, 3, 4, x)
        return
    y = _quantized(ctx, y, 3, 4, x, ctx.graph.unique_value_name(out(ctx) + "_nchw"))
    ctx.emit("transpose", [y], out(ctx), perm=(0,) + tuple(range(2, rank)) + (1,))


@contrib("QGemm")
def gemm(ctx):
    """Y = alpha * A' B' + C, C int32 in the scale a_scale * b_scale; without y_scale, Y is float."""
    a = _dequantized(ctx, inp(ctx, 0), 1, 2)
    trans_b = attr(ctx, "transB", 0)
    b = _dequantized(ctx, inp(ctx, 3), 4, 5, axis=0 if trans_b else 1)
    inputs = [a, b]
    if inp(ctx, 6):
        a_scale, _ = qparams(ctx, 1, 2)
        b_scale, _ = qparams(ctx, 4, 5)
        scale = (np.float32(a_scale.ravel()[0]) * b_scale.ravel().astype(np.float32)).astype(np.float32)
        inputs.append(ctx.emit("dequantize", [inp(ctx, 6)], scale=scale, zero_point=np.zeros(scale.size, np.int32),
                               axis=0 if scale.size != 1 else None))
    if not inp(ctx, 7):
        _float_op(ctx, "Gemm", inputs, out(ctx))
        return
    _quantized(ctx, _float_op(ctx, "Gemm", inputs), 7, 8, inp(ctx, 0))


@contrib("QLinearSoftmax")
def softmax(ctx):
    """`opset` below 13 means the old Softmax, over every axis from `axis` on: the same where they are the last."""
    shape = ctx.value(inp(ctx, 0)).shape
    axis = attr(ctx, "axis", -1) % len(shape)
    if attr(ctx, "opset", 13) < 13 and any(d != 1 for d in shape[axis + 1:]):
        raise UnsupportedError(f"QLinearSoftmax of opset {attr(ctx, 'opset')} over axes {axis}.. of {list(shape)} "
                               "(the old Softmax over several axes)")
    y = _float_op(ctx, "Softmax", [_dequantized(ctx, inp(ctx, 0), 1, 2)], drop=("opset",), axis=axis)
    _quantized(ctx, y, 3, 4, inp(ctx, 0))


LOOKUPS = {
    "QLinearSigmoid": lambda x, alpha: OPS["sigmoid"].compute([x], {})[0],
    "QLinearLeakyRelu": lambda x, alpha: np.where(x >= 0, x, x * np.float32(alpha)).astype(np.float32),
}


@contrib(*LOOKUPS)
def lookup(ctx):
    x_scale, x_zp = qparams(ctx, 1, 2, ctx.value(inp(ctx, 0)).dtype)
    y_scale, y_zp = qparams(ctx, 3, 4, ctx.value(inp(ctx, 0)).dtype)
    if x_scale.size != 1 or y_scale.size != 1:
        raise UnsupportedError(f"{ctx.node.op_type} with per-channel scales")
    x8, zp8 = to_int8(ctx, inp(ctx, 0), x_zp.ravel()[0])
    codes = np.arange(-128, 128, dtype=np.int32)
    real = np.float32(x_scale.ravel()[0]) * (codes - zp8).astype(np.float32)
    y = LOOKUPS[ctx.node.op_type](real, attr(ctx, "alpha", 0.01))
    q, = OPS["quantize"].compute([y], dict(scale=y_scale.ravel(), zero_point=y_zp.astype(np.int32).ravel(), axis=None,
                                           dtype=str(y_zp.dtype)))
    table = (q.astype(np.int16) - (128 if q.dtype == np.uint8 else 0)).astype(np.int8)
    finish_requant(ctx, ctx.emit("lut", [x8], out(ctx) if q.dtype == np.int8 else None, table=table), str(q.dtype))
