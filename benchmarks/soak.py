"""Soak test: random int8 networks (the generators of tests/test_properties.py) for a given time.

    python3 benchmarks/soak.py --minutes 10 --seed 1 --targets cpu,diana/digital,diana/mixed
    python3 benchmarks/soak.py --minutes 20 --targets cpu,diana/cpu,diana/digital,diana/analog,diana/mixed --rotate
    python3 benchmarks/soak.py --replay 1-417          # one example again, with its traceback

Example i of seed s is built from random.Random("s-i"), so its id reproduces it anywhere. Each failure is
saved to --failures/<id>/ (the float model, the quantized model, the input, the error) and printed with the
command that replays it. Prints examples/s as it goes and a JSON summary at the end (also --json).

Speed: --workers processes (default: every core) each take --batch examples at a time, compile them for
every target and build ONE executable running them all (tests/batch_run.py), so the C
compiler's start-up and the link are paid once per batch; the second compile that checks determinism runs
on every --twice-every-th example. An example whose batched run disagrees is checked again alone
(check()), so a failure is always the example's own.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from graph_strategies import SeededChooser, build_net  # noqa: E402
from batch_run import run_batch  # noqa: E402
from property_checks import check, inputs_for, prepare, quantized, verify_outputs  # noqa: E402


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


def targets_of(i: int, targets, rotate: bool):
    """Example i's targets: all of them, or with rotate the baseline and one other in turn."""
    if not rotate or len(targets) <= 2:
        return targets
    return [targets[0], targets[1 + i % (len(targets) - 1)]]


def run_examples(seed: int, first: int, count: int, targets, failures: Path, sanitize_every: int,
                 twice_every: int, rotate: bool = False) -> dict:
    """Examples first .. first + count - 1 of seed, checked in one batched build: their outcomes."""
    ids = [f"{seed}-{i}" for i in range(first, first + count)]
    nets = {e: build_net(SeededChooser(e)) for e in ids}
    chosen = {e: targets_of(first + k, targets, rotate) for k, e in enumerate(ids)}
    prepared, errors = {}, {}
    for k, e in enumerate(ids):
        try:
            prepared[e] = prepare(nets[e], chosen[e], twice=(first + k) % twice_every == 0)
        except Exception as error:  # noqa: BLE001 - every kind of failure is a finding to keep
            errors[e] = error
    outcomes, rechecked = {}, 0
    try:
        models = [(cm, p.feed) for p in prepared.values() for _, _, cm in p.compiled]
        results = iter(run_batch(models, sanitize=sanitize_every > 0 and first % sanitize_every < count)
                       if models else [])
        batched = {e: [next(results) for _ in p.compiled] for e, p in prepared.items()}
    except Exception:  # noqa: BLE001 - the batch as a whole failed: each example alone says which
        batched = {}
    for e in prepared:
        try:
            outcomes[e] = verify_outputs(prepared[e], batched[e])
        except Exception:  # noqa: BLE001 - not trusted from a batch: the example alone decides
            rechecked += 1
            try:
                outcomes[e] = check(nets[e], chosen[e])
            except Exception as error:  # noqa: BLE001
                errors[e] = error
    failed = []
    for e, error in errors.items():
        net = nets[e]
        where = save_failure(failures, e, net, error)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        failed.append({"example": e, "error": f"{type(error).__name__}: {first_line}", "saved": str(where),
                       "layers": net.layers, "scheme": net.scheme})
        print(f"FAIL {e}: {type(error).__name__}: {first_line}\n  saved to {where}; replay: "
              f"python3 benchmarks/soak.py --replay {e} --targets {','.join(map(_name, chosen[e]))}", flush=True)
    return {"examples": count, "failed": failed, "rechecked": rechecked,
            "end_to_end": collections.Counter(o.end_to_end_lsb for o in outcomes.values()),
            "worst_layer": max([o.layer_lsb for o in outcomes.values()], default=0),
            "ops": collections.Counter(layer.split()[0] for net in nets.values() for layer in net.layers)}


def soak(minutes: float, seed: int, targets, failures: Path, sanitize_every: int, workers: int = 0,
         batch: int = 16, twice_every: int = 10, rotate: bool = False) -> dict:
    workers = workers or os.cpu_count() or 1
    start, deadline = time.monotonic(), time.monotonic() + minutes * 60
    end_to_end, ops, worst_layer, failed = collections.Counter(), collections.Counter(), 0, []
    done = submitted = rechecked = 0
    with ProcessPoolExecutor(workers) as pool:
        pending: set = set()
        while True:
            while len(pending) < 2 * workers and time.monotonic() < deadline:
                pending.add(pool.submit(run_examples, seed, submitted, batch, targets, failures, sanitize_every,
                                        twice_every, rotate))
                submitted += batch
            if not pending:
                break
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                r = future.result()
                done += r["examples"]
                rechecked += r["rechecked"]
                failed += r["failed"]
                end_to_end.update(r["end_to_end"])
                ops.update(r["ops"])
                worst_layer = max(worst_layer, r["worst_layer"])
                print(f"{done} examples, {done / (time.monotonic() - start):.2f}/s, {len(failed)} failed", flush=True)
    elapsed = time.monotonic() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers and their compilers, reaped by now
    cpu = used.ru_utime + used.ru_stime
    return {"seed": seed, "targets": [_name(t) for t in targets], "examples": done, "seconds": round(elapsed, 1),
            "examples_per_second": round(done / elapsed, 3), "workers": workers, "batch": batch, "rotate": rotate,
            # what the run cost in CPU time, whatever else shares the machine: examples per second of one core
            "cpu_seconds": round(cpu, 1), "examples_per_cpu_second": round(done / max(cpu, 1e-9), 3),
            "rechecked_alone": rechecked, "failures": failed, "worst_layer_lsb_vs_onnxruntime": worst_layer,
            "end_to_end_lsb_vs_onnxruntime": {str(k): v for k, v in sorted(end_to_end.items())},
            "layers_drawn": dict(ops.most_common())}


def _name(target) -> str:
    return target[0] if target[1] is None else "/".join(target)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", default="cpu", help="comma-separated target[/config]; cpu is always the baseline")
    p.add_argument("--failures", type=Path, default=Path("soak-failures"), help="where failing examples go")
    p.add_argument("--sanitize-every", type=int, default=25,
                   help="build the batch holding every Nth example with ASan/UBSan (0: never)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--batch", type=int, default=16, help="examples per C build")
    p.add_argument("--twice-every", type=int, default=10, help="compile every Nth example twice (determinism)")
    p.add_argument("--rotate", action="store_true",
                   help="check each example on the baseline and one other target in turn, not on all")
    p.add_argument("--json", type=Path, help="also write the summary here")
    p.add_argument("--replay", metavar="SEED-I", help="run one example and raise its error")
    args = p.parse_args(argv)
    targets = parse_targets(args.targets)
    if args.replay:
        net = build_net(SeededChooser(args.replay))
        print(f"layers: {net.layers}; {net.scheme}; int8 I/O: {net.int8_io}")
        print(check(net, targets, sanitize=True))
        return 0
    summary = soak(args.minutes, args.seed, targets, args.failures, args.sanitize_every, args.workers, args.batch,
                   args.twice_every, args.rotate)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
