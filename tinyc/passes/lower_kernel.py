"""lower_kernel: a 2-D conv whose kernel no core takes, as an equal conv with a kernel one takes.

Two exact rewrites, combined: zero taps added before or after the kernel (padding grown to match, so
every output reads the same inputs with the same weights, plus taps of weight zero), and space-to-depth for a
strided conv (the host pads the input and folds each block of it into channels, in one pass: the
space_to_depth op, which also takes in a transpose of the planes before it). A block folds one axis
(its stride, the conv keeping the other's stride and pads) or both (sh x sw: the conv becomes stride 1
with a ceil(kh/sh) x ceil(kw/sw) kernel over sh*sw times the channels). DS-CNN's 10x4 stride-2 first conv
becomes a 5x4 conv of stride (1, 2) over 2 channels, then 5x5 with a zero column: 50 taps, where folding
both axes gives 5x2 over 4 channels, 5x3 with a zero column, 60. Candidates are tried in order of taps
per output (the core's work), each checked against the cores' own patterns.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..ir import ops
from ..ir.graph import Graph
from .lowering import lower, replace_conv

MAX_GROWTH = 2  # zero taps added per axis at most: enough to reach the next odd size from any size


def lower_kernel(g: Graph, target, config: str) -> Graph:
    return lower(g, target, config, "lower_kernel", ("qconv",), _options)


def _options(g: Graph, n, before, probe):
    if len(g.values[n.inputs[1]].shape) != 4:
        return None
    kh, kw = g.values[n.inputs[1]].shape[2:]
    c_in = g.values[n.inputs[0]].shape[1]
    (sh, sw), a = n.attrs["strides"], n.attrs
    found = [((kh + sum(rows)) * (kw + sum(cols)) * c_in // a["group"],
              f"as a {kh + sum(rows)}x{kw + sum(cols)} conv (taps of weight 0 added)", _extend(rows, cols))
             for rows, cols in _growths() if sum(rows) or sum(cols)]
    if (sh > 1 or sw > 1) and a["group"] == 1 and tuple(a["dilations"]) == (1, 1):
        for bh, bw in sorted({(sh, sw), (sh, 1), (1, sw)} - {(1, 1)}, reverse=True):
            if _s2d_shape(g, n, (bh, bw)) is None:
                continue
            ka, kb = -(-kh // bh), -(-kw // bw)
            found += [((ka + sum(rows)) * (kb + sum(cols)) * c_in * bh * bw,
                       f"as a {ka + sum(rows)}x{kb + sum(cols)} conv over the {bh}x{bw} space-to-depth input",
                       _s2d(rows, cols, (bh, bw))) for rows, cols in _growths()]
    found.sort(key=lambda option: option[0])  # stable: plain growth before space-to-depth on a tie
    return [(what, rewrite) for _, what, rewrite in found]


def _growths():
    """Zero taps to add per axis, (before, after), up to MAX_GROWTH in all: either end may be where the
    padding allows more."""
    sides = [(before, total - before) for total in range(MAX_GROWTH + 1) for before in range(total + 1)]
    return list(itertools.product(sides, repeat=2))


def _grown(weights: np.ndarray, w_zp, rows=(0, 0), cols=(0, 0)) -> np.ndarray:
    """The kernel with rows and columns of taps (before, after) that count zero: each output channel's
    weight zero point (the op computes w - w_zp)."""
    m, c, kh, kw = weights.shape
    zp = np.asarray(w_zp, np.int64).reshape(-1, 1, 1, 1)
    out = np.broadcast_to(zp, (m, c, kh + sum(rows), kw + sum(cols))).astype(weights.dtype)
    out[:, :, rows[0]:rows[0] + kh, cols[0]:cols[0] + kw] = weights
    return out


def _grown_attrs(a: dict, rows, cols) -> dict:
    """The padding that keeps every output's window where it was: a tap added before moves the window's
    start one step earlier."""
    (dh, dw), (top, left, bottom, right) = a["dilations"], a["pads"]
    return dict(a, pads=(top + rows[0] * dh, left + cols[0] * dw, bottom + rows[1] * dh, right + cols[1] * dw))


def _extend(rows, cols):
    def rewrite(g: Graph, n) -> str:
        w = g.values[n.inputs[1]].data
        return replace_conv(g, n, n.inputs[0], _grown(w, n.attrs["w_zp"], rows, cols),
                            _grown_attrs(n.attrs, rows, cols))
    return rewrite


def _s2d_shape(g: Graph, n, blocks) -> tuple[int, int] | None:
    """(rows, columns) of the space-to-depth input: along a folded axis (a block of its stride) what the
    outputs read, in whole blocks, else the input's own size, which the conv keeps with its stride and
    pads; None when the input has rows or columns past the blocks that only a crop could drop."""
    x, y = g.values[n.inputs[0]], g.values[n.outputs[0]]
    kernel, pads = g.values[n.inputs[1]].shape[2:], n.attrs["pads"]
    shape = []
    for axis, block in enumerate(blocks):
        size = x.shape[2 + axis]
        if block == 1:
            shape.append(size)
            continue
        whole = y.shape[2 + axis] + -(-kernel[axis] // block) - 1
        if whole * block < size + pads[axis]:
            return None
        shape.append(whole)
    return shape[0], shape[1]


def _untransposed(g: Graph, x: str) -> tuple[str, tuple[int, ...]]:
    """(source, perm) with x = transpose(source, perm): a transpose of the planes that only this conv reads
    folds into the space-to-depth's own transpose, so the host moves the bytes once."""
    producer = g.producers().get(x)
    if producer is not None and len(g.consumers().get(x, [])) == 1 and x not in g.outputs:
        p = g.node(producer)
        if p.op == "transpose" and tuple(p.attrs["perm"][:2]) == (0, 1):
            return p.inputs[0], tuple(p.attrs["perm"])
    return x, (0, 1, 2, 3)


