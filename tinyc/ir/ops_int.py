"""The integer ops: TFLite's int8 conv, matmul, add, average pool, table and softmax, with their
requantization (tinyc.ir.quant_math); ops.py holds the float ops and the helpers these share."""
from __future__ import annotations

import numpy as np

from . import quant_math as qm
from .ops import (OPS, CONV_ATTRS, POOL_ATTRS, REQUANT_ATTRS, WEIGHTED_OPERANDS, WEIGHTED_ZERO_POINTS, broadcast_shape,
                  conv_acc, op, per_channel, requant_out, unary, window_shape, window_sums)


@op("qconv", CONV_ATTRS + ("x_zp", "w_zp") + REQUANT_ATTRS, contraction="window", operands=WEIGHTED_OPERANDS,
    zero_points=WEIGHTED_ZERO_POINTS, requantizers={("multiplier", "shift"): "output channel"})
def _qconv():
    def infer(i, a):
        dtype = "int32" if a.get("multiplier") is None else "int8"
        return [(window_shape(i[0], i[1].shape[0], i[1].shape[2:], a), dtype)]

    def compute(i, a):
        x = i[0].astype(np.int64) - a["x_zp"]
        w = i[1].astype(np.int64) - per_channel(a["w_zp"], i[1].shape[0], i[1].ndim, 0)
        acc = conv_acc(x, w, a, exact_int=True)
        if len(i) > 2 and i[2] is not None:
            acc = acc + i[2].astype(np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
        return [requant_out(acc, a, 1)]
    return infer, compute


@op("qmatmul", ("x_zp", "w_zp") + REQUANT_ATTRS, contraction="dense", operands=WEIGHTED_OPERANDS,
    zero_points=WEIGHTED_ZERO_POINTS, requantizers={("multiplier", "shift"): "output column"})
def _qmatmul():
    """x[..., K] @ w[K, N] (+ bias[N]) with per-column requantization."""
    def infer(i, a):
        dtype = "int32" if a.get("multiplier") is None else "int8"
        return [(i[0].shape[:-1] + (i[1].shape[1],), dtype)]

    def compute(i, a):
        x = i[0].astype(np.float64) - a["x_zp"]
        w = i[1].astype(np.float64) - np.asarray(a["w_zp"], np.float64).reshape(1, -1)
        acc = np.rint(np.matmul(x, w)).astype(np.int64)
        if len(i) > 2 and i[2] is not None:
            acc = acc + i[2].astype(np.int64)
        return [requant_out(acc, a, acc.ndim - 1)]
    return infer, compute


@op("qadd", ("a_zp", "b_zp", "out_zp", "left_shift", "a_multiplier", "a_shift", "b_multiplier", "b_shift",
             "out_multiplier", "out_shift", "out_min", "out_max", "rounding"),
    operands=("first input", "second input"),
    zero_points={"a_zp": "first input", "b_zp": "second input", "out_zp": "output"},
    requantizers={("a_multiplier", "a_shift"): "first input", ("b_multiplier", "b_shift"): "second input",
                  ("out_multiplier", "out_shift"): "output"})
def _qadd():
    def infer(i, a):
        return [(broadcast_shape(i[0], i[1]), "int8")]

    def compute(i, a):
        sa = (i[0].astype(np.int64) - a["a_zp"]) << a["left_shift"]
        sb = (i[1].astype(np.int64) - a["b_zp"]) << a["left_shift"]
        total = (qm.multiply_by_quantized_multiplier(sa, a["a_multiplier"], a["a_shift"])
                 + qm.multiply_by_quantized_multiplier(sb, a["b_multiplier"], a["b_shift"]))
        out = qm.ROUNDINGS[a["rounding"]](total, a["out_multiplier"], a["out_shift"]) + a["out_zp"]
        return [np.clip(out, a["out_min"], a["out_max"]).astype(np.int8)]
    return infer, compute


@op("qavgpool", POOL_ATTRS + ("count_include_pad", "x_zp", "out_min", "out_max"))
def _qavgpool():
    """TFLite's int8 average: input and output share their quantization, so no zero point enters the sum
    except as the value of counted padding."""
    def compute(i, a):
        total, inside, padded = window_sums(i[0].astype(np.int64), a)
        inside = inside.astype(np.int64)
        count = padded.astype(np.int64) if a["count_include_pad"] else inside
        # counted padding reads x_zp; the ceil_mode overhang is not counted
        total = total + a["x_zp"] * (count - inside)
        return [np.clip(qm.rounded_average(total, count), a["out_min"], a["out_max"]).astype(np.int8)]
    return OPS["avgpool"].infer, compute


@op("lut", ("table",))
def _lut():
    """Any int8 -> int8 elementwise map, tabulated at compile time (table[x + 128])."""
    def compute(i, a):
        return [np.asarray(a["table"], np.int8)[i[0].astype(np.int64) + 128]]
    return unary(None, "int8")[0], compute


SOFTMAX_FRAC_BITS = 16


@op("qsoftmax", ("axis", "table", "inv_out_scale", "out_zp"))
def _qsoftmax():
    """Integer softmax: table[d] ~ exp(-d * in_scale) * 2**20 for d = max - x; each output is
    round(table[d] * inv_out_scale / (sum * 2**16)) + out_zp, inv_out_scale = round(2**16 / out_scale)."""
    def compute(i, a):
        x = i[0].astype(np.int64)
        d = x.max(axis=a["axis"], keepdims=True) - x
        e = np.asarray(a["table"], np.int64)[d]
        den = e.sum(axis=a["axis"], keepdims=True) << SOFTMAX_FRAC_BITS
        num = e * int(a["inv_out_scale"])
        q = (2 * num + den) // (2 * den) + a["out_zp"]
        return [np.clip(q, -128, 127).astype(np.int8)]
    return unary(None, "int8")[0], compute
