"""The converters of ONNX's quantization ops: QuantizeLinear/DequantizeLinear (folded into integer ops
by canonicalize) and QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger (integer ops directly)."""
from __future__ import annotations

import numpy as np

from ..errors import BadModelError, UnsupportedError
from ..ir import quant_math as qm
from .loader import TENSOR_DTYPES
from .onnx_ops import attr, conv_bias, conv_kernel, converts, float_only, inp, out, window_attrs


def qparams(ctx, scale_i: int, zp_i: int, default_dtype: str = "uint8"):
    scale = ctx.const(scale_i, "the scale")
    zp = ctx.const(zp_i, "the zero point")
    scale = np.asarray(scale, np.float32)
    if zp is None:
        zp = np.zeros(scale.shape, default_dtype)
    zp = np.asarray(zp)
    if scale.shape != zp.shape and not scale.size == zp.size == 1:  # [1] and [] both mean one per tensor
        raise UnsupportedError(f"scale shape {list(scale.shape)} and zero point shape {list(zp.shape)} differ")
    _check_scales(scale)
    return scale, zp


def _check_scales(scale: np.ndarray) -> None:
    if not np.all(np.isfinite(scale)) or np.any(scale == 0):
        raise BadModelError(f"scales must be finite and nonzero, got {np.ravel(scale)[:8].tolist()}")
    if np.any(scale < 0):
        raise UnsupportedError(f"negative scales {np.ravel(scale)[:8].tolist()}")


def _linear_scale(ctx, i: int, channels: int = 1) -> np.ndarray:
    """A QLinear op's scale input as float64: one value, or one per output channel."""
    scale = np.ravel(np.asarray(ctx.const(i, "a scale"), np.float64))
    if scale.size not in (1, channels):
        raise UnsupportedError(f"a scale with {scale.size} values (1 or {channels} per output channel expected)")
    _check_scales(scale)
    return scale


def _axis(ctx, shape: tuple[int, ...], scale: np.ndarray):
    if scale.size == 1 and scale.ndim <= 1:
        return None
    if attr(ctx, "block_size", 0):
        raise UnsupportedError("blocked quantization")
    if scale.ndim != 1:
        raise UnsupportedError(f"scale of shape {list(scale.shape)} (per-tensor or 1-D per-axis only)")
    rank = len(shape)
    axis = attr(ctx, "axis", 1)
    if not -rank <= axis < rank:
        raise BadModelError(f"axis {axis} is out of range for a rank-{rank} tensor")
    if scale.size != shape[axis]:
        raise BadModelError(f"{scale.size} scales for the {shape[axis]} channels of axis {axis}")
    return axis % rank


@converts("QuantizeLinear")
def quantize_linear(ctx):
    x = ctx.value(inp(ctx, 0))
    float_only(ctx, inp(ctx, 0))
    scale, zp = qparams(ctx, 1, 2)
    dtype = str(zp.dtype)
    if attr(ctx, "output_dtype", 0):
        dtype = TENSOR_DTYPES.get(attr(ctx, "output_dtype"), "unsupported")
    if dtype not in ("int8", "uint8"):
        raise UnsupportedError(f"QuantizeLinear to {dtype} (int8 and uint8 are supported)")
    ctx.emit("quantize", [inp(ctx, 0)], out(ctx), scale=scale.ravel(), zero_point=zp.astype(np.int32).ravel(),
             axis=_axis(ctx, x.shape, scale), dtype=dtype)


@converts("DequantizeLinear")
def dequantize_linear(ctx):
    x = ctx.value(inp(ctx, 0))
    if x.dtype not in ("int8", "uint8", "int32"):
        raise UnsupportedError(f"DequantizeLinear of {x.dtype}")
    scale, zp = qparams(ctx, 1, 2, x.dtype)
    ctx.emit("dequantize", [inp(ctx, 0)], out(ctx), scale=scale.ravel(), zero_point=zp.astype(np.int32).ravel(),
             axis=_axis(ctx, x.shape, scale))


