"""The MLPerf Tiny networks the benchmarks compile: the zoo's (seeded weights, power-of-two scales) and
the official trained int8 models, read in place from ../shared/models/mlperf_tiny beside a checkout."""
from __future__ import annotations

from pathlib import Path


from .. import zoo

MLPERF_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf_tiny"
OFFICIAL_FILES = {"kws": "kws_ref_model.onnx", "vww": "vww_96_int8.onnx", "ic": "pretrainedResnet_quant.onnx",
                  "ad": "ad01_int8.onnx"}


def available_models(mlperf_dir: Path, variant: str = "int8") -> dict:
    """model id -> a thunk giving what tinyc.compile takes; official ones only where the files are."""
    models = {f"official:{n}": (lambda f=mlperf_dir / f: f) for n, f in OFFICIAL_FILES.items()
              if (mlperf_dir / f).is_file()}
    models.update({f"zoo:{n}": (lambda n=n: zoo.build(n, variant)) for n in zoo.names()})
    return models
