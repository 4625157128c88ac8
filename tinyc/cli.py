"""The `tinyc` command: compile, run, report, quantize, bench, targets.

Errors print one line, `tinyc: error: <file>: <node>: <what and why>`, and exit with status 2."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import targets
from .errors import DoesNotFitError, InputError, TinycError, TinycNote
from .compiler import REQUANTS
from .passes.tiling import TILERS
from .report import format_profile, format_text

EXIT_ERROR = 2
VALIDATE_RANDOM = 4  # `tinyc validate`'s seeded random inputs when no --inputs folder is given


class _Parser(argparse.ArgumentParser):
    """A usage error is one line like every other error, `tinyc: error: ...`, with exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"tinyc: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinyc", description="Compile quantized ONNX models for TinyML chips.")
    p.add_argument("--version", action="version", version=f"tinyc {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_command(name: str, help_text: str):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("model", help="an ONNX model file, or zoo:NAME[:VARIANT] for a bundled network "
                                     "(NAME kws, vww, ic, ad; VARIANT float, int8 (default), ternary)")
        c.add_argument("--target", default="cpu", help="target chip (see `tinyc targets`; default cpu)")
        c.add_argument("--config", help="which of the target's cores to use: one of its configurations (see "
                                        "`tinyc targets`; default the first listed)")
        c.add_argument("--tiler", choices=list(TILERS), default="cp-sat",
                       help="how accelerator layers are tiled: cp-sat (minimum modeled latency, default) or "
                            "dory (DORY/HTVM's heuristic)")
        c.add_argument("--batch", type=int, metavar="N",
                       help="the size of a dynamic batch dimension (default 1, with a note)")
        c.add_argument("--l1-reuse", action=argparse.BooleanOptionalAction, default=True,
                       help="keep tensors in an accelerator's L1 between its layers where the L1 plan allows "
                            "(default); --no-l1-reuse moves every layer's input and output by DMA, as HTVM does")
        c.add_argument("--requant", choices=list(REQUANTS), default="exact",
                       help="exact (default): every requantization as the model states it; pow2: re-express a "
                            "layer's as an accelerator's shift where that brings it to one, an approximation "
                            "whose measured error `tinyc report` shows")
        return c

    c = model_command("compile", "compile a model into a self-contained C project")
    c.add_argument("-o", "--output", required=True,
                   help="the project directory to write: new, empty, or one tinyc wrote before (its files are "
                        "replaced, other files stay)")
    c.add_argument("--force", action="store_true",
                   help="write into a non-empty directory tinyc did not write (same-named files are "
                        "overwritten; nothing is deleted)")
    c = model_command("run", "compile, build with the host C compiler, run on inputs")
    c.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy|FILE.npz",
                   help="an input tensor from a .npy file (or a .npz holding one array, or one named NAME); "
                        "repeat per input, or give a .npz of input name -> array alone; seeded random inputs, "
                        "with a note, when none is given")
    c.add_argument("-o", "--output", metavar="FILE.npz",
                   help="write the outputs to this .npz file (replaced if it is one; else print a summary)")
    c.add_argument("--profile", action="store_true",
                   help="also print the modeled cycles per layer and core (the emulator's counters)")
    c = model_command("report", "print what runs where, MACs, buffers, memory")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c = model_command("validate", "run the emitted C and a reference side by side: per layer max |difference| "
                                  "(LSB for int8 tensors), SNR and the first layer beyond 1 LSB (exit status 1 "
                                  "when one departs)")
    c.add_argument("--reference", nargs="+", default=["onnxruntime"], metavar="onnxruntime|tflite FILE.tflite",
                   help="onnxruntime on the model itself (default), or the TFLite interpreter on a .tflite twin")
    given = c.add_mutually_exclusive_group()
    given.add_argument("--inputs", metavar="DIR", help="a folder of inputs, one sample per file: a .npy (one-input "
                                                       "models) or a .npz of input name -> array")
    given.add_argument("--random", type=int, metavar="N", default=VALIDATE_RANDOM,
                       help=f"N seeded random inputs (default {VALIDATE_RANDOM})")
    c.add_argument("--json", action="store_true", help="print the validation as JSON")
    help_text = "post-training static quantization of a float model to int8 QDQ"
    c = sub.add_parser("quantize", help=help_text, description=help_text)
    c.add_argument("model", help="a float ONNX model file")
    c.add_argument("--calib", required=True, metavar="DATA",
                   help="calibration inputs: a .npy of (N, *input shape), a .npz of input name -> array for "
                        "several inputs, or a folder of .npy files (one sample or a batch each)")
    c.add_argument("--target", help="quantize for what this target's cores accept (per layer: per-tensor or "
                                    "per-channel, int8 or ternary weights; power-of-two scales): see `tinyc targets`")
    c.add_argument("--config", help="with --target: which of its cores (default the target's first configuration)")
    weights = c.add_mutually_exclusive_group()
    weights.add_argument("--per-channel", dest="per_channel", action="store_const", const=True,
                         help="weight scales per output channel for every layer (default without --target)")
    weights.add_argument("--per-tensor", dest="per_channel", action="store_const", const=False,
                         help="one weight scale per layer")
    c.add_argument("--ternary", metavar="auto|none|NAME,...",
                   help="ternary weights: auto (every conv/dense but the first, the last and depthwise ones), "
                        "none, or the named layers (default: the target's choice, else none)")
    c.add_argument("--io", choices=("float", "int8"), default="float",
                   help="float (default) or int8 graph input and output")
    c.add_argument("--pow2", action="store_const", const=True, default=None,
                   help="round every scale to a power of two (default: the target's choice, else off)")
    c.add_argument("--percentile", type=float, help="clip ranges at this percentile instead of min/max")
    c.add_argument("-o", "--output", required=True, help="the quantized ONNX model to write")
    help_text = "list the targets, their cores and configurations"
    sub.add_parser("targets", help=help_text, description=help_text)
    c = sub.add_parser("bench", help="run a benchmark: " + ", ".join(BENCHMARKS),
                       description="run a benchmark; `tinyc bench NAME -h` for its options")
    c.add_argument("benchmark", choices=BENCHMARKS)
    c.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    return p


