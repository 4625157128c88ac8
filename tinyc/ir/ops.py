"""Every IR op, defined once: its attributes, its shape rule and its reference semantics (numpy).

The frontend builds these ops, the passes rewrite them, the interpreter runs `compute`, and the C
backend emits a kernel call per op; all read the definition here. Integer ops follow TFLite's int8
reference arithmetic (tinyc.ir.quant_math). Spatial ops take NCHW-style tensors with 1..3 spatial
dimensions; `pads` lists the begins of every spatial dimension, then the ends (ONNX order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import geometry as geo
from . import quant_math as qm
from .graph import Graph, Node, Value

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: Callable[[list[Value], dict], list[tuple[Shape, str]]]
    compute: Callable[[list[np.ndarray], dict], list[np.ndarray]]
    attrs: tuple[str, ...] = ()
    # the facts of an integer op an accelerator job computes (its main op, whose geometry the job
    # takes): the roles of its int8 operands (a bias, when there is one, comes third and stays int32),
    # each zero-point attribute's role and each (multiplier, shift) attribute pair with what it scales
    operands: tuple[str, ...] = ()
    zero_points: dict[str, str] = field(default_factory=dict)
    requantizers: dict[tuple[str, str], str] = field(default_factory=dict)
    # what the op contracts, for its multiply-accumulates and a job's geometry: "window" (a conv: one
    # weight filter per output channel), "dense" (x[..., K] @ w[K, N]) or "" (no MACs)
    contraction: str = ""
    # a pure function of one float input, element by element: between DequantizeLinear and
    # QuantizeLinear it runs as a 256-entry table (fold_qdq)
    elementwise: bool = False
    # on int8 data it computes in its input's quantization (fold_qdq keeps the int8 op)
    same_quant: bool = False


    def macs(self, g: Graph, n: Node) -> int:
        """Multiply-accumulates of node `n` (of this op)."""
        out = g.values[n.outputs[0]]
        if self.contraction == "window":
            return out.size * int(np.prod(g.values[n.inputs[1]].shape[1:]))
        if self.contraction == "dense":
            return out.size * g.values[n.inputs[0]].shape[-1]
        return 0


OPS: dict[str, OpDef] = {}


def op(name: str, attrs: tuple[str, ...] = (), **facts):
    """Registers an op; `facts` are OpDef's further fields (operands, zero_points, ...)."""
    def register(definition):
        """Takes (infer, compute), or a function returning them so both can share local helpers."""
        fns = definition() if callable(definition) else definition
        OPS[name] = OpDef(name, fns[0], fns[1], attrs, **facts)
        return fns
    return register


def add(g: Graph, op_name: str, inputs: list[str], name: str, **attrs) -> str:
    """Append a single-output node, inferring its output value; returns the output value's name."""
    ins = [g.values[v] if v else None for v in inputs]
    (shape, dtype), = OPS[op_name].infer(ins, attrs)
    out = g.add_value(Value(g.unique_value_name(name), tuple(int(d) for d in shape), dtype)).name
    g.add_node(name, op_name, inputs, [out], **attrs)
    return out


# ---------------------------------------------------------------- helpers
def broadcast_shape(a: Value, b: Value) -> Shape:
    return tuple(np.broadcast_shapes(a.shape, b.shape))


def window_shape(x: Value, channels: int, kernel, a) -> Shape:
    sp = geo.out_spatial(x.shape[2:], kernel, a["strides"], a["pads"], a["dilations"], a.get("ceil_mode", False))
    return (x.shape[0], channels) + sp


