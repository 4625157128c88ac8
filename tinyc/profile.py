"""Profiling a compiled model: run it on the host emulator with $TINYC_PROFILE and put the emulator's
modeled counters into the report.

Every number here is modeled, not measured: the emulator's timeline (tinyc/runtime/tinyc_hal_emu.c)
prices each DMA transfer and job with the cost model of docs/accelerators.md and each host layer with
the host estimate, so the report says "modeled": true beside them.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from .errors import InputError, ToolchainError, UnsupportedError
from .toolchain import run_executable

PROFILE_ENV = "TINYC_PROFILE"


def profile(cm, inputs: dict, on: str = "host") -> dict:
    """{"outputs": {name: array}, "report": cm.report plus modeled "total_cycles", "cycles_per_core",
    "dma_bytes" and, per layer, "cycles", "cycles_per_core" and "dma_bytes"}."""
    if on == "qemu":
        raise UnsupportedError("profile(on='qemu') is not available yet: profile on the host emulator (on='host')")
    if on != "host":
        raise InputError(f"profile on 'host' or 'qemu', not {on!r}")
    with tempfile.TemporaryDirectory(prefix="tinyc-profile-") as tmp:
        path = Path(tmp) / "profile.txt"
        g = cm.graph
        arrays = [cm._input_array(name, inputs) for name in g.inputs]
        results = run_executable(cm.executable(), arrays, [(g.values[o].shape, g.values[o].dtype) for o in g.outputs],
                                 env={PROFILE_ENV: str(path)})
        text = path.read_text() if path.exists() else ""
    report = copy.deepcopy(cm.report)
    counters = parse(text, len(report["layers"]))
    for layer, measured in zip(report["layers"], counters["layers"]):
        layer.update(measured)
    report.update(modeled=True, profiled_on=on, total_cycles=counters["total"]["cycles"],
                  cycles_per_core=counters["total"]["cycles_per_core"], dma_bytes=counters["total"]["dma_bytes"])
    return {"outputs": dict(zip(g.outputs, results)), "report": report}


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
