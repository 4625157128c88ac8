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


def snr_db(reference: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio of `got` against `reference`, in dB (infinite when they are equal)."""
    ref = reference.astype(np.float64)
    noise = np.sum((got.astype(np.float64) - ref) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


def onnxruntime_batch(model, xs: np.ndarray) -> np.ndarray:
    """onnxruntime's outputs for each sample of a batch fed one by one to a single-input model."""
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[None]})[0] for x in xs])
