"""The HTVM and MATCH papers' headline results beside tinyc's figures from the same run's rows.

tinyc has no TVM: the paper's "plain TVM" (the whole network on the host, compiled without the
accelerators) stands as tinyc's own "cpu" configuration, the same compiler's host-only deployment with
the same weights; and HTVM itself stands as tinyc's HTVM-style flow (DORY's tiling heuristic, every
tensor through L2: the "dory" rows), beside tinyc's defaults (CP-SAT tiling and L1 reuse: the "cp-sat"
rows). Where the paper defines a figure its own way, the table gives it under that definition ("paper
def.") beside tinyc's. Figures are over the zoo networks (power-of-two scales, so their layers reach
the accelerators); the official models stay mostly on the host and would only dilute them.
"""
from __future__ import annotations

from .sweeps import AGNOSTIC

CPU = "cpu"


def _zoo(rows: list[dict], **where) -> list[dict]:
    return [r for r in rows if r["source"] == "zoo" and all(r[k] == v for k, v in where.items())]


def _label(rows: list[dict]) -> str:
    return "counted host + modeled accelerators" if any(r["cycles_label"] != "modeled" for r in rows) else "modeled"


def _best(candidates: list[tuple[float, str]]) -> tuple[float | None, str]:
    return max(candidates) if candidates else (None, "no rows")


def speedup_over_host(rows: list[dict]) -> tuple[float | None, str, str]:
    accelerated = [r for r in _zoo(rows, tiler="cp-sat") if r["config"] != CPU]
    best = _best([(r["speedup_vs_cpu"], f"{r['network']} {r['variant']} {r['config']}") for r in accelerated])
    return (*best, _label(accelerated))


def mean_best_speedup(rows: list[dict]) -> tuple[float | None, str, str]:
    per_net = {}
    for r in _zoo(rows, tiler="cp-sat"):
        if r["config"] != CPU:
            per_net[r["network"]] = max(per_net.get(r["network"], 0.0), r["speedup_vs_cpu"])
    if not per_net:
        return None, "no rows", "modeled"
    return (sum(per_net.values()) / len(per_net), f"mean of the best config of {', '.join(per_net)}",
            _label(_zoo(rows)))


