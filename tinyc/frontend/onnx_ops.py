"""One converter per ONNX op type: reads the node's attributes and inputs, emits IR ops. The
quantization ops (QuantizeLinear, QLinearConv, ...) are in onnx_qops.py, registered in the same table.

Quantized ONNX ops with uint8 tensors are mapped to int8 (q_u8 - 128 == q_s8, zero point - 128), so
every integer kernel of tinyc is int8-only; flip_sign converts at the model's edges.
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from .loader import TENSOR_DTYPES

from ..errors import BadModelError, UnsupportedError
from ..ir.graph import Value

CONVERTERS = {}


def converts(*op_types):
    def register(fn):
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return register


def attr(ctx, name, default=None):
    for a in ctx.node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def inp(ctx, i: int) -> str:
    return ctx.node.input[i] if i < len(ctx.node.input) else ""


def out(ctx, i: int = 0) -> str:
    return ctx.node.output[i]


def one_output(ctx):
    used = [o for o in ctx.node.output if o]
    if len(used) != 1:
        raise UnsupportedError(f"{ctx.node.op_type} with {len(used)} outputs (only the first is supported)")


# ---------------------------------------------------------------- windows (conv, pools)
def window_attrs(ctx, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> dict:
    n = len(spatial)
    if n not in (1, 2, 3):
        raise UnsupportedError(f"{ctx.node.op_type} over {n} spatial dimensions (1 to 3 are supported)")
    strides = tuple(attr(ctx, "strides", [1] * n))
    dilations = tuple(attr(ctx, "dilations", [1] * n))
    pads = tuple(attr(ctx, "pads", [0] * (2 * n)))
    auto_pad = attr(ctx, "auto_pad", "NOTSET")
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n or len(kernel) != n:
        raise UnsupportedError("kernel, strides, dilations or pads do not match the input's rank")
    if min(strides + dilations + kernel) < 1:
        raise UnsupportedError("kernel, strides and dilations must be positive")
    if min(pads) < 0:
        raise UnsupportedError(f"negative pads {list(pads)}")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for i in range(n):
            out_size = -(-spatial[i] // strides[i])
            total = max(0, (out_size - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i])
            small = total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        pads = tuple(begins + ends)
    elif auto_pad == "VALID":
        pads = (0,) * (2 * n)
    elif auto_pad != "NOTSET":
        raise UnsupportedError(f"auto_pad {auto_pad!r}")
    return dict(strides=strides, pads=pads, dilations=dilations)


def conv_kernel(ctx, w) -> tuple[int, ...]:
    """kernel_shape, when given, must be the weights' own: the kernels convolve with the weights' shape."""
    kernel = tuple(attr(ctx, "kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise BadModelError(f"kernel_shape {list(kernel)} differs from the weights' {list(w.shape[2:])}")
    return kernel


def conv_bias(ctx, index: int, channels: int) -> str:
    """The optional bias: one value per output channel, exactly what the kernels read."""
    name = inp(ctx, index)
    if name and ctx.value(name).shape != (channels,):
        raise BadModelError(f"bias of shape {list(ctx.value(name).shape)} for {channels} output channels")
    return name


@converts("Conv")
def conv(ctx):
    x, w = ctx.value(inp(ctx, 0)), ctx.value(inp(ctx, 1))
    kernel = conv_kernel(ctx, w)
    a = window_attrs(ctx, x.shape[2:], kernel)
    group = attr(ctx, "group", 1)
    if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise UnsupportedError(f"{x.shape[1]} input channels do not fit weights {list(w.shape)} in {group} groups")
    ctx.emit("conv", [inp(ctx, 0), inp(ctx, 1), conv_bias(ctx, 2, w.shape[0])], out(ctx), group=group, **a)


def _pool(ctx, op: str, **extra):
    one_output(ctx)
    x = ctx.value(inp(ctx, 0))
    kernel = tuple(attr(ctx, "kernel_shape"))
    a = window_attrs(ctx, x.shape[2:], kernel)
    ctx.emit(op, [inp(ctx, 0)], out(ctx), kernel=kernel, ceil_mode=bool(attr(ctx, "ceil_mode", 0)), **a, **extra)


@converts("AveragePool")
def average_pool(ctx):
    float_only(ctx, inp(ctx, 0))
    _pool(ctx, "avgpool", count_include_pad=bool(attr(ctx, "count_include_pad", 0)))


@converts("MaxPool")
def max_pool(ctx):
    if attr(ctx, "storage_order", 0):
        raise UnsupportedError("MaxPool storage_order=1 (column-major indices)")
    if ctx.value(inp(ctx, 0)).dtype == "uint8":
        return _via_int8(ctx, lambda x8: _pool_named(ctx, "maxpool", x8))
    _pool(ctx, "maxpool")


def _pool_named(ctx, op, x8):
    x = ctx.value(x8)
    kernel = tuple(attr(ctx, "kernel_shape"))
    return ctx.emit(op, [x8], None, kernel=kernel, ceil_mode=bool(attr(ctx, "ceil_mode", 0)),
                    **window_attrs(ctx, x.shape[2:], kernel))


@converts("GlobalAveragePool")
def global_average_pool(ctx):
    float_only(ctx, inp(ctx, 0))
    x = ctx.value(inp(ctx, 0))
    n = len(x.shape) - 2
    ctx.emit("avgpool", [inp(ctx, 0)], out(ctx), kernel=tuple(x.shape[2:]), strides=(1,) * n, pads=(0,) * (2 * n),
             dilations=(1,) * n, ceil_mode=False, count_include_pad=False)


# ---------------------------------------------------------------- dense
@converts("MatMul")
def matmul(ctx):
    float_only(ctx, inp(ctx, 0))
    ctx.emit("matmul", [inp(ctx, 0), inp(ctx, 1)], out(ctx))


@converts("Gemm")
def gemm(ctx):
    float_only(ctx, inp(ctx, 0))
    a, b = inp(ctx, 0), inp(ctx, 1)
    if attr(ctx, "transA", 0):
        a = ctx.emit("transpose", [a], perm=(1, 0))
    if attr(ctx, "transB", 0):
        b = ctx.emit("transpose", [b], perm=(1, 0))
    alpha, beta = attr(ctx, "alpha", 1.0), attr(ctx, "beta", 1.0)
    has_c = bool(inp(ctx, 2))
    y = ctx.emit("matmul", [a, b], None if (alpha != 1.0 or has_c) else out(ctx))
    if alpha != 1.0:
        y = ctx.emit("mul", [y, ctx.add_const("alpha", np.float32(alpha))], None if has_c else out(ctx))
    if has_c:
        c = inp(ctx, 2)
        if beta != 1.0:
            c = ctx.emit("mul", [c, ctx.add_const("beta", np.float32(beta))])
        ctx.emit("add", [y, c], out(ctx))


# ---------------------------------------------------------------- elementwise
def float_only(ctx, name: str):
    dtype = ctx.value(name).dtype
    if dtype != "float32":
        raise UnsupportedError(f"{ctx.node.op_type} on {dtype} tensors (tinyc runs it on float32; quantized "
                               "models express it between DequantizeLinear and QuantizeLinear)")


@converts("Add", "Mul")
def binary(ctx):
    float_only(ctx, inp(ctx, 0))
    float_only(ctx, inp(ctx, 1))
    ctx.emit(ctx.node.op_type.lower(), [inp(ctx, 0), inp(ctx, 1)], out(ctx))


@converts("Relu")
def relu(ctx):
    if ctx.value(inp(ctx, 0)).dtype not in ("float32", "int8"):
        float_only(ctx, inp(ctx, 0))
    ctx.emit("relu", [inp(ctx, 0)], out(ctx))


@converts("Sigmoid")
def sigmoid(ctx):
    float_only(ctx, inp(ctx, 0))
    ctx.emit("sigmoid", [inp(ctx, 0)], out(ctx))


@converts("Clip")
def clip(ctx):
    float_only(ctx, inp(ctx, 0))
    lo = ctx.const(1, "Clip min")
    hi = ctx.const(2, "Clip max")
    lo = float(lo) if lo is not None else float(attr(ctx, "min", -np.inf))
    hi = float(hi) if hi is not None else float(attr(ctx, "max", np.inf))
    ctx.emit("clip", [inp(ctx, 0)], out(ctx), min=lo, max=hi)


@converts("Softmax")
def softmax(ctx):
    float_only(ctx, inp(ctx, 0))
    rank = len(ctx.value(inp(ctx, 0)).shape)
    ctx.emit("softmax", [inp(ctx, 0)], out(ctx), axis=attr(ctx, "axis", -1) % rank)


@converts("Identity")
def identity(ctx):
    x = ctx.value(inp(ctx, 0))
    ctx.emit("reshape", [inp(ctx, 0)], out(ctx), shape=x.shape)


# ---------------------------------------------------------------- constants
CONSTANT_ATTRS = {  # the attribute that holds a Constant's value -> how ONNX reads it as an array
    "value": numpy_helper.to_array,
    "value_float": lambda v: np.array(v, np.float32), "value_floats": lambda v: np.array(v, np.float32),
    "value_int": lambda v: np.array(v, np.int64), "value_ints": lambda v: np.array(v, np.int64),
}


@converts("Constant")
def constant(ctx):
    """The output becomes an IR constant, as an initializer would: a Reshape's shape or a Clip's bounds
    given by a Constant node (as PyTorch exports them) are then known at compile time."""
    if len(ctx.node.attribute) != 1:
        raise BadModelError(f"Constant needs exactly one value attribute, it has {len(ctx.node.attribute)}")
    a = ctx.node.attribute[0]
    if a.name not in CONSTANT_ATTRS:
        raise UnsupportedError(f"Constant with a {a.name} (tinyc reads value, value_float(s) and value_int(s))")
    data = np.array(CONSTANT_ATTRS[a.name](helper.get_attribute_value(a)), order="C")
    if str(data.dtype) not in TENSOR_DTYPES.values():
        raise UnsupportedError(f"Constant of dtype {data.dtype}; tinyc supports " + ", ".join(TENSOR_DTYPES.values()))
    _const_output(ctx, data)


@converts("Shape")
def shape(ctx):
    """Every shape is static in tinyc, so Shape is a constant; ONNX's opset converter writes Shape ->
    Reshape around an old Softmax, and PyTorch exports compute flatten shapes with it."""
    dims = ctx.value(inp(ctx, 0)).shape
    _const_output(ctx, np.array(dims[attr(ctx, "start", 0):attr(ctx, "end", len(dims))], np.int64))


def _const_output(ctx, data: np.ndarray):
    ctx.graph.add_value(Value(out(ctx), tuple(data.shape), str(data.dtype), data=data))


# ---------------------------------------------------------------- shapes and data movement
@converts("Reshape")
def reshape(ctx):
    x = ctx.value(inp(ctx, 0))
    shape = [int(d) for d in ctx.const(1, "Reshape's shape")]
    if not attr(ctx, "allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise BadModelError(f"Reshape to {shape}")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or x.size % known:
            raise BadModelError(f"cannot reshape {list(x.shape)} to {shape}")
        shape[shape.index(-1)] = x.size // known
    if int(np.prod(shape)) != x.size:
        raise BadModelError(f"cannot reshape {list(x.shape)} ({x.size} elements) to {shape}")
    ctx.emit("reshape", [inp(ctx, 0)], out(ctx), shape=tuple(shape))


@converts("Flatten")
def flatten(ctx):
    x = ctx.value(inp(ctx, 0))
    axis = attr(ctx, "axis", 1)
    axis = axis + len(x.shape) if axis < 0 else axis
    ctx.emit("reshape", [inp(ctx, 0)], out(ctx),
             shape=(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))))


def _axes(ctx, what):
    axes = ctx.const(1, f"{what} axes") if ctx.opset >= 13 else attr(ctx, "axes")
    return None if axes is None else [int(a) for a in np.asarray(axes).ravel()]


@converts("Squeeze")
def squeeze(ctx):
    x = ctx.value(inp(ctx, 0))
    axes = _axes(ctx, "Squeeze")
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axes is None else [a % len(x.shape) for a in axes]
    if any(x.shape[a] != 1 for a in axes):
        raise UnsupportedError(f"Squeeze of a dimension that is not 1: {list(x.shape)} axes {axes}")
    ctx.emit("reshape", [inp(ctx, 0)], out(ctx), shape=tuple(d for i, d in enumerate(x.shape) if i not in axes))


@converts("Unsqueeze")
def unsqueeze(ctx):
    x = ctx.value(inp(ctx, 0))
    rank = len(x.shape) + len(_axes(ctx, "Unsqueeze"))
    axes = sorted(a % rank for a in _axes(ctx, "Unsqueeze"))
    dims = iter(x.shape)
    ctx.emit("reshape", [inp(ctx, 0)], out(ctx), shape=tuple(1 if i in axes else next(dims) for i in range(rank)))


@converts("Transpose")
def transpose(ctx):
    rank = len(ctx.value(inp(ctx, 0)).shape)
    perm = tuple(attr(ctx, "perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise UnsupportedError(f"Transpose perm {list(perm)} is not a permutation of {rank} axes")
    ctx.emit("transpose", [inp(ctx, 0)], out(ctx), perm=perm)


@converts("Concat")
def concat(ctx):
    names = [n for n in ctx.node.input if n]
    rank = len(ctx.value(names[0]).shape)
    axis = attr(ctx, "axis") % rank
    dtypes = {ctx.value(n).dtype for n in names}
    for n in names:
        shape = ctx.value(n).shape
        if len(shape) != rank or any(shape[i] != ctx.value(names[0]).shape[i] for i in range(rank) if i != axis):
            raise UnsupportedError("Concat inputs differ outside the concatenation axis")
    if len(dtypes) != 1:
        raise UnsupportedError(f"Concat of mixed dtypes {sorted(dtypes)}")
    ctx.emit("concat", names, out(ctx), axis=axis)


@converts("Pad")
def pad(ctx):
    x = ctx.value(inp(ctx, 0))
    rank = len(x.shape)
    mode = attr(ctx, "mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise UnsupportedError(f"Pad mode {mode!r}")
    pads = [int(p) for p in ctx.const(1, "Pad's pads")]
    value = ctx.const(2, "Pad's constant value")
    axes = ctx.const(3, "Pad's axes")
    if axes is not None:
        axes = [int(a) % rank for a in axes]
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[a + rank] = pads[k], pads[k + len(axes)]
        pads = full
    if len(pads) != 2 * rank or min(pads) < 0:
        raise UnsupportedError(f"Pad pads {pads} (negative or not 2 x rank {rank})")
    if mode == "reflect" and any(pads[k] >= x.shape[k] or pads[k + rank] >= x.shape[k] for k in range(rank)):
        raise UnsupportedError("reflect padding wider than the dimension")
    ctx.emit("pad", [inp(ctx, 0)], out(ctx), pads=tuple(pads), mode=mode,
             value=float(value) if value is not None and value.size else 0.0)


def _via_int8(ctx, body):
    """Run `body` on an int8 view of a uint8 input and flip its int8 result back to uint8."""
    x8 = ctx.emit("flip_sign", [inp(ctx, 0)], dtype="int8")
    ctx.emit("flip_sign", [body(x8)], out(ctx), dtype="uint8")
