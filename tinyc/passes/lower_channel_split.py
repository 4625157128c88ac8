"""lower_channel_split: a conv or dense layer too large for every core's memories in any tiling, as several
layers of fewer output channels whose outputs the host concatenates.

Each part reads the whole input and computes its output channels completely (weights, bias and
requantization of those channels), so no partial sum crosses a requantization: the integers are the
layer's. Splitting input channels instead would need partial sums added before the requantization,
which a core that requantizes every job (a PE array's output stage) cannot do exactly. The parts are as
large as the cores take (a binary search over the part size: a smaller part needs less memory).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.graph import Graph
from .lowering import lower

PER_CHANNEL = ("multiplier", "shift", "w_zp")  # attributes with one entry per output channel (or one in all)
CHANNEL_AXIS = {"qconv": 0, "qmatmul": 1}  # the weights' output-channel axis


def lower_channel_split(g: Graph, target, config: str) -> Graph:
    return lower(g, target, config, "lower_channel_split", tuple(CHANNEL_AXIS), _options)


def _options(g: Graph, n, before, probe):
    if not before.memory:
        return None
    c_out = g.values[n.inputs[1]].shape[CHANNEL_AXIS[n.op]]
    if c_out < 2:
        return None
    one = probe(_split(1))
    if not one.taken:
        return None if one.failures == before.failures else f"even one output channel per layer: {one.why}"
    taken, too_big = 1, c_out  # a part of `taken` channels is placed, one of `too_big` is not
    while too_big - taken > 1:
        mid = (taken + too_big) // 2
        taken, too_big = (mid, too_big) if probe(_split(mid)).taken else (taken, mid)
    parts = -(-c_out // taken)
    return [(f"as {parts} layers of at most {taken} output channels", _split(taken))]


def _split(size: int):
    def rewrite(g: Graph, n) -> str:
        axis, out = CHANNEL_AXIS[n.op], n.outputs[0]
        w = g.values[n.inputs[1]].data
        bias = g.values[n.inputs[2]].data if len(n.inputs) > 2 and n.inputs[2] else None
        g.remove_node(n.name)
        parts = []
        for c0 in range(0, w.shape[axis], size):
            part = slice(c0, c0 + size)
            attrs = dict(n.attrs)
            for key in PER_CHANNEL:
                if np.size(attrs[key]) > 1:
                    attrs[key] = np.ascontiguousarray(np.asarray(attrs[key])[part])
            inputs = [n.inputs[0], g.add_const(f"{n.inputs[1]}_{c0}", np.take(w, range(*part.indices(w.shape[axis])),
                                                                                 axis=axis)).name]
            if bias is not None:
                inputs.append(g.add_const(f"{n.inputs[2]}_{c0}", bias[part]).name)
            parts.append(ops.add(g, n.op, inputs, f"{n.name}_{c0}", **attrs))
        g.add_node(n.name, "concat", parts, [out], axis=1)
        g.connect()
        return g.producers()[parts[0]]
    return rewrite
