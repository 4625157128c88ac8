"""One benchmark row: a model compiled for one configuration and tiler, profiled, checked, measured.

Labels: every cycle count is "modeled" (the emulator's timeline, priced by tinyc's cost model) unless
the RV32 build ran on qemu and counted the host's instructions ("counted"); accelerator layers are
always modeled. Compile time and outputs_match are measured on this machine.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import rv32
from ..compiler import compile as compile_model
from ..targets import cost

TRACE_ENV = "TINYC_TRACE"


def is_counted(report: dict) -> bool:
    """Whether a profile counted some host layer's instructions (on qemu; not where every layer runs on
    an accelerator, nor on the host emulator, whose host cycles are the cost model's estimate)."""
    return any("instret" in layer for layer in report["layers"])


def measure(model, target, config: str, tiler: str, l1_reuse: bool, name: str, inputs_seed: int, on: str,
            measured: dict) -> tuple[dict, object]:
    """The row's figures, and the CompiledModel (for the time diagram's trace). `measured` maps the C
    sources already run to their figures: the same program on the same input gives the same figures
    (the emulator and qemu are deterministic), so a configuration the tiler or the dispatch leaves
    unchanged (cpu with either tiler; an official model that no accelerator takes) is run once."""
    start = time.perf_counter()
    cm = compile_model(model, target=target.name, config=config, name=name, tiler=tiler, l1_reuse=l1_reuse)
    compile_s = time.perf_counter() - start
    key = hashlib.sha256(repr(sorted(cm.sources.items())).encode()).hexdigest()
    if key not in measured:
        measured[key] = run_figures(cm, target, inputs_seed, on)
    return {**measured[key], "compile_s": compile_s}, cm


def run_figures(cm, target, inputs_seed: int, on: str) -> dict:
    inputs = cm.random_inputs(inputs_seed)
    report = cm.profile(inputs, on=on)["report"]
    counted = is_counted(report)
    ran, expected = cm.run(inputs), cm.interpret(inputs)
    matches = all(np.array_equal(ran[k], expected[k]) for k in cm.graph.outputs)
    totals = report["totals"]
    # profile(on="qemu") reports the RV32 build's size; the host emulator's report has the host's
    size = totals["code_size"] if rv32.CC in totals["code_size"]["compiler"] else rv32.code_size_rv32(cm.sources)
    cycles = int(report["total_cycles"])
    per_core = {core: int(c) for core, c in report["cycles_per_core"].items()}
    ms = 1e3 / target.clock_hz
    accelerated = accelerator_layers(report, target, cm.graph)
    return {
        "cycles": cycles, "ms": cycles * ms,
        "cycles_label": ("counted host + modeled accelerators" if accelerated else "counted") if counted else "modeled",
        "host_cycles_label": "counted (RV32 instructions retired on qemu)" if counted else "modeled",
        "profiled_on": report.get("profiled_on", on),
        "cycles_per_core": per_core, "ms_per_core": {core: c * ms for core, c in per_core.items()},
        "layers": len(report["layers"]),
        "host_layers": sum(layer["core"] == target.host.name for layer in report["layers"]),
        "accelerator_layers": accelerated,
        "macs": totals["macs"],
        "peak_l2_bytes": totals["weights_bytes"] + totals["arena_bytes"],
        "weights_bytes": totals["weights_bytes"], "arena_bytes": totals["arena_bytes"],
        "code_size_bytes": size["text"] + size["data"],
        "code_size_rv32": {k: size[k] for k in ("text", "data", "bss")},
        "outputs_match": matches,
    }


def accelerator_layers(report: dict, target, graph) -> list[dict]:
    """Each accelerator job (its anchor layer) with its profiled cycles, its utilization against its
    core's peak (MACs / (peak MAC/cycle x cycles)) and its overhead over the core's ideal time for its
    geometry (cost.ideal_cycles, HTVM's Fig. 5), all modeled."""
    machines = {c.name: cost.machine(target, c) for c in target.cores if c.kind == "accelerator"}
    rows = []
    for layer in report["layers"]:
        if layer["core"] not in machines or "modeled" not in layer:
            continue  # a host layer, or an inner node of an accelerator chain (the anchor has the job)
        m = machines[layer["core"]]
        macs, cycles = layer["modeled"]["macs"], int(layer["cycles"])
        geometry = cost.layer_geometry(graph, layer["name"], target.core(layer["core"]).job(layer["pattern"]))
        ideal = cost.ideal_cycles(geometry, m)
        rows.append({"name": layer["name"], "core": layer["core"], "pattern": layer["pattern"],
                     "computes": geometry.job.computes, "macs": macs,
                     "cycles": cycles, "peak_macs_per_cycle": m.peak_macs_per_cycle,
                     "utilization": macs / (m.peak_macs_per_cycle * cycles) if cycles else 0.0,
                     "kernel": [geometry.kh, geometry.kw], "c_in": geometry.c_in, "c_out": geometry.c_out,
                     "ideal_cycles": ideal, "overhead_pct": 100 * (cycles / ideal - 1) if ideal else None})
    return rows


def busy_intervals(cm, inputs_seed: int) -> dict:
    """{"cores": [host, cores..., "dma"], "intervals": [(who, start, end, layer index)]}: the emulator's
    trace of one run ($TINYC_TRACE), modeled cycles."""
    with tempfile.TemporaryDirectory(prefix="tinyc-trace-") as tmp:
        path = Path(tmp) / "trace.txt"
        cm.run(cm.random_inputs(inputs_seed), env={TRACE_ENV: str(path)})
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    intervals = [tuple(int(f) for f in line) for line in lines[1:] if line[0].isdigit()]  # not the HAL calls
    return {"cores": lines[0][1:], "intervals": intervals}
