"""The HTVM and MATCH papers' headline results beside tinyc's figures from the same run's rows.

tinyc has no TVM: the paper's "plain TVM" (the whole network on the host, compiled without the
accelerators) stands as tinyc's own "cpu" configuration, the same compiler's host-only deployment with
the same weights; and HTVM's own tiling (DORY's heuristic) stands as tinyc's "dory" tiler. Figures are
over the zoo networks (power-of-two scales, so their layers reach the accelerators); the official
models stay mostly on the host and would only dilute them.
"""
from __future__ import annotations

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


def _tiler_pairs(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(cp-sat row, dory row) of every zoo network, variant and accelerated configuration."""
    dory = {(r["network"], r["variant"], r["config"]): r for r in _zoo(rows, tiler="dory")}
    return [(r, dory[k]) for r in _zoo(rows, tiler="cp-sat")
            if r["config"] != CPU and (k := (r["network"], r["variant"], r["config"])) in dory]


def tiling_speedup(rows: list[dict]) -> tuple[float | None, str, str]:
    pairs = _tiler_pairs(rows)
    best = _best([(d["cycles"] / c["cycles"], f"{c['network']} {c['variant']} {c['config']}") for c, d in pairs])
    return (*best, _label([r for pair in pairs for r in pair]))


def mean_latency_cut_vs_dory(rows: list[dict]) -> tuple[float | None, str, str]:
    pairs = _tiler_pairs(rows)
    if not pairs:
        return None, "no rows", "modeled"
    cuts = [100 * (1 - c["cycles"] / d["cycles"]) for c, d in pairs]
    return sum(cuts) / len(cuts), f"mean over {len(pairs)} network/config pairs", _label([c for c, _ in pairs])


def conv_gap_to_peak(rows: list[dict], core: str) -> tuple[float | None, str, str]:
    """100 x (1 - the best utilization of a conv2d layer on `core`), as the paper's "within X% of peak"
    (a conv2d job: the pattern's name says so, conv2d on the digital core, analog_conv2d on the analog)."""
    layers = [(layer["utilization"], f"{r['network']} {layer['name']}") for r in _zoo(rows, tiler="cp-sat")
              for layer in r["accelerator_layers"] if layer["core"] == core and "conv2d" in layer["pattern"]]
    if not layers:
        return None, f"no conv2d layer ran on a core named {core}", "modeled"
    utilization, where = max(layers)
    return 100 * (1 - utilization), where, "modeled"


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


def headlines(rows: list[dict], configs: dict) -> list[dict]:
    """Each claim: the paper's figure, tinyc's, their ratio, where tinyc's comes from, its label."""
    claims = [
        ("HTVM: speed-up over plain TVM (host only), up to", 120.0, "x", speedup_over_host(rows),
         "baseline: tinyc's cpu config (every layer on the host), as tinyc has no TVM"),
        ("HTVM: accelerator-aware tiling over hardware-agnostic, up to", 6.2, "x", tiling_speedup(rows),
         "cp-sat tiler over dory (DORY's heuristic)"),
        ("HTVM: digital conv layers within X% of peak", 15.52, "%", conv_gap_to_peak(rows, "digital"),
         "best conv2d layer: 100 x (1 - MACs / (peak x cycles))"),
        ("HTVM: analog conv layers within X% of peak", 5.19, "%", conv_gap_to_peak(rows, "analog"),
         "best conv2d layer: 100 x (1 - MACs / (peak x cycles))"),
        ("HTVM: binary smaller than plain TVM, up to", 12.3, "%", code_size_cut(rows),
         "RV32 code size vs tinyc's cpu config"),
        ("HTVM: lower latency with both accelerators than one, up to", 8.0, "x", both_vs_one(rows, configs),
         "cycles of a single-accelerator config / the config with all"),
        ("MATCH: speed-up over plain TVM, mean", 60.87, "x", mean_best_speedup(rows),
         "baseline: tinyc's cpu config; MATCH's mean over MLPerf Tiny"),
        ("MATCH: lower latency than HTVM, %", 16.94, "%", mean_latency_cut_vs_dory(rows),
         "cp-sat vs dory, HTVM's tiling heuristic standing in for HTVM"),
    ]
    table = []
    for claim, paper, unit, (figure, where, label), how in claims:
        table.append({"claim": claim, "paper": paper, "unit": unit, "tinyc": figure,
                      "ratio": figure / paper if figure is not None else None, "where": where,
                      "label": label, "how": how})
    return table


def format_headlines(table: list[dict]) -> str:
    lines = [f"{'claim':<62} {'paper':>8} {'tinyc':>9} {'tinyc/paper':>11}  label; where; how",
             "-" * 120]
    for h in table:
        mine = f"{h['tinyc']:.2f}{h['unit']}" if h["tinyc"] is not None else "n/a"
        ratio = f"{h['ratio']:.2f}" if h["ratio"] is not None else "-"
        lines.append(f"{h['claim']:<62} {h['paper']:>7}{h['unit']} {mine:>9} {ratio:>11}  "
                     f"{h['label']}; {h['where']}; {h['how']}")
    return "\n".join(lines)
