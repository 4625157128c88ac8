"""MLPerf Tiny on DIANA: every network x configuration x flow, beside the HTVM paper's headline results.

Two flows in the same run: tinyc's defaults (the CP-SAT tiler, tensors kept in L1 between layers of a
core) and the HTVM-style flow (DORY's tiling heuristic, every layer's input and output moved by DMA
between L2 and L1: `tiler="dory", l1_reuse=False`).

For the zoo networks (power-of-two scales) and the official trained int8 models (their scales are not
powers of two, so their layers mostly stay on the host): latency in cycles and ms at the target's clock,
speed-up over the cpu configuration of the same run, time per core, utilization of every accelerator
layer against its core's peak, peak L2 bytes, RV32 code size, compile time, and whether the C build's
outputs equal the reference interpreter's. Then the paper's claims beside tinyc's figures, single-layer
sweeps, and the data as JSON and CSV (PNG figures with the `plot` extra) in --out.

Weights per configuration: the analog core takes ternary weights only, so the zoo's "ternary" variant runs
every configuration with a core of 2-bit weight cells (its job kinds' records: analog, mixed), with cpu on
ternary as their baseline; the others (cpu, digital; gap9's ne16) run "int8". Cycle labels: "modeled" (the emulator's timeline, tinyc's cost model) or, where
profile(on="qemu") counts the RV32 host's instructions, "counted host + modeled accelerators".

    tinyc bench mlperf-tiny [--quick] [--json rows.json] [--out DIR]
    python3 benchmarks/mlperf_tiny.py [same options]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from .. import targets
from ..errors import TinycError
from . import figures, floors, paper, sweeps
from .measure import busy_intervals, measure
from .models import MLPERF_DIR, available_models

CPU = "cpu"
FLOWS = {"cp-sat": True, "dory": False}  # tiler -> l1_reuse: tinyc's defaults, the HTVM-style flow
QUICK_ZOO, QUICK_OFFICIAL = ("kws", "ad"), ("ad",)
INPUT_SEED = 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help=f"zoo {' and '.join(QUICK_ZOO)} and official {' '.join(QUICK_OFFICIAL)} only, "
                        "short sweeps (CI)")
    p.add_argument("--target", default="diana", help="the target whose configurations run (default diana)")
    p.add_argument("--on", choices=("qemu", "host"), default="qemu",
                   help="count host layers on qemu (default; needs `make rv32-tools`) or model them on the host "
                        "emulator")
    p.add_argument("--mlperf-dir", type=Path, default=MLPERF_DIR, help="the official MLPerf Tiny models")
    p.add_argument("--json", type=Path, help="write the rows (one per network, source, config, tiler) here")
    p.add_argument("--out", type=Path, default=Path("build/bench-mlperf-tiny"),
                   help="directory for the JSON, CSV and PNG figures (default build/bench-mlperf-tiny)")


def zoo_variant(target, config: str) -> str:
    """Ternary weights where a core of the configuration holds 2-bit weight cells (its job kinds' records
    say so: DIANA's analog array), else int8."""
    cells = {k.weight_bits for core in target.accelerators(config) for k in core.job_kinds}
    return "ternary" if 2 in cells else "int8"


def int8_configs(target) -> list[str]:
    return [c for c in target.configs if zoo_variant(target, c) == "int8"]


def cases(target, quick: bool, mlperf_dir: Path) -> list[dict]:
    """(network, source, variant, config, model thunk) to run, each variant's cpu config first."""
    by_variant = {}
    for config in target.configs:
        by_variant.setdefault(zoo_variant(target, config), [CPU]).append(config)
    out = []
    for variant, configs in by_variant.items():
        for model_id, thunk in available_models(mlperf_dir, variant).items():
            source, network = model_id.split(":")
            if source == "official" and variant != "int8":
                continue  # the official models are what they are: one int8 model each
            if quick and network not in (QUICK_ZOO if source == "zoo" else QUICK_OFFICIAL):
                continue
            variant_name = variant if source == "zoo" else "official int8"
            run = list(dict.fromkeys(configs if source == "zoo" else [CPU, *target.configs]))
            out += [{"network": network, "source": source, "variant": variant_name, "config": c, "model": thunk}
                    for c in run]
    return sorted(out, key=lambda c: (c["source"] != "zoo", c["network"]))


def run_matrix(target, todo: list[dict], on: str, progress) -> tuple[list[dict], list[dict]]:
    """The rows, and the busy-interval traces of the zoo's accelerated cp-sat rows (time diagrams)."""
    rows, traces, models, measured, start = [], [], {}, {}, time.monotonic()
    total = len(todo) * len(FLOWS)
    for case in todo:
        key = (case["source"], case["network"], case["variant"])
        model = models.setdefault(key, case["model"]())  # built once: the zoo quantizes on every build
        for tiler, l1_reuse in FLOWS.items():
            head = {k: case[k] for k in ("network", "source", "variant", "config")}
            head.update(tiler=tiler, l1_reuse=l1_reuse)
            name = f"{case['network']}_{case['variant']}".replace(" ", "_")
            try:
                figures_, cm = measure(model, target, case["config"], tiler, l1_reuse, name, INPUT_SEED, on,
                                       measured)
            except TinycError as e:
                rows.append({**head, "error": str(e)})
                progress(f"[{len(rows)}/{total}] {_name(head)}: error: {e}", start)
                continue
            rows.append({**head, **figures_})
            if case["source"] == "zoo" and tiler == "cp-sat" and case["config"] != CPU:
                traces.append({**head, **busy_intervals(cm, INPUT_SEED)})
            progress(f"[{len(rows)}/{total}] {_name(head)}: {figures_['cycles']} cycles "
                     f"({figures_['cycles_label']})", start)
    add_speedups(rows)
    return rows, traces


def _name(r: dict) -> str:
    return f"{r['source']} {r['network']} {r['variant']} {r['config']} {_flow(r)}"


def _flow(r: dict) -> str:
    return r["tiler"] + ("+L1" if r["l1_reuse"] else "")


def add_speedups(rows: list[dict]) -> None:
    """speedup_vs_cpu = cycles of the cpu row of the same network, source, variant and tiler / cycles."""
    cpu = {(r["network"], r["source"], r["variant"], r["tiler"]): r["cycles"]
           for r in rows if r["config"] == CPU and "cycles" in r}
    for r in rows:
        base = cpu.get((r["network"], r["source"], r["variant"], r["tiler"]))
        if "cycles" in r:
            r["speedup_vs_cpu"] = base / r["cycles"] if base else None


HEADER = (f"{'network':<8} {'source':<8} {'variant':<13} {'config':<8} {'flow':<9} {'cycles':>10} {'ms':>9} "
          f"{'x cpu':>7} {'host ms':>8} {'accel ms':>9} {'dma ms':>7} {'conv util':>9} {'L2 B':>7} {'code B':>7} "
          f"{'compile s':>9} {'match':>5}  label")


def row_line(r: dict, host: str) -> str:
    if "error" in r:
        return (f"{r['network']:<8} {r['source']:<8} {r['variant']:<13} {r['config']:<8} {_flow(r):<9} "
                f"error: {r['error']}")
    ms = r["ms_per_core"]
    accel = sum(v for k, v in ms.items() if k not in (host, "dma"))
    convs = [layer["utilization"] for layer in r["accelerator_layers"] if layer["computes"] == "conv"]
    util = f"{max(convs):.1%}" if convs else "-"
    speedup = f"{r['speedup_vs_cpu']:.2f}" if r["speedup_vs_cpu"] else "-"
    return (f"{r['network']:<8} {r['source']:<8} {r['variant']:<13} {r['config']:<8} {_flow(r):<9} {r['cycles']:>10} "
            f"{r['ms']:>9.3f} {speedup:>7} {ms.get(host, 0):>8.3f} {accel:>9.3f} {ms.get('dma', 0):>7.3f} {util:>9} "
            f"{r['peak_l2_bytes']:>7} {r['code_size_bytes']:>7} {r['compile_s']:>9.2f} {str(r['outputs_match']):>5}  "
            f"{r['cycles_label']}")


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    return {"uname": " ".join(platform.uname()), "cpu": cpu, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def single_accelerator_configs(target) -> dict:
    return {c: zoo_variant(target, c) for c, cores in target.configs.items() if len(cores) == 1}


def run(args) -> int:
    target = targets.get(args.target)
    begin = time.monotonic()

    def progress(text: str, start: float) -> None:
        print(f"{time.monotonic() - start:7.1f}s {text}", file=sys.stderr, flush=True)

    todo = cases(target, args.quick, args.mlperf_dir)
    print(f"MLPerf Tiny on {target.name} at {target.clock_hz / 1e6:g} MHz; configs {', '.join(target.configs)}; "
          f"flows cp-sat+L1 (tinyc's defaults: CP-SAT tiling, L1 reuse) and dory (HTVM-style: DORY's tiling, "
          f"every tensor through L2).\nWeights: zoo int8 for {', '.join(int8_configs(target))}; zoo ternary for every other "
          f"config, with cpu on ternary as its baseline; official models int8 (scales not powers of two).\n"
          f"x cpu = cpu config cycles / cycles, same network, source, variant and tiler, this run.", flush=True)
    rows, traces = run_matrix(target, todo, args.on, progress)
    print(f"\n{HEADER}\n{'-' * len(HEADER)}")
    for r in rows:
        print(row_line(r, target.host.name))
    ok = [r for r in rows if "error" not in r]
    sweep_start = time.monotonic()
    accelerators = [c.name for c in target.cores if c.kind == "accelerator"]
    budget = [{"core": core, **row} for core in accelerators for row in sweeps.budget_sweep(target, core)]
    geometries = sweeps.GEOMETRIES[::3] if args.quick else sweeps.GEOMETRIES
    overhead = sweeps.overhead_sweep(target, single_accelerator_configs(target), geometries)
    progress(f"sweeps: {len(budget)} budget points, {len(overhead)} single layers", sweep_start)
    floor_table = floors.floors(ok, target)
    print("\nEach zoo int8 network against its floor (the larger of MACs / the fastest core's peak and weight bytes / "
          "DMA bytes per cycle, modeled), and tinyc's defaults against the HTVM-style flow (cut: fewer cycles)\n"
          + floors.format_floors(floor_table))
    table = paper.headlines(ok, target.configs, budget)
    print("\nThe papers' headline results beside tinyc's (same run; 'paper def.': the paper's own definition)\n"
          + paper.format_headlines(table))
    results = {"meta": {**machine_info(), "target": target.name, "clock_hz": target.clock_hz, "quick": args.quick,
                        "on": args.on, "int8_configs": int8_configs(target), "input_seed": INPUT_SEED},
               "rows": rows, "floors": floor_table, "headlines": table, "budget_sweep": budget, "overhead_sweep": overhead,
               "traces": traces}
    results["meta"]["seconds"] = round(time.monotonic() - begin, 1)  # the runs and sweeps, not the plotting
    written = figures.write_data(args.out, results) + figures.plot(args.out, results, target.clock_hz)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    pngs = "" if any(p.suffix == ".png" for p in written) else " (no PNG: pip install -e '.[plot]')"
    print(f"\nwrote {len(set(written))} files to {args.out}/{pngs}{f', rows to {args.json}' if args.json else ''}; "
          f"{round(time.monotonic() - begin, 1)} s on {results['meta']['cpu']}")
    return 1 if len(ok) < len(rows) or not all(r["outputs_match"] for r in ok) else 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))