def _flow_pairs(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(defaults row, HTVM-style row) of every zoo network, variant and accelerated configuration."""
    dory = {(r["network"], r["variant"], r["config"]): r for r in _zoo(rows, tiler="dory")}
    return [(r, dory[k]) for r in _zoo(rows, tiler="cp-sat")
            if r["config"] != CPU and (k := (r["network"], r["variant"], r["config"])) in dory]


def flow_speedup(rows: list[dict]) -> tuple[float | None, str, str]:
    pairs = _flow_pairs(rows)
    best = _best([(d["cycles"] / c["cycles"], f"{c['network']} {c['variant']} {c['config']}") for c, d in pairs])
    return (*best, _label([r for pair in pairs for r in pair]))


def fig4_ratio(budget_rows: list[dict], aware: str) -> tuple[float | None, str, str]:
    """HTVM's Fig. 4: the hardware-agnostic tiler's latency over an accelerator-aware one's, the same
    single layer and L1 budget, the largest over the decreasing budgets of the sweep."""
    cells = {(r["core"], r["layer"], r["l1_activation_bytes"], r["tiler"]): r["modeled_cycles"] for r in budget_rows}
    ratios = [(agnostic / cells[k[:3] + (aware,)], f"{k[1]} at {k[2]} B")
              for k, agnostic in cells.items() if k[3] == AGNOSTIC and agnostic and cells.get(k[:3] + (aware,))]
    return (*_best(ratios), "modeled")


def mean_latency_cut_vs_htvm(rows: list[dict]) -> tuple[float | None, str, str]:
    pairs = _flow_pairs(rows)
    if not pairs:
        return None, "no rows", "modeled"
    cuts = [100 * (1 - c["cycles"] / d["cycles"]) for c, d in pairs]
    return sum(cuts) / len(cuts), f"mean over {len(pairs)} network/config pairs", _label([c for c, _ in pairs])


def _convs(rows: list[dict], core: str) -> list[tuple[dict, dict]]:
    """(row, layer) of every conv2d job (groups 1: its job kind computes "conv") on `core` in the
    defaults' zoo rows."""
    return [(r, layer) for r in _zoo(rows, tiler="cp-sat") for layer in r["accelerator_layers"]
            if layer["core"] == core and layer["computes"] == "conv"]


def conv_gap_to_peak(rows: list[dict], core: str) -> tuple[float | None, str, str]:
    """tinyc's reading of "within X% of peak": 100 x (1 - the best utilization of a conv2d layer)."""
    layers = [(layer["utilization"], f"{r['network']} {layer['name']}") for r, layer in _convs(rows, core)]
    if not layers:
        return None, f"no conv2d layer ran on a core named {core}", "modeled"
    utilization, where = max(layers)
    return 100 * (1 - utilization), where, "modeled"


def conv_overhead(rows: list[dict], core: str) -> tuple[float | None, str, str]:
    """HTVM's Fig. 5 reading: the least overhead of a conv2d layer over the core's ideal time for its
    geometry (cost.ideal_cycles: the PE array's passes alone), in %."""
    layers = [(layer["overhead_pct"], f"{r['network']} {layer['name']}") for r, layer in _convs(rows, core)
              if layer["overhead_pct"] is not None]
    if not layers:
        return None, f"no conv2d layer ran on a core named {core}", "modeled"
    return (*min(layers), "modeled")


def code_size_cut(rows: list[dict]) -> tuple[float | None, str, str]:
    cpu = {(r["network"], r["variant"]): r for r in _zoo(rows, tiler="cp-sat", config=CPU)}
    cuts = [(100 * (1 - r["code_size_bytes"] / cpu[k]["code_size_bytes"]),
             f"{r['network']} {r['variant']} {r['config']}")
            for r in _zoo(rows, tiler="cp-sat") if r["config"] != CPU and (k := (r["network"], r["variant"])) in cpu]
    return (*_best(cuts), "measured (RV32 text + data, riscv64-unknown-elf-size)")


def both_vs_one(rows: list[dict], configs: dict) -> tuple[float | None, str, str]:
    """cycles with one accelerator / cycles with all of them, same network and tiler (the single-
    accelerator configs run the weight variant their core takes, so int8 and ternary rows meet here:
    the digital core's cost depends on the geometry alone, which the two variants share)."""
    single = [c for c, cores in configs.items() if len(cores) == 1]
    every = [c for c, cores in configs.items() if len(cores) > 1]
    if not every:
        return None, "no configuration uses more than one accelerator yet", "modeled"
    ratios = []
    for r in _zoo(rows, tiler="cp-sat"):
        if r["config"] in every:
            ratios += [(o["cycles"] / r["cycles"], f"{r['network']}: {o['config']} / {r['config']}")
                       for o in _zoo(rows, tiler="cp-sat", network=r["network"]) if o["config"] in single]
    return (*_best(ratios), _label(_zoo(rows)))


def headlines(rows: list[dict], configs: dict, budget_rows: list[dict]) -> list[dict]:
    """Each claim: the paper's figure, tinyc's, their ratio, where tinyc's comes from, its label."""
    claims = [
        ("HTVM: speed-up over plain TVM (host only), up to", 120.0, "x", speedup_over_host(rows),
         "baseline: tinyc's cpu config (every layer on the host), as tinyc has no TVM"),
        ("HTVM: aware over agnostic tiling, up to (paper def.)", 6.2, "x", fig4_ratio(budget_rows, "dory"),
         f"Fig. 4: single layers at decreasing L1 budgets, {AGNOSTIC} (largest tile) / dory (DORY's heuristic)"),
        ("HTVM: aware over agnostic tiling, up to (cp-sat)", 6.2, "x", fig4_ratio(budget_rows, "cp-sat"),
         f"as Fig. 4: {AGNOSTIC} / cp-sat, same layers and budgets"),
        ("HTVM: tinyc's defaults over the HTVM-style flow, up to", 6.2, "x", flow_speedup(rows),
         "whole networks: dory without L1 reuse / cp-sat with it"),
        ("HTVM: digital conv within X% of peak (paper def.)", 15.52, "%", conv_overhead(rows, "digital"),
         "Fig. 5: least overhead of a conv2d layer over the core's ideal time for its geometry"),
        ("HTVM: digital conv within X% of peak (tinyc)", 15.52, "%", conv_gap_to_peak(rows, "digital"),
         "best conv2d layer: 100 x (1 - MACs / (peak x cycles))"),
        ("HTVM: analog conv within X% of peak (paper def.)", 5.19, "%", conv_overhead(rows, "analog"),
         "Fig. 5: least overhead of a conv2d layer over the array's ideal time for its geometry"),
        ("HTVM: analog conv within X% of peak (tinyc)", 5.19, "%", conv_gap_to_peak(rows, "analog"),
         "best conv2d layer: 100 x (1 - MACs / (peak x cycles))"),
        ("HTVM: binary smaller than plain TVM, up to", 12.3, "%", code_size_cut(rows),
         "RV32 code size vs tinyc's cpu config"),
        ("HTVM: lower latency with both accelerators than one, up to", 8.0, "x", both_vs_one(rows, configs),
         "cycles of a single-accelerator config / the config with all"),
        ("MATCH: speed-up over plain TVM, mean", 60.87, "x", mean_best_speedup(rows),
         "baseline: tinyc's cpu config; MATCH's mean over MLPerf Tiny"),
        ("MATCH: lower latency than HTVM, %", 16.94, "%", mean_latency_cut_vs_htvm(rows),
         "tinyc's defaults vs the HTVM-style flow standing in for HTVM"),
    ]
    table = []
    for claim, paper, unit, (figure, where, label), how in claims:
        table.append({"claim": claim, "paper": paper, "unit": unit, "tinyc": figure,
                      "ratio": figure / paper if figure is not None else None, "where": where,
                      "label": label, "how": how})
    return table


def format_headlines(table: list[dict]) -> str:
    lines = [f"{'claim':<58} {'paper':>8} {'tinyc':>9} {'tinyc/paper':>11}  label; where; how",
             "-" * 120]
    for h in table:
        mine = f"{h['tinyc']:.2f}{h['unit']}" if h["tinyc"] is not None else "n/a"
        ratio = f"{h['ratio']:.2f}" if h["ratio"] is not None else "-"
        lines.append(f"{h['claim']:<58} {h['paper']:>7}{h['unit']} {mine:>9} {ratio:>11}  "
                     f"{h['label']}; {h['where']}; {h['how']}")
    return "\n".join(lines)
