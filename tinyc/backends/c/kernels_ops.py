"""Emitters of the ops in tinyc/ir/ops_math.py and ops_tensor.py (kernels in tinyc_kernels_ops.c, the
strided views through tinyc_transpose), registered into kernels.EMITTERS."""
from __future__ import annotations

import numpy as np

from ...ir import ops_math, ops_tensor
from .cdata import c_literals
from .kernels import EMITTERS, MAX_DIMS, SUFFIX, arg, axis_split, bcast, dtypes, merge, need, out, size, strides_of

UNARY_PARAMS = {"pow": ("exponent",), "leaky_relu": ("alpha",), "elu": ("alpha",), "selu": ("alpha", "gamma"),
                "hard_sigmoid": ("alpha", "beta")}
BINARY_FN = {"sub": "SUB", "div": "DIV", "max": "MAX", "min": "MIN", "prelu": "PRELU", "pow_broadcast": "POW"}
REDUCE_MODE = {"reduce_sum": "SUM", "reduce_mean": "MEAN", "reduce_max": "MAX", "reduce_min": "MIN"}
CAST_DTYPES = {"float32": "F32", "int8": "S8", "uint8": "U8", "int32": "S32", "int64": "S64"}


def unary(e, node):
    dtypes(e, node, ("float32",))
    params = [float(node.attrs[k]) for k in UNARY_PARAMS.get(node.op, ())] + [0.0, 0.0]
    a, b = c_literals(params[:2], "float")
    return [f"tinyc_unary_f32({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {out(e, node).size}, "
            f"TINYC_FN_{node.op.upper()}, {a}, {b});"]


def binary(e, node):
    dtypes(e, node, ("float32",), ("float32",))
    a, b = (e.g.values[v].shape for v in node.inputs)
    desc = bcast(e, node, out(e, node).shape, a, b)
    return [f"tinyc_binary_f32({desc}, {arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])}, "
            f"TINYC_BIN_{BINARY_FN[node.op]});"]


def reduce(e, node):
    float_only = node.op in ("reduce_sum", "reduce_mean")
    dt, = dtypes(e, node, ("float32",) if float_only else ("float32", "int8", "uint8"))
    x, y = e.g.values[node.inputs[0]], out(e, node)
    axes = set(node.attrs["axes"])
    kept = [d for i, d in enumerate(x.shape) if i not in axes]
    y_strides = iter(strides_of(kept))
    out_strides = [0 if i in axes else next(y_strides) for i in range(len(x.shape))]
    shape, (_, out_strides) = merge(x.shape, strides_of(x.shape), out_strides)
    if not shape:
        shape, out_strides = [1], [0]
    need(len(shape) <= MAX_DIMS, f"{node.op} over {len(shape)} separate dims; the kernel takes {MAX_DIMS}")
    s = e.array(node.name + "_shape", "int32_t", shape)
    st = e.array(node.name + "_out_stride", "int32_t", out_strides)
    count = [f"{x.size // max(y.size, 1)}, "] if dt == "float32" else [""]
    return [f"tinyc_reduce_{SUFFIX[dt]}({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {len(shape)}, {s}, {st}, "
            f"{y.size}, {count[0]}TINYC_REDUCE_{REDUCE_MODE[node.op]});"]


def argmax(e, node):
    dt, = dtypes(e, node, ("float32", "int8", "uint8"))
    outer, length, inner = axis_split(e.g.values[node.inputs[0]].shape, node.attrs["axis"])
    a = node.attrs
    return [f"tinyc_argmax_{SUFFIX[dt]}({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {outer}, {length}, {inner}, "
            f"{int(bool(a['select_last_index']))}, {int(bool(a['smallest']))});"]


def pointer_at(e, value: str, byte: int) -> str:
    """The address `byte` bytes into a value: the arena's place, or an offset into a constant array."""
    if not e.g.values[value].is_const:
        return e.ptr(value, byte)
    return f"((const uint8_t *){e.ptr(value)} + {byte})" if byte else e.ptr(value)


def view(e, node):
    """slice, expand and tile: the output is a strided view of the input, read in order."""
    x, y = e.g.values[node.inputs[0]], out(e, node)
    view_shape, strides, start = ops_tensor.view_of(node.op, x.shape, node.attrs)
    shape, (strides,) = merge(view_shape, strides)
    item = np.dtype(y.dtype).itemsize
    src = pointer_at(e, node.inputs[0], start * item)
    if not shape or (len(shape) == 1 and strides == [1]):
        return [f"memcpy({e.ptr(node.outputs[0])}, {src}, {y.nbytes});"]
    need(len(shape) <= MAX_DIMS, f"{node.op} reads {len(shape)} separate dims; the kernel takes {MAX_DIMS}")
    s = e.array(node.name + "_shape", "int32_t", shape)
    st = e.array(node.name + "_stride", "int32_t", strides)
    return [f"tinyc_transpose({src}, {e.ptr(node.outputs[0])}, {item}, {len(shape)}, {s}, {st});"]


def gather(e, node):
    x, y = e.g.values[node.inputs[0]], out(e, node)
    outer, length, inner = axis_split(x.shape, node.attrs["axis"])
    index = np.asarray(node.attrs["indices"]).reshape(-1)
    idx = e.array(node.name + "_index", "int32_t", index)
    return [f"tinyc_gather({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {np.dtype(y.dtype).itemsize}, {outer}, "
            f"{length}, {inner}, {idx}, {index.size});"]


def cast(e, node):
    dt, = dtypes(e, node, tuple(CAST_DTYPES))
    y = out(e, node)
    return [f"tinyc_cast({arg(e, node, 0)}, TINYC_DT_{CAST_DTYPES[dt]}, {e.ptr(node.outputs[0])}, "
            f"TINYC_DT_{CAST_DTYPES[y.dtype]}, {size(y.shape)});"]


EMITTERS.update({name: unary for name in ops_math.UNARY})
EMITTERS.update({name: binary for name in ops_math.BINARY})
EMITTERS.update({name: reduce for name in REDUCE_MODE})
EMITTERS.update({"argmax": argmax, "slice": view, "expand": view, "tile": view, "gather": gather, "cast": cast})
