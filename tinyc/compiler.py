"""The compile driver: ONNX -> passes -> C, and the CompiledModel a user writes, runs and inspects."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import targets
from .errors import DoesNotFitError, InputError, TinycError, note
from .frontend.onnx import from_onnx
from .ir.graph import Graph
from .ir.verify import verify
from .passes.canonicalize import canonicalize
from .passes.dispatch import dispatch
from .passes.l1_plan import l1_plan
from .passes.lower_channel_split import lower_channel_split
from .passes.lower_conv1d import lower_conv1d
from .passes.lower_global_pool import lower_global_pool
from .passes.lower_kernel import lower_kernel
from .passes.memory import plan_memory
from .passes.requant_pow2 import measure, requant_pow2
from .passes.tiling import TILERS, tiling
from .passes.transpose_planes import transpose_planes
from .report import build_report


REQUANTS = ("exact", "pow2")
MEASURE_INPUTS = 10  # seeded random inputs on which requant="pow2" measures what it approximated
FIT_SEEDS = range(1000, 1016)  # and 16 others, apart, on which it re-fits the biases


def compile(model, target: str = "cpu", config: str | None = None, name: str = "model",
            tiler: str = "cp-sat", batch: int | None = None, l1_reuse: bool = True,
            requant: str = "exact") -> "CompiledModel":
    """Compile an ONNX model (a path, bytes or onnx.ModelProto) for `target`.

    config: which of the target's accelerators to use (`tinyc.targets.get(target).configs`; default the
    first, every core); tiler: "cp-sat" (minimum modeled latency) or "dory" (DORY's heuristic); batch: the
    size of a dynamic batch dimension (default 1, with a TinycNote warning); l1_reuse: keep tensors in an
    accelerator's L1 between its layers where the L1 plan allows (False: every accelerator layer reads its
    input from L2 and writes its output back, as HTVM does); requant: "exact" (default) or "pow2", which
    re-expresses a layer's requantization as a shift where that brings it to an accelerator, and reports
    the measured error (report["approximation"])."""
    tgt = targets.get(target)
    config = config or tgt.default_config
    if config not in tgt.configs:
        raise InputError(f"target {tgt.name} has configurations {', '.join(tgt.configs)}, not {config!r}")
    if tiler not in TILERS:
        raise InputError(f"unknown tiler {tiler!r}; tilers: {', '.join(TILERS)}")
    if requant not in REQUANTS:
        raise InputError(f"unknown requant {requant!r}; one of {', '.join(REQUANTS)}")
    graph = from_onnx(model, batch=batch)
    fit = [random_inputs(graph, seed) for seed in FIT_SEEDS] if requant == "pow2" else []
    # the lowerings rewrite what no accelerator of the configuration takes into what one takes, exactly
    lowerings = lowering_passes(tgt, config)
    pow2 = (lambda g: requant_pow2(g, tgt, config, fit, [step for _, step in lowerings])) if requant == "pow2" else None
    placing = (*lowerings,
               ("dispatch", lambda g: dispatch(g, tgt, config, tiler)),
               ("tiling", lambda g: tiling(g, tgt, tiler)),
               ("l1_plan", lambda g: l1_plan(g, tgt) if l1_reuse else g),
               ("plan_memory", plan_memory))
    passes = (("canonicalize", canonicalize),
              ("requant_pow2", pow2),
              ("transpose_planes", lambda g: transpose_planes(g, tgt, config, _through(placing))),
              *placing)
    after = {}
    try:
        for step_name, step in passes:
            if step is not None:
                graph = after[step_name] = verify(step(graph), after=step_name)
        _check_fits(graph, tgt, config)
    except TinycError as e:
        raise e.located(file=graph.source) from None
    approximation = None
    if requant == "pow2":
        exact = after["canonicalize"]
        inputs = [random_inputs(exact, seed) for seed in range(MEASURE_INPUTS)]
        approximation = measure(exact, after["requant_pow2"], inputs)
        _note_approximation(approximation, graph.source)
    return CompiledModel(graph, tgt, config, _c_identifier(name), model=model, approximation=approximation)


def lowering_passes(target, config: str) -> tuple:
    """(name, Graph -> Graph) of the lowerings, which rewrite what no accelerator of the configuration takes
    into what one takes, exactly (requant_pow2 and the quantizer check a layer after them too)."""
    return (("lower_conv1d", lambda g: lower_conv1d(g, target, config)),
            ("lower_kernel", lambda g: lower_kernel(g, target, config)),
            ("lower_global_pool", lambda g: lower_global_pool(g, target, config)),
            ("lower_channel_split", lambda g: lower_channel_split(g, target, config)))


def _through(steps):
    """The passes `steps` as one, verified after each (a candidate layout priced by the passes that follow)."""
    def run(g: Graph) -> Graph:
        for step_name, step in steps:
            g = verify(step(g), after=step_name)
        return g
    return run


def _note_approximation(a: dict, source: str) -> None:
    """requant="pow2" is never silent: what it approximated and the output's measured error."""
    measured = "".join(f"; output {o['name']}: SNR {'exact' if o['snr_db'] is None else str(o['snr_db']) + ' dB'}, "
                       f"top-1 agreement {o['top1_agreement']}/{a['inputs']}" for o in a["outputs"])
    note(f"requant pow2 approximated {len(a['layers'])} layers' requantization by a shift{measured} against the "
         f"exact model on {a['inputs']} random inputs (the report's \"approximation\" has each layer's)",
         file=source or None)


