"""Tiling benchmark, all figures MODELED by tinyc's cost model (tinyc/targets/cost.py), not measured.

1. Every accelerator layer of the zoo networks on DIANA's digital core, tiled alone (input from L2,
   output to L2): modeled cycles and utilization (MACs / (256 x cycles)) for the CP-SAT tiler and DORY's
   heuristic, and the tiling's solve time.
2. The zoo networks compiled whole for the digital config: tinyc's defaults (CP-SAT, L1 reuse) beside
   the HTVM-style flow (dory, no L1 reuse), accelerator cycles per network, and utilization and
   overhead over the ideal time of the geometry (cost.ideal_cycles) per layer kind.
3. The HTVM paper's single-layer geometries: modeled latency against the L1 activation budget, for both
   tilers and the hardware-agnostic max-tile (HTVM's Fig. 4), written as CSV and JSON (and a PNG when
   matplotlib is importable) to --out.

    PYTHONPATH=. python3 benchmarks/tiling.py --out build/bench-tiling
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import tinyc.zoo
from tinyc import targets
from tinyc.bench.sweeps import AGNOSTIC, BUDGETS, PAPER, TILERS, budget_sweep  # shared with tinyc bench mlperf-tiny
from tinyc.compiler import compile as compile_model
from tinyc.frontend.onnx import from_onnx
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import dispatch
from tinyc.passes.tiling import tile_layer
from tinyc.targets import cost


def zoo_table(target, core_name: str) -> list[dict]:
    m = cost.machine(target, target.core(core_name))
    rows = []
    for net in tinyc.zoo.names():
        g = dispatch(canonicalize(from_onnx(tinyc.zoo.build(net, "int8"))), target, "digital")
        for n in g.nodes():
            p = n.placement
            if p.core != core_name or p.anchor != n.name:
                continue
            layer = cost.layer_geometry(g, n, target.core(p.core).job(p.pattern))
            row = {"net": net, "layer": n.name, "kind": p.pattern, "macs": layer.macs}
            for tiler in TILERS:
                choice = tile_layer(layer, m, tiler)
                t = choice.tile
                row[tiler] = {"tile": [t.tc, t.th, t.tw, t.buffers], "modeled_cycles": choice.cost.cycles,
                              "modeled_utilization": choice.cost.utilization, "solve_seconds": choice.seconds,
                              "proven_optimal": choice.proven}
            rows.append(row)
    return rows


def print_zoo(rows: list[dict]) -> None:
    print("MODELED per-layer figures on DIANA's digital core (cost model, not measurements)")
    print(f"{'net':4} {'layer':8} {'kind':9} {'tile cp-sat (c,h,w,buf)':24} {'cycles':>7} {'util':>6} "
          f"{'solve s':>7} | {'tile dory':18} {'cycles':>7} {'util':>6} {'dory/cp':>7}")
    for r in rows:
        c, d = r["cp-sat"], r["dory"]
        print(f"{r['net']:4} {r['layer']:8} {r['kind']:9} {str(tuple(c['tile'])):24} {c['modeled_cycles']:7d} "
              f"{c['modeled_utilization']:6.1%} {c['solve_seconds']:7.3f} | {str(tuple(d['tile'])):18} "
              f"{d['modeled_cycles']:7d} {d['modeled_utilization']:6.1%} "
              f"{d['modeled_cycles'] / c['modeled_cycles']:7.2f}")
    print("\nMODELED totals per network (accelerator layers)")
    for net in dict.fromkeys(r["net"] for r in rows):
        mine = [r for r in rows if r["net"] == net]
        convs = [r for r in mine if r["kind"] == "conv2d"]
        cp = sum(r["cp-sat"]["modeled_cycles"] for r in mine)
        dory = sum(r["dory"]["modeled_cycles"] for r in mine)
        print(f"{net}: {len(mine)} layers, {cp} modeled cycles (dory {dory}, dory/cp-sat {dory / cp:.2f}), "
              f"mean modeled utilization {_mean(mine):.1%} (conv2d {_mean(convs):.1%}), "
              f"CP-SAT {sum(r['cp-sat']['solve_seconds'] for r in mine):.2f} s, "
              f"optimal on all: {all(r['cp-sat']['proven_optimal'] for r in mine)}")


def _mean(rows: list[dict]) -> float:
    """Mean modeled utilization of the CP-SAT tilings (nan without rows: the percentage prints nan%)."""
    values = [r["cp-sat"]["modeled_utilization"] for r in rows]
    return sum(values) / len(values) if values else float("nan")


FLOWS = {"defaults": {}, "htvm-style": {"tiler": "dory", "l1_reuse": False}}


def kind_of(layer) -> str:
    """conv2d 3x3, conv2d 1x1 (>= 16 input and output channels: the layers issue 12 asks about), else
    the pattern."""
    if layer.kind == "conv2d" and (layer.kh, layer.kw) in ((3, 3), (1, 1)) and min(layer.c_in, layer.c_out) >= 16:
        return f"conv2d {layer.kh}x{layer.kw} >=16ch"
    return layer.kind


def flows_table(target, config: str = "digital") -> list[dict]:
    """Per zoo network and flow: every accelerator layer's modeled cycles, utilization and overhead."""
    rows = []
    for net in tinyc.zoo.names():
        model = tinyc.zoo.build(net, "int8")
        for flow, options in FLOWS.items():
            g = compile_model(model, target=target.name, config=config, **options).graph
            for n in g.nodes():
                p = n.placement
                if p.core == target.host.name or p.anchor != n.name:
                    continue
                m = cost.machine(target, target.core(p.core))
                layer = cost.layer_geometry(g, n, target.core(p.core).job(p.pattern))
                rows.append({"net": net, "flow": flow, "layer": n.name, "kind": kind_of(layer),
                             "modeled_cycles": p.cost["cycles"], "modeled_utilization": p.cost["utilization"],
                             "ideal_cycles": cost.ideal_cycles(layer, m),
                             "in_l1": bool(p.tile.get("l1", {}).get("output", -1) >= 0)})
    return rows


