"""Integer ops with one fixed-point requantization beyond ops.py's, the integer forms of onnxruntime's
QLinearMul and of an average pool quantized unlike its input (QLinearAveragePool, QDQ AveragePool):

qmul: TFLite's int8 Mul (kernels/mul.cc): (a - a_zp) * (b - b_zp) with broadcasting, requantized by one
multiplier of the real value a_scale * b_scale / out_scale.

qavgpool_requant: sum(x - x_zp) over the positions a window counts (the input's, or with
count_include_pad also its declared padding, which reads as real zero), requantized by the multiplier of
in_scale / (count * out_scale): `multiplier` and `shift` list one per count, from `count_min` up. Rounded
once, where ops.py's qavgpool (TFLite's, input and output alike quantized) then a table would round twice.
"""
from __future__ import annotations

import numpy as np

from . import quant_math as qm
from .ops import OPS, POOL_ATTRS, REQUANT_ATTRS, broadcast_shape, op, window_sums


@op("qmul", ("a_zp", "b_zp") + REQUANT_ATTRS)
def _qmul():
    def infer(i, a):
        return [(broadcast_shape(i[0], i[1]), "int8")]

    def compute(i, a):
        product = (i[0].astype(np.int64) - a["a_zp"]) * (i[1].astype(np.int64) - a["b_zp"])
        multiplier, shift = (int(np.ravel(a[k])[0]) for k in ("multiplier", "shift"))
        out = qm.requantize(product, multiplier, shift, a["out_zp"], a["out_min"], a["out_max"], a["rounding"])
        return [out.astype(np.int8)]
    return infer, compute


@op("qavgpool_requant", POOL_ATTRS + ("count_include_pad", "x_zp", "count_min") + REQUANT_ATTRS)
def _qavgpool_requant():
    def compute(i, a):
        total, inside, padded = window_sums(i[0].astype(np.int64) - a["x_zp"], a)
        index = (padded if a["count_include_pad"] else inside).astype(np.int64) - a["count_min"]
        multiplier = np.asarray(a["multiplier"], np.int64)[index]
        shift = np.asarray(a["shift"], np.int64)[index]
        out = qm.requantize(total, multiplier, shift, a["out_zp"], a["out_min"], a["out_max"], a["rounding"])
        return [out.astype(np.int8)]
    return OPS["avgpool"].infer, compute
