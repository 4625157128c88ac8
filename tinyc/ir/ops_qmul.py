"""qmul: TFLite's int8 Mul (kernels/mul.cc), the integer form of a QDQ Mul or onnxruntime's QLinearMul:
(a - a_zp) * (b - b_zp) with broadcasting, requantized by one fixed-point multiplier of the real value
a_scale * b_scale / out_scale to the output's zero point and bounds."""
from __future__ import annotations

import numpy as np

from . import quant_math as qm
from .ops import REQUANT_ATTRS, _broadcast, op


@op("qmul", ("a_zp", "b_zp") + REQUANT_ATTRS)
def _qmul():
    def infer(i, a):
        return [(_broadcast(i[0], i[1]), "int8")]

    def compute(i, a):
        product = (i[0].astype(np.int64) - a["a_zp"]) * (i[1].astype(np.int64) - a["b_zp"])
        multiplier, shift = (int(np.ravel(a[k])[0]) for k in ("multiplier", "shift"))
        out = qm.requantize(product, multiplier, shift, a["out_zp"], a["out_min"], a["out_max"], a["rounding"])
        return [out.astype(np.int8)]
    return infer, compute