def print_flows(rows: list[dict]) -> None:
    print("\nMODELED whole networks, digital config: tinyc's defaults (cp-sat, L1 reuse) vs the HTVM-style "
          "flow (dory, no L1 reuse), accelerator layers")
    for net in dict.fromkeys(r["net"] for r in rows):
        total = {f: sum(r["modeled_cycles"] for r in rows if r["net"] == net and r["flow"] == f) for f in FLOWS}
        print(f"{net}: defaults {total['defaults']} cycles, HTVM-style {total['htvm-style']} "
              f"({100 * (1 - total['defaults'] / total['htvm-style']):.1f}% fewer)")
    print("\nMODELED per layer kind (tinyc's defaults): best and mean utilization; least overhead over the "
          "ideal time of the geometry")
    mine = [r for r in rows if r["flow"] == "defaults"]
    for kind in sorted({r["kind"] for r in mine}):
        of = [r for r in mine if r["kind"] == kind]
        best = max(of, key=lambda r: r["modeled_utilization"])
        overhead = min(100 * (r["modeled_cycles"] / r["ideal_cycles"] - 1) for r in of)
        print(f"  {kind:20} {len(of):3} layers  best {best['modeled_utilization']:6.1%} ({best['net']} "
              f"{best['layer']})  mean {sum(r['modeled_utilization'] for r in of) / len(of):6.1%}  "
              f"least overhead {overhead:6.1f}%")


def print_sweep(rows: list[dict]) -> None:
    print("\nMODELED latency (cycles) against the L1 activation budget")
    for name in PAPER:
        print(f"{name}:")
        for budget in BUDGETS:
            cells = {r["tiler"]: r for r in rows if r["layer"] == name and r["l1_activation_bytes"] == budget}
            cp, dory, agnostic = (cells[t]["modeled_cycles"] for t in ("cp-sat", "dory", AGNOSTIC))
            ratio = f"{dory / cp:.2f}" if cp and dory else "-"
            fig4 = f"{agnostic / dory:.2f}" if agnostic and dory else "-"
            print(f"  {budget:7d} B  cp-sat {cp!s:>7}  dory {dory!s:>7}  {AGNOSTIC} {agnostic!s:>7}  "
                  f"dory/cp-sat {ratio}  {AGNOSTIC}/dory {fig4}")


def write(rows_zoo: list[dict], rows_flows: list[dict], rows_sweep: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    note = "all cycles and utilizations are MODELED by tinyc's cost model, not measured"
    (out / "tiling_modeled.json").write_text(json.dumps({"note": note, "zoo": rows_zoo, "flows": rows_flows,
                                                         "budget_sweep": rows_sweep}, indent=1))
    fields = ["layer", "l1_activation_bytes", "tiler", "modeled_cycles", "modeled_utilization", "tile", "buffers",
              "solve_seconds"]
    with open(out / "tiling_budget_sweep_modeled.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows_sweep)
    with open(out / "tiling_zoo_modeled.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["net", "layer", "kind", "macs", "tiler", "tile", "modeled_cycles", "modeled_utilization",
                         "solve_seconds", "proven_optimal"])
        for r in rows_zoo:
            for tiler in TILERS:
                c = r[tiler]
                writer.writerow([r["net"], r["layer"], r["kind"], r["macs"], tiler, "x".join(map(str, c["tile"])),
                                 c["modeled_cycles"], round(c["modeled_utilization"], 4),
                                 round(c["solve_seconds"], 4), c["proven_optimal"]])
    _plot(rows_sweep, out / "tiling_budget_sweep_modeled.png")


def _plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not importable: no PNG")
        return
    fig, axes = plt.subplots(1, len(PAPER), figsize=(5 * len(PAPER), 4))
    for ax, name in zip(axes, PAPER):
        for tiler in TILERS + (AGNOSTIC,):
            pts = [(r["l1_activation_bytes"] / 1000, r["modeled_cycles"]) for r in rows
                   if r["layer"] == name and r["tiler"] == tiler and r["modeled_cycles"]]
            ax.plot(*zip(*pts), marker="o", label=tiler)
        ax.set_xscale("log", base=2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("L1 activation budget (kB)")
        ax.set_ylabel("modeled cycles")
        ax.legend()
    fig.suptitle("MODELED latency against the L1 activation budget (tinyc cost model)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-tiling"), help="directory for CSV, JSON, PNG")
    parser.add_argument("--target", default="diana")
    parser.add_argument("--core", default="digital")
    args = parser.parse_args()
    target = targets.get(args.target)
    zoo = zoo_table(target, args.core)
    print_zoo(zoo)
    flows = flows_table(target)
    print_flows(flows)
    sweep = budget_sweep(target, args.core)
    print_sweep(sweep)
    write(zoo, flows, sweep, args.out)
    print(f"wrote {args.out}/tiling_modeled.json, tiling_zoo_modeled.csv, tiling_budget_sweep_modeled.csv")


if __name__ == "__main__":
    main()
