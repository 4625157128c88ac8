"""Building and running emitted C projects with the host C compiler.

The runtime sources (tinyc_*.c, the same for every model) are compiled once per compiler, flags and
source text into objects cached under $TINYC_CACHE_DIR, else $XDG_CACHE_HOME/tinyc, else
~/.cache/tinyc; a build then compiles only the model's own sources and links. Cache entries are
written to a private directory and renamed into place, so concurrent builds never see half an entry.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import ToolchainError

CFLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
RUNTIME_PREFIX = "tinyc_"
EXE = "model"
# The HAL emulator's sources: linked into every build that runs, left out of the code size, since a
# deployment on the chip links the chip's own HAL instead.
EMULATOR_PREFIX = "tinyc_hal_emu"
HAL_EXCLUDED = "the HAL implementation (the emulator stands in for DIANA's drivers)"
SECTIONS = ("-ffunction-sections", "-fdata-sections")  # so --gc-sections keeps only what the model reaches


def cache_dir() -> Path:
    if os.environ.get("TINYC_CACHE_DIR"):
        return Path(os.environ["TINYC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinyc"


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(no diagnostic)"])[0]


def run_tool(cmd: list[str], cwd: Path, what: str, timeout: float | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs a compiler, the model or an emulator; a failure is a ToolchainError naming `what` with the
    tool's first error line."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={"ASAN_OPTIONS": "detect_leaks=0", **os.environ, **(env or {})})
    except FileNotFoundError:
        raise ToolchainError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what}: {Path(cmd[0]).name} did not finish in {timeout} s") from None
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {_first_error(proc.stderr + proc.stdout)}")
    return proc


@functools.lru_cache(maxsize=None)
def _compiler_id(cc: str) -> str:
    return run_tool([cc, "--version"], Path.cwd(), "C compiler check").stdout.splitlines()[0]


def runtime_objects(files: dict[str, str], cc: str, flags: tuple[str, ...]) -> list[Path]:
    runtime = {n: t for n, t in sorted(files.items()) if n.startswith(RUNTIME_PREFIX) and n.endswith((".c", ".h"))}
    sources = [n for n in runtime if n.endswith(".c")]
    key = hashlib.sha256("\0".join([cc, _compiler_id(cc), *flags] + [f"{n}\0{t}" for n, t in runtime.items()])
                         .encode()).hexdigest()[:24]
    entry = cache_dir() / key
    objects = [entry / (Path(n).stem + ".o") for n in sources]
    if all(o.exists() for o in objects):
        return objects
    cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir()))
    try:
        for name, text in runtime.items():
            (tmp / name).write_text(text)
        run_tool([cc, *flags, "-c", *sources], tmp, "compiling the tinyc runtime")
        for name in runtime:
            (tmp / name).unlink()
        try:
            os.rename(tmp, entry)
        except OSError:
            if not all(o.exists() for o in objects):  # else another build published the same entry first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return objects


def project_files(project: dict[str, str] | str | os.PathLike) -> dict[str, str]:
    if isinstance(project, dict):
        return project
    root = Path(project)
    return {p.name: p.read_text() for p in sorted(root.iterdir()) if p.is_file() and p.suffix in (".c", ".h")}


def build(project: dict[str, str] | str | os.PathLike, workdir: str | os.PathLike, sanitize: bool = False,
          cc: str | None = None, defines: tuple[str, ...] = ()) -> Path:
    """Writes the project into workdir (unless it is already there) and builds it; returns the executable.
    defines: preprocessor macros for the model's own sources (TINYC_DUMP: the validation build)."""
    files = project_files(project)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = work / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    cc = cc or os.environ.get("CC") or "gcc"
    flags = CFLAGS + (SANITIZE if sanitize else ())
    objects = runtime_objects(files, cc, flags)
    own = [n for n in sorted(files) if n.endswith(".c") and not n.startswith(RUNTIME_PREFIX)]
    exe = work / EXE
    run_tool([cc, *flags, *(f"-D{d}" for d in defines), "-I", str(work), "-o", str(exe), *own, *map(str, objects),
              "-lm"], work, "building the model")
    return exe


