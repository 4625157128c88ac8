"""lower_kernel: a 2-D conv whose kernel no core takes, as an equal conv with a kernel one takes.

Two exact rewrites, combined: zero taps added at the end of the kernel (padding grown to match, so every
output reads the same inputs with the same weights, plus taps of weight zero), and space-to-depth for a
strided conv (the host pads the input and folds each sh x sw block of it into channels; the conv becomes
stride 1 with a ceil(kh/sh) x ceil(kw/sw) kernel over sh*sw times the channels). DS-CNN's 10x4 stride-2
first conv becomes a 5x2 conv over 4 channels, then 5x3 with a zero column. Candidates are tried in
order of taps per output (the core's work), each checked against the cores' own patterns.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..ir.graph import Graph
from ..ir import ops
from .lowering import lower, replace_conv, reshaped

MAX_GROWTH = 2  # zero taps added per side at most: enough to reach the next odd size from any size


def lower_kernel(g: Graph, target, config: str) -> Graph:
    return lower(g, target, config, "lower_kernel", ("qconv",), _options)


def _options(g: Graph, n, before, probe):
    if n.op != "qconv" or len(g.values[n.inputs[1]].shape) != 4:
        return None
    kh, kw = g.values[n.inputs[1]].shape[2:]
    c_in = g.values[n.inputs[0]].shape[1]
    (sh, sw), a = n.attrs["strides"], n.attrs
    found = []
    for eh, ew in itertools.product(range(MAX_GROWTH + 1), repeat=2):
        if eh or ew:
            found.append(((kh + eh) * (kw + ew) * c_in // a["group"], f"as a {kh + eh}x{kw + ew} conv (taps of weight 0 added)",
                          _extend(eh, ew)))
    if (sh > 1 or sw > 1) and a["group"] == 1 and tuple(a["dilations"]) == (1, 1) and _s2d_shape(g, n) is not None:
        ka, kb = -(-kh // sh), -(-kw // sw)
        for eh, ew in itertools.product(range(MAX_GROWTH + 1), repeat=2):
            found.append(((ka + eh) * (kb + ew) * c_in * sh * sw,
                          f"as a {ka + eh}x{kb + ew} conv over the {sh}x{sw} space-to-depth input", _s2d(eh, ew)))
    found.sort(key=lambda option: option[0])  # stable: plain extensions before space-to-depth on a tie
    return [(what, rewrite) for _, what, rewrite in found]


def _grown(weights: np.ndarray, w_zp, eh: int, ew: int) -> np.ndarray:
    """The kernel with eh rows and ew columns of taps at its end that count zero: each output channel's
    weight zero point (the op computes w - w_zp)."""
    m, c, kh, kw = weights.shape
    zp = np.broadcast_to(np.asarray(w_zp, np.int64).reshape(-1, 1, 1, 1), (m, 1, 1, 1))
    out = np.broadcast_to(zp, (m, c, kh + eh, kw + ew)).astype(weights.dtype)
    out[:, :, :kh, :kw] = weights
    return out


def _grown_attrs(a: dict, eh: int, ew: int) -> dict:
    (dh, dw), (top, left, bottom, right) = a["dilations"], a["pads"]
    return dict(a, pads=(top, left, bottom + eh * dh, right + ew * dw))


def _extend(eh: int, ew: int):
    def rewrite(g: Graph, n) -> str:
        w = g.values[n.inputs[1]].data
        return replace_conv(g, n, n.inputs[0], _grown(w, n.attrs["w_zp"], eh, ew), _grown_attrs(n.attrs, eh, ew))
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


def _s2d(eh: int, ew: int):
    def rewrite(g: Graph, n) -> str:
        x, w = g.values[n.inputs[0]], g.values[n.inputs[1]].data
        a = n.attrs
        (sh, sw), (top, left, _, _) = a["strides"], a["pads"]
        rows, cols = _s2d_shape(g, n)
        batch, c = x.shape[:2]
        padded = ops.add(g, "pad", [n.inputs[0]], n.name + "_pad", mode="constant", value=int(a["x_zp"]),
                         pads=(0, 0, top, left, 0, 0, rows * sh - x.shape[2] - top, cols * sw - x.shape[3] - left))
        blocks = reshaped(g, padded, (batch, c, rows, sh, cols, sw), n.name + "_blocks")
        folded = ops.add(g, "transpose", [blocks], n.name + "_fold", perm=(0, 1, 3, 5, 2, 4))
        x2 = reshaped(g, folded, (batch, c * sh * sw, rows, cols), n.name + "_s2d")
        m, _, kh, kw = w.shape
        ka, kb = -(-kh // sh), -(-kw // sw)
        # w2[o, (c, di, dj), i, j] = w[o, c, sh*i + di, sw*j + dj]; taps past the kernel count zero
        full = _grown(w, a["w_zp"], ka * sh - kh, kb * sw - kw).reshape(m, c, ka, sh, kb, sw)
        w2 = np.ascontiguousarray(full.transpose(0, 1, 3, 5, 2, 4)).reshape(m, c * sh * sw, ka, kb)
        plain = dict(a, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1))
        return replace_conv(g, n, x2, _grown(w2, a["w_zp"], eh, ew), _grown_attrs(plain, eh, ew))
    return rewrite
