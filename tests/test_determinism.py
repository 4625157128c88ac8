"""The same model compiles to byte-identical sources and the same report: twice in one process, and in
processes with different string hashing (set and dict orders must never leak into the output)."""
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
}
COMPILE = """
import json, sys, tinyc
out = {}
for path in sys.argv[1:]:
    cm = tinyc.compile(path)
    out[path] = {"sources": cm.sources, "report": cm.report}
print(json.dumps(out))
"""


def compiled(path: Path) -> dict:
    """What must not vary, in its JSON form (the form a subprocess hands back)."""
    cm = tinyc.compile(str(path))
    return json.loads(json.dumps({"sources": cm.sources, "report": cm.report}))


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


@pytest.mark.parametrize("name", MODELS)
def test_same_process(model_paths, name):
    first, second = compiled(model_paths[name]), compiled(model_paths[name])
    assert {f: t.encode() for f, t in first["sources"].items()} == {f: t.encode() for f, t in second["sources"].items()}
    assert first["report"] == second["report"]


def test_processes_with_different_hash_seeds(model_paths):
    here = {str(p): compiled(p) for p in model_paths.values()}
    one, two = in_subprocesses(list(model_paths.values()))
    assert one == two == here


def test_mlperf_kws(mlperf_dir):
    path = mlperf_dir / "kws_ref_model.onnx"
    first = compiled(path)
    assert compiled(path) == first
    assert in_subprocesses([path]) == [{str(path): first}] * 2
