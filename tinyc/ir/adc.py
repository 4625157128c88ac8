"""The analog in-memory-compute job as IR ops, defined once: aconv (conv2d, groups 1) and amatmul
(x[1, K] @ w[K, N]), and the rule that rewrites a qconv/qmatmul into one (docs/accelerators.md,
"The analog core").

What the array computes differs from qconv/qmatmul: the accumulation is read by a signed ADC of
`adc_bits`, so
    acc  = sum x * w                                    (int, in the array; no bias)
    adc  = clip((acc + 2**(adc_shift-1)) >> adc_shift, adc_min, adc_max)
    out  = clip((adc * post_multiplier + bias + 2**(post_shift-1)) >> post_shift, out_min, out_max)
with >> a floor shift and no rounding term for a shift of 0. The bias is int32 per output channel,
added after the ADC by the digital post-processing.
"""
from __future__ import annotations

from fractions import Fraction
import math

import numpy as np

from ..errors import UnsupportedError
from .graph import Graph
from .ops import CONV_ATTRS, conv_acc, op, window_shape
from .ranges import value_range

ADC_ATTRS = ("adc_shift", "adc_min", "adc_max", "post_multiplier", "post_shift", "out_min", "out_max")


def round_shift(x, s: int):
    """(x + 2**(s-1)) >> s, floor shift; x itself for s = 0."""
    x = np.asarray(x, np.int64)
    return x if s == 0 else (x + (np.int64(1) << (s - 1))) >> s


def adc_out(acc: np.ndarray, bias, a: dict) -> np.ndarray:
    adc = np.clip(round_shift(acc, a["adc_shift"]), a["adc_min"], a["adc_max"])
    post = round_shift(adc * np.int64(a["post_multiplier"]) + bias, a["post_shift"])
    return np.clip(post, a["out_min"], a["out_max"]).astype(np.int8)


@op("aconv", CONV_ATTRS + ADC_ATTRS)
def _aconv():
    def infer(i, a):
        return [(window_shape(i[0], i[1].shape[0], i[1].shape[2:], a), "int8")]

    def compute(i, a):
        acc = conv_acc(i[0].astype(np.int64), i[1].astype(np.int64), a, exact_int=True)
        bias = 0 if len(i) < 3 or i[2] is None else i[2].astype(np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
        return [adc_out(acc, bias, a)]
    return infer, compute


@op("amatmul", ADC_ATTRS)
def _amatmul():
    def infer(i, a):
        return [(i[0].shape[:-1] + (i[1].shape[1],), "int8")]

    def compute(i, a):
        acc = i[0].astype(np.int64) @ i[1].astype(np.int64)
        bias = 0 if len(i) < 3 or i[2] is None else i[2].astype(np.int64)
        return [adc_out(acc, bias, a)]
    return infer, compute


LOWERED = {"qconv": "aconv", "qmatmul": "amatmul"}


def columns(g: Graph, node) -> np.ndarray:
    """The weights as the array holds them: one column of rows (in_ch*kh*kw) per output channel."""
    w = g.values[node.inputs[1]].data.astype(np.int64)
    return w.reshape(w.shape[0], -1) if node.op in ("qconv", "aconv") else w.T


def adc_rule(g: Graph, node, adc_bits: int) -> dict:
    """The ADC shift and post-ADC multiply-add of a qconv/qmatmul with power-of-two scales, zero points
    0 and one right shift s = 1 - shift (s < 0: a left shift), chosen from the ranges only:

    - accumulation bounds per output channel from the weights' signs and the input's proven range;
    - an accumulation beyond where the output clips changes nothing, so each channel needs the ADC to
      cover only [max(acc_lo, out_min * 2**s - bias), min(acc_hi, out_max * 2**s - bias)];
    - adc_shift is the least k >= 0 whose rounded shift keeps that union inside the ADC's range;
    - post_multiplier = 2**(k + max(0, -s)), bias * 2**max(0, -s), post_shift = max(s, 0): the digital
      part restores the scale, so with k = 0 the job equals the qconv/qmatmul wherever the ADC does not
      clip. The cost is the ADC's step: outputs may differ by up to 2**(k - 1 - s) + 1 LSB.
    """
    a = node.attrs
    s = 1 - int(np.ravel(a["shift"])[0])
    lo, hi, _ = value_range(g, node.inputs[0])
    lo, hi = min(lo, 0), max(hi, 0)  # padding reads 0
    w = columns(g, node)
    pos, neg = (w > 0).sum(1) * w.max(initial=0), (w < 0).sum(1) * -w.min(initial=0)
    bias = g.values[node.inputs[2]].data.astype(np.int64) if len(node.inputs) > 2 and node.inputs[2] \
        else np.zeros(w.shape[0], np.int64)
    step = Fraction(2) ** s
    need_hi = max(min(int(p * hi - q * lo), math.ceil(a["out_max"] * step - int(b))) for p, q, b in zip(pos, neg, bias))
    need_lo = min(max(int(p * lo - q * hi), math.floor(a["out_min"] * step - int(b))) for p, q, b in zip(pos, neg, bias))
    adc_min, adc_max = -(1 << (adc_bits - 1)), (1 << (adc_bits - 1)) - 1
    k = 0
    while round_shift(need_hi, k) > adc_max or round_shift(need_lo, k) < adc_min:
        k += 1
    left = max(0, -s)
    return dict(adc_shift=k, adc_min=adc_min, adc_max=adc_max, post_multiplier=1 << (k + left),
                post_shift=max(s, 0), out_min=int(a["out_min"]), out_max=int(a["out_max"]), bias_scale=1 << left)


def lower(g: Graph, name: str, adc_bits: int) -> None:
    """Rewrite qconv/qmatmul `name` into the analog op with the ADC rule's parameters."""
    n = g.node(name)
    rule = adc_rule(g, n, adc_bits)
    scale = rule.pop("bias_scale")
    inputs = list(n.inputs[:3])
    if len(inputs) > 2 and inputs[2] and scale != 1:
        b = g.values[inputs[2]].data.astype(np.int64) * scale
        if np.abs(b).max(initial=0) >= 2 ** 31:
            raise UnsupportedError(f"the bias times {scale} leaves int32", node=name)
        inputs[2] = g.add_const(f"{inputs[2]}_x{scale}", b.astype(np.int32)).name
    attrs = {k: n.attrs[k] for k in CONV_ATTRS} if n.op == "qconv" else {}
    g.set_node(name, op=LOWERED[n.op], inputs=inputs, attrs={**attrs, **rule})
    g.connect()


__all__ = ["ADC_ATTRS", "LOWERED", "adc_rule", "adc_out", "columns", "lower", "round_shift"]
