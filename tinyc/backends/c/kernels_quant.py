"""The quantization boundary's emitters (kernels in tinyc_kernels_int.c), registered into kernels.EMITTERS.

float32 -> int8/uint8: the interpreter's quantize is a monotone step function of x with 256 steps, so
it is tabled exactly here by the 255 float32 where its code steps up, found by searching the interpreter
itself (tinyc.ir.interpret's definition) over every float32, in the order of a monotone int32 key of
the float's bits; the kernel then finds x's code by an 8-step binary search of x's key, with
no float arithmetic at all (a soft-float division per element on RV32IMC otherwise).
int8/uint8 -> float32: a table of the 256 results, again from the interpreter's definition.
"""
from __future__ import annotations

import numpy as np

from ...ir.ops import OPS
from .kernels import EMITTERS, SUFFIX, arg, axis_split, dtypes, int32s, need, out, size

# A float's bits b as a key whose unsigned order is the floats' order, NaNs lowest (the interpreter
# quantizes NaN to the dtype's minimum): b ^ 0x7fffffff where negative (-0 just below +0), then rotated
# so that +NaN's keys (above +inf's before) come first. tinyc_quantize_s8 computes the same.
KEY_ROTATION = 0x7F800001
KEYS = 2 ** 32
SIGN = 0x80000000


def float_keys(x) -> np.ndarray:
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.int64)
    return ((bits ^ np.where(bits >= SIGN, 0x7FFFFFFF, 0)) - KEY_ROTATION) % KEYS


def key_floats(keys) -> np.ndarray:
    s = (np.asarray(keys, np.int64) + KEY_ROTATION) % KEYS
    return (s ^ np.where(s >= SIGN, 0x7FFFFFFF, 0)).astype(np.uint32).view(np.float32)


def step_keys(scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """For k = 1..255, the least key whose float the interpreter quantizes (scale > 0) to at least the
    dtype's minimum + k, or 2**32 where no float does: a bisection over all keys for the 255 at once."""
    attrs = dict(scale=np.float32(scale), zero_point=zero_point, axis=None, dtype=dtype)
    target = np.iinfo(dtype).min + np.arange(1, 256)
    lo, hi = np.zeros(255, np.int64), np.full(255, KEYS, np.int64)
    with np.errstate(all="ignore"):  # x / scale overflows to inf for the largest floats, as it should
        while (lo < hi).any():
            mid = (lo + hi) // 2
            codes = OPS["quantize"].compute([key_floats(np.minimum(mid, KEYS - 1))], attrs)[0]
            reached = codes.astype(np.int64) >= target
            active = lo < hi
            hi = np.where(active & reached, mid, hi)
            lo = np.where(active & ~reached, mid + 1, lo)
    return lo


def channel_split(node, shape):
    """outer, channels, inner of a (de)quantize, and its scale and zero point per channel (one each
    for a per-tensor one)."""
    a = node.attrs
    scale = np.asarray(a["scale"], np.float32).reshape(-1)
    zp = np.asarray(a["zero_point"]).reshape(-1)
    if a["axis"] is None or (scale.size == 1 and zp.size == 1):
        return (1, 1, size(shape)), scale[:1], zp[:1]
    outer, channels, inner = axis_split(shape, a["axis"])
    need(scale.size in (1, channels) and zp.size in (1, channels),
         f"{scale.size} scales and {zp.size} zero points for {channels} channels")
    return (outer, channels, inner), np.broadcast_to(scale, (channels,)), np.broadcast_to(zp, (channels,))


def quantize(e, node):
    """Per channel 256 words: the sign to flip into x (a negative scale quantizes -x by -scale, the same
    quotient), then the 255 step keys less one (x's key above one: at or past that step)."""
    dtypes(e, node, ("float32",))
    y = out(e, node)
    need(y.dtype in ("int8", "uint8"), f"quantize to {y.dtype}: the kernel gives int8 or uint8")
    (outer, channels, inner), scales, zps = channel_split(node, y.shape)
    tables = [np.concatenate([[SIGN if s < 0 else 0], step_keys(abs(float(s)), int(z), y.dtype) - 1])
              for s, z in zip(scales, zps)]
    keys = e.array(node.name + "_step_keys", "uint32_t", np.concatenate(tables))
    return [f"tinyc_quantize_{SUFFIX[y.dtype]}({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {outer}, {channels}, "
            f"{inner}, {keys}, {int(len(tables) > 1)});"]


def dequantize(e, node):
    dt, = dtypes(e, node, ("int8", "uint8", "int32"))
    (outer, channels, inner), scales, zps = channel_split(node, out(e, node).shape)
    shape = f"{outer}, {channels}, {inner}"
    if dt == "int32":
        s = e.array(node.name + "_scale", "float", scales)
        z = e.array(node.name + "_zero_point", "int32_t", int32s(zps, "zero_point"))
        return [f"tinyc_dequantize_s32({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {shape}, {s}, {z}, "
                f"{int(scales.size > 1)});"]
    codes = np.arange(np.iinfo(dt).min, np.iinfo(dt).max + 1).astype(dt)
    tables = [OPS["dequantize"].compute([codes], dict(scale=s, zero_point=int(z), axis=None))[0]
              for s, z in zip(scales, zps)]
    t = e.array(node.name + "_table", "float", np.concatenate(tables))
    return [f"tinyc_dequantize_{SUFFIX[dt]}({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {shape}, {t}, "
            f"{int(len(tables) > 1)});"]


EMITTERS.update(quantize=quantize, dequantize=dequantize)
