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


def _plain(x):
    """numpy scalars and arrays, and tuples, as the JSON types they stand for."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    return x.item() if isinstance(x, np.generic) else x


def _placement(n, host: str) -> dict:
    """Where the layer runs, and why the host when it does; the tile and modeled cost once tiled."""
    p = n.placement
    if p is None:
        return {"core": host, "pattern": ""}
    entry = {"core": p.core, "pattern": p.pattern}
    if p.reason:
        entry["reason"] = p.reason
    if p.tile is not None:
        entry["tile"] = _plain(p.tile)
    if p.cost is not None:
        entry["modeled"] = _plain(p.cost)
    return entry


def layer_report(g: Graph, n, host: str) -> dict:
    return {
        "name": n.name,
        "op": n.op,
        **_placement(n, host),
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