def _version() -> str:
    from . import __version__
    return __version__


def _note(text: str) -> None:
    print(f"tinyc: note: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", TinycNote)  # each note once per command
            shown = warnings.showwarning
            warnings.showwarning = lambda message, category, *rest: (
                _note(str(message)) if issubclass(category, TinycNote) else shown(message, category, *rest))
            return COMMANDS[args.command](args) or 0
    except TinycError as e:
        print(f"tinyc: error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("tinyc: error: interrupted", file=sys.stderr)
    except BrokenPipeError:  # the reader went away (`tinyc report ... | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error flushing stdout at exit
        return 141  # 128 + SIGPIPE: the status a shell gives a process whose pipe closed
    except OSError as e:
        print(f"tinyc: error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
    return EXIT_ERROR


ZOO_PREFIX = "zoo:"


def _model_source(spec: str):
    """(the model to compile, its name): a file path as given, or a zoo network built in memory."""
    if not spec.startswith(ZOO_PREFIX):
        return spec, Path(spec).stem
    from . import zoo
    name, _, variant = spec[len(ZOO_PREFIX):].partition(":")
    variant = variant or "int8"
    if name not in zoo.names() or variant not in zoo.VARIANTS:
        raise InputError(f"unknown zoo model {spec!r}: zoo:NAME[:VARIANT] with NAME one of "
                         f"{', '.join(zoo.names())} and VARIANT one of {', '.join(zoo.VARIANTS)}")
    model = zoo.build(name, variant)
    model.graph.name = f"{name}_{variant}"
    return model, f"{name}_{variant}"


def _compile(args):
    from .compiler import compile
    model, name = _model_source(args.model)
    cm = compile(model, target=args.target, config=args.config, name=name, tiler=args.tiler, batch=args.batch,
                 l1_reuse=args.l1_reuse, requant=args.requant)
    if cm.target.accelerators(cm.config) and all(n.placement.core == cm.target.host.name for n in cm.graph.nodes()):
        _note(f"configuration {cm.config} of {cm.target.name} places no layer on an accelerator; "
              f"every layer runs on the host (`tinyc report` says why)")
    return cm


def cmd_compile(args):
    cm = _compile(args)
    out = cm.write(args.output, force=args.force)
    t = cm.report["totals"]
    print(f"wrote {out}/ ({len(cm.sources)} files): {t['layers']} layers, {t['macs']} MACs, "
          f"arena {t['arena_bytes']} B, weights {t['weights_bytes']} B")


def _read_arrays(path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy file's array, or a .npz file's arrays by name."""
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or e}", file=str(path)) from None
    except ValueError:  # numpy then suggests unpickling, which a text or foreign file does not need
        raise InputError(f"{what} is not a .npy or .npz array file", file=str(path)) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            return dict(data)
    return data


def _named_inputs(cm, given: dict, what: str, file: str) -> dict:
    """Arrays by input name, each name one of the model's."""
    for name in given:
        if name not in cm.graph.inputs:
            raise InputError(f"{what}: the model has no input {name!r}; its inputs are {', '.join(cm.graph.inputs)}",
                             file=file)
    return given


def _load_inputs(cm, specs: list[str]) -> dict:
    inputs = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:  # a .npz alone holds every input by name
            data = _read_arrays(spec, f"--input {spec}") if spec.endswith(".npz") else None
            if not isinstance(data, dict):
                raise InputError(f"--input {spec!r}: expected NAME=FILE.npy, or a .npz of input name -> array")
            given = data
        else:
            data = _read_arrays(path, f"--input {name}")
            if isinstance(data, dict) and name not in data and len(data) != 1:
                raise InputError(f"--input {name}: the .npz holds {', '.join(data) or 'nothing'}, none named {name!r}",
                                 file=path)
            given = {name: data[name] if name in data else next(iter(data.values()))} \
                if isinstance(data, dict) else {name: data}
        for name in _named_inputs(cm, given, f"--input {spec}", path or spec):
            if name in inputs:
                raise InputError(f"--input {name} is given twice")
        inputs.update(given)
    if not specs:
        inputs = cm.random_inputs(seed=0)
        _note("no --input given: running on seeded random inputs (" + ", ".join(
            f"{n} {v.dtype}{list(v.shape)}" for n, v in inputs.items()) + ")")
    return inputs


def _npz_output(output: str, model: str) -> None:
    """-o of `tinyc run`: a .npz file name, never the model, a directory or a file that is not a .npz."""
    import zipfile
    _not_the_model(output, model)
    path = Path(output)
    if path.suffix != ".npz":
        raise InputError("-o takes a .npz file name (the outputs are written as numpy's .npz)", file=output)
    if path.is_dir() or (path.exists() and not zipfile.is_zipfile(path)):
        raise InputError("exists and is not a .npz file; tinyc replaces only a .npz file", file=output)


def _write_npz(output: str, arrays: dict) -> None:
    """The whole file or nothing: written beside, then renamed over the name."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_run(args):
    if args.output:
        _npz_output(args.output, args.model)
    cm = _compile(args)
    inputs = _load_inputs(cm, args.input)
    if args.profile:
        profiled = cm.profile(inputs)
        outputs = profiled["outputs"]
        print(format_profile(profiled["report"], cm.target.clock_hz))
    else:
        outputs = cm.run(inputs)
    if args.output:
        _write_npz(args.output, outputs)
        print(f"wrote {args.output}: " + ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in outputs.items()))
        return
    for name, value in outputs.items():
        flat = value.ravel()
        # a batch gets one argmax per sample
        top = flat.argmax() if value.ndim < 2 or value.shape[0] == 1 else value.reshape(len(value), -1).argmax(1).tolist()
        print(f"{name}: {value.dtype}{list(value.shape)} argmax={top} "
              f"{np.array2string(flat[:16], separator=' ')}{' ...' if flat.size > 16 else ''}")


def cmd_report(args):
    try:
        report, unfit = _compile(args).report, None
    except DoesNotFitError as e:
        if e.report is None:
            raise
        report, unfit = e.report, e  # the table shows what is too big; the error line follows it
    print(json.dumps(report, indent=1) if args.json else format_text(report))
    if unfit is not None:
        raise unfit


def cmd_validate(args):
    from .validate import format_validation
    reference = _reference(args.reference)
    cm = _compile(args)
    samples = _validation_inputs(cm, args.inputs) if args.inputs else _random_samples(cm, args.random)
    result = cm.validate(samples, reference=reference)
    print(json.dumps(result, indent=1) if args.json else format_validation(result))
    return 1 if result["first_departure"] else 0


def _reference(words: list[str]) -> str:
    """--reference onnxruntime | tflite FILE.tflite (or the .tflite file alone)."""
    if words == ["onnxruntime"]:
        return "onnxruntime"
    if len(words) == 2 and words[0] == "tflite":
        return words[1]
    if len(words) == 1 and words[0].endswith(".tflite"):
        return words[0]
    raise InputError(f"--reference {' '.join(words)}: expected `onnxruntime` or `tflite FILE.tflite`")


def _random_samples(cm, n: int) -> list[dict]:
    if n < 1:
        raise InputError(f"--random {n}: give at least one input")
    return [cm.random_inputs(seed) for seed in range(n)]


def _validation_inputs(cm, folder: str) -> list[dict]:
    """One sample per .npy (one-input models) or .npz file of the folder, in name order."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError("--inputs takes a folder of .npy or .npz files", file=folder)
    files = sorted(p for p in root.iterdir() if p.suffix in (".npy", ".npz"))
    if not files:
        raise InputError("--inputs: the folder holds no .npy or .npz file", file=folder)
    samples = []
    for path in files:
        data = _read_arrays(path, "an input file")
        if not isinstance(data, dict):
            if len(cm.graph.inputs) != 1:
                raise InputError(f"the model has {len(cm.graph.inputs)} inputs: give each sample as a .npz of "
                                 "input name -> array", file=str(path))
            data = {cm.graph.inputs[0]: data}
        samples.append(_named_inputs(cm, data, "an input file", str(path)))
    return samples


def _not_the_model(output: str, model: str) -> None:
    """An output path must never name the input model: writing it would destroy the user's file."""
    out, src = Path(output), Path(model)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise InputError("is the input model; choose another output path", file=output)


def cmd_quantize(args):
    from .quantizer import quantize_file
    _not_the_model(args.output, args.model)
    if Path(args.output).is_dir():
        raise InputError("is a directory; give -o the .onnx file to write", file=args.output)
    if args.config and not args.target:
        raise InputError("--config needs --target: the configuration of which target")
    ternary = args.ternary if args.ternary in (None, "auto", "none") else args.ternary.split(",")
    plan = quantize_file(args.model, args.calib, args.output, per_channel=args.per_channel, power_of_two=args.pow2,
                         ternary=ternary, io=args.io, target=args.target, config=args.config,
                         method="minmax" if args.percentile is None else "percentile",
                         percentile=99.99 if args.percentile is None else args.percentile)
    scales = "power-of-two scales" if plan.power_of_two else "float scales"
    if not args.target:
        print(f"wrote {args.output} ({scales}, int8 I/O)" if args.io == "int8" else f"wrote {args.output} ({scales})")
        return
    taken = [n for n, layer in plan.layers.items() if layer["cores"]]
    config = args.config or targets.get(args.target).default_config
    print(f"wrote {args.output} for {args.target} ({config}), {scales}, {args.io} I/O: {len(taken)} of "
          f"{len(plan.layers)} conv/dense layers taken by an accelerator")
    for name, layer in plan.layers.items():
        where = ", ".join(layer["cores"]) if layer["cores"] else f"host only ({layer['why'] or 'no accelerator'})"
        print(f"  {name:<24} {layer['weights']:<19} {where}")


def cmd_targets(args):
    for name in targets.names():
        t = targets.get(name)
        configs = [f"{c} = {' + '.join(cores) or 'host only'}{' (default)' if c == t.default_config else ''}"
                   for c, cores in t.configs.items()]
        print(f"{t.name:<8} {t.description}")
        print(f"{'':<8} cores: {', '.join(f'{c.name} ({c.kind})' for c in t.cores)}; "
              f"{t.main_memory.name} {t.main_memory.size_bytes} B")
        print(f"{'':<8} configs: {', '.join(configs)}")


# name -> module with main(argv, prog); imported when run, so other commands do not load the benchmarks
BENCHMARKS = {"mlperf-tiny": "tinyc.bench.mlperf_tiny"}


def cmd_bench(args):
    import importlib
    bench = importlib.import_module(BENCHMARKS[args.benchmark])
    return bench.main(args.options, prog=f"tinyc bench {args.benchmark}")


COMMANDS = {"compile": cmd_compile, "run": cmd_run, "report": cmd_report, "validate": cmd_validate,
            "quantize": cmd_quantize,
            "targets": cmd_targets, "bench": cmd_bench}

if __name__ == "__main__":
    sys.exit(main())
