"""Data movement emitters (reshape, transpose, concat, pad, space_to_depth), registered into kernels.EMITTERS: each merges
the dims that move together so the kernel walks fewer, longer rows, and picks a specialized kernel where
the shape allows (space-to-depth, constant pads)."""
from __future__ import annotations

import numpy as np

from ...ir.ops_tensor import strides_of
from .cdata import CTYPES
from .kernels import EMITTERS, MAX_DIMS, arg, merge, need, out, size


def reshape(e, node):
    src, dst = arg(e, node, 0), e.ptr(node.outputs[0])
    if src == dst:
        return ["/* shares its input's buffer */"]
    return [f"memcpy({dst}, {src}, {out(e, node).nbytes});"]


def transpose(e, node):
    x, y = e.g.values[node.inputs[0]], out(e, node)
    in_strides = strides_of(x.shape)
    shape, (strides,) = merge(y.shape, [in_strides[p] for p in node.attrs["perm"]])
    if len(shape) <= 1 and strides in ([], [1]):
        return [f"memcpy({e.ptr(node.outputs[0])}, {arg(e, node, 0)}, {y.nbytes});"]
    need(len(shape) <= MAX_DIMS, f"transpose moves {len(shape)} separate dims; the kernel takes {MAX_DIMS}")
    item = np.dtype(y.dtype).itemsize
    if item == 1 and len(shape) == 4 and strides == space_to_depth_strides(*shape):
        bh, bw, h, w = shape
        return [f"tinyc_space_to_depth_b1({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {h}, {bh}, {w}, {bw});"]
    if item == 1 and len(shape) == 2 and strides[0] == 1 and not (shape[0] | shape[1] | strides[1]) % 4 and all(
            _word_aligned(e, v) for v in (node.inputs[0], node.outputs[0])):
        return [f"tinyc_transpose_4x4_b1({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {shape[0]}, {shape[1]}, "
                f"{strides[1]});"]
    s = e.array(node.name + "_shape", "int32_t", shape)
    st = e.array(node.name + "_stride", "int32_t", strides)
    return [f"tinyc_transpose({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {item}, {len(shape)}, {s}, {st});"]


def _word_aligned(e, value: str) -> bool:
    """An arena value starting on a word (the arena itself is aligned to 8)."""
    v = e.g.values[value]
    return not v.is_const and v.offset is not None and v.offset % 4 == 0


def space_to_depth_strides(bh, bw, h, w) -> list[int]:
    """The input strides of output [bh, bw, h, w] read from input [h, bh, w, bw]."""
    return [w * bw, 1, bh * w * bw, bw]


def concat(e, node):
    y = out(e, node)
    axis = node.attrs["axis"] % len(y.shape)
    item = np.dtype(y.dtype).itemsize
    inner = size(y.shape[axis + 1:]) * item
    rows = size(y.shape[:axis])
    lines, at = [], 0
    for v in node.inputs:
        need(e.g.values[v].dtype == y.dtype, "concat inputs must share one dtype")
        width = e.g.values[v].shape[axis] * inner
        if width and rows:
            lines.append(f"tinyc_copy_rows({e.ptr(v)}, {e.ptr(node.outputs[0], at)}, {rows}, {width}, "
                         f"{y.shape[axis] * inner});")
        at += width
    return lines


PAD_MODES = {"constant": "TINYC_PAD_CONSTANT", "reflect": "TINYC_PAD_REFLECT", "edge": "TINYC_PAD_EDGE"}


def pad(e, node):
    x, y = e.g.values[node.inputs[0]], out(e, node)
    a = node.attrs
    need(a["mode"] in PAD_MODES, f"pad mode {a['mode']!r} is not constant, reflect or edge")
    need(min(a["pads"], default=0) >= 0, "negative pads (cropping) are not supported")
    if not x.shape:
        return [f"memcpy({e.ptr(node.outputs[0])}, {arg(e, node, 0)}, {y.nbytes});"]
    need(len(x.shape) <= MAX_DIMS, f"pad takes up to {MAX_DIMS} dims")
    need(a["mode"] == "constant" or x.size > 0, f"{a['mode']} padding of an empty tensor")
    fill = a["value"] if a.get("value") is not None else 0
    value = e.array(node.name + "_value", CTYPES[y.dtype], np.asarray(fill).astype(y.dtype).reshape(1))
    in_shape, begin, end = list(x.shape), list(a["pads"][:len(x.shape)]), list(a["pads"][len(x.shape):])
    if a["mode"] == "constant":
        in_shape, begin, end = merge_unpadded(in_shape, begin, end)
    ins = e.array(node.name + "_in_shape", "int32_t", in_shape)
    outs = e.array(node.name + "_out_shape", "int32_t", [n + b + f for n, b, f in zip(in_shape, begin, end)])
    begins = e.array(node.name + "_pad_begin", "int32_t", begin)
    return [f"tinyc_pad({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {np.dtype(y.dtype).itemsize}, "
            f"{len(in_shape)}, {ins}, {outs}, {begins}, {PAD_MODES[a['mode']]}, {value});"]


def merge_unpadded(shape, begin, end):
    """A constant pad's dims with each unpadded dim fused into the dim before it (the two walk
    contiguously on both sides; the outer dim's pads scale by the inner size): fewer, longer rows."""
    dims = [[shape[0], begin[0], end[0]]]
    for n, b, f in zip(shape[1:], begin[1:], end[1:]):
        if b == f == 0:
            dims[-1] = [dims[-1][0] * n, dims[-1][1] * n, dims[-1][2] * n]
        else:
            dims.append([n, b, f])
    return [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]


def space_to_depth(e, node):
    x, y = e.g.values[node.inputs[0]], out(e, node)
    a = node.attrs
    need(np.dtype(y.dtype).itemsize == 1, f"space_to_depth moves bytes (int8, uint8), not {y.dtype}")
    batch, c, h, w = x.shape
    (top, left, _, _), (sh, sw) = a["pads"], a["blocks"]
    # a transposed plane's element (u, v) is the stored plane's (v, u)
    rows_first = tuple(a["perm"]) == (0, 1, 2, 3)
    h, w, rs, cs = (h, w, w, 1) if rows_first else (w, h, 1, w)
    fill = int(np.asarray(a["value"]).astype(y.dtype))
    return [f"tinyc_space_to_depth_pad_b1({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {batch * c}, {h}, {w}, "
            f"{rs}, {cs}, {sh}, {sw}, {y.shape[2]}, {y.shape[3]}, {top}, {left}, {fill});"]


EMITTERS.update({"reshape": reshape, "transpose": transpose, "concat": concat, "pad": pad,
                 "space_to_depth": space_to_depth})
