"""The compile report: per layer what runs where and what it costs; totals. A JSON-serializable dict."""
from __future__ import annotations

import numpy as np

from .ir.graph import Graph

MOVEMENT = ("reshape", "transpose", "concat", "pad", "flip_sign")


def macs(g: Graph, n) -> int:
    out = g.values[n.outputs[0]]
    if n.op in ("conv", "qconv"):
        w = g.values[n.inputs[1]]
        return out.size * int(np.prod(w.shape[1:]))
    if n.op in ("matmul", "qmatmul"):
        return out.size * g.values[n.inputs[0]].shape[-1]
    return 0


def _buffer(g: Graph, name: str) -> dict:
    v = g.values[name]
    entry = {"name": name, "dtype": v.dtype, "shape": list(v.shape), "bytes": v.nbytes}
    if v.is_const:
        entry["const"] = True
    else:
        entry["offset"] = v.offset
    return entry


def layer_report(g: Graph, n, core: str) -> dict:
    return {
        "name": n.name,
        "op": n.op,
        "core": core,
        "shapes": {"inputs": [list(g.values[v].shape) for v in n.inputs if v],
                   "outputs": [list(g.values[v].shape) for v in n.outputs]},
        "macs": macs(g, n),
        "buffers": {"inputs": [_buffer(g, v) for v in n.inputs if v],
                    "outputs": [_buffer(g, v) for v in n.outputs]},
    }


def build_report(g: Graph, target, config: str) -> dict:
    layers = [layer_report(g, n, target.host.name) for n in g.nodes()]
    weights = sorted({v for n in g.nodes() for v in n.inputs if v and g.values[v].is_const})
    return {
        "model": g.name,
        "source": g.source,
        "target": target.name,
        "config": config,
        "layers": layers,
        "totals": {
            "layers": len(layers),
            "macs": sum(layer["macs"] for layer in layers),
            "weights_bytes": sum(g.values[v].nbytes for v in weights),
            "arena_bytes": g.arena_bytes,
            "arena_lower_bound_bytes": g.arena_lower_bound,
        },
        "inputs": [_buffer(g, v) for v in g.inputs],
        "outputs": [_buffer(g, v) for v in g.outputs],
    }
