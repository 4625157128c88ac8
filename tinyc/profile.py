"""Profiling a compiled model, into a copy of its report with cycles per layer, per core and in total.

on="host": the host build on the emulator with $TINYC_PROFILE. Every number is modeled, not measured:
the emulator's timeline (tinyc/runtime/tinyc_hal_emu.c) prices each DMA transfer and job with the cost
model of docs/accelerators.md and each host layer with the host estimate, so the report says
"modeled": true beside them.

on="qemu": the RV32 build on qemu (tinyc.rv32). Host layers get the instructions they retired, counted
exactly, at one cycle per instruction. Accelerator layers keep their modeled cycles: on qemu their
instructions are the emulator's, which a deployment does not run, so the model does not count them
(tinyc_counters.h), and their cycles are the tiler's cost-model figures, which the emulator's timeline
reproduces exactly (tests/test_accel_backend.py). Each layer and the report say which is which.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from . import rv32
from .errors import InputError, ToolchainError

PROFILE_ENV = "TINYC_PROFILE"
COUNTED = "counted on qemu"
MODELED = "modeled"
TOTAL_SOURCE = ("host layers counted on qemu (instructions retired, icount shift=0, one cycle each) "
                "+ accelerator layers modeled (cost model)")


def profile(cm, inputs: dict, on: str = "host") -> dict:
    """{"outputs": {name: array}, "report": cm.report plus "total_cycles", "cycles_per_core",
    "dma_bytes" and, per layer, "cycles", "cycles_per_core" and "dma_bytes"}; on="qemu" adds how each
    figure was found (see the module's doc)."""
    if on == "qemu":
        return profile_on_qemu(cm, inputs)
    if on != "host":
        raise InputError(f"profile on 'host' or 'qemu', not {on!r}")
    with tempfile.TemporaryDirectory(prefix="tinyc-profile-") as tmp:
        path = Path(tmp) / "profile.txt"
        outputs = cm.run(inputs, env={PROFILE_ENV: str(path)})
        text = path.read_text() if path.exists() else ""
    report = copy.deepcopy(cm.report)
    counters = parse(text, len(report["layers"]))
    for layer, measured in zip(report["layers"], counters["layers"]):
        layer.update(measured)
    report.update(modeled=True, profiled_on=on, total_cycles=counters["total"]["cycles"],
                  cycles_per_core=counters["total"]["cycles_per_core"], dma_bytes=counters["total"]["dma_bytes"])
    return {"outputs": outputs, "report": report}


def profile_on_qemu(cm, inputs: dict) -> dict:
    """The qemu profile: per layer "cycles_source" ("counted on qemu", with "instret", or "modeled"),
    and in total "counted_cycles" + "modeled_cycles" = "total_cycles", the host's "instret", and the
    RV32 build's code size as totals.code_size."""
    g = cm.graph
    with tempfile.TemporaryDirectory(prefix="tinyc-profile-qemu-") as tmp:
        outputs, counted, instret = rv32.run_model(cm, {n: cm.input_array(n, inputs) for n in g.inputs}, tmp)
    report = copy.deepcopy(cm.report)
    host = cm.target.host.name
    cores = [host] + [c.name for c in cm.target.cores if c.kind == "accelerator"] + ["dma"]
    hosted = [i for i, layer in enumerate(report["layers"]) if layer["core"] == host]
    if sorted(counted) != hosted:
        raise ToolchainError(f"the RV32 build counted layers {sorted(counted)}, the host runs layers {hosted}")
    for i, layer in enumerate(report["layers"]):
        per_core = dict.fromkeys(cores, 0)
        if i in counted:
            per_core[host] = counted[i]
            layer.update(instret=counted[i], cycles=counted[i], cycles_source=COUNTED, dma_bytes=0)
        else:
            modeled = layer.get("modeled")
            if modeled is None:
                raise ToolchainError(f"runs on {layer['core']} without a modeled cost", node=layer["name"])
            per_core[layer["core"]], per_core["dma"] = modeled["compute_cycles"], modeled["dma_cycles"]
            layer.update(cycles=modeled["cycles"], cycles_source=MODELED, dma_bytes=modeled["dma_bytes"])
        layer["cycles_per_core"] = per_core
    layers = report["layers"]
    report.update(profiled_on="qemu", cycles_source=TOTAL_SOURCE, instret=instret,
                  counted_cycles=sum(layer["cycles"] for layer in layers if layer["cycles_source"] == COUNTED),
                  modeled_cycles=sum(layer["cycles"] for layer in layers if layer["cycles_source"] == MODELED),
                  total_cycles=sum(layer["cycles"] for layer in layers),
                  cycles_per_core={c: sum(layer["cycles_per_core"][c] for layer in layers) for c in cores},
                  dma_bytes=sum(layer["dma_bytes"] for layer in layers))
    report["totals"]["code_size"] = rv32.code_size_rv32(cm.sources)
    return {"outputs": outputs, "report": report}


def parse(text: str, num_layers: int) -> dict:
    """The emulator's profile: a `cores` line naming the busy columns, one `layer <index> <cycles>
    <dma bytes> <busy cycles per core>... <name>` line per layer that ran, and a `total` line."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0][0] != "cores" or lines[-1][0] != "total":
        raise ToolchainError(f"the emulator wrote no complete profile (${PROFILE_ENV})")
    cores = lines[0][1:]

    def counters(fields: list[str]) -> dict:
        numbers = [int(f) for f in fields[:2 + len(cores)]]
        return {"cycles": numbers[0], "dma_bytes": numbers[1], "cycles_per_core": dict(zip(cores, numbers[2:]))}

    layers = [counters(line[2:]) for line in lines[1:-1] if line[0] == "layer"]
    if [int(line[1]) for line in lines[1:-1] if line[0] == "layer"] != list(range(num_layers)):
        raise ToolchainError(f"the emulator's profile does not list the model's {num_layers} layers in order")
    return {"layers": layers, "total": counters(lines[-1][1:])}
