"""The MLPerf Tiny v1.0 networks with seeded weights: float, int8 (power-of-two QDQ) and ternary.

build(name, variant, seed) is deterministic: the same arguments give the same serialized bytes.
The int8 and ternary variants are the float network quantized by tinyc.quantizer on seeded
calibration inputs (sample(name, CALIBRATION_SAMPLES, seed)), with int8 graph input and output.
"""
import numpy as np
import onnx

from tinyc.quantizer import quantize
from tinyc.zoo.nets import BUILDERS

VARIANTS = ("float", "int8", "ternary")
CALIBRATION_SAMPLES = 16
INPUT_SHAPES = {"kws": (1, 1, 49, 10), "vww": (1, 3, 96, 96), "ic": (1, 3, 32, 32), "ad": (1, 640)}


def names() -> list[str]:
    return list(BUILDERS)


def sample(name: str, n: int = 1, seed: int = 0) -> np.ndarray:
    """n float samples stacked on the batch axis, so sample(name) is one model input: images uniform
    in [0, 1), MFCC/log-mel features standard normal."""
    rng = np.random.default_rng([seed, 1])  # apart from the weights' stream, which is default_rng(seed)
    shape = (n, *INPUT_SHAPES[_check(name)][1:])
    if name in ("vww", "ic"):
        return rng.random(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32)


def build(name: str, variant: str = "float", seed: int = 0) -> onnx.ModelProto:
    model = BUILDERS[_check(name)](seed)
    if variant == "float":
        return model
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    # per-tensor weight scales: DIANA's cores requantize a whole layer with one shift
    return quantize(model, sample(name, CALIBRATION_SAMPLES, seed), per_channel=False, power_of_two=True,
                    io="int8", ternary="auto" if variant == "ternary" else None)


def _check(name: str) -> str:
    if name not in BUILDERS:
        raise ValueError(f"unknown network {name!r}: one of {', '.join(BUILDERS)}")
    return name
