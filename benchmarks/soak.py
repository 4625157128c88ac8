"""Soak test: random int8 networks (the generators of tests/test_properties.py) for a given time.

    python3 benchmarks/soak.py --minutes 10 --seed 1 --targets cpu,diana/digital,diana/mixed
    python3 benchmarks/soak.py --replay 1-417          # one example again, with its traceback

Example i of seed s is built from random.Random("s-i"), so its id reproduces it anywhere. Each failure is
saved to --failures/<id>/ (the float model, the quantized model, the input, the error) and printed with the
command that replays it. Prints examples/s as it goes and a JSON summary at the end (also --json).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from graph_strategies import SeededChooser, build_net  # noqa: E402
from property_checks import check, inputs_for, quantized  # noqa: E402


def parse_targets(text: str) -> list[tuple[str, str | None]]:
    """"cpu,diana/digital" -> [("cpu", None), ("diana", "digital")]; the first is the baseline."""
    pairs = [tuple(t.split("/", 1)) if "/" in t else (t, None) for t in text.split(",") if t]
    return pairs if pairs[0] == ("cpu", None) else [("cpu", None), *pairs]


def save_failure(folder: Path, example: str, net, error: BaseException) -> Path:
    where = folder / example
    where.mkdir(parents=True, exist_ok=True)
    onnx.save(net.model, where / "float.onnx")
    text = "".join(traceback.format_exception(error))
    try:  # the quantizer itself may be what failed
        q = quantized(net)
        onnx.save(q, where / "quantized.onnx")
        for name, value in inputs_for(net, q).items():
            np.save(where / f"input_{name}.npy", value)
    except Exception as e:  # noqa: BLE001 - the first error is the one to report
        text += f"\n(quantizing for the reproducer failed too: {e})\n"
    (where / "error.txt").write_text(f"layers: {net.layers}\nscheme: {net.scheme}, int8 I/O: {net.int8_io}\n\n{text}")
    return where


def soak(minutes: float, seed: int, targets, failures: Path, sanitize_every: int) -> dict:
    start, deadline = time.monotonic(), time.monotonic() + minutes * 60
    end_to_end, worst_layer, failed, i = collections.Counter(), 0, [], 0
    while time.monotonic() < deadline:
        example = f"{seed}-{i}"
        net = build_net(SeededChooser(example))
        try:
            outcome = check(net, targets, sanitize=sanitize_every > 0 and i % sanitize_every == 0)
            end_to_end[outcome.end_to_end_lsb] += 1
            worst_layer = max(worst_layer, outcome.layer_lsb)
        except Exception as error:  # noqa: BLE001 - every kind of failure is a finding to keep
            where = save_failure(failures, example, net, error)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            failed.append({"example": example, "error": f"{type(error).__name__}: {first}", "saved": str(where),
                           "layers": net.layers, "scheme": net.scheme})
            print(f"FAIL {example}: {type(error).__name__}: {first}\n  saved to {where}; replay: "
                  f"python3 benchmarks/soak.py --replay {example} --targets {','.join(map(_name, targets))}",
                  flush=True)
        i += 1
        if i % 50 == 0:
            print(f"{i} examples, {i / (time.monotonic() - start):.2f}/s, {len(failed)} failed", flush=True)
    elapsed = time.monotonic() - start
    return {"seed": seed, "targets": [_name(t) for t in targets], "examples": i, "seconds": round(elapsed, 1),
            "examples_per_second": round(i / elapsed, 3), "failures": failed,
            "worst_layer_lsb_vs_onnxruntime": worst_layer,
            "end_to_end_lsb_vs_onnxruntime": {str(k): v for k, v in sorted(end_to_end.items())}}


def _name(target) -> str:
    return target[0] if target[1] is None else "/".join(target)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", default="cpu", help="comma-separated target[/config]; cpu is always the baseline")
    p.add_argument("--failures", type=Path, default=Path("soak-failures"), help="where failing examples go")
    p.add_argument("--sanitize-every", type=int, default=25, help="build every Nth example with ASan/UBSan (0: never)")
    p.add_argument("--json", type=Path, help="also write the summary here")
    p.add_argument("--replay", metavar="SEED-I", help="run one example and raise its error")
    args = p.parse_args(argv)
    targets = parse_targets(args.targets)
    if args.replay:
        net = build_net(SeededChooser(args.replay))
        print(f"layers: {net.layers}; {net.scheme}; int8 I/O: {net.int8_io}")
        print(check(net, targets, sanitize=True))
        return 0
    summary = soak(args.minutes, args.seed, targets, args.failures, args.sanitize_every)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