def to_int8(ctx, name: str, zp: np.ndarray) -> tuple[str, np.ndarray]:
    """An int8 view of a quantized tensor and its zero point (uint8 data moves down by 128)."""
    v = ctx.value(name)
    zp = np.asarray(zp if zp is not None else 0).astype(np.int32)
    if v.dtype == "int8":
        return name, zp
    if v.dtype != "uint8":
        raise UnsupportedError(f"{ctx.node.op_type} input of dtype {v.dtype} (int8 or uint8 expected)")
    if v.is_const:
        return ctx.add_const(name + "_s8", (v.data.astype(np.int16) - 128).astype(np.int8)), zp - 128
    return ctx.emit("flip_sign", [name], dtype="int8"), zp - 128


def finish_requant(ctx, result: str, out_dtype: str):
    if out_dtype == "uint8":
        ctx.emit("flip_sign", [result], out(ctx), dtype="uint8")


@converts("QLinearConv", "ConvInteger")
def quantized_conv(ctx):
    linear = ctx.node.op_type == "QLinearConv"
    w_i = 3 if linear else 1
    x_name, x_zp = to_int8(ctx, inp(ctx, 0), ctx.const(2, "x zero point"))
    w_name, w_zp = to_int8(ctx, inp(ctx, w_i), ctx.const(5 if linear else 3, "w zero point"))
    x, w = ctx.value(x_name), ctx.value(w_name)
    kernel = conv_kernel(ctx, w)
    a = window_attrs(ctx, x.shape[2:], kernel)
    group = attr(ctx, "group", 1)
    if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise UnsupportedError(f"{x.shape[1]} input channels do not fit weights {list(w.shape)} in {group} groups")
    w_zp = np.broadcast_to(w_zp, (w.shape[0],)).astype(np.int32)
    if np.ndim(x_zp) and np.size(x_zp) != 1:
        raise UnsupportedError("per-channel input zero point")
    requant, out_dtype, bias = {}, "int32", ""
    if linear:
        x_scale, w_scale, y_scale = _linear_scale(ctx, 1), _linear_scale(ctx, 4, w.shape[0]), _linear_scale(ctx, 6)
        y_zp = ctx.const(7, "y zero point")
        out_dtype = str(y_zp.dtype) if y_zp is not None else "uint8"
        y_zp = int(np.ravel(y_zp)[0]) if y_zp is not None else 0
        real = x_scale * np.broadcast_to(w_scale, (w.shape[0],)) / y_scale
        requant = qm.requant_attrs(real, y_zp - 128 if out_dtype == "uint8" else y_zp, (-128, 127), "qconv")
        bias = conv_bias(ctx, 8, w.shape[0])
    result = ctx.emit("qconv", [x_name, w_name, bias], out(ctx) if out_dtype != "uint8" else None, group=group,
                      x_zp=int(np.ravel(x_zp)[0]), w_zp=w_zp, **a, **requant)
    finish_requant(ctx, result, out_dtype)


@converts("QLinearMatMul", "MatMulInteger")
def quantized_matmul(ctx):
    linear = ctx.node.op_type == "QLinearMatMul"
    x_name, x_zp = to_int8(ctx, inp(ctx, 0), ctx.const(2, "a zero point"))
    w_name, w_zp = to_int8(ctx, inp(ctx, 3 if linear else 1), ctx.const(5 if linear else 3, "b zero point"))
    w = ctx.value(w_name)
    if len(w.shape) != 2:
        raise UnsupportedError(f"{ctx.node.op_type} with a {len(w.shape)}-D right operand (2-D supported)")
    if np.size(x_zp) != 1:
        raise UnsupportedError("per-row zero point of the left operand")
    w_zp = np.broadcast_to(np.ravel(w_zp), (w.shape[1],)).astype(np.int32)
    requant, out_dtype = {}, "int32"
    if linear:
        a_scale, b_scale, y_scale = _linear_scale(ctx, 1), _linear_scale(ctx, 4, w.shape[1]), _linear_scale(ctx, 6)
        y_zp = ctx.const(7, "y zero point")
        out_dtype = str(y_zp.dtype)
        y_zp = int(np.ravel(y_zp)[0])
        real = a_scale[0] * np.broadcast_to(b_scale, (w.shape[1],)) / y_scale[0]
        requant = qm.requant_attrs(real, y_zp - 128 if out_dtype == "uint8" else y_zp, (-128, 127), "qmatmul")
    result = ctx.emit("qmatmul", [x_name, w_name], out(ctx) if out_dtype != "uint8" else None,
                      x_zp=int(np.ravel(x_zp)[0]), w_zp=w_zp, **requant)
    finish_requant(ctx, result, out_dtype)