def write_inputs(inputs: list[np.ndarray], directory: Path) -> list[Path]:
    """The harness's input files in `directory`: raw little-endian tensors in0.bin, in1.bin, ..."""
    paths = [directory / f"in{i}.bin" for i in range(len(inputs))]
    for arr, path in zip(inputs, paths):
        arr = np.asarray(arr)
        arr.astype(arr.dtype.newbyteorder("<"), copy=False).tofile(path)
    return paths


def output_paths(outputs: list, directory: Path) -> list[Path]:
    return [directory / f"out{i}.bin" for i in range(len(outputs))]


def read_outputs(outputs: list[tuple[tuple[int, ...], str]], directory: Path, who: str) -> list[np.ndarray]:
    """The harness's output files in `directory`, checked against the expected shapes."""
    results = []
    for (shape, dtype), path in zip(outputs, output_paths(outputs, directory)):
        data = np.fromfile(path, np.dtype(dtype).newbyteorder("<"))
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise ToolchainError(f"{who} wrote {data.size} elements to {path.name}, expected shape {shape}")
        results.append(data.astype(dtype).reshape(shape))
    return results


def run_executable(exe: str | os.PathLike, inputs: list[np.ndarray], outputs: list[tuple[tuple[int, ...], str]],
                   timeout: float = 600, env: dict[str, str] | None = None) -> list[np.ndarray]:
    """Runs a built harness on the inputs (any shape, the graph's dtypes), with `env` added to the
    environment, and returns its outputs."""
    exe = Path(exe).resolve()
    with tempfile.TemporaryDirectory(prefix="tinyc-run-") as tmp:
        ins, outs = write_inputs(inputs, Path(tmp)), output_paths(outputs, Path(tmp))
        run_tool([str(exe), *map(str, ins), "--", *map(str, outs)], Path(tmp), f"running {exe.name}", timeout, env)
        return read_outputs(outputs, Path(tmp), exe.name)


def code_size(project: dict[str, str] | str | os.PathLike, cc: str | None = None,
              flags: tuple[str, ...] = CFLAGS) -> dict:
    """Bytes of the deployable part on the host compiler: the model's run function and the runtime code
    it reaches, as binutils' `size` counts them: text (code and const weights), data, bss (the arena).
    A partial link, so what the model calls outside itself (the HAL, the C library) stays undefined."""
    cc = cc or os.environ.get("CC") or "gcc"
    size_tool = cc[:-3] + "size" if cc.endswith("gcc") else "size"
    size = closure_size(project_files(project), cc, size_tool, flags, ("-r", "-nostdlib"))
    return {**size, "excludes": f"{HAL_EXCLUDED} and the C library"}


def run_symbol(files: dict[str, str]) -> str:
    """The model's entry point, <prefix>_run, as model.h declares it."""
    run = re.search(r"\bint (\w+_run)\(", files["model.h"])
    if run is None:
        raise ToolchainError("model.h declares no <prefix>_run function")
    return run.group(1)


def closure_size(files: dict[str, str], cc: str, size_tool: str, flags: tuple[str, ...], link: tuple[str, ...],
                 libs: tuple[str, ...] = (), with_emulator: bool = False) -> dict:
    """text, data and bss of <prefix>_run and all it reaches in model.c and the runtime (the emulator
    only with_emulator; never the harness), linked with `link` and --gc-sections; bss without the stack
    a linker script reserves."""
    flags = flags + SECTIONS
    objects = [o for o in runtime_objects(files, cc, flags) if with_emulator or not o.stem.startswith(EMULATOR_PREFIX)]
    with tempfile.TemporaryDirectory(prefix="tinyc-size-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        run_tool([cc, *flags, *link, "-Wl,--gc-sections", f"-Wl,--entry={run_symbol(files)}", "-o", "closure",
              "model.c", *map(str, objects), *libs], Path(tmp), f"linking the model with {cc}")
        berkeley = run_tool([size_tool, "closure"], Path(tmp), "measuring code size").stdout.splitlines()[1].split()
        sections = run_tool([size_tool, "-A", "-d", "closure"], Path(tmp), "measuring code size").stdout
    stack = re.search(r"^\.stack\s+(\d+)", sections, re.M)
    text, data, bss = (int(x) for x in berkeley[:3])
    return {"text": text, "data": data, "bss": bss - (int(stack.group(1)) if stack else 0),
            "compiler": f"{_compiler_id(cc)} {' '.join(flags)}"}
