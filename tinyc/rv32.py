"""The emitted C project built for the RV32IMC host and run on qemu, with exact instruction counts.

riscv64-unknown-elf-gcc cross-compiles for rv32imc/ilp32 against picolibc; picolibc's own linker
script places the image in the RAM of qemu's `virt` machine (set by --defsym, no script of ours), and
its semihosting crt0 and oslib carry argv, stdio, file I/O and the exit code to the host, so main.c's
fopen/fread/fwrite work unchanged. qemu runs with -icount shift=0: the minstret CSR then counts retired
instructions exactly (without icount qemu returns host time there), so counts repeat to the
instruction. Per-layer counts come from tinyc_counters.h, compiled in with -DTINYC_COUNTERS.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import ToolchainError
from .toolchain import (RUNTIME_PREFIX, _compiler_id, _project_files, _run, _runtime_objects, output_paths,
                        read_outputs, write_inputs)

CC = "riscv64-unknown-elf-gcc"
SIZE = "riscv64-unknown-elf-size"
QEMU = "qemu-system-riscv32"
# The same flags as the emitted Makefile's `rv32` target, plus picolibc's headers and libraries.
CFLAGS = ("-march=rv32imc", "-mabi=ilp32", "-Os", "-std=c99", "-Wall", "-Wextra", "-Werror",
          "--specs=picolibc.specs")
# qemu virt's RAM starts at 0x80000000 (128 MiB): code and constants in the first 32 MiB ("flash" to
# picolibc's script), data, heap and stack in the next 32 MiB.
LDFLAGS = ("--oslib=semihost", "--crt0=semihost",
           "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x2000000",
           "-Wl,--defsym=__ram=0x82000000", "-Wl,--defsym=__ram_size=0x2000000")
QEMU_ARGS = ("-M", "virt", "-bios", "none", "-display", "none", "-serial", "none", "-monitor", "none",
             "-icount", "shift=0")
ELF = "model.elf"
COUNT_LINE = re.compile(r"^tinyc-instret (layer (\d+)|total) (\d+)$", re.M)


def require_tools() -> None:
    missing = [tool for tool in (CC, SIZE, QEMU) if shutil.which(tool) is None]
    if missing:
        raise ToolchainError(f"{', '.join(missing)} not found: `make rv32-tools` installs the RV32 cross "
                             f"compiler, picolibc and qemu")


def build_rv32(sources: dict[str, str] | str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Writes the project into workdir and cross-compiles it with instruction counters; returns the ELF."""
    require_tools()
    files = with_counters(_project_files(sources))
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (work / name).write_text(text)
    flags = CFLAGS + ("-DTINYC_COUNTERS",)
    objects = _runtime_objects(files, CC, flags)
    own = [n for n in sorted(files) if n.endswith(".c") and not n.startswith(RUNTIME_PREFIX)]
    elf = work / ELF
    _run([CC, *flags, *LDFLAGS, "-I", str(work), "-o", str(elf), *own, *map(str, objects), "-lm"], work,
         "building the model for RV32")
    return elf


def qemu_command(elf: str | os.PathLike, args: list[str]) -> list[str]:
    """qemu's command line; `args` become the harness's argv[1:] (picolibc supplies argv[0])."""
    if any("," in a for a in args):
        raise ToolchainError(f"semihosting arguments cannot hold a comma: {args}")
    semihosting = ",".join(["enable=on", "target=native"] + [f"arg={a}" for a in args])
    return [QEMU, *QEMU_ARGS, "-semihosting-config", semihosting, "-kernel", str(elf)]


def run_qemu(elf: str | os.PathLike, inputs: list[np.ndarray], outputs: list[tuple[tuple[int, ...], str]],
             timeout: float = 600) -> tuple[list[np.ndarray], list[int], int]:
    """Runs an ELF from build_rv32 on qemu; returns its outputs, the instructions each layer retired
    and the total from the first layer's start to the last layer's end."""
    require_tools()
    elf = Path(elf).resolve()
    with tempfile.TemporaryDirectory(prefix="tinyc-qemu-") as tmp:
        ins, outs = write_inputs(inputs, Path(tmp)), output_paths(outputs, Path(tmp))
        # relative names: semihosting opens them in qemu's working directory
        args = [p.name for p in ins] + ["--"] + [p.name for p in outs]
        proc = _run(qemu_command(elf, args), Path(tmp), f"running {elf.name} on {QEMU}", timeout)
        results = read_outputs(outputs, Path(tmp), elf.name)
    layers, total = _parse_counts(proc.stdout + proc.stderr, elf.name)
    return results, layers, total


