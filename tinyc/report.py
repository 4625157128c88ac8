"""The compile report: per layer what runs where and what it costs; totals. A JSON-serializable dict."""
from __future__ import annotations

import numpy as np

from .ir.graph import Graph
from .targets.host_cost import macs


def _buffer(g: Graph, name: str) -> dict:
    v = g.values[name]
    entry = {"name": name, "dtype": v.dtype, "shape": list(v.shape), "bytes": v.nbytes}
    if v.is_const:
        entry["const"] = True
    elif v.offset is None:
        entry["kept_in_l1"] = True  # the L1 plan keeps it in an accelerator's memory: no arena bytes
    else:
        entry["offset"] = v.offset
    return entry


def _io(g: Graph, name: str) -> dict:
    """A graph input or output; a quantized one with its scale and zero point (real = (q - zp) * scale)."""
    entry = _buffer(g, name)
    quant = g.io_quant(name)
    if quant is not None:
        entry["scale"], entry["zero_point"] = quant.per_tensor
        entry["real"] = quant.text()
    return entry


def _plain(x):
    """numpy scalars and arrays, and tuples, as the JSON types they stand for."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    return x.item() if isinstance(x, np.generic) else x


def _placement(n, host: str, model_macs: int | None) -> dict:
    """Where the layer runs, and why the host when it does (or, when several cores take it, every core's
    modeled cycles behind the choice); the tile and modeled cost once tiled: the job's cycles; of a
    lowered layer (`model_macs`: its model layer's MACs) the MACs and utilization the model's layer counts."""
    p = n.placement
    if p is None:
        return {"core": host, "pattern": ""}
    entry = {"core": p.core, "pattern": p.pattern}
    if p.reason:
        entry["reason"] = p.reason
    if p.candidates:
        entry["candidates"] = _plain(p.candidates)
    if p.tile is not None:
        entry["tile"] = _plain(p.tile)
    if p.cost is not None:
        entry["modeled"] = _plain(p.cost)
        if model_macs is not None and p.cost["macs"]:
            entry["modeled"].update(macs=model_macs, utilization=p.cost["utilization"] * model_macs / p.cost["macs"])
    return entry


def layer_report(g: Graph, n, host: str) -> dict:
    """One layer; "macs" are the model's layer's, "lowered_macs" what a lowered layer's node runs where
    that differs (the taps of weight zero a lowering added)."""
    lowered = g.model_macs.get(n.name)  # the model layer's MACs, when a lowering rewrote it into this node
    entry = {
        "name": n.name,
        "op": n.op,
        **_placement(n, host, lowered),
        "shapes": {"inputs": [list(g.values[v].shape) for v in n.inputs if v],
                   "outputs": [list(g.values[v].shape) for v in n.outputs]},
        "macs": macs(g, n) if lowered is None else lowered,
        "buffers": {"inputs": [_buffer(g, v) for v in n.inputs if v],
                    "outputs": [_buffer(g, v) for v in n.outputs]},
    }
    if n.name in g.notes:  # why a lowering pass left the layer as it is (also the end of its reason)
        entry["lowering"] = g.notes[n.name]
    if lowered is not None and lowered != macs(g, n):
        entry["lowered_macs"] = macs(g, n)
    return entry


def build_report(g: Graph, target, config: str, approximation: dict | None = None) -> dict:
    """`approximation`: what requant="pow2" measured (passes/requant_pow2.py), shown per layer and whole."""
    layers = [layer_report(g, n, target.host.name) for n in g.nodes()]
    approximated = {a["name"]: a for a in (approximation or {}).get("layers", [])}
    for layer in layers:
        if layer["name"] in approximated:
            layer["approximation"] = {k: v for k, v in approximated[layer["name"]].items() if k != "name"}
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
        "inputs": [_io(g, v) for v in g.inputs],
        "outputs": [_io(g, v) for v in g.outputs],
        **({"approximation": _plain(approximation)} if approximation is not None else {}),
    }


def format_text(report: dict) -> str:
    """The report as a table: one row per layer, then why each host layer stayed there, then totals."""
    rows = [f"{report['model']} for {report['target']} ({report['config']})",
            f"{'layer':<32} {'op':<9} {'core':<8} {'output':<14} {'MACs':>9} {'weights B':>9} {'tile c,h,w/buf':>15} "
            f"{'modeled cycles':>14}"]
    reasons = []
    for layer in report["layers"]:
        shape = "x".join(map(str, layer["shapes"]["outputs"][0]))
        tile = layer.get("tile")
        tile_text = f"{tile['c_out']},{tile['h_out']},{tile['w_out']}/{tile['buffers']}" if tile else ""
        cycles = layer.get("modeled", {}).get("cycles", "")
        weights = sum(b["bytes"] for b in layer["buffers"]["inputs"] if b.get("const"))
        rows.append(f"{layer['name'][-32:]:<32} {layer['op']:<9} {layer['core']:<8} {shape:<14} {layer['macs']:>9} "
                    f"{weights:>9} {tile_text:>15} {cycles:>14}")
        if layer.get("reason") and (layer["macs"] or layer.get("lowering")):
            reasons.append(f"  {layer['name']}: {layer['reason']}")
    if reasons:
        rows += ["on the host because:"] + reasons
    lowered = [f"  {layer['name']}: {layer['lowered_macs']}" for layer in report["layers"] if "lowered_macs" in layer]
    if lowered:
        rows += ["lowered layers, MACs as their jobs run them (the table counts the model's layers': none for "
                 "a pool, no taps of weight zero):"] + lowered
    rows += format_approximation(report)
    t = report["totals"]
    accelerated = sum(layer.get("modeled", {}).get("cycles", 0) for layer in report["layers"])
    code = f", code {t['code_size']['text']} B text" if "code_size" in t else ""
    rows.append(f"total: {t['layers']} layers, {t['macs']} MACs, weights {t['weights_bytes']} B, "
                f"arena {t['arena_bytes']} B (liveness lower bound {t['arena_lower_bound_bytes']} B){code}")
    if accelerated:
        rows.append(f"accelerator layers: {accelerated} cycles (modeled; `tinyc run --profile` adds the host's)")
    for kind in ("inputs", "outputs"):
        rows += [f"{kind[:-1]} {io['name']}: {io['dtype']}{io['shape']}" +
                 (f", real = {io['real']}" if "real" in io else "")
                 for io in report[kind]]
    return "\n".join(rows)


def _db(snr) -> str:
    return "exact" if snr is None else f"{snr:.1f} dB"


def format_approximation(report: dict) -> list[str]:
    """The rows of what requant="pow2" approximated and its measured error (none when exact)."""
    a = report.get("approximation")
    if a is None:
        return []
    rows = [f"requant {a['requant']}: {len(a['layers'])} layers approximated (a shift instead of the exact "
            f"multiplier), measured on {a['inputs']} random inputs against the exact model:"]
    rows += [f"  {x['name']}: shift {x['shift']}, SNR {_db(x['snr_db'])}, max {x['max_lsb']} LSB" for x in a["layers"]]
    rows += [f"  output {o['name']}: SNR {_db(o['snr_db'])}, top-1 agreement {o['top1_agreement']}/{a['inputs']}"
             for o in a["outputs"]]
    return rows


def format_profile(profiled: dict, clock_hz: float) -> str:
    """A profile's cycles per layer and per core, labelled by where they come from."""
    source = "modeled" if profiled.get("modeled", True) else f"counted on {profiled.get('profiled_on')}"
    rows = [f"{'layer':<32} {'core':<8} {'cycles':>10} {'DMA bytes':>10}"]
    for layer in profiled["layers"]:
        rows.append(f"{layer['name'][-32:]:<32} {layer['core']:<8} {layer['cycles']:>10} {layer['dma_bytes']:>10}")
    per_core = ", ".join(f"{core} {cycles}" for core, cycles in profiled["cycles_per_core"].items())
    total = profiled["total_cycles"]
    rows.append(f"total: {total} cycles ({source}), {1e3 * total / clock_hz:.3f} ms at {clock_hz / 1e6:g} MHz; "
                f"busy cycles per core: {per_core}")
    return "\n".join(rows)
