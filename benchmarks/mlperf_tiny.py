"""MLPerf Tiny on DIANA beside the HTVM paper's headline results: the same code as `tinyc bench mlperf-tiny`.

The benchmark lives in tinyc/bench/mlperf_tiny.py, inside the package, so the installed `tinyc` command runs
it without a checkout; this script runs it from a checkout without installing.

    python3 benchmarks/mlperf_tiny.py [--quick] [--json rows.json] [--out build/bench-mlperf-tiny]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tinyc.bench.mlperf_tiny import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/mlperf_tiny.py"))
