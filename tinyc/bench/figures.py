"""The benchmark's data as CSV and JSON, and its figures as PNG when matplotlib is there (extra `plot`)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

ROW_FIELDS = ("network", "source", "variant", "config", "tiler", "l1_reuse", "cycles", "ms", "cycles_label", "speedup_vs_cpu",
              "peak_l2_bytes", "weights_bytes", "arena_bytes", "code_size_bytes", "compile_s", "outputs_match",
              "layers", "host_layers", "profiled_on")


def write_csv(path: Path, rows: list[dict], fields) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_data(out: Path, results: dict) -> list[Path]:
    """results: {"rows", "headlines", "budget_sweep", "overhead_sweep", "traces", "meta"}."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "mlperf_tiny.json").write_text(json.dumps(results, indent=1) + "\n")
    cores = sorted({c for r in results["rows"] for c in r["cycles_per_core"]})
    rows = [{**r, **{f"cycles_{c}": r["cycles_per_core"].get(c, 0) for c in cores}} for r in results["rows"]]
    write_csv(out / "mlperf_tiny_rows.csv", rows, ROW_FIELDS + tuple(f"cycles_{c}" for c in cores))
    layers = [{"network": r["network"], "source": r["source"], "variant": r["variant"], "config": r["config"],
               "tiler": r["tiler"], "l1_reuse": r["l1_reuse"], **layer} for r in results["rows"] for layer in r["accelerator_layers"]]
    write_csv(out / "mlperf_tiny_layer_utilization_modeled.csv", layers,
              ("network", "source", "variant", "config", "tiler", "l1_reuse", "name", "core", "pattern", "macs",
               "cycles", "peak_macs_per_cycle", "utilization", "ideal_cycles", "overhead_pct"))
    write_csv(out / "mlperf_tiny_headlines.csv", results["headlines"],
              ("claim", "paper", "unit", "tinyc", "ratio", "label", "where", "how"))
    write_csv(out / "budget_sweep_modeled.csv", results["budget_sweep"],
              ("core", "layer", "l1_activation_bytes", "tiler", "modeled_cycles", "modeled_utilization", "tile",
               "buffers", "solve_seconds"))
    write_csv(out / "overhead_sweep_modeled.csv", results["overhead_sweep"],
              ("config", "core", "variant", "kind", "c_in", "c_out", "size", "kernel", "taken", "macs",
               "modeled_cycles", "ideal_cycles", "modeled_utilization", "modeled_overhead_pct", "geometry_ideal_cycles",
               "overhead_vs_geometry_pct", "reason"))
    return sorted(out.iterdir())


def plot(out: Path, results: dict, clock_hz: float) -> list[Path]:
    """PNGs: a time diagram per network, latency against the L1 budget, single-layer overheads."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = [_time_diagram(plt, out / f"time_diagram_{net}_modeled.png", net, traces, clock_hz)
               for net, traces in _by_network(results["traces"]).items()]
    written.append(_budget_plot(plt, out / "budget_sweep_modeled.png", results["budget_sweep"]))
    written.append(_overhead_plot(plt, out / "overhead_sweep_modeled.png", results["overhead_sweep"]))
    return written


def _by_network(traces: list[dict]) -> dict:
    nets = {}
    for t in traces:
        nets.setdefault(t["network"], []).append(t)
    return nets


def _save(plt, fig, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _time_diagram(plt, path: Path, net: str, traces: list[dict], clock_hz: float) -> Path:
    """Which core is busy when: one panel per configuration, one lane per core and the DMA."""
    fig, axes = plt.subplots(len(traces), 1, figsize=(11, 1.2 + 1.1 * sum(len(t["cores"]) for t in traces) / 2),
                             squeeze=False)
    for ax, t in zip(axes[:, 0], traces):
        lanes = t["cores"]
        for who, name in enumerate(lanes):
            spans = [(s * 1e3 / clock_hz, (e - s) * 1e3 / clock_hz) for w, s, e, _ in t["intervals"] if w == who]
            ax.broken_barh(spans, (who - 0.4, 0.8), color=f"C{who}")
        ax.set_yticks(range(len(lanes)), lanes)
        ax.invert_yaxis()
        end = max((e for _, _, e, _ in t["intervals"]), default=0)
        ax.set_title(f"{net} ({t['variant']}), config {t['config']}, tiler {t['tiler']}: {end} cycles, all modeled "
                     f"(the host emulator's timeline)", fontsize=9)
        ax.set_xlabel("modeled time (ms)")
    return _save(plt, fig, path, f"{net}: busy intervals per core (emulator trace, MODELED cycles)")


def _budget_plot(plt, path: Path, rows: list[dict]) -> Path:
    panels = list(dict.fromkeys((r["core"], r["layer"]) for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (core, layer) in zip(axes[0], panels):
        for tiler in dict.fromkeys(r["tiler"] for r in rows):
            pts = [(r["l1_activation_bytes"] / 1000, r["modeled_cycles"]) for r in rows
                   if (r["core"], r["layer"], r["tiler"]) == (core, layer, tiler) and r["modeled_cycles"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=tiler)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{core}: {layer}", fontsize=9)
        ax.set_xlabel("L1 activation budget (kB)")
        ax.set_ylabel("modeled cycles")
        ax.legend()
    return _save(plt, fig, path, "Latency against the L1 budget, cp-sat vs dory (MODELED)")


def _overhead_plot(plt, path: Path, rows: list[dict]) -> Path:
    taken = [r for r in rows if r["taken"]]
    panels = list(dict.fromkeys(r["kind"] for r in taken)) or ["none"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], panels):
        for core in dict.fromkeys(r["core"] for r in taken):
            pts = [(r["macs"], r["modeled_utilization"] * 100) for r in taken if (r["kind"], r["core"]) == (kind, core)]
            if pts:
                ax.plot(*zip(*sorted(pts)), marker="o", label=core)
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("layer MACs")
        ax.set_ylabel("modeled % of the core's peak")
        ax.legend()
    return _save(plt, fig, path, "Single layers: utilization of the core's peak (MODELED)")
