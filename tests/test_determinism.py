"""The same model compiles to byte-identical sources and the same report: twice in one process, and in
processes with different string hashing (set and dict orders must never leak into the output), for the
host alone and for DIANA with every core (dispatch by cost, CP-SAT tiling)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnx
import pytest

import tinyc
from tinyc import zoo
from onnx_builders import tiny_cnn

REPO = Path(__file__).resolve().parents[1]
MODELS = {  # float, and int8 QDQ with depthwise convolutions or with residual additions
    "tiny_cnn": tiny_cnn,
    "kws_int8": lambda: zoo.build("kws", "int8"),
    "ic_int8": lambda: zoo.build("ic", "int8"),
    "kws_ternary": lambda: zoo.build("kws", "ternary"),
}
TARGETS = ("cpu", "diana")
COMPILE = """
import json, sys, tinyc
out = {}
for path in sys.argv[1:]:
    for target in ("cpu", "diana"):
        cm = tinyc.compile(path, target=target)
        out[path + "@" + target] = {"sources": cm.sources, "report": cm.report}
print(json.dumps(out))
"""


def compiled(path: Path, target: str) -> dict:
    """What must not vary, in its JSON form (the form a subprocess hands back)."""
    cm = tinyc.compile(str(path), target=target)
    return json.loads(json.dumps({"sources": cm.sources, "report": cm.report}))


def compiled_for_every_target(path: Path) -> dict:
    return {f"{path}@{target}": compiled(path, target) for target in TARGETS}


def in_subprocesses(paths: list[Path], hash_seeds=("1", "2")) -> list[dict]:
    def run(seed: str) -> dict:
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-c", COMPILE, *map(str, paths)], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    with ThreadPoolExecutor(len(hash_seeds)) as pool:
        return list(pool.map(run, hash_seeds))


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("determinism")
    paths = {}
    for name, build in MODELS.items():
        paths[name] = folder / f"{name}.onnx"
        onnx.save(build(), paths[name])
    return paths


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_same_process(model_paths, name, target):
    first, second = compiled(model_paths[name], target), compiled(model_paths[name], target)
    assert {f: t.encode() for f, t in first["sources"].items()} == {f: t.encode() for f, t in second["sources"].items()}
    assert first["report"] == second["report"]


def test_processes_with_different_hash_seeds(model_paths):
    here = {k: v for p in model_paths.values() for k, v in compiled_for_every_target(p).items()}
    one, two = in_subprocesses(list(model_paths.values()))
    assert one == two == here


def test_mlperf_kws(mlperf_dir):
    path = mlperf_dir / "kws_ref_model.onnx"
    first = compiled_for_every_target(path)
    assert compiled_for_every_target(path) == first
    assert in_subprocesses([path]) == [first] * 2
