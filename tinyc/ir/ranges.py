"""Value range analysis: the integers a tensor can hold, proven from the graph.

A value's range is what its producer can make of its inputs' ranges, within the producer's clip bounds
(out_min/out_max of a q-op): ops that only move or select values (reshape, transpose, max pool, concat,
constant pad) and averages (an int8 average pool, whose rounded mean stays between its inputs' extremes)
keep their inputs' hull; a table (lut) holds the entries its input's range reaches, a quantize of a float
clip the clip's bounds quantized (both monotone); a constant's range is
its data's; anything else, a graph input included, spans its dtype.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import OPS

MOVES = ("reshape", "transpose", "maxpool", "concat", "pad")  # outputs only hold values of their inputs
AVERAGES = ("avgpool", "qavgpool")  # a mean (rounded to an integer) lies between its terms' extremes


def value_range(g: Graph, value: str) -> tuple[int, int, str]:
    """(lowest, highest, why): the bounds and where they come from, for messages."""
    v = g.values[value]
    if v.is_const:
        data = np.asarray(v.data)
        return (int(data.min()), int(data.max()), "its constant data") if data.size else (0, 0, "empty constant")
    name = g.producers().get(value)
    producer = g.node(name) if name else None
    carried = _carried(g, producer) if producer is not None else None
    if producer is not None and "out_min" in producer.attrs and "out_max" in producer.attrs:
        a = producer.attrs
        lo, hi, why = int(a["out_min"]), int(a["out_max"]), f"the clip of {producer.op} {producer.name}"
        if carried is not None and (carried[0] > lo or carried[1] < hi):
            lo, hi, why = max(lo, carried[0]), min(hi, carried[1]), f"{why} and {carried[2]}"
        return lo, hi, why
    if carried is not None:
        return carried
    info = np.iinfo(v.dtype) if v.dtype != "float32" else None
    source = "the graph input's dtype" if value in g.inputs else f"the dtype of {value}"
    if info is None:
        return -(2 ** 31), 2 ** 31 - 1, f"{source} (float)"
    return int(info.min), int(info.max), f"{source} ({v.dtype})"


def _carried(g: Graph, producer) -> tuple[int, int, str] | None:
    """The range the producer's op keeps from its inputs' ranges, or None when it keeps none."""
    if producer.op == "lut":
        lo, hi, why = value_range(g, producer.inputs[0])
        reached = np.asarray(producer.attrs["table"])[lo + 128:hi + 129]
        return int(reached.min()), int(reached.max()), f"the table {producer.name} over {lo}..{hi} ({why})"
    if producer.op == "quantize":  # monotone: a float clip's bounds, quantized, bound its result
        clip = g.producers().get(producer.inputs[0])
        a = g.node(clip).attrs if clip and g.node(clip).op == "clip" else None
        if a is None or not (np.isfinite(a["min"]) and np.isfinite(a["max"])):
            return None
        lo, hi = OPS["quantize"].compute([np.float32([a["min"], a["max"]])], dict(producer.attrs, axis=None))[0]
        return int(lo), int(hi), f"the float clip {clip}, quantized"
    if producer.op not in MOVES + AVERAGES:
        return None
    ranges = [value_range(g, x) for x in producer.inputs if x and not _is_shape(g, producer, x)]
    a = producer.attrs
    if producer.op == "pad" and a.get("mode") == "constant":
        fill = int(a.get("value") or 0)
        ranges.append((fill, fill, "the pad value"))
    if producer.op == "qavgpool" and a.get("count_include_pad") and any(a.get("pads") or ()):
        ranges.append((int(a["x_zp"]), int(a["x_zp"]), "the counted padding"))
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return lo, hi, ranges[0][2] if len(ranges) == 1 else f"the inputs of {producer.op} {producer.name}"


def _is_shape(g: Graph, node, value: str) -> bool:
    return node.op == "reshape" and g.values[value].is_const and value != node.inputs[0]
