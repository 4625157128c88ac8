"""RV32 host instruction counts per MLPerf Tiny model, from CompiledModel.profile(on="qemu").

For the official int8 models (read in place from ../shared/models/mlperf_tiny, when present) and the
zoo's int8 networks, compiled for target "cpu" (or --target/--config, e.g. diana digital): the RV32IMC
build (tinyc.rv32) run on qemu with -icount shift=0, where minstret counts retired instructions
exactly. Reports the instructions of every host layer and their total, instructions per MAC over the
host's conv and dense layers, the accelerator layers' modeled cycles and the sum of both, and the RV32
code size of the model's closure without the HAL emulator (and with it). Counts, not cycles: a real
core's cycles add stalls (loads, branches, multiplies) that qemu does not model.

    python3 benchmarks/rv32_cycles.py [--models official:kws zoo:ad] [--target diana --config digital]
                                      [--seed 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tinyc  # noqa: E402
from tinyc import rv32  # noqa: E402
from tinyc.bench.models import MLPERF_DIR, available_models  # noqa: E402
from tinyc.toolchain import HAL_EXCLUDED  # noqa: E402

LABEL = "counted on qemu (instructions retired, icount shift=0)"


def measure(model, seed: int, target: str, config: str | None) -> dict:
    cm = tinyc.compile(model, target=target, config=config)
    report = cm.profile(cm.random_inputs(seed), on="qemu")["report"]
    layers = [{"name": layer["name"], "op": layer["op"], "core": layer["core"], "macs": layer["macs"],
               "cycles_source": layer["cycles_source"], "cycles": layer["cycles"], "instret": layer.get("instret"),
               "instret_per_mac": layer["instret"] / layer["macs"] if layer.get("instret") and layer["macs"] else None}
              for layer in report["layers"]]
    mac_layers = [layer for layer in layers if layer["macs"] and layer["instret"] is not None]
    macs = sum(layer["macs"] for layer in mac_layers)
    instret = sum(layer["instret"] for layer in mac_layers)
    return {"total_instret": report["instret"], "modeled_cycles": report["modeled_cycles"],
            "total_cycles": report["total_cycles"], "macs": macs, "mac_layers_instret": instret,
            "instret_per_mac": instret / macs if macs else None, "code_size": report["totals"]["code_size"],
            "code_size_with_emulator": rv32.code_size_rv32(cm.sources, with_emulator=True), "layers": layers}


HEADER = (f"{'model':<14} {'layers':>6} {'host MACs':>10} {'instret':>12} {'instr/MAC':>9} {'accel cyc':>10} "
          f"{'total cyc':>12} {'text B':>8} {'data B':>7} {'bss B':>7} {'+emu B':>7}")


def row_line(r: dict) -> str:
    if "error" in r:
        return f"{r['model']:<14} error: {r['error']}"
    per_mac = f"{r['instret_per_mac']:.2f}" if r["instret_per_mac"] is not None else "-"
    size, emulated = r["code_size"], r["code_size_with_emulator"]
    return (f"{r['model']:<14} {len(r['layers']):>6} {r['macs']:>10} {r['total_instret']:>12} {per_mac:>9} "
            f"{r['modeled_cycles']:>10} {r['total_cycles']:>12} {size['text']:>8} {size['data']:>7} {size['bss']:>7} "
            f"{emulated['text'] - size['text']:>7}")


def layer_lines(r: dict) -> list[str]:
    lines = [f"\n{r['model']}: per layer",
             f"  {'layer':<28} {'op':<12} {'core':<8} {'MACs':>10} {'cycles':>12} {'source':<16} {'instr/MAC':>9}"]
    for layer in r["layers"]:
        per_mac = f"{layer['instret_per_mac']:.2f}" if layer["instret_per_mac"] is not None else "-"
        lines.append(f"  {layer['name'][:28]:<28} {layer['op']:<12} {layer['core']:<8} {layer['macs']:>10} "
                     f"{layer['cycles']:>12} {layer['cycles_source']:<16} {per_mac:>9}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", help="model ids, e.g. official:kws zoo:ad (default: all available)")
    p.add_argument("--target", default="cpu", help="the target (default cpu: the whole model on the host)")
    p.add_argument("--config", help="the target's configuration, e.g. digital for diana (default its first)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--mlperf-dir", type=Path, default=MLPERF_DIR, help="the official MLPerf Tiny models")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    models = available_models(args.mlperf_dir)
    unknown = sorted(set(args.models or []) - set(models))
    if unknown:
        p.error(f"unknown or missing models {', '.join(unknown)}; available: {', '.join(models)}")
    where = " ".join(filter(None, [args.target, args.config]))
    print(f"RV32IMC host, target {where}: host layers {LABEL}, accelerator layers modeled (cost model); "
          f"code size excludes {HAL_EXCLUDED}, +emu B is what the emulator adds\n{HEADER}\n{'-' * len(HEADER)}",
          flush=True)
    rows = []
    for model_id in args.models or models:
        try:
            rows.append({"model": model_id, **measure(models[model_id](), args.seed, args.target, args.config)})
        except tinyc.TinycError as e:
            rows.append({"model": model_id, "error": str(e)})
        print(row_line(rows[-1]), flush=True)
    for r in rows:
        if "error" not in r:
            print("\n".join(layer_lines(r)))
    if args.json:
        figures = {"label": LABEL, "target": args.target, "config": args.config, "seed": args.seed,
                   "compiler": rv32.CC, "cflags": list(rv32.CFLAGS), "qemu": " ".join(rv32.qemu_command(rv32.ELF, [])),
                   "python": platform.python_version(), "models": rows}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
