"""benchmarks/compile_time.py runs end to end and writes the figures it promises (no timing asserted)."""
import json
import subprocess
import sys

from conftest import REPO


def test_compile_time_benchmark_writes_json(tmp_path):
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compile_time.py"), "--repeat", "1",
                          "--models", "zoo:kws", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "zoo:kws" in run.stdout
    figures = json.loads(out.read_text())
    assert figures["repeat"] == 1 and figures["target"] == "cpu"
    row, = figures["models"]
    assert row["model"] == "zoo:kws"
    assert len(row["compile_runs_s"]) == len(row["build_runs_s"]) == 1
    assert row["compile_s"] > 0 and row["build_s"] > 0
    assert row["arena_bytes"] >= row["arena_lower_bound_bytes"] > 0  # no plan beats the liveness bound
    assert row["arena_ratio"] == row["arena_bytes"] / row["arena_lower_bound_bytes"]


def test_compile_time_benchmark_rejects_unknown_model():
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compile_time.py"), "--models", "zoo:nope"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown or missing models zoo:nope" in run.stderr