def _s2d(rows, cols, blocks):
    """The rewrite folding each bh x bw block into channels: a folded axis's stride, kernel and pads
    go into the blocks (stride 1 after), an axis of block 1 keeps them in the conv."""
    def rewrite(g: Graph, n) -> str:
        x, w = g.values[n.inputs[0]], g.values[n.inputs[1]].data
        a = n.attrs
        (bh, bw), (top, left, bottom, right) = blocks, a["pads"]
        block_rows, block_cols = _s2d_shape(g, n, blocks)
        source, perm = _untransposed(g, n.inputs[0])
        folded = (bh > 1, bw > 1)
        x2 = ops.add(g, "space_to_depth", [source], n.name + "_s2d", blocks=blocks, perm=perm,
                     value=int(a["x_zp"]),
                     pads=(top if folded[0] else 0, left if folded[1] else 0,
                           block_rows * bh - x.shape[2] - top if folded[0] else 0,
                           block_cols * bw - x.shape[3] - left if folded[1] else 0))
        m, c, kh, kw = w.shape
        ka, kb = -(-kh // bh), -(-kw // bw)
        # w2[o, (c, di, dj), i, j] = w[o, c, bh*i + di, bw*j + dj]; taps past the kernel count zero
        full = _grown(w, a["w_zp"], (0, ka * bh - kh), (0, kb * bw - kw)).reshape(m, c, ka, bh, kb, bw)
        w2 = np.ascontiguousarray(full.transpose(0, 1, 3, 5, 2, 4)).reshape(m, c * bh * bw, ka, kb)
        (sh, sw) = a["strides"]
        kept = dict(a, strides=(1 if folded[0] else sh, 1 if folded[1] else sw), dilations=(1, 1),
                    pads=(0 if folded[0] else top, 0 if folded[1] else left,
                          0 if folded[0] else bottom, 0 if folded[1] else right))
        return replace_conv(g, n, x2, _grown(w2, a["w_zp"], rows, cols), _grown_attrs(kept, rows, cols))
    return rewrite
