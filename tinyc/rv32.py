"""The emitted C project built for the RV32IMC host and run on qemu, with exact instruction counts.

riscv64-unknown-elf-gcc cross-compiles for rv32imc/ilp32 against picolibc with the flags of the emitted
Makefile's `rv32` target (tinyc/backends/c/emit.py says why each is there), so main.c's
fopen/fread/fwrite reach the host through semihosting. qemu runs with -icount shift=0: the minstret CSR
then counts retired instructions exactly (without icount qemu returns host time there), so counts repeat
to the instruction. The model counts its host layers itself (tinyc_counters.h, on with -DTINYC_COUNTERS).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .backends.c.emit import RV32_CFLAGS as CFLAGS, RV32_COUNTERS, RV32_ELF as ELF, RV32_LDFLAGS as LDFLAGS
from .errors import ToolchainError
from .toolchain import (HAL_EXCLUDED, RUNTIME_PREFIX, closure_size, output_paths, project_files, read_outputs,
                        run_tool, runtime_objects, write_inputs)

CC = "riscv64-unknown-elf-gcc"
SIZE = "riscv64-unknown-elf-size"
QEMU = "qemu-system-riscv32"
QEMU_ARGS = ("-M", "virt", "-bios", "none", "-display", "none", "-serial", "none", "-monitor", "none",
             "-icount", "shift=0")
COUNT_LINE = re.compile(r"^tinyc-instret (layer (\d+)|total) (\d+)$", re.M)


def require_tools() -> None:
    missing = [tool for tool in (CC, SIZE, QEMU) if shutil.which(tool) is None]
    if missing:
        raise ToolchainError(f"{', '.join(missing)} not found: `make rv32-tools` installs the RV32 cross "
                             f"compiler, picolibc and qemu")


def build_rv32(sources: dict[str, str] | str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Writes the project into workdir and cross-compiles it with instruction counters, as `make rv32`
    does; returns the ELF."""
    require_tools()
    files = project_files(sources)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (work / name).write_text(text)
    flags = CFLAGS + (RV32_COUNTERS,)
    objects = runtime_objects(files, CC, flags)
    own = [n for n in sorted(files) if n.endswith(".c") and not n.startswith(RUNTIME_PREFIX)]
    elf = work / ELF
    run_tool([CC, *flags, *LDFLAGS, "-I", str(work), "-o", str(elf), *own, *map(str, objects), "-lm"], work,
         "building the model for RV32")
    return elf


def qemu_command(elf: str | os.PathLike, args: list[str]) -> list[str]:
    """qemu's command line; `args` become the harness's argv[1:] (picolibc supplies argv[0])."""
    if any("," in a for a in args):
        raise ToolchainError(f"semihosting arguments cannot hold a comma: {args}")
    semihosting = ",".join(["enable=on", "target=native"] + [f"arg={a}" for a in args])
    return [QEMU, *QEMU_ARGS, "-semihosting-config", semihosting, "-kernel", str(elf)]


def run_qemu(elf: str | os.PathLike, inputs: list[np.ndarray], outputs: list[tuple[tuple[int, ...], str]],
             timeout: float = 600) -> tuple[list[np.ndarray], dict[int, int], int]:
    """Runs an ELF from build_rv32 on qemu; returns its outputs, the instructions each host layer
    retired by layer index, and their sum."""
    require_tools()
    elf = Path(elf).resolve()
    with tempfile.TemporaryDirectory(prefix="tinyc-qemu-") as tmp:
        ins, outs = write_inputs(inputs, Path(tmp)), output_paths(outputs, Path(tmp))
        # relative names: semihosting opens them in qemu's working directory
        args = [p.name for p in ins] + ["--"] + [p.name for p in outs]
        proc = run_tool(qemu_command(elf, args), Path(tmp), f"running {elf.name} on {QEMU}", timeout)
        results = read_outputs(outputs, Path(tmp), elf.name)
    layers, total = _parse_counts(proc.stdout + proc.stderr, elf.name)
    return results, layers, total


def run_model(model, inputs: dict, workdir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[int, int], int]:
    """A CompiledModel built in workdir and run once on qemu: its outputs by name, the instructions
    each host layer retired by its index in model.report["layers"], and their sum."""
    g = model.graph
    elf = build_rv32(model.sources, workdir)
    outputs = [(g.values[o].shape, g.values[o].dtype) for o in g.outputs]
    arrays, layers, total = run_qemu(elf, [np.asarray(inputs[n]) for n in g.inputs], outputs)
    return dict(zip(g.outputs, arrays)), layers, total


def _parse_counts(text: str, who: str) -> tuple[dict[int, int], int]:
    if "tinyc-instret error" in text:
        raise ToolchainError(f"{who}: {text[text.index('tinyc-instret error'):].splitlines()[0]}")
    layers, total = {}, None
    for match in COUNT_LINE.finditer(text):
        if match.group(2) is None:
            total = int(match.group(3))
        elif layers and int(match.group(2)) <= max(layers):
            raise ToolchainError(f"{who}: instruction counts out of order at layer {match.group(2)}")
        else:
            layers[int(match.group(2))] = int(match.group(3))
    if total is None:
        raise ToolchainError(f"{who} printed no instruction counts (built without {RV32_COUNTERS}?)")
    return layers, total


def code_size_rv32(sources: dict[str, str] | str | os.PathLike, with_emulator: bool = False) -> dict:
    """Bytes the model needs on the chip: its run function and all that reaches in the model, the
    runtime and picolibc/libgcc (nothing unreferenced: --gc-sections), without counters, harness or
    start-up code, measured by riscv64-unknown-elf-size: text (code and const weights), data, bss (the
    arena and any runtime state; not the stack picolibc's script reserves). The HAL's symbols stay
    unresolved unless with_emulator links the emulator in, as every build that runs does."""
    require_tools()
    link = LDFLAGS + ("-nostartfiles",) + (() if with_emulator else ("-Wl,--unresolved-symbols=ignore-all",))
    size = closure_size(project_files(sources), CC, SIZE, CFLAGS, link, ("-lm",), with_emulator)
    return {**size, "excludes": "the harness and start-up code" if with_emulator else HAL_EXCLUDED}