def _check_fits(g: Graph, target, config: str) -> None:
    weights = sum(v.nbytes for v in g.values.values() if v.is_const)
    need = weights + g.arena_bytes
    budget = target.main_memory
    if need > budget.size_bytes:
        err = DoesNotFitError(
            f"needs {need} B of {budget.name} ({weights} B of weights + {g.arena_bytes} B of activations), "
            f"{target.name} has {budget.size_bytes} B", node=g.name)
        err.report = build_report(g, target, config)  # per layer, what takes the room
        raise err


PROJECT_MARK = ".tinyc-project"  # lists the files tinyc wrote into a project directory, one per line


def _project_mark(sources: dict[str, str]) -> str:
    return ("# Written by tinyc: `tinyc compile -o` replaces the files listed below and leaves every other\n"
            "# file of this directory alone.\n" + "".join(f"{f}\n" for f in sorted(sources)))


def _marked_files(mark: Path) -> list[str]:
    """The file names a project mark lists (plain names only: a mark never leads tinyc outside its folder)."""
    lines = mark.read_text().splitlines()
    return [n for n in lines if n and not n.startswith("#") and n == Path(n).name and n not in (".", "..")]


def _c_identifier(name: str) -> str:
    ident = "".join(c if c.isalnum() else "_" for c in name)
    return ident if ident and not ident[0].isdigit() else "m_" + ident