def run_model(model, inputs: dict, workdir: str | os.PathLike) -> tuple[dict[str, np.ndarray], list[int], int]:
    """A CompiledModel built in workdir and run once on qemu: its outputs by name, the instructions
    each layer of model.report["layers"] retired, and the total."""
    g = model.graph
    elf = build_rv32(model.sources, workdir)
    outputs = [(g.values[o].shape, g.values[o].dtype) for o in g.outputs]
    arrays, layers, total = run_qemu(elf, [np.asarray(inputs[n]) for n in g.inputs], outputs)
    return dict(zip(g.outputs, arrays)), layers, total


def _parse_counts(text: str, who: str) -> tuple[list[int], int]:
    if "tinyc-instret error" in text:
        raise ToolchainError(f"{who}: {text[text.index('tinyc-instret error'):].splitlines()[0]}")
    layers, total = [], None
    for match in COUNT_LINE.finditer(text):
        if match.group(2) is None:
            total = int(match.group(3))
        elif int(match.group(2)) == len(layers):
            layers.append(int(match.group(3)))
        else:
            raise ToolchainError(f"{who}: instruction counts out of order at layer {match.group(2)}")
    if total is None:
        raise ToolchainError(f"{who} printed no instruction counts (built without -DTINYC_COUNTERS?)")
    return layers, total


def code_size_rv32(sources: dict[str, str] | str | os.PathLike) -> dict:
    """Bytes the model needs on the chip, without counters, harness or start-up code: the model's run
    function and all it reaches (runtime code, and the picolibc/libgcc routines and semihosting I/O
    that code calls; nothing unreferenced), linked with --gc-sections and measured by
    riscv64-unknown-elf-size: text (code and const weights), data, bss (the arena and any runtime
    state; not the stack picolibc's script reserves)."""
    require_tools()
    files = _project_files(sources)
    run = re.search(r"\bint (\w+_run)\(", files["model.h"])
    if run is None:
        raise ToolchainError("model.h declares no <prefix>_run function")
    flags = CFLAGS + ("-ffunction-sections", "-fdata-sections")
    sources_c = [n for n in sorted(files) if n.endswith(".c") and n != "main.c"]
    with tempfile.TemporaryDirectory(prefix="tinyc-size-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        _run([CC, *flags, *LDFLAGS, "-nostartfiles", "-Wl,--gc-sections", f"-Wl,--entry={run.group(1)}", "-o", ELF,
              *sources_c, "-lm"], Path(tmp), "linking the model for RV32")
        berkeley = _run([SIZE, ELF], Path(tmp), "measuring code size").stdout.splitlines()[1].split()
        sections = _run([SIZE, "-A", "-d", ELF], Path(tmp), "measuring code size").stdout
    stack = re.search(r"^\.stack\s+(\d+)", sections, re.M)
    text, data, bss = (int(x) for x in berkeley[:3])
    return {"text": text, "data": data, "bss": bss - (int(stack.group(1)) if stack else 0),
            "compiler": f"{_compiler_id(CC)} {' '.join(flags)}"}


# ---- until the C backend emits the counter calls itself ----
HAL_BEGIN = re.compile(r"^(\s*)tinyc_hal_layer_begin\((\d+),")


def with_counters(files: dict[str, str]) -> dict[str, str]:
    """The project with the counter calls just inside the HAL's layer markers in model.c (so the HAL's
    own bookkeeping stays out of the counts) and the dump after the run in main.c, added to the
    emitted text where the C backend does not emit them yet."""
    if "tinyc_counter_layer_begin" in files["model.c"]:
        return files
    lines, layer = [], None
    for line in files["model.c"].splitlines():
        begin = HAL_BEGIN.match(line)
        if line.strip() == "tinyc_hal_layer_end();":
            lines.append(line.replace("tinyc_hal_layer_end();", f"tinyc_counter_layer_end({layer});"))
        lines.append(line)
        if begin:
            layer = int(begin.group(2))
            lines.append(f"{begin.group(1)}tinyc_counter_layer_begin({layer});")
    if layer is None:
        raise ToolchainError("model.c has no tinyc_hal_layer_begin markers to count layers between")
    model_c = "\n".join(lines) + "\n"
    model_c = model_c.replace('#include "tinyc_hal.h"', '#include "tinyc_counters.h"\n#include "tinyc_hal.h"', 1)
    main_c, dumped = re.subn(r"\n(    for \(i = 0; i < \d+; i\+\+\)\n        if \(write_tensor)",
                             r"\n    tinyc_counter_dump();\n\1", files["main.c"], count=1)
    if not dumped:
        raise ToolchainError("main.c has no output loop to dump the instruction counts before")
    main_c = main_c.replace('#include "model.h"', '#include "model.h"\n#include "tinyc_counters.h"', 1)
    return {**files, "model.c": model_c, "main.c": main_c}