def conv_acc(x: np.ndarray, w: np.ndarray, a: dict, exact_int: bool) -> np.ndarray:
    """Grouped N-d correlation. Integer inputs go through float64, exact while |acc| < 2**53."""
    group = a["group"]
    kernel = w.shape[2:]
    out_sp = geo.out_spatial(x.shape[2:], kernel, a["strides"], a["pads"], a["dilations"])
    n, c = x.shape[:2]
    m = w.shape[0]
    work = np.float64 if exact_int else np.float32
    xw = x.astype(work)
    wg = w.astype(work).reshape((group, m // group, c // group) + kernel)
    acc = np.zeros((n, group, m // group) + out_sp, work)
    w3 = wg.reshape(wg.shape[:3] + (1,) * (3 - len(kernel)) + kernel)
    for (kd, kh, kw), view in geo.windows(xw, kernel, a["strides"], a["pads"], a["dilations"], out_sp, 0):
        v = view.reshape((n, group, c // group) + out_sp)
        acc += np.einsum("ngc...,gmc->ngm...", v, w3[:, :, :, kd, kh, kw])
    acc = acc.reshape((n, m) + out_sp)
    return np.rint(acc).astype(np.int64) if exact_int else acc


def per_channel(values, channels: int, ndim: int, axis: int = 1) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 1:
        return arr.reshape(())
    shape = [1] * ndim
    shape[axis] = channels
    return arr.reshape(shape)


def requant_out(acc: np.ndarray, a: dict, channel_axis: int) -> np.ndarray:
    if a.get("multiplier") is None:
        return acc.astype(np.int32)
    mult = per_channel(a["multiplier"], acc.shape[channel_axis], acc.ndim, channel_axis)
    shift = per_channel(a["shift"], acc.shape[channel_axis], acc.ndim, channel_axis)
    return qm.requantize(acc, mult, shift, a["out_zp"], a["out_min"], a["out_max"], a["rounding"]).astype(np.int8)


CONV_ATTRS = ("strides", "pads", "dilations", "group")
REQUANT_ATTRS = ("multiplier", "shift", "out_zp", "out_min", "out_max", "rounding")
POOL_ATTRS = ("kernel", "strides", "pads", "dilations", "ceil_mode")
WEIGHTED_OPERANDS = ("input", "weights")  # the operands of a layer with weights, as constraints name them
WEIGHTED_ZERO_POINTS = {"x_zp": "input", "w_zp": "weights", "out_zp": "output"}


# ---------------------------------------------------------------- float compute
@op("conv", CONV_ATTRS, contraction="window")
def _conv():
    def infer(i, a):
        return [(window_shape(i[0], i[1].shape[0], i[1].shape[2:], a), "float32")]

    def compute(i, a):
        y = conv_acc(i[0], i[1], a, exact_int=False)
        if len(i) > 2 and i[2] is not None:
            y = y + i[2].reshape((1, -1) + (1,) * (y.ndim - 2))
        return [y.astype(np.float32)]
    return infer, compute


@op("matmul", contraction="dense")
def _matmul():
    def infer(i, a):
        sa, sb = i[0].shape, i[1].shape
        if len(sa) == 1 and len(sb) == 1:
            return [((), "float32")]
        if len(sa) == 1:
            return [(sb[:-2] + sb[-1:], "float32")]
        if len(sb) == 1:
            return [(sa[:-1], "float32")]
        if sa[-1] != sb[-2]:
            raise ValueError(f"matmul of {list(sa)} and {list(sb)}")
        return [(tuple(np.broadcast_shapes(sa[:-2], sb[:-2])) + (sa[-2], sb[-1]), "float32")]

    def compute(i, a):
        return [np.matmul(i[0], i[1]).astype(np.float32)]
    return infer, compute


def binary(fn):
    def infer(i, a):
        return [(broadcast_shape(i[0], i[1]), i[0].dtype)]

    def compute(i, a):
        return [fn(i[0], i[1]).astype(i[0].dtype)]
    return infer, compute


op("add")(binary(np.add))
op("mul")(binary(np.multiply))


def unary(fn, dtype=None):
    def infer(i, a):
        return [(i[0].shape, dtype or i[0].dtype)]

    def compute(i, a):
        return [np.asarray(fn(i[0], a)).astype(dtype or i[0].dtype)]
    return infer, compute


op("relu", elementwise=True)(unary(lambda x, a: np.maximum(x, np.zeros((), x.dtype))))
op("clip", ("min", "max"), elementwise=True)(
    unary(lambda x, a: np.minimum(np.maximum(x, np.float32(a["min"])), np.float32(a["max"]))))
op("sigmoid", elementwise=True)(unary(lambda x, a: 1.0 / (1.0 + np.exp(-x.astype(np.float32)))))


@op("softmax", ("axis",))
def _softmax():
    def compute(i, a):
        x = i[0].astype(np.float32)
        e = np.exp(x - x.max(axis=a["axis"], keepdims=True))
        return [(e / e.sum(axis=a["axis"], keepdims=True)).astype(np.float32)]
    return unary(None)[0], compute


@op("avgpool", POOL_ATTRS + ("count_include_pad",), same_quant=True)
def _avgpool():
    def infer(i, a):
        return [(window_shape(i[0], i[0].shape[1], a["kernel"], a), i[0].dtype)]

    def compute(i, a):
        total, inside, padded = window_sums(i[0].astype(np.float32), a)
        count = padded if a["count_include_pad"] else inside
        return [(total / count.astype(np.float32)).astype(np.float32)]
    return infer, compute


def value_of(x: np.ndarray) -> Value:
    return Value("", tuple(x.shape), str(x.dtype))


def window_sums(x: np.ndarray, a: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output of a pool: the sum of its window (padding read as 0, in x's dtype), how many of its
    positions lie inside the input, and how many inside the input or its declared padding."""
    out_sp = window_shape(value_of(x), x.shape[1], a["kernel"], a)[2:]
    total = sum(v for _, v in geo.windows(x, a["kernel"], a["strides"], a["pads"], a["dilations"], out_sp, 0))
    inside, padded = (geo.valid_counts(x.shape[2:], a["kernel"], a["strides"], a["pads"], a["dilations"], out_sp,
                                       include_pad) for include_pad in (False, True))
    return total, inside, padded


@op("maxpool", POOL_ATTRS, same_quant=True)
def _maxpool():
    def compute(i, a):
        x = i[0]
        out_sp = window_shape(value_of(x), x.shape[1], a["kernel"], a)[2:]
        lowest = -np.inf if x.dtype == np.float32 else np.iinfo(x.dtype).min
        views = [v for _, v in geo.windows(x, a["kernel"], a["strides"], a["pads"], a["dilations"], out_sp, lowest)]
        return [np.maximum.reduce(views).astype(x.dtype)]
    return _avgpool[0], compute


# ---------------------------------------------------------------- data movement (any dtype)
@op("reshape", ("shape",))
def _reshape():
    def infer(i, a):
        return [(tuple(a["shape"]), i[0].dtype)]

    def compute(i, a):
        return [i[0].reshape(a["shape"])]
    return infer, compute


@op("transpose", ("perm",))
def _transpose():
    def infer(i, a):
        return [(tuple(i[0].shape[p] for p in a["perm"]), i[0].dtype)]

    def compute(i, a):
        return [np.ascontiguousarray(np.transpose(i[0], a["perm"]))]
    return infer, compute


@op("concat", ("axis",), same_quant=True)
def _concat():
    def infer(i, a):
        shape = list(i[0].shape)
        shape[a["axis"]] = sum(v.shape[a["axis"]] for v in i)
        return [(tuple(shape), i[0].dtype)]

    def compute(i, a):
        return [np.concatenate(i, axis=a["axis"])]
    return infer, compute


@op("pad", ("pads", "mode", "value"), same_quant=True)
def _pad():
    def infer(i, a):
        n = len(i[0].shape)
        return [(tuple(d + a["pads"][k] + a["pads"][k + n] for k, d in enumerate(i[0].shape)), i[0].dtype)]

    def compute(i, a):
        x = i[0]
        n = x.ndim
        width = [(a["pads"][k], a["pads"][k + n]) for k in range(n)]
        if a["mode"] == "constant":
            return [np.pad(x, width, constant_values=np.asarray(a["value"]).astype(x.dtype))]
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge"}[a["mode"]])]
    return infer, compute


# ---------------------------------------------------------------- quantization boundary
def _axis_view(arr, x: np.ndarray, axis):
    arr = np.asarray(arr)
    if axis is None or arr.size == 1:
        return arr.reshape(())
    return per_channel(arr, x.shape[axis], x.ndim, axis)


@op("quantize", ("scale", "zero_point", "axis", "dtype"))
def _quantize():
    def infer(i, a):
        return [(i[0].shape, a["dtype"])]

    def compute(i, a):
        x = i[0].astype(np.float32)
        scale = _axis_view(a["scale"], x, a["axis"]).astype(np.float32)
        zp = _axis_view(a["zero_point"], x, a["axis"]).astype(np.float32)
        info = np.iinfo(a["dtype"])
        q = np.rint(x / scale) + zp
        # NaN quantizes to the dtype's minimum, as onnxruntime does (a cast of NaN has no defined result)
        return [np.clip(np.where(np.isnan(q), info.min, q), info.min, info.max).astype(a["dtype"])]
    return infer, compute


@op("dequantize", ("scale", "zero_point", "axis"))
def _dequantize():
    def compute(i, a):
        x = i[0]
        scale = _axis_view(a["scale"], x, a["axis"]).astype(np.float32)
        zp = _axis_view(a["zero_point"], x, a["axis"]).astype(np.int64)
        return [((x.astype(np.int64) - zp).astype(np.float32) * scale).astype(np.float32)]
    return unary(None, "float32")[0], compute


@op("flip_sign", ("dtype",))
def _flip_sign():
    """uint8 <-> int8 by flipping the top bit: q_u8 - 128 == q_s8, so zero points move by 128."""
    def infer(i, a):
        return [(i[0].shape, a["dtype"])]

    def compute(i, a):
        return [(i[0].view(np.uint8) ^ np.uint8(0x80)).view(a["dtype"])]
    return infer, compute


# ---------------------------------------------------------------- integer ops (int8 in)
