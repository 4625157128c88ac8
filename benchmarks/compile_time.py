"""Compile time and memory plan quality per MLPerf Tiny model.

For the official int8 models (read in place from ../shared/models/mlperf_tiny, when present) and the
zoo's networks: tinyc.compile wall time (median of --repeat runs) and CPU time (the process's own, which a
shared machine's load does not stretch; mean), the emitted C's build time with
the host compiler (median; the runtime's objects come from tinyc's build cache, as on any rebuild), and
the peak L2 arena beside the liveness lower bound (the largest sum of tensors alive at one time), per
configuration of the target (every one unless --configs). Each compile starts with no tiling solved
(tinyc reuses a solve within a process: the figure is a first compile's).

    python3 benchmarks/compile_time.py [--repeat 5] [--target diana] [--configs digital mixed]
        [--variant int8|ternary] [--models official:kws zoo:ad] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tinyc  # noqa: E402
from tinyc import toolchain  # noqa: E402
from tinyc.bench.models import MLPERF_DIR, available_models  # noqa: E402  (shared with tinyc bench)
from tinyc.passes.tiling import solved_tiling  # noqa: E402


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def cold_compile(model, target: str, config: str):
    solved_tiling.cache_clear()
    return tinyc.compile(model, target=target, config=config)


def measure(model, target: str, config: str, repeat: int) -> dict:
    cpu_start = time.process_time()
    compile_runs, cm = timed(lambda: cold_compile(model, target, config), repeat)
    compile_cpu = (time.process_time() - cpu_start) / repeat  # the process's own CPU time: a shared machine's
    # load stretches the wall time, not this
    with tempfile.TemporaryDirectory(prefix="tinyc-bench-") as tmp:
        toolchain.build(cm.sources, Path(tmp) / "warm")  # fills the runtime object cache once
        build_runs, _ = timed(lambda: toolchain.build(cm.sources, tempfile.mkdtemp(dir=tmp)), repeat)
    totals = cm.report["totals"]
    arena, bound = totals["arena_bytes"], totals["arena_lower_bound_bytes"]
    return {"compile_s": statistics.median(compile_runs), "compile_runs_s": compile_runs,
            "compile_cpu_s": compile_cpu,
            "build_s": statistics.median(build_runs), "build_runs_s": build_runs,
            "layers": totals["layers"], "arena_bytes": arena, "arena_lower_bound_bytes": bound,
            "arena_ratio": arena / bound if bound else None}


HEADER = (f"{'model':<14} {'config':<8} {'compile s':>10} {'CPU s':>7} {'C build s':>10} {'arena B':>9} "
          f"{'lower bound B':>14} {'ratio':>6}")


def row_line(r: dict) -> str:
    if "error" in r:
        return f"{r['model']:<14} {r['config']:<8} error: {r['error']}"
    ratio = f"{r['arena_ratio']:.3f}" if r["arena_ratio"] is not None else "-"
    return (f"{r['model']:<14} {r['config']:<8} {r['compile_s']:>10.3f} {r['compile_cpu_s']:>7.3f} "
            f"{r['build_s']:>10.3f} {r['arena_bytes']:>9} {r['arena_lower_bound_bytes']:>14} {ratio:>6}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="runs per model; the median is reported (default 5)")
    p.add_argument("--target", default="cpu", help="target to compile for (default cpu)")
    p.add_argument("--configs", nargs="+", help="the target's configurations to compile for (default: every one)")
    p.add_argument("--variant", default="int8", help="the zoo's variant: int8 or ternary (default int8)")
    p.add_argument("--models", nargs="+", help="model ids, e.g. official:kws zoo:ad (default: all available)")
    p.add_argument("--mlperf-dir", type=Path, default=MLPERF_DIR, help="the official MLPerf Tiny models")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    models = available_models(args.mlperf_dir, args.variant)
    configs = args.configs or list(tinyc.targets.get(args.target).configs)
    unknown = sorted(set(args.models or []) - set(models))
    if unknown:
        p.error(f"unknown or missing models {', '.join(unknown)}; available: {', '.join(models)}")
    print(f"target {args.target}, median of {args.repeat} run(s)\n{HEADER}\n{'-' * len(HEADER)}", flush=True)
    rows = []
    for model_id in args.models or models:
        for config in configs:
            try:
                rows.append({"model": model_id, "config": config,
                             **measure(models[model_id](), args.target, config, args.repeat)})
            except tinyc.TinycError as e:
                rows.append({"model": model_id, "config": config, "error": str(e)})
            print(row_line(rows[-1]), flush=True)
    if args.json:
        figures = {"target": args.target, "variant": args.variant, "repeat": args.repeat,
                   "python": platform.python_version(), "machine": platform.machine(), "models": rows}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
