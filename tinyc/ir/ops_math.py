"""Float math ops beyond ops.py: elementwise functions, binary ops, reductions and arg-max, defined once
like every IR op (attributes, shape rule, numpy semantics in float32).

Every unary op here is a pure function of one float input and its attributes, so a quantized model can
run it between DequantizeLinear and QuantizeLinear as a 256-entry table (OpDef.elementwise).
"""
from __future__ import annotations

import math

import numpy as np

from .ops import _binary, _unary, op

F32 = np.float32
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _hard_sigmoid(x, alpha, beta):
    return np.minimum(np.maximum(F32(alpha) * x + F32(beta), F32(0)), F32(1))


def _elu(x, alpha):
    # expm1 would be more exact; exp(x) - 1 is what the C kernel and ONNX's own definition compute
    return np.where(x < 0, F32(alpha) * (np.exp(np.minimum(x, F32(0))) - F32(1)), x)


# name -> (attributes, f(x float32, attrs) -> float32); the C kernel (tinyc_unary_f32) mirrors each formula
UNARY = {
    "tanh": ((), lambda x, a: np.tanh(x)),
    "exp": ((), lambda x, a: np.exp(x)),
    "log": ((), lambda x, a: np.log(x)),
    "sqrt": ((), lambda x, a: np.sqrt(x)),
    "erf": ((), lambda x, a: _erf(x)),
    "neg": ((), lambda x, a: -x),
    "abs": ((), lambda x, a: np.abs(x)),
    "reciprocal": ((), lambda x, a: F32(1) / x),
    "softplus": ((), lambda x, a: np.log(np.exp(x) + F32(1))),
    "pow": (("exponent",), lambda x, a: np.power(x, F32(a["exponent"]))),
    "leaky_relu": (("alpha",), lambda x, a: np.where(x < 0, F32(a["alpha"]) * x, x)),
    "elu": (("alpha",), lambda x, a: _elu(x, a["alpha"])),
    "selu": (("alpha", "gamma"), lambda x, a: F32(a["gamma"]) * _elu(x, a["alpha"])),
    "hard_sigmoid": (("alpha", "beta"), lambda x, a: _hard_sigmoid(x, a["alpha"], a["beta"])),
    "hard_swish": ((), lambda x, a: x * _hard_sigmoid(x, 1.0 / 6.0, 0.5)),
}


def _float_unary(fn):
    def compute(x, a):
        with np.errstate(all="ignore"):  # log(0), sqrt(-1): inf and NaN, as in C
            return fn(np.asarray(x, np.float32), a)
    return _unary(compute, "float32")


for _name, (_attrs, _fn) in UNARY.items():
    op(_name, _attrs, elementwise=True)(_float_unary(_fn))


def _prelu(x, slope):
    return np.where(x < 0, x * slope, x)


def _quiet(fn):
    def compute(x, y):
        with np.errstate(all="ignore"):
            return fn(x, y)
    return compute


# name -> f(x, y) with numpy broadcasting; the C kernel (tinyc_binary_f32) mirrors each
BINARY = {"sub": np.subtract, "div": np.divide, "max": np.maximum, "min": np.minimum, "prelu": _prelu,
          "pow_broadcast": np.power}
for _name, _fn in BINARY.items():
    op(_name)(_binary(_quiet(_fn)))


# ---------------------------------------------------------------- reductions over a set of axes
def _reduced_shape(shape, axes, keepdims) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce(fn, same_dtype: bool):
    """reduce_*(x) over `axes` (sorted, non-negative); max and min keep any dtype, sum and mean are float."""
    def infer(i, a):
        return [(_reduced_shape(i[0].shape, a["axes"], a["keepdims"]), i[0].dtype if same_dtype else "float32")]

    def compute(i, a):
        x = i[0] if same_dtype else i[0].astype(np.float32)
        return [np.asarray(fn(x, axis=tuple(a["axes"]), keepdims=bool(a["keepdims"]))).astype(x.dtype)]
    return infer, compute


REDUCE_ATTRS = ("axes", "keepdims")
op("reduce_sum", REDUCE_ATTRS)(_reduce(np.sum, False))
op("reduce_mean", REDUCE_ATTRS)(_reduce(np.mean, False))
op("reduce_max", REDUCE_ATTRS, same_quant=True)(_reduce(np.max, True))
op("reduce_min", REDUCE_ATTRS, same_quant=True)(_reduce(np.min, True))


@op("argmax", ("axis", "keepdims", "select_last_index", "smallest"))
def _argmax():
    """The index (int64) of the largest (smallest with `smallest`) element along axis; ties go to the
    first index, or to the last with select_last_index."""
    def infer(i, a):
        return [(_reduced_shape(i[0].shape, (a["axis"],), a["keepdims"]), "int64")]

    def compute(i, a):
        x = -i[0].astype(np.float64) if a["smallest"] else i[0].astype(np.float64)
        if a["select_last_index"]:
            n = x.shape[a["axis"]]
            idx = n - 1 - np.argmax(np.flip(x, a["axis"]), axis=a["axis"])
        else:
            idx = np.argmax(x, axis=a["axis"])
        if a["keepdims"]:
            idx = np.expand_dims(idx, a["axis"])
        return [np.asarray(idx, np.int64)]
    return infer, compute
