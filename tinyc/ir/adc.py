"""The analog in-memory-compute job as IR ops, defined once: aconv (conv2d, groups 1) and amatmul
(x[1, K] @ w[K, N]) (docs/accelerators.md, "The analog core"; the rule that rewrites a qconv/qmatmul
into one is tinyc.passes.lower_adc).

What the array computes differs from qconv/qmatmul: the accumulation is read by a signed ADC of
`adc_bits`, so
    acc  = sum x * w                                    (int, in the array; no bias)
    adc  = clip((acc + 2**(adc_shift-1)) >> adc_shift, adc_min, adc_max)
    out  = clip((adc * post_multiplier + bias + 2**(post_shift-1)) >> post_shift, out_min, out_max)
with >> a floor shift and no rounding term for a shift of 0. The bias is int32 per output channel,
added after the ADC by the digital post-processing.
"""
from __future__ import annotations

import numpy as np

from .ops import CONV_ATTRS, WEIGHTED_OPERANDS, conv_acc, op, window_shape

ADC_ATTRS = ("adc_shift", "adc_min", "adc_max", "post_multiplier", "post_shift", "out_min", "out_max")


def round_shift(x, s: int):
    """(x + 2**(s-1)) >> s, floor shift; x itself for s = 0."""
    x = np.asarray(x, np.int64)
    return x if s == 0 else (x + (np.int64(1) << (s - 1))) >> s


def adc_out(acc: np.ndarray, bias, a: dict) -> np.ndarray:
    adc = np.clip(round_shift(acc, a["adc_shift"]), a["adc_min"], a["adc_max"])
    post = round_shift(adc * np.int64(a["post_multiplier"]) + bias, a["post_shift"])
    return np.clip(post, a["out_min"], a["out_max"]).astype(np.int8)


@op("aconv", CONV_ATTRS + ADC_ATTRS, contraction="window", operands=WEIGHTED_OPERANDS)
def _aconv():
    def infer(i, a):
        return [(window_shape(i[0], i[1].shape[0], i[1].shape[2:], a), "int8")]

    def compute(i, a):
        acc = conv_acc(i[0].astype(np.int64), i[1].astype(np.int64), a, exact_int=True)
        bias = 0 if len(i) < 3 or i[2] is None else i[2].astype(np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
        return [adc_out(acc, bias, a)]
    return infer, compute


@op("amatmul", ADC_ATTRS, contraction="dense", operands=WEIGHTED_OPERANDS)
def _amatmul():
    def infer(i, a):
        return [(i[0].shape[:-1] + (i[1].shape[1],), "int8")]

    def compute(i, a):
        acc = i[0].astype(np.int64) @ i[1].astype(np.int64)
        bias = 0 if len(i) < 3 or i[2] is None else i[2].astype(np.int64)
        return [adc_out(acc, bias, a)]
    return infer, compute


__all__ = ["ADC_ATTRS", "adc_out", "round_shift"]
