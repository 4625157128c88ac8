"""lower_global_pool: a global average pool (ResNet-8's 8x8, DS-CNN's 25x5) as a 1x1 conv with weights of 1
and a shift, where that is exact.

The host transposes the input [N, C, H, W] to [N, H*W, 1, C], so the window's values become the conv's
input channels; the conv sums them and requantizes by a right shift of log2(H*W), rounding half up.
TFLite's int8 average rounds half away from zero, which differs only on a negative tie: the rewrite
needs the window's count a power of two and the input proven non-negative (a ReLU before the pool).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.geometry import whole_plane
from ..ir.graph import Graph
from ..ir.ranges import value_range
from ..targets.constraints import POWER_OF_TWO_MULTIPLIER
from .lowering import lower, replace_conv, reshaped


def lower_global_pool(g: Graph, target, config: str) -> Graph:
    return lower(g, target, config, "lower_global_pool", ("qavgpool",), _options)


def _options(g: Graph, n, before, probe):
    if n.op != "qavgpool":
        return None
    x, a = g.values[n.inputs[0]], n.attrs
    if not whole_plane(x.shape, g.values[n.outputs[0]].shape, a):
        return f"a {'x'.join(map(str, a['kernel']))} window over a {'x'.join(map(str, x.shape[2:]))} input " \
               f"(padded {', '.join(map(str, a['pads']))}) is no global pool, the only one lowered"
    count = int(np.prod(a["kernel"]))
    if count & (count - 1):
        return f"a window of {count} values: a shift divides by a power of two only"
    lo, hi, source = value_range(g, n.inputs[0])
    if lo < 0:
        return f"the input may be negative ({lo}..{hi} from {source}): a shift rounds a negative tie up, " \
               f"the average away from zero"
    return [(f"as a 1x1 conv summing {count} input channels, then a shift by {count.bit_length() - 1}", _as_conv)]


def _as_conv(g: Graph, n) -> str:
    x, a = g.values[n.inputs[0]], n.attrs
    batch, c = x.shape[:2]
    count = int(np.prod(x.shape[2:]))
    flat = reshaped(g, n.inputs[0], (batch, c, count), n.name + "_flat")
    windows = ops.add(g, "transpose", [flat], n.name + "_windows", perm=(0, 2, 1))
    x2 = reshaped(g, windows, (batch, count, 1, c), n.name + "_channels")
    # real multiplier 2**(shift - 1) with multiplier 2**30: shift 1 - log2(count) divides by count
    attrs = dict(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, x_zp=0,
                 w_zp=np.zeros(1, np.int32), multiplier=np.full(1, POWER_OF_TWO_MULTIPLIER, np.int32),
                 shift=np.full(1, 1 - (count.bit_length() - 1), np.int32), out_zp=0,
                 out_min=int(a["out_min"]), out_max=int(a["out_max"]), rounding="single")
    return replace_conv(g, n, x2, np.ones((1, count, 1, 1), np.int8), attrs)
