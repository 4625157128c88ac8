"""The cost model of a layer on the host core: its MACs, its kernel's kind and what it scales with, and
the cycles the core's params give it (modeled; a counted build measures instead, tinyc.bench).

The accelerators' cost model is tinyc.targets.cost; this is the host's side of the same report.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.geometry import whole_plane
from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from ..ir.ranges import value_range

def macs(g: Graph, node: str | Node) -> int:
    """Multiply-accumulates of a conv or dense node, float, integer or analog; 0 for any other op."""
    n = node if isinstance(node, Node) else g.node(node)
    return OPS[n.op].macs(g, n)


HOST_FEATURES = ("mac", "output", "input", "channel", "layer")


def host_work(g: Graph, n: Node) -> tuple[str, dict[str, int]]:
    """The kind of a host layer's kernel and what it scales with: MACs, output and input elements,
    output channels, and one per layer. Kinds: conv, depthwise (one input channel per group), dense,
    pool (pool_nonnegative: a global int8 average pool of values proven in [0, 127], whose word sums
    add two words bytewise), add and softmax for the int8 kernels (their float twins are float_...), pad, transpose and
    space_to_depth (any dtype but float32), quantize and dequantize (the float <-> int8 boundary), view
    for a reshape that moves nothing, other for the rest."""
    out, x = g.values[n.outputs[0]], g.values[n.inputs[0]] if n.inputs and n.inputs[0] else None
    contraction = OPS[n.op].contraction
    if contraction == "window":
        w = g.values[n.inputs[1]].shape
        kind = "depthwise" if n.attrs.get("group", 1) > 1 and w[1] == 1 else "conv"
    elif contraction == "dense":
        kind = "dense"
    elif "kernel" in n.attrs:
        kind = "pool_nonnegative" if _nonnegative_global_pool(g, n) else "pool"
    elif n.op == "reshape" and x is not None and x.offset is not None and x.offset == out.offset:
        kind = "view"  # the output shares the input's bytes: nothing moves
    else:
        kind = {"qadd": "add", "add": "add", "qsoftmax": "softmax", "softmax": "softmax", "pad": "pad",
                "transpose": "transpose", "space_to_depth": "space_to_depth", "quantize": "quantize",
                "dequantize": "dequantize"}.get(n.op, "other")
    if out.dtype == "float32" and kind not in ("other", "view", "dequantize"):
        kind = "float_" + kind
    channels = out.shape[1] if len(out.shape) > 1 else 1
    return kind, {"mac": macs(g, n), "output": out.size, "input": x.size if x is not None else 0,
                  "channel": channels, "layer": 1}


def _nonnegative_global_pool(g: Graph, n: Node) -> bool:
    return (n.op == "qavgpool" and whole_plane(g.values[n.inputs[0]].shape, g.values[n.outputs[0]].shape, n.attrs)
            and value_range(g, n.inputs[0])[0] >= 0)


def host_cycles(g: Graph, node: str | Node, host_core) -> int:
    """An estimate for a layer on the host: per kernel kind (host_work), the sum of its features times
    the core's `<kind>_cycles_per_<feature>` params; a kind the core has no params for takes cycles per
    MAC (pools: per window element) plus cycles per output element."""
    n = node if isinstance(node, Node) else g.node(node)
    p = host_core.params
    kind, work = host_work(g, n)
    own = {f: p[f"{kind}_cycles_per_{f}"].value for f in HOST_FEATURES if f"{kind}_cycles_per_{f}" in p}
    if own:
        return math.ceil(sum(work[f] * c for f, c in own.items()))
    macs_or_taps = work["mac"]
    if not macs_or_taps and "kernel" in n.attrs:  # pooling: one accumulate per window element
        macs_or_taps = work["output"] * int(np.prod(n.attrs["kernel"]))
    return math.ceil(macs_or_taps * p["cycles_per_mac"].value + work["output"] * p["cycles_per_element"].value)
