"""Data movement beyond ops.py (slice, expand, tile, gather, space_to_depth) and dtype casts, for any dtype.

slice, expand and tile read their input through a strided view (`view_of` gives the strides and the
start), so one C kernel serves them all; gather takes constant indices along one axis.
"""
from __future__ import annotations

import numpy as np

from .graph import DTYPES
from .ops import op


def _range_len(start: int, end: int, step: int) -> int:
    return len(range(start, end, step))


def strides_of(shape) -> list[int]:
    """Row-major element strides."""
    out, acc = [], 1
    for d in reversed(shape):
        out.insert(0, acc)
        acc *= d
    return out


def view_of(op_name: str, in_shape, attrs) -> tuple[tuple[int, ...], list[int], int]:
    """(view shape, element strides into the input, start element) that the output reads, row-major: the
    output is the view's elements in order (tile's view has a (repeat, dim) pair per input dim)."""
    st = strides_of(in_shape)
    if op_name == "slice":
        shape = tuple(_range_len(s, e, k) for s, e, k in zip(attrs["starts"], attrs["ends"], attrs["steps"]))
        return shape, [s * k for s, k in zip(st, attrs["steps"])], sum(s * b for s, b in zip(st, attrs["starts"]))
    if op_name == "expand":
        shape = tuple(attrs["shape"])
        lead = len(shape) - len(in_shape)
        padded = (1,) * lead + tuple(in_shape)
        strides = [0] * lead + st
        return shape, [0 if d == 1 and o != 1 else s for d, o, s in zip(padded, shape, strides)], 0
    if op_name == "tile":
        shape, strides = [], []
        for r, d, s in zip(attrs["repeats"], in_shape, st):
            shape += [r, d]
            strides += [0, s]
        return tuple(shape), strides, 0
    raise KeyError(op_name)


def _view_op(name: str):
    def infer(i, a):
        shape, _, _ = view_of(name, i[0].shape, a)
        if name == "tile":
            shape = tuple(r * d for r, d in zip(a["repeats"], i[0].shape))
        return [(shape, i[0].dtype)]

    def compute(i, a):
        x = i[0]
        if name == "slice":
            return [np.ascontiguousarray(x[np.ix_(*(np.arange(s, e, k) for s, e, k in
                                                    zip(a["starts"], a["ends"], a["steps"])))])]
        if name == "expand":
            return [np.ascontiguousarray(np.broadcast_to(x, a["shape"]))]
        return [np.tile(x, a["repeats"])]
    return infer, compute


# starts/ends/steps: one per input axis, normalized as Python's range(start, end, step) (end -1 with a
# negative step runs down to index 0)
op("slice", ("starts", "ends", "steps"))(_view_op("slice"))
op("expand", ("shape",))(_view_op("expand"))  # numpy broadcasting of the input to `shape`
op("tile", ("repeats",))(_view_op("tile"))


@op("gather", ("axis", "indices"))
def _gather():
    """np.take(x, indices, axis) with constant non-negative indices (any shape)."""
    def infer(i, a):
        s, ax = i[0].shape, a["axis"]
        return [(s[:ax] + tuple(np.shape(a["indices"])) + s[ax + 1:], i[0].dtype)]

    def compute(i, a):
        return [np.array(np.take(i[0], np.asarray(a["indices"], np.int64), axis=a["axis"]), order="C")]
    return infer, compute


def cast_bounds(dtype: str) -> tuple[float, float]:
    """The saturation bounds of a float -> integer cast, as doubles that convert exactly (int64's top
    2**63 - 1 is not a double: the largest double below 2**63 stands in)."""
    info = np.iinfo(dtype)
    hi = float(info.max) if info.bits < 64 else float(np.nextafter(2.0 ** 63, 0))
    return float(info.min), hi


@op("cast", ("dtype",))
def _cast():
    """To `dtype` (one of graph.DTYPES). Float to integer truncates toward zero and saturates (NaN is 0),
    where C and numpy leave out-of-range values undefined; integer to integer wraps (two's complement)."""
    def infer(i, a):
        if a["dtype"] not in DTYPES:
            raise ValueError(f"cast to {a['dtype']}")
        return [(i[0].shape, a["dtype"])]

    def compute(i, a):
        x, to = i[0], np.dtype(a["dtype"])
        if x.dtype.kind == "f" and to.kind in "iu":
            lo, hi = cast_bounds(a["dtype"])
            t = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0, posinf=hi, neginf=lo)
            return [np.clip(t, lo, hi).astype(to)]
        return [x.astype(to)]
    return infer, compute


@op("space_to_depth", ("blocks", "pads", "value", "perm"))
def _space_to_depth():
    """A strided conv's input as a stride-1 conv's (passes/lower_kernel.py): x [N, C, H, W], its planes
    transposed first when perm is (0, 1, 3, 2), padded by pads (top, left, bottom, right) with `value`,
    each sh x sw block folded into channels: y[n, (c * sh + i) * sw + j, r, q] = xp[n, c, r * sh + i, q * sw + j]
    (ONNX's SpaceToDepth orders the channels (i, j, c): the frontend makes it a reshape, transpose, reshape)."""
    def padded_shape(shape, a):
        n, c, h, w = (shape[p] for p in a["perm"])
        top, left, bottom, right = a["pads"]
        return n, c, h + top + bottom, w + left + right

    def infer(i, a):
        n, c, h, w = padded_shape(i[0].shape, a)
        (sh, sw) = a["blocks"]
        if h % sh or w % sw:
            raise ValueError(f"a padded plane of {h}x{w} is not whole {sh}x{sw} blocks")
        return [((n, c * sh * sw, h // sh, w // sw), i[0].dtype)]

    def compute(i, a):
        top, left, bottom, right = a["pads"]
        x = np.pad(i[0].transpose(a["perm"]), ((0, 0), (0, 0), (top, bottom), (left, right)),
                   constant_values=np.asarray(a["value"]).astype(i[0].dtype))
        n, c, h, w = x.shape
        sh, sw = a["blocks"]
        blocks = x.reshape(n, c, h // sh, sh, w // sw, sw).transpose(0, 1, 3, 5, 2, 4)
        return [np.ascontiguousarray(blocks).reshape(n, c * sh * sw, h // sh, w // sw)]
    return infer, compute