def random_inputs(g: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs of the right names, dtypes and shapes: the full range of an integer dtype, standard
    normal floats (the CLI's, the benchmarks', the tests' and requant="pow2"'s one source of inputs)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name in g.inputs:
        v = g.values[name]
        if np.issubdtype(np.dtype(v.dtype), np.integer):
            info = np.iinfo(v.dtype)
            inputs[name] = rng.integers(info.min, info.max + 1, v.shape).astype(v.dtype)
        else:
            inputs[name] = rng.standard_normal(v.shape).astype(v.dtype)
    return inputs


class CompiledModel:
    def __init__(self, graph: Graph, target, config: str, prefix: str, model=None,
                 approximation: dict | None = None):
        self.graph = graph
        self.model = model  # the ONNX model as given to compile (path, bytes or ModelProto): validate's reference
        self.target = target
        self.config = config
        self.prefix = prefix
        from .backends.c import emit_c
        self.sources = emit_c(graph, prefix, target)
        self._report = build_report(graph, target, config, approximation)
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._executables: dict[tuple[bool, bool], str] = {}

    # ---- the C project ----
    def write(self, directory, force: bool = False) -> Path:
        """Write the self-contained C project and return its directory.

        A new or empty directory is created whole or not at all. A directory tinyc wrote before (it holds
        the PROJECT_MARK file) gets its files replaced; files a user added there stay. Any other non-empty
        directory is refused unless `force`, which writes tinyc's files into it beside the user's (a user's
        file of the same name as one of tinyc's is overwritten). Nothing tinyc did not write is deleted."""
        final = Path(directory)
        if final.exists() and not final.is_dir():
            raise InputError("exists and is not a directory; give a directory for the C project", file=str(final))
        mark = final / PROJECT_MARK
        stale = set(_marked_files(mark)) if mark.is_file() else set()
        if final.is_dir() and any(final.iterdir()) and not mark.is_file() and not force:
            raise InputError(f"not empty, and not a project tinyc wrote (no {PROJECT_MARK}); choose a new or "
                             f"empty directory, or --force to write tinyc's files into it", file=str(final))
        files = {**self.sources, PROJECT_MARK: _project_mark(self.sources)}
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            for fname, text in files.items():
                (staging / fname).write_text(text)
            if not final.exists():
                os.replace(staging, final)  # the project appears in one rename
                return final
            for fname in files:
                os.replace(staging / fname, final / fname)
            for fname in stale - set(files):  # written by an earlier tinyc, no longer part of the project
                (final / fname).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    # ---- running ----
    def executable(self, sanitize: bool = False, dump: bool = False) -> str:
        """The built harness; `dump`: the validation build, which writes every layer's output to the file
        $TINYC_DUMP names (tinyc/validate.py reads it)."""
        from .toolchain import build
        key = (sanitize, dump)
        if key not in self._executables:
            if self._workdir is None:
                self._workdir = tempfile.TemporaryDirectory(prefix="tinyc-")
            work = Path(self._workdir.name) / ("asan" if sanitize else "host") / ("dump" if dump else "")
            self._executables[key] = str(build(self.sources, work, sanitize=sanitize,
                                               defines=("TINYC_DUMP",) if dump else ()))
        return self._executables[key]

    def run(self, inputs: dict, sanitize: bool = False, env: dict | None = None) -> dict[str, np.ndarray]:
        """Build the emitted C with the host compiler, run it, return the outputs by ONNX name. `env`:
        extra environment variables for the run (the emulator's $TINYC_PROFILE and $TINYC_TRACE)."""
        from .toolchain import run_executable
        arrays = [self.input_array(name, inputs) for name in self.graph.inputs]
        outs = [(self.graph.values[o].shape, self.graph.values[o].dtype) for o in self.graph.outputs]
        results = run_executable(self.executable(sanitize), arrays, outs, env=env)
        return dict(zip(self.graph.outputs, results))

    def profile(self, inputs: dict, on: str = "host") -> dict:
        """Run once and return {"outputs", "report"}: the report with the modeled cycles of every layer and
        core (tinyc/profile.py)."""
        from .profile import profile
        return profile(self, inputs, on)

    def validate(self, inputs, reference="onnxruntime") -> dict:
        """Run the emitted C and a reference side by side on `inputs` (a dict name -> array, or a list of
        them) and compare every layer's output the reference has too: max |difference| (in LSB for integer
        tensors), SNR, the first layer that departs by more than 1 LSB (tinyc/validate.py). reference:
        "onnxruntime" (the model compiled) or the path of a .tflite file."""
        from .validate import validate
        return validate(self, inputs, reference)

    def input_array(self, name: str, inputs: dict) -> np.ndarray:
        """inputs[name] checked against the model's input (dtype, size) and shaped as it."""
        if name not in inputs:
            raise InputError(f"missing input {name!r}; the model's inputs are {', '.join(self.graph.inputs)}")
        v = self.graph.values[name]
        arr = np.asarray(inputs[name])
        if arr.dtype != np.dtype(v.dtype) or arr.size != v.size:
            raise InputError(f"input {name!r} must be {v.dtype}{list(v.shape)}, got {arr.dtype}{list(arr.shape)}")
        if arr.shape != v.shape:
            note(f"input {name!r}: a {arr.dtype}{list(arr.shape)} array taken as {list(v.shape)} (the same elements "
                 "in row-major order)")
        return np.ascontiguousarray(arr).reshape(v.shape)

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded inputs of the model (`random_inputs` above)."""
        return random_inputs(self.graph, seed)

    def interpret(self, inputs: dict) -> dict[str, np.ndarray]:
        """The same model on tinyc's reference interpreter (the IR's spec)."""
        from .ir.interpret import interpret
        return interpret(self.graph, {n: self.input_array(n, inputs) for n in self.graph.inputs})

    # ---- inspecting ----
    @property
    def report(self) -> dict:
        if "code_size" not in self._report["totals"]:
            from .toolchain import code_size
            self._report["totals"]["code_size"] = code_size(self.sources)
        return self._report

    def __repr__(self) -> str:
        t = self._report["totals"]
        return (f"<CompiledModel {self.graph.name} for {self.target.name}/{self.config}: {t['layers']} layers, "
                f"{t['macs']} MACs, arena {t['arena_bytes']} B>")
