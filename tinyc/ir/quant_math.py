"""TFLite's int8 reference arithmetic, in numpy: the integer semantics of tinyc's quantized ops.

The C runtime (tinyc/runtime/tinyc_kernels_int.c) implements the same functions; both follow
tensorflow/lite/kernels/internal/common.h and quantization_util.cc (double rounding, the default).
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with real ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    fixed = int(_round_half_away(mantissa * (1 << 31)))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return fixed, shift


def _round_half_away(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul on int32 values held in int64 arrays."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division truncates toward zero
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent) -> np.ndarray:
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """x * multiplier * 2**(shift - 31), rounded as TFLite does; multiplier and shift broadcast."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(rounding_doubling_high_mul(np.asarray(x, np.int64) << left, multiplier), right)


def multiply_by_quantized_multiplier_single(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """The same product rounded once, half up: (x * multiplier + 2**(30 - shift)) >> (31 - shift)."""
    total = 31 - np.asarray(shift, np.int64)
    return (np.asarray(x, np.int64) * np.asarray(multiplier, np.int64) + (np.int64(1) << (total - 1))) >> total


ROUNDINGS = {"double": multiply_by_quantized_multiplier, "single": multiply_by_quantized_multiplier_single}


def requantize(acc: np.ndarray, multiplier, shift, zero_point: int, lo: int, hi: int,
               rounding: str = "double") -> np.ndarray:
    """TFLite rounds a conv's product twice (high mul, then shift) and a fully connected layer's once
    (its int8 path runs through ruy): both measured bit-exact against the TFLite interpreter."""
    out = ROUNDINGS[rounding](acc, multiplier, shift) + zero_point
    return np.clip(out, lo, hi)


def add_params(scale_a: float, scale_b: float, scale_out: float, left_shift: int = 20) -> dict:
    """Multipliers of TFLite's int8 Add (kernels/add.cc Prepare), from float32 scales."""
    twice_max = 2.0 * max(float(np.float32(scale_a)), float(np.float32(scale_b)))
    a_mult, a_shift = quantize_multiplier(float(np.float32(scale_a)) / twice_max)
    b_mult, b_shift = quantize_multiplier(float(np.float32(scale_b)) / twice_max)
    out_real = twice_max / ((1 << left_shift) * float(np.float32(scale_out)))
    out_mult, out_shift = quantize_multiplier(out_real)
    reals = [float(np.float32(scale_a)) / twice_max, float(np.float32(scale_b)) / twice_max, out_real]
    return dict(left_shift=left_shift, a_multiplier=a_mult, a_shift=a_shift, b_multiplier=b_mult,
                b_shift=b_shift, out_multiplier=out_mult, out_shift=out_shift,
                rounding="single" if powers_of_two(reals) else "double")


def rounded_average(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """TFLite's int8 average pool division: half away from zero, C integer division."""
    total = np.asarray(total, np.int64)
    count = np.asarray(count, np.int64)
    num = np.where(total > 0, total + count // 2, total - count // 2)
    return np.where(num >= 0, num // count, -((-num) // count))


# as TFLite's Conv, FullyConnected and Mul int8 kernels; the requantized average as its Conv
ROUNDING_OF = {"qconv": "double", "qmatmul": "single", "qmul": "double", "qavgpool_requant": "double"}


def powers_of_two(real) -> bool:
    mantissa, _ = np.frexp(np.asarray(real, np.float64))
    return bool(np.all(mantissa == 0.5))


def rounding_for(kind: str, real) -> str:
    """TFLite's rounding, except where every multiplier is a power of two: there the product is a plain
    shift rounded half up (single rounding), which a shift-only accelerator computes exactly by adding
    half an output step to its bias (HTVM/DORY's convention); TFLite's double rounding would differ on
    ties and keep such layers off DIANA's cores."""
    return "single" if powers_of_two(real) else ROUNDING_OF[kind]


def requant_attrs(real: np.ndarray, zp: int, bounds: tuple[int, int], kind: str) -> dict:
    """The requantization attributes of a `kind` (qconv/qmatmul) for per-channel real multipliers."""
    pairs = [quantize_multiplier(float(m)) for m in np.ravel(real)]
    return dict(multiplier=np.array([p[0] for p in pairs], np.int32), shift=np.array([p[1] for p in pairs], np.int32),
                out_zp=int(zp), out_min=int(bounds[0]), out_max=int(bounds[1]), rounding=rounding_for(kind, real))
