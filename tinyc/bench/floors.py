"""Each zoo int8 network against its floor, and tinyc's defaults against the HTVM-style flow, per
configuration.

A network's floor is the larger of its MACs over the peak MACs per cycle of the fastest accelerator that
runs one of its layers and its int8 weight bytes over the DMA's bytes per cycle: no deployment on those
cores computes faster or loads its weights sooner (ternary weights move as 2-bit cells, so the bound is
given for the int8 networks only). Every figure is the row's (counted host + modeled
accelerators, or modeled): the floor is modeled from the target's figures.
"""
from __future__ import annotations

from ..targets import cost

CPU = "cpu"
INT8 = "int8"


def floor_cycles(row: dict, dma_bytes_per_cycle: float) -> tuple[float, str]:
    """(floor, which bound sets it) of one accelerated row."""
    peak = max(layer["peak_macs_per_cycle"] for layer in row["accelerator_layers"])
    compute, dma = row["macs"] / peak, row["weights_bytes"] / dma_bytes_per_cycle
    return (compute, f"MACs / {peak}") if compute >= dma else (dma, f"weights / {dma_bytes_per_cycle:g} B")


def floors(rows: list[dict], target) -> list[dict]:
    """Per zoo int8 network and accelerated configuration: the defaults' and the HTVM-style flow's
    cycles, the cut, and the defaults' cycles over the floor."""
    dma = min(cost.machine(target, c).dma_bytes_per_cycle for c in target.cores if c.kind == "accelerator")
    dory = {(r["network"], r["variant"], r["config"]): r for r in rows if r["tiler"] == "dory"}
    table = []
    for r in rows:
        k = (r["network"], r["variant"], r["config"])
        if r["source"] != "zoo" or r["variant"] != INT8 or r["tiler"] != "cp-sat" or r["config"] == CPU \
                or not r["accelerator_layers"]:
            continue
        floor, bound = floor_cycles(r, dma)
        htvm = dory[k]["cycles"] if k in dory else None
        table.append({"network": r["network"], "variant": r["variant"], "config": r["config"],
                      "cycles": r["cycles"], "htvm_style_cycles": htvm,
                      "cut_pct": 100 * (1 - r["cycles"] / htvm) if htvm else None,
                      "floor_cycles": round(floor), "floor_bound": bound, "x_floor": r["cycles"] / floor,
                      "label": r["cycles_label"]})
    return table


def best_per_network(table: list[dict]) -> dict[tuple[str, str], dict]:
    """The configuration nearest its floor, per network and variant."""
    best: dict[tuple[str, str], dict] = {}
    for t in table:
        k = (t["network"], t["variant"])
        if k not in best or t["x_floor"] < best[k]["x_floor"]:
            best[k] = t
    return best


def format_floors(table: list[dict]) -> str:
    best = {id(t) for t in best_per_network(table).values()}
    lines = [f"{'network':<8} {'variant':<8} {'config':<8} {'cycles':>9} {'HTVM-style':>10} {'cut':>7} "
             f"{'floor':>8} {'x floor':>7}  floor set by; label", "-" * 104]
    for t in table:
        htvm = f"{t['htvm_style_cycles']}" if t["htvm_style_cycles"] else "-"
        cut = f"{t['cut_pct']:.1f}%" if t["cut_pct"] is not None else "-"
        mark = " (best)" if id(t) in best else ""
        lines.append(f"{t['network']:<8} {t['variant']:<8} {t['config']:<8} {t['cycles']:>9} {htvm:>10} {cut:>7} "
                     f"{t['floor_cycles']:>8} {t['x_floor']:>7.2f}  {t['floor_bound']}{mark}; {t['label']}")
    return "\n".join(lines)
