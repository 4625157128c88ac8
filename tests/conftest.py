import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MLPERF_DIR = REPO.parent / "shared" / "models" / "mlperf_tiny"
MLPERF_MODELS = {  # task: (onnx, tflite)
    "kws": ("kws_ref_model.onnx", "kws_ref_model.tflite"),
    "vww": ("vww_96_int8.onnx", "vww_96_int8.tflite"),
    "ic": ("pretrainedResnet_quant.onnx", "pretrainedResnet_quant.tflite"),
    "ad": ("ad01_int8.onnx", "ad01_int8.tflite"),
}


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    """The official MLPerf Tiny models, read in place from ../shared (never copied into the repo)."""
    if not MLPERF_DIR.is_dir():
        reason = f"the official MLPerf Tiny models are not at {MLPERF_DIR}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    return MLPERF_DIR


def random_inputs(graph_or_shapes, seed: int):
    """Random tensors for every input of a compiled model: full int8 range, or standard normal floats."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph_or_shapes.inputs:
        v = graph_or_shapes.values[name]
        if v.dtype == "float32":
            out[name] = rng.standard_normal(v.shape).astype(np.float32)
        else:
            info = np.iinfo(v.dtype)
            out[name] = rng.integers(info.min, info.max + 1, v.shape).astype(v.dtype)
    return out
