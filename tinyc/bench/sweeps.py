"""Single-layer sweeps, every figure MODELED by tinyc's cost model (tinyc/targets/cost.py).

- budget_sweep: the HTVM paper's single layers, latency against the L1 activation budget, for the
  CP-SAT tiler, DORY's heuristic and a hardware-agnostic tiler that only maximizes the tile (HTVM's
  Fig. 4 baseline; also benchmarks/tiling.py's figure).
- overhead_sweep: conv, depthwise and dense layers of growing size compiled alone through tinyc.compile
  for each single-accelerator configuration, the layer's modeled cycles against its core's peak (MACs
  per cycle) and against the core's ideal time for that geometry (HTVM's Fig. 5: the PE array's
  passes alone, no set-up, DMA or array load): how far tiling, DMA and job set-up keep a core from it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import quantize
from ..compiler import compile as compile_model
from ..errors import DoesNotFitError, TinycError
from ..passes.tiling import Choice, tile_layer
from ..targets import cost, diana
from ..targets.cost import Layer, Machine
from ..zoo.graph import Net

PAPER = {  # single layers as in HTVM's tiling experiment
    "conv 32x32x32 3x3 -> 32": Layer("conv", diana.CONV2D, 32, 32, 32, 32, 32, 32, 3, 3, 1, 1, (1, 1, 1, 1)),
    "depthwise 32x32x32 3x3": Layer("depthwise", diana.DEPTHWISE, 32, 32, 32, 32, 32, 32, 3, 3, 1, 1, (1, 1, 1, 1)),
    "dense 640 -> 128": Layer("dense", diana.DENSE, 640, 1, 1, 128, 1, 1),
}
BUDGETS = (2000, 4000, 8000, 12000, 16000, 24000, 32000, 48000, 64000, 96000, 128000, 192000, 256000)
TILERS = ("cp-sat", "dory")
AGNOSTIC = "max-tile"  # the hardware-agnostic baseline of HTVM's Fig. 4

# (kind, c_in, c_out, height = width, kernel); dense: (kind, inputs, outputs, 1, 1). Sizes from the
# MLPerf Tiny networks' own layers up to the rows of one analog array (1152) and
# what L2 holds of int8 weights.
GEOMETRIES = (
    ("conv2d", 16, 16, 32, 3), ("conv2d", 32, 32, 32, 3), ("conv2d", 64, 64, 16, 3),
    ("conv2d", 128, 128, 8, 3), ("conv2d", 64, 128, 16, 1), ("conv2d", 128, 256, 8, 1),
    ("depthwise", 16, 16, 32, 3), ("depthwise", 32, 32, 32, 3), ("depthwise", 64, 64, 16, 3),
    ("depthwise", 128, 128, 8, 3),
    ("dense", 64, 64, 1, 1), ("dense", 256, 128, 1, 1), ("dense", 640, 128, 1, 1), ("dense", 1024, 256, 1, 1),
    ("dense", 1152, 256, 1, 1),
)
CALIBRATION_SAMPLES = 8


def max_tile(layer: Layer, m: Machine) -> Choice:
    """A tiler that knows the memories but not the core: the legal tile holding the most bytes, single
    buffered (DORY's generic objective without its DIANA heuristics); ties to more channels, then rows."""
    fitting = [t for t in cost.legal_tiles(layer, m, 1) if cost.fits(layer, t, m)]
    if not fitting:
        raise DoesNotFitError("no tiling fits", node=layer.name)
    tile = max(fitting, key=lambda t: (sum(cost.footprint(layer, t)), t.tc, t.th, t.tw))
    return Choice(tile, cost.evaluate(layer, tile, m), False, 0, 0.0)


def _tile(layer: Layer, m: Machine, tiler: str) -> Choice:
    return max_tile(layer, m) if tiler == AGNOSTIC else tile_layer(layer, m, tiler)


def budget_sweep(target, core_name: str) -> list[dict]:
    """The PAPER layers whose job kind the core has a pattern of (HTVM's experiment: the digital core)."""
    core = target.core(core_name)
    kinds = {p.name for p in core.patterns}
    base = cost.machine(target, core)
    rows = []
    for name, layer in ((n, layer) for n, layer in PAPER.items() if layer.kind in kinds):
        for budget in BUDGETS:
            m = replace(base, activation_bytes=budget)
            for tiler in TILERS + (AGNOSTIC,):
                try:
                    choice = _tile(layer, m, tiler)
                except DoesNotFitError:
                    rows.append({"layer": name, "l1_activation_bytes": budget, "tiler": tiler, "modeled_cycles": None})
                    continue
                rows.append({"layer": name, "l1_activation_bytes": budget, "tiler": tiler,
                             "modeled_cycles": choice.cost.cycles,
                             "modeled_utilization": round(choice.cost.utilization, 4),
                             "tile": "x".join(map(str, (choice.tile.tc, choice.tile.th, choice.tile.tw))),
                             "buffers": choice.tile.buffers, "solve_seconds": round(choice.seconds, 4)})
    return rows


def single_layer(kind: str, c_in: int, c_out: int, size: int, kernel: int, variant: str):
    """A one-layer int8 (or ternary-weight) QDQ model with power-of-two scales, and its layer's name.

    A ternary layer gets a 1x1 depthwise prelude whose requantization the quantizer clamps to the 7 bits
    the analog core takes (a graph input would be full int8); a dense one reads it flattened."""
    ternary = variant == "ternary"
    dense_input = [1, c_in, 1, 1] if ternary else [1, c_in]
    net = Net(f"{kind}_{c_in}_{c_out}_{size}_{kernel}", seed=0,
              input_shape=dense_input if kind == "dense" else [1, c_in, size, size])
    x = "input"
    if ternary:
        x = net.conv(x, c_in, c_in, 1, group=c_in, relu=False)
        x = net.flatten(x, c_in) if kind == "dense" else x
    first = len(net.nodes)
    if kind == "dense":
        out, shape = net.dense(x, c_in, c_out), [1, c_out]
    else:
        group = c_in if kind == "depthwise" else 1
        pad = kernel // 2
        out, shape = net.conv(x, c_in, c_out, kernel, pads=(pad,) * 4, group=group), [1, c_out, size, size]
    layer = net.nodes[first].name
    calibration = np.random.default_rng(1).standard_normal((CALIBRATION_SAMPLES, *net.input_shape[1:]),
                                                           dtype=np.float32)
    model = quantize(net.finish(out, shape), calibration, per_channel=False, power_of_two=True, io="int8",
                     ternary=[layer] if ternary else None)
    return model, layer


def overhead_sweep(target, configs: dict[str, str], geometries=GEOMETRIES) -> list[dict]:
    """configs: single-accelerator configuration -> the weight variant its core takes."""
    rows = []
    for config, variant in configs.items():
        core = target.accelerators(config)[0]
        machine = cost.machine(target, core)
        peak = machine.peak_macs_per_cycle
        for kind, c_in, c_out, size, kernel in geometries:
            row = {"config": config, "core": core.name, "variant": variant, "kind": kind, "c_in": c_in,
                   "c_out": c_out, "size": size, "kernel": kernel}
            try:
                model, _ = single_layer(kind, c_in, c_out, size, kernel, variant)
                graph = compile_model(model, target=target.name, config=config, name=row["kind"]).graph
            except TinycError as e:
                rows.append({**row, "taken": False, "reason": str(e)})
                continue
            placements = [n.placement for n in graph.nodes() if n.placement is not None]
            job = [n for n in graph.nodes() if n.placement is not None and n.placement.core == core.name
                   and n.placement.cost is not None]
            if not job:
                reasons = sorted({p.reason for p in placements if p.reason})
                rows.append({**row, "taken": False, "reason": "; ".join(reasons)})
                continue
            modeled = job[0].placement.cost
            utilization = modeled["macs"] / (peak * modeled["cycles"])
            layer = cost.layer_geometry(graph, job[0], core.job(job[0].placement.pattern))
            ideal = cost.ideal_cycles(layer, machine)
            rows.append({**row, "taken": True, "macs": modeled["macs"], "modeled_cycles": modeled["cycles"],
                         "ideal_cycles": modeled["macs"] / peak, "modeled_utilization": utilization,
                         "modeled_overhead_pct": 100 * (1 - utilization), "geometry_ideal_cycles": ideal,
                         "overhead_vs_geometry_pct": 100 * (modeled["cycles"] / ideal - 1),
                         "tile": dict(job[0].placement.tile)})
    return rows
