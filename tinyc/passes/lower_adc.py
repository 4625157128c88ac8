"""The rewrite of a qconv/qmatmul dispatched to a core read out by an ADC into the op the ADC makes of
it (aconv, amatmul; tinyc.ir.adc): the ADC rule chooses the ADC shift and the post-ADC multiply-add from the
ranges only (docs/accelerators.md, "The ADC rule"). A target's pattern names it (`lowering="adc"`) and
dispatch applies it to the chains it places there.
"""
from __future__ import annotations

from fractions import Fraction
import math

import numpy as np

from ..errors import UnsupportedError
from ..ir.adc import round_shift
from ..ir.graph import Graph
from ..ir.ops import CONV_ATTRS
from ..ir.ranges import value_range
from ..targets.base import Core

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
    - post_multiplier = 2**(k + max(0, -s)), bias * 2**max(0, -s), post_shift = max(s, 0): the post-ADC
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


def lower_adc(g: Graph, names: list[str], core: Core) -> None:
    """Rewrite the qconv/qmatmul job `names` (one node) into the ADC op (aconv, amatmul) with the ADC
    rule's parameters, for the core's `adc_bits`."""
    name, = names
    n = g.node(name)
    rule = adc_rule(g, n, int(core.params["adc_bits"].value))
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


__all__ = ["LOWERED", "adc_rule", "columns", "lower_adc"]
