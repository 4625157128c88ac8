"""Converters of ONNX's data movement and casts: Slice, Split, Gather, Expand, Tile, Cast,
DepthToSpace and SpaceToDepth (tinyc/ir/ops_tensor.py; the last two are reshape-transpose-reshape)."""
from __future__ import annotations

import numpy as np

from ..errors import BadModelError, UnsupportedError
from .loader import TENSOR_DTYPES, dtype_name
from .onnx_ops import attr, converts, inp, out


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """ONNX's clamping of one axis' start and end, as Python range bounds (end -1 runs down through 0)."""
    if step == 0:
        raise BadModelError("Slice step 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


def emit_slice(ctx, x: str, spans: dict[int, tuple[int, int, int]], name: str | None) -> str:
    """A slice of x keeping every axis not in spans whole; spans: axis -> (start, end, step) in ONNX terms."""
    shape = ctx.value(x).shape
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    for axis, (start, end, step) in spans.items():
        starts[axis], ends[axis] = slice_bounds(start, end, step, shape[axis])
        steps[axis] = step
    return ctx.emit("slice", [x], name, starts=tuple(starts), ends=tuple(ends), steps=tuple(steps))


def _axis(ctx, axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise BadModelError(f"{what} axis {axis} outside a rank-{rank} tensor")
    return axis % rank


@converts("Slice")
def slice_(ctx):
    rank = len(ctx.value(inp(ctx, 0)).shape)
    starts = [int(v) for v in ctx.const(1, "Slice's starts")]
    ends = [int(v) for v in ctx.const(2, "Slice's ends")]
    axes = ctx.const(3, "Slice's axes")
    steps = ctx.const(4, "Slice's steps")
    axes = list(range(len(starts))) if axes is None else [_axis(ctx, int(a), rank, "Slice") for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes):
        raise BadModelError("Slice starts, ends, axes and steps differ in length, or an axis repeats")
    emit_slice(ctx, inp(ctx, 0), {a: (s, e, k) for a, s, e, k in zip(axes, starts, ends, steps)}, out(ctx))


@converts("Split")
def split(ctx):
    x = ctx.value(inp(ctx, 0))
    axis = _axis(ctx, attr(ctx, "axis", 0), len(x.shape), "Split")
    dim, outputs = x.shape[axis], list(ctx.node.output)
    sizes = ctx.const(1, "Split's sizes") if len(ctx.node.input) > 1 and ctx.opset >= 13 else attr(ctx, "split")
    if sizes is not None and len(sizes):
        sizes = [int(s) for s in np.asarray(sizes).ravel()]
    else:
        parts = attr(ctx, "num_outputs", len(outputs))
        chunk = -(-dim // parts)
        sizes = [min(chunk, dim - k * chunk) for k in range(parts)]
    if sum(sizes) != dim or len(sizes) != len(outputs) or min(sizes) < 0:
        raise BadModelError(f"Split of {dim} into {sizes} for {len(outputs)} outputs")
    at = 0
    for size, name in zip(sizes, outputs):
        if name:
            emit_slice(ctx, inp(ctx, 0), {axis: (at, at + size, 1)}, name)
        at += size


@converts("Gather")
def gather(ctx):
    x = ctx.value(inp(ctx, 0))
    axis = _axis(ctx, attr(ctx, "axis", 0), len(x.shape), "Gather")
    indices = np.asarray(ctx.const(1, "Gather's indices"), np.int64)
    dim = x.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise BadModelError(f"Gather index outside [-{dim}, {dim - 1}]")
    ctx.emit("gather", [inp(ctx, 0)], out(ctx), axis=axis, indices=np.where(indices < 0, indices + dim, indices))


@converts("Expand")
def expand(ctx):
    x = ctx.value(inp(ctx, 0))
    try:
        shape = tuple(np.broadcast_shapes(x.shape, tuple(int(d) for d in ctx.const(1, "Expand's shape"))))
    except ValueError:
        raise BadModelError(f"Expand of {list(x.shape)} to a shape it does not broadcast to") from None
    ctx.emit("expand", [inp(ctx, 0)], out(ctx), shape=shape)


@converts("Tile")
def tile(ctx):
    x = ctx.value(inp(ctx, 0))
    repeats = tuple(int(r) for r in ctx.const(1, "Tile's repeats"))
    if len(repeats) != len(x.shape) or min(repeats, default=1) < 0:
        raise BadModelError(f"Tile repeats {list(repeats)} for a rank-{len(x.shape)} tensor")
    ctx.emit("tile", [inp(ctx, 0)], out(ctx), repeats=repeats)


@converts("Cast")
def cast(ctx):
    to = attr(ctx, "to")
    if to not in TENSOR_DTYPES:
        raise UnsupportedError(f"Cast to {dtype_name(to)}; tinyc supports " + ", ".join(TENSOR_DTYPES.values()))
    ctx.emit("cast", [inp(ctx, 0)], out(ctx), dtype=TENSOR_DTYPES[to])


def _move(ctx, shape, perm, final):
    y = ctx.emit("reshape", [inp(ctx, 0)], shape=tuple(shape))
    y = ctx.emit("transpose", [y], perm=tuple(perm))
    ctx.emit("reshape", [y], out(ctx), shape=tuple(final))


def _blocks(ctx):
    x = ctx.value(inp(ctx, 0))
    if len(x.shape) != 4:
        raise UnsupportedError(f"{ctx.node.op_type} of a rank-{len(x.shape)} tensor (NCHW is supported)")
    return x.shape, int(attr(ctx, "blocksize"))


@converts("DepthToSpace")
def depth_to_space(ctx):
    (n, c, h, w), b = _blocks(ctx)
    if c % (b * b):
        raise BadModelError(f"DepthToSpace of {c} channels by blocks of {b}x{b}")
    if attr(ctx, "mode", "DCR") == "DCR":
        _move(ctx, (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2), (n, c // (b * b), h * b, w * b))
    else:
        _move(ctx, (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3), (n, c // (b * b), h * b, w * b))


@converts("SpaceToDepth")
def space_to_depth(ctx):
    (n, c, h, w), b = _blocks(ctx)
    if h % b or w % b:
        raise BadModelError(f"SpaceToDepth of {h}x{w} by blocks of {b}x{b}")
    perm = (0, 3, 5, 1, 2, 4) if attr(ctx, "mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
    _move(ctx, (n, c, h // b, b, w // b, b), perm, (n, c * b * b, h // b, w // b))
