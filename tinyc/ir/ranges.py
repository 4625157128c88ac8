"""Value range analysis: the integers a tensor can hold, proven from the graph.

A value's range is its producer's clip bounds (out_min/out_max of a q-op), carried through ops that
only move or select values (reshape, transpose, max pool, concat, constant pad); a constant's range
is its data's; anything else, a graph input included, spans its dtype.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph

MOVES = ("reshape", "transpose", "maxpool", "concat", "pad")  # outputs only hold values of their inputs


def value_range(g: Graph, value: str) -> tuple[int, int, str]:
    """(lowest, highest, why): the bounds and where they come from, for messages."""
    v = g.values[value]
    if v.is_const:
        data = np.asarray(v.data)
        return (int(data.min()), int(data.max()), "its constant data") if data.size else (0, 0, "empty constant")
    name = g.producers().get(value)
    producer = g.node(name) if name else None
    if producer is not None and "out_min" in producer.attrs and "out_max" in producer.attrs:
        a = producer.attrs
        return int(a["out_min"]), int(a["out_max"]), f"the clip of {producer.op} {producer.name}"
    if producer is not None and producer.op in MOVES:
        ranges = [value_range(g, x) for x in producer.inputs if x and not _is_shape(g, producer, x)]
        if producer.op == "pad" and producer.attrs.get("mode") == "constant":
            fill = int(producer.attrs.get("value") or 0)
            ranges.append((fill, fill, "the pad value"))
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        return lo, hi, ranges[0][2] if len(ranges) == 1 else f"the inputs of {producer.op} {producer.name}"
    info = np.iinfo(v.dtype) if v.dtype != "float32" else None
    source = "the graph input's dtype" if value in g.inputs else f"the dtype of {value}"
    if info is None:
        return -(2 ** 31), 2 ** 31 - 1, f"{source} (float)"
    return int(info.min), int(info.max), f"{source} ({v.dtype})"


def _is_shape(g: Graph, node, value: str) -> bool:
    return node.op == "reshape" and g.values[value].is_const and value != node.inputs[0]
