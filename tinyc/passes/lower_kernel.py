"""lower_kernel: a 2-D conv whose kernel no core takes, as an equal conv with a kernel one takes.

Two exact rewrites, combined: zero taps added before or after the kernel (padding grown to match, so
every output reads the same inputs with the same weights, plus taps of weight zero), and space-to-depth for a
strided conv (the host pads the input and folds each sh x sw block of it into channels, in one pass: the
space_to_depth op, which also takes in a transpose of the planes before it; the conv becomes stride 1
with a ceil(kh/sh) x ceil(kw/sw) kernel over sh*sw times the channels). DS-CNN's 10x4 stride-2
first conv becomes a 5x2 conv over 4 channels, then 5x3 with a zero column. Candidates are tried in
order of taps per output (the core's work), each checked against the cores' own patterns.
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
    if (sh > 1 or sw > 1) and a["group"] == 1 and tuple(a["dilations"]) == (1, 1) and _s2d_shape(g, n) is not None:
        ka, kb = -(-kh // sh), -(-kw // sw)
        found += [((ka + sum(rows)) * (kb + sum(cols)) * c_in * sh * sw,
                   f"as a {ka + sum(rows)}x{kb + sum(cols)} conv over the {sh}x{sw} space-to-depth input",
                   _s2d(rows, cols)) for rows, cols in _growths()]
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


def _s2d_shape(g: Graph, n):
    """(rows, columns) of the space-to-depth input: what the outputs read, in whole blocks; None when the
    input has rows or columns past them that only a crop could drop."""
    x, y = g.values[n.inputs[0]], g.values[n.outputs[0]]
    kh, kw = g.values[n.inputs[1]].shape[2:]
    (sh, sw), (top, left, _, _) = n.attrs["strides"], n.attrs["pads"]
    rows, cols = y.shape[2] + -(-kh // sh) - 1, y.shape[3] + -(-kw // sw) - 1
    if rows * sh < x.shape[2] + top or cols * sw < x.shape[3] + left:
        return None
    return rows, cols


def _untransposed(g: Graph, x: str) -> tuple[str, tuple[int, ...]]:
    """(source, perm) with x = transpose(source, perm): a transpose of the planes that only this conv reads
    folds into the space-to-depth's own transpose, so the host moves the bytes once."""
    producer = g.producers().get(x)
    if producer is not None and len(g.consumers().get(x, [])) == 1 and x not in g.outputs:
        p = g.node(producer)
        if p.op == "transpose" and tuple(p.attrs["perm"][:2]) == (0, 1):
            return p.inputs[0], tuple(p.attrs["perm"])
    return x, (0, 1, 2, 3)


def _s2d(rows, cols):
    def rewrite(g: Graph, n) -> str:
        x, w = g.values[n.inputs[0]], g.values[n.inputs[1]].data
        a = n.attrs
        (sh, sw), (top, left, _, _) = a["strides"], a["pads"]
        block_rows, block_cols = _s2d_shape(g, n)
        batch, c = x.shape[:2]
        source, perm = _untransposed(g, n.inputs[0])
        x2 = ops.add(g, "space_to_depth", [source], n.name + "_s2d", blocks=(sh, sw), perm=perm,
                     value=int(a["x_zp"]), pads=(top, left, block_rows * sh - x.shape[2] - top,
                                                 block_cols * sw - x.shape[3] - left))
        m, _, kh, kw = w.shape
        ka, kb = -(-kh // sh), -(-kw // sw)
        # w2[o, (c, di, dj), i, j] = w[o, c, sh*i + di, sw*j + dj]; taps past the kernel count zero
        full = _grown(w, a["w_zp"], (0, ka * sh - kh), (0, kb * sw - kw)).reshape(m, c, ka, sh, kb, sw)
        w2 = np.ascontiguousarray(full.transpose(0, 1, 3, 5, 2, 4)).reshape(m, c * sh * sw, ka, kb)
        plain = dict(a, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1))
        return replace_conv(g, n, x2, _grown(w2, a["w_zp"], rows, cols), _grown_attrs(plain, rows, cols))
    return rewrite
