"""lower_conv1d: a 1-D conv (input [N, C, L]; audio and sensor models) as the 2-D conv it is, H = 1:
input [N, C, 1, L], weights [M, C/group, 1, k], the stride, padding and dilation on the width only.
The integers are the same: every window has one row; the reshapes only rename the bytes."""
from __future__ import annotations

from ..ir.graph import Graph
from .lowering import lower, replace_conv, reshaped


def lower_conv1d(g: Graph, target, config: str) -> Graph:
    return lower(g, target, config, "lower_conv1d", ("qconv",), _options)


def _options(g: Graph, n, before, probe):
    if n.op != "qconv" or len(g.values[n.inputs[1]].shape) != 3:
        return None
    return [("as a 2-D conv with H = 1", _as_2d)]


def _as_2d(g: Graph, n) -> str:
    x, w = g.values[n.inputs[0]], g.values[n.inputs[1]]
    a = n.attrs
    x2 = reshaped(g, n.inputs[0], x.shape[:2] + (1,) + x.shape[2:], n.name + "_h1")
    attrs = dict(a, strides=(1, *a["strides"]), pads=(0, a["pads"][0], 0, a["pads"][1]),
                 dilations=(1, *a["dilations"]))
    return replace_conv(g, n, x2, w.data.reshape(w.shape[:2] + (1,) + w.shape[2:]), attrs)
