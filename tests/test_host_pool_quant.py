"""The host's global average pool (tinyc_pool.h) against the reference interpreter, bit for bit.

Planes of up to 16 values are summed unrolled; longer ones by word loads (bytes biased to unsigned in
16-bit lanes), from an aligned start with the bytes before it and after the last whole word one by
one, in runs of at most 256 words. The cases land on each path, on planes that start at every
alignment, on runs past 256 words, on the lanes' bounds (every value -128 or 127) and on the
rounding's ties (half away from zero, for even and odd plane sizes).
"""
from __future__ import annotations

import numpy as np
import pytest

from test_c_backend import check, new_graph, rand, window_attrs
from tinyc.ir import ops

RNG = np.random.default_rng(11)


def global_pool(xs, x_zp=0, lo=-128, hi=127, name="x"):
    g = new_graph(**{name: (xs, "int8")})
    y = ops.add(g, "qavgpool", [name], "y", kernel=xs[2:], **window_attrs(len(xs) - 2), ceil_mode=False,
                count_include_pad=True, x_zp=x_zp, out_min=lo, out_max=hi)
    return g, y


def ties(xs) -> np.ndarray:
    """Planes whose totals are every residue mod n around 0, so even n meet their ties at +-n/2."""
    n = int(np.prod(xs[2:]))
    x = np.zeros(xs, np.int8).reshape(-1, n)
    for p in range(x.shape[0]):
        total = p - x.shape[0] // 2 - n // 2  # spread over [-planes/2 - n/2, planes/2 - n/2)
        sign, left = np.sign(total), abs(total)
        for i in range(n):
            step = min(left, 127)
            x[p, i], left = sign * step, left - step
    return x.reshape(xs)


# plane sizes: 1..16 unrolled; 17.. by words (n % 4 != 0: planes at every alignment); 64 and 1024:
# aligned planes of n / 4 words (1024: one run of 256); 1028 and 1037: runs of 256 words then the rest
PLANES = [(1, 6, 1, 1), (1, 3, 1, 2), (2, 5, 3, 1), (1, 7, 3, 3), (1, 5, 4, 4), (1, 4, 17), (1, 9, 5, 5),
          (1, 6, 25, 5), (1, 5, 8, 8), (1, 3, 1, 1024), (1, 3, 4, 257), (1, 5, 1037), (1, 2, 2, 3, 3)]


@pytest.mark.parametrize("xs", PLANES)
def test_global_pool_planes(xs, tmp_path):
    g, y = global_pool(xs, x_zp=int(RNG.integers(-128, 128)))
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8), ties(xs)):
        check(g, y, tmp_path, {"x": x})


@pytest.mark.parametrize("lo,hi", [(-3, 127), (-128, 5), (0, 0), (-100, 90)])
def test_global_pool_clip_bounds(lo, hi, tmp_path):
    """A fused clip (a ReLU's zero point) on a short and a long plane."""
    for xs in ((1, 8, 3, 3), (1, 4, 25, 5)):
        g, y = global_pool(xs, lo=lo, hi=hi)
        check(g, y, tmp_path)


def test_global_pool_under_sanitizers(tmp_path):
    """Every path (unrolled, aligned words, unaligned words with runs) under ASan and UBSan, each
    pool the network's only reader of its input (no load past it)."""
    g = new_graph(a=((1, 5, 3, 3), "int8"), b=((1, 3, 25, 5), "int8"), c=((1, 2, 8, 8), "int8"),
                  d=((1, 3, 1037), "int8"))
    outs = [ops.add(g, "qavgpool", [v], v + "_pool", kernel=g.values[v].shape[2:],
                    **window_attrs(len(g.values[v].shape) - 2), ceil_mode=False, count_include_pad=False, x_zp=0,
                    out_min=-128, out_max=127) for v in ("a", "b", "c", "d")]
    check(g, outs, tmp_path, sanitize=True)
    check(g, outs, tmp_path, {v: np.full(g.values[v].shape, -128, np.int8) for v in "abcd"}, sanitize=True)
