"""Converters of ONNX's float math: elementwise functions, binary ops, reductions, ArgMax/ArgMin and
LogSoftmax (tinyc/ir/ops_math.py). Quantized models run them between DequantizeLinear and QuantizeLinear."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .onnx_ops import attr, converts, float_only, inp, out

# ONNX op -> (IR op, {IR attribute: (ONNX attribute, default)})
UNARY = {
    "Tanh": ("tanh", {}), "Exp": ("exp", {}), "Log": ("log", {}), "Sqrt": ("sqrt", {}), "Erf": ("erf", {}),
    "Neg": ("neg", {}), "Abs": ("abs", {}), "Reciprocal": ("reciprocal", {}), "Softplus": ("softplus", {}),
    "HardSwish": ("hard_swish", {}),
    "LeakyRelu": ("leaky_relu", {"alpha": ("alpha", 0.01)}),
    "Elu": ("elu", {"alpha": ("alpha", 1.0)}),
    "Selu": ("selu", {"alpha": ("alpha", 1.67326319217681884765625), "gamma": ("gamma", 1.05070102214813232421875)}),
    "HardSigmoid": ("hard_sigmoid", {"alpha": ("alpha", 0.2), "beta": ("beta", 0.5)}),
}


@converts(*UNARY)
def unary(ctx):
    float_only(ctx, inp(ctx, 0))
    op, attrs = UNARY[ctx.node.op_type]
    ctx.emit(op, [inp(ctx, 0)], out(ctx), **{k: float(attr(ctx, name, default)) for k, (name, default) in attrs.items()})


@converts("Sub", "Div", "PRelu")
def binary(ctx):
    float_only(ctx, inp(ctx, 0))
    float_only(ctx, inp(ctx, 1))
    ctx.emit(ctx.node.op_type.lower(), [inp(ctx, 0), inp(ctx, 1)], out(ctx))


@converts("Max", "Min")
def variadic(ctx):
    names = [n for n in ctx.node.input if n]
    for n in names:
        float_only(ctx, n)
    y = names[0]
    if len(names) == 1:
        ctx.emit("reshape", [y], out(ctx), shape=ctx.value(y).shape)
        return
    for k, other in enumerate(names[1:], 2):
        y = ctx.emit(ctx.node.op_type.lower(), [y, other], out(ctx) if k == len(names) else None)


@converts("Pow")
def power(ctx):
    """x ** y with y a constant: one exponent is an elementwise function (a table in int8 models)."""
    float_only(ctx, inp(ctx, 0))
    y = ctx.const(1, "Pow's exponent")
    if y.size == 1 and len(y.shape) <= len(ctx.value(inp(ctx, 0)).shape):
        ctx.emit("pow", [inp(ctx, 0)], out(ctx), exponent=float(np.float32(y.reshape(()))))
    else:
        exponent = ctx.add_const("exponent", y.astype(np.float32))
        ctx.emit("pow_broadcast", [inp(ctx, 0), exponent], out(ctx))


# ---------------------------------------------------------------- reductions
def reduce_axes(ctx, rank: int) -> list[int] | None:
    """The reduced axes, sorted and non-negative; None when an empty list means "reduce nothing"."""
    axes = ctx.const(1, f"{ctx.node.op_type}'s axes") if len(ctx.node.input) > 1 else attr(ctx, "axes")
    axes = [] if axes is None else [int(a) for a in np.asarray(axes).ravel()]
    if not axes:
        return None if attr(ctx, "noop_with_empty_axes", 0) else list(range(rank))
    if any(not -rank <= a < rank for a in axes):
        raise UnsupportedError(f"{ctx.node.op_type} axes {axes} outside a rank-{rank} tensor")
    return sorted({a % rank for a in axes})


# ONNX op -> (the elementwise op before the reduction, the reduction, the elementwise op after)
REDUCE = {
    "ReduceSum": (None, "reduce_sum", None), "ReduceMean": (None, "reduce_mean", None),
    "ReduceMax": (None, "reduce_max", None), "ReduceMin": (None, "reduce_min", None),
    "ReduceSumSquare": ("square", "reduce_sum", None), "ReduceL1": ("abs", "reduce_sum", None),
    "ReduceL2": ("square", "reduce_sum", "sqrt"), "ReduceLogSum": (None, "reduce_sum", "log"),
    "ReduceLogSumExp": ("exp", "reduce_sum", "log"),
}


@converts(*REDUCE)
def reduce(ctx):
    x = ctx.value(inp(ctx, 0))
    before, op, after = REDUCE[ctx.node.op_type]
    if op not in ("reduce_max", "reduce_min") or x.dtype not in ("int8", "uint8"):
        float_only(ctx, inp(ctx, 0))
    axes = reduce_axes(ctx, len(x.shape))
    if axes is None:
        ctx.emit("reshape", [inp(ctx, 0)], out(ctx), shape=x.shape)
        return
    y = inp(ctx, 0)
    if before == "square":
        y = ctx.emit("mul", [y, y])
    elif before is not None:
        y = ctx.emit(before, [y])
    y = ctx.emit(op, [y], None if after else out(ctx), axes=tuple(axes), keepdims=bool(attr(ctx, "keepdims", 1)))
    if after:
        ctx.emit(after, [y], out(ctx))


@converts("ArgMax", "ArgMin")
def argmax(ctx):
    x = ctx.value(inp(ctx, 0))
    if x.dtype not in ("int8", "uint8"):
        float_only(ctx, inp(ctx, 0))
    rank = len(x.shape)
    ctx.emit("argmax", [inp(ctx, 0)], out(ctx), axis=attr(ctx, "axis", 0) % rank,
             keepdims=bool(attr(ctx, "keepdims", 1)), select_last_index=bool(attr(ctx, "select_last_index", 0)),
             smallest=ctx.node.op_type == "ArgMin")


@converts("LogSoftmax")
def log_softmax(ctx):
    """x - max - log(sum(exp(x - max))) along the axis: ONNX's own definition, in existing ops."""
    float_only(ctx, inp(ctx, 0))
    axes = (attr(ctx, "axis", -1) % len(ctx.value(inp(ctx, 0)).shape),)
    top = ctx.emit("reduce_max", [inp(ctx, 0)], axes=axes, keepdims=True)
    shifted = ctx.emit("sub", [inp(ctx, 0), top])
    total = ctx.emit("reduce_sum", [ctx.emit("exp", [shifted])], axes=axes, keepdims=True)
    ctx.emit("sub", [shifted, ctx.emit("log", [total])], out(ctx))
