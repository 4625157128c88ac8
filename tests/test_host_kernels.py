"""The host int8 kernels' fast paths against the reference interpreter, bit for bit.

tinyc_qconv_s8 and tinyc_qmatmul_s8 sum in int32 where taps * span(x_zp) * span(w_zp) (span: the
largest |v - zp| over int8 v) proves it and in int64 otherwise; the conv takes four outputs of two
channels at a time where their windows lie inside the input, one at a time at borders and leftovers,
and runs a pointwise conv as one long row. Each case here lands on a different mix of those paths.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from test_c_backend import RNG, check, new_graph, rand, window_attrs
from tinyc.backends.c import emit_c, plans
from tinyc.backends.c.emit import Emitter
from tinyc.ir import ops
from tinyc.ir import quant_math as qm
from tinyc.ir.graph import Value
from tinyc.passes.memory import plan_memory

INT32_MAX = 2 ** 31 - 1


def span(zp: int) -> int:
    return max(127 - zp, zp + 128)


def requant(m: int, k: int, rounding: str) -> dict:
    mult, shift = zip(*(qm.quantize_multiplier(r) for r in RNG.uniform(0.2, 2.0, m) / k))
    return dict(multiplier=list(mult), shift=list(shift), out_zp=-7, out_min=-128, out_max=127, rounding=rounding)


def qconv(g, x, w, bias, x_zp, w_zp, group, attrs, rq):
    inputs = [x, w] + ([bias] if bias else [])
    return ops.add(g, "qconv", inputs, "y", group=group, x_zp=x_zp, w_zp=w_zp, **attrs, **rq)


# (x shape, weight shape, group, strides, pads, dilations, x_zp, per-channel w_zp)
CONVS = [
    ((1, 3, 9, 10), (5, 3, 3, 3), 1, 1, 1, 1, -128, True),              # odd channels: a pair then one alone
    ((1, 1, 49, 10), (6, 1, 10, 4), 1, 2, (4, 1, 5, 1), 1, 0, False),    # DS-CNN's first conv
    ((1, 6, 11, 13), (6, 1, 3, 3), 6, 1, 1, 1, 3, True),                 # depthwise
    ((1, 4, 12, 14), (8, 2, 3, 3), 2, 2, (0, 1, 2, 0), 1, -5, True),     # groups, stride, asymmetric pads
    ((1, 2, 13, 17), (4, 2, 3, 2), 1, (1, 2), 2, (2, 3), 9, False),      # dilation wider than the pads
    ((1, 4, 5, 7), (3, 4, 1, 1), 1, 1, 0, 1, 11, True),                  # pointwise: one row of 35
    ((2, 6, 3, 3), (7, 6, 1, 1), 1, 1, 0, 1, -1, False),                 # pointwise, batch 2, 9 outputs
    ((1, 4, 6, 6), (4, 4, 1, 1), 1, 2, 0, 1, 2, True),                   # 1x1 of stride 2: not pointwise
    ((1, 4, 6, 6), (4, 4, 1, 1), 1, 1, 1, 1, 2, True),                   # 1x1 with padding: not pointwise
    ((1, 2, 3, 3), (2, 2, 5, 5), 1, 1, 2, 1, 4, False),                  # kernel wider than the input
    ((1, 1, 3), (1, 1, 1), 1, 1, (2, 0), 1, 5, False),                   # windows wholly in the padding
    ((1, 2, 4, 4), (3, 2, 2, 2), 1, 1, 3, 1, -2, True),                  # the same in 2-D
    ((1, 3, 40), (4, 3, 5), 1, 3, (2, 1), 1, -60, True),                 # 1-D
    ((1, 2, 4, 5, 6), (3, 2, 2, 3, 3), 1, (1, 2, 1), 1, (2, 1, 1), 6, True),  # 3-D
]


@pytest.mark.parametrize("xs,ws,group,strides,pads,dil,x_zp,per_channel", CONVS)
@pytest.mark.parametrize("rounding", ["single", "double", None])
def test_qconv_paths(xs, ws, group, strides, pads, dil, x_zp, per_channel, rounding, tmp_path):
    g = new_graph(x=(xs, "int8"))
    m = ws[0]
    w = g.add_const("w", rand(ws, "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, m).astype(np.int32)).name
    w_zp = RNG.integers(-9, 9, m).tolist() if per_channel else [0]
    rq = requant(m, int(np.prod(ws[1:])), rounding) if rounding else dict(multiplier=None, shift=None, out_zp=0,
                                                                          out_min=-128, out_max=127, rounding="single")
    y = qconv(g, "x", w, b, x_zp, w_zp, group, window_attrs(len(xs) - 2, strides, pads, dil), rq)
    check(g, y, tmp_path)


@pytest.mark.parametrize("x_zp,w_zp", [(127, -128), (-128, 127), (0, 0)])
@pytest.mark.parametrize("extra", [0, 1])
def test_qconv_int32_bound(x_zp, w_zp, extra, tmp_path):
    """Every product at its extreme, over exactly as many taps as int32 holds (extra 0: the int32 path)
    and one more (extra 1: the int64 path); int32 output shows the sums themselves."""
    x_val, w_val = (-128 if x_zp >= 0 else 127), (-128 if w_zp >= 0 else 127)
    taps = INT32_MAX // (span(x_zp) * span(w_zp)) + extra
    for kernel, xs, ws in [((1, 1), (1, taps, 2, 3), (3, taps, 1, 1)),   # pointwise: a block of four, two alone
                           ((1, 3), (1, taps // 3 + extra, 1, 6), (2, taps // 3 + extra, 1, 3))]:
        g = new_graph(x=(xs, "int8"))
        w = g.add_const("w", np.full(ws, w_val, np.int8)).name
        attrs = window_attrs(2, 1, (0, 1, 0, 1) if kernel != (1, 1) else 0)
        acc = qconv(g, "x", w, "", x_zp, [w_zp], 1, attrs, dict(multiplier=None, shift=None, out_zp=0,
                                                                 out_min=-128, out_max=127, rounding="single"))
        q = ops.add(g, "qconv", ["x", w], "q", group=1, x_zp=x_zp, w_zp=[w_zp], **attrs, **requant(ws[0], taps, "double"))
        for x in (np.full(xs, x_val, np.int8), rand(xs, "int8")):
            check(g, [acc, q], tmp_path, {"x": x})


@pytest.mark.parametrize("rows,k,n,x_zp", [(1, 64, 12, 0), (3, 37, 9, -128), (2, 640, 128, 5), (1, 5, 3, 127)])
def test_qmatmul_paths(rows, k, n, x_zp, tmp_path):
    g = new_graph(x=((rows, k), "int8"))
    w = g.add_const("w", rand((k, n), "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, n).astype(np.int32)).name
    y = ops.add(g, "qmatmul", ["x", w, b], "y", x_zp=x_zp, w_zp=RNG.integers(-4, 4, n).tolist(),
                **requant(n, k, "single"))
    check(g, y, tmp_path)


@pytest.mark.parametrize("extra", [0, 1])
def test_qmatmul_int32_bound(extra, tmp_path):
    """k * span(x_zp) * 128 at int32's limit (extra 0) and past it (extra 1: int64 sums)."""
    k = INT32_MAX // (span(127) * 128) + extra
    g = new_graph(x=((1, k), "int8"))
    w = g.add_const("w", np.full((k, 6), -128, np.int8)).name
    y = ops.add(g, "qmatmul", ["x", w], "y", x_zp=127, w_zp=[0, 1, -1, 127, -128, 0], multiplier=None, shift=None,
                out_zp=0, out_min=-128, out_max=127, rounding="single")
    check(g, y, tmp_path, {"x": np.full((1, k), -128, np.int8)})


def test_fast_paths_under_sanitizers(tmp_path):
    """Blocks, borders, pairs and the pointwise row with nonzero zero points, under ASan and UBSan."""
    g = new_graph(x=((1, 5, 7, 9), "int8"))
    w3 = g.add_const("w3", rand((5, 5, 3, 3), "int8")).name
    w1 = g.add_const("w1", rand((3, 5, 1, 1), "int8")).name
    a = qconv(g, "x", w3, "", -128, RNG.integers(-3, 3, 5).tolist(), 1, window_attrs(2, 1, 1), requant(5, 45, "double"))
    y = ops.add(g, "qconv", [a, w1], "pw", group=1, x_zp=-7, w_zp=[0], **window_attrs(2), **requant(3, 5, "single"))
    check(g, [a, y], tmp_path, sanitize=True)


@pytest.mark.parametrize("left_shift", [0, 20, 22, 23, 30])
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_qadd_paths(left_shift, rounding, tmp_path):
    """qadd's 32-bit rescales up to left_shift 22 with int8 zero points, int64 past it; shifts of both signs."""
    g = new_graph(a=((2, 3, 5, 7), "int8"), b=((3, 1, 7), "int8"))
    params = qm.add_params(0.05, 0.02, 0.07, left_shift)
    params.update(rounding=rounding)
    y = ops.add(g, "qadd", ["a", "b"], "y", a_zp=-128, b_zp=127, out_zp=-1, out_min=-128, out_max=127, **params)
    z = ops.add(g, "qadd", ["a", y], "z", a_zp=3, b_zp=0, out_zp=2, out_min=-100, out_max=100,
                **dict(qm.add_params(3.0, 0.01, 0.002, left_shift), rounding=rounding))
    check(g, [y, z], tmp_path)


# ---------------------------------------------------------------- the planned kernels (tinyc_kernels_plan.c)
def planned(g, name: str) -> bool:
    """Whether the C backend plans the node (tinyc/backends/c/plans.py) rather than calling the general kernel."""
    node = g.node(name)
    plan = plans.qconv if node.op == "qconv" else plans.qmatmul
    args = ("x", "y") if node.op == "qconv" else ("x", "y", 1)
    return plan(Emitter(g), node, *args) is not None


def plan_mode(g, name: str) -> str | None:
    """The requantization mode the plan picks for the node (plans.MODES' key), None where it does not plan it."""
    node = g.node(name)
    e = Emitter(g)
    plan = plans.qconv if node.op == "qconv" else plans.qmatmul
    if plan(e, node, *(("x", "y") if node.op == "qconv" else ("x", "y", 1))) is None:
        return None
    text = "".join(e.decls)
    return next(mode for mode, c_name in plans.MODES.items() if re.search(rf"\b{c_name}\b", text))


def plan_requant(m: int, taps: int, mode: str, per_channel: bool = True) -> dict:
    """pow2 (double rounding) and shift (single): multiplier 2**30 with shifts down to -12; double and single: TFLite's
    multipliers of random scales; one value for all channels unless per_channel."""
    count = m if per_channel else 1
    if mode == "pow2":
        shift = [0] + RNG.integers(-12, 0, count - 1).tolist() if count > 1 else [-5]
        rq = dict(multiplier=[1 << 30] * count, shift=shift, rounding="double")
    elif mode == "shift":  # single rounding by 2**30: one rounding shift, 1 - shift (0 with shift 1)
        shift = [1] + RNG.integers(-12, 1, count - 1).tolist() if count > 1 else [-4]
        rq = dict(multiplier=[1 << 30] * count, shift=shift, rounding="single")
    elif mode == "single_low":  # scales of 1/2 and more (31 - shift <= 31), as the ternary zoo's
        rq = dict(multiplier=RNG.integers(1 << 30, 1 << 31, count).tolist(), shift=RNG.integers(0, 3, count).tolist(),
                  rounding="single")
    else:
        rq = requant(count, taps, mode)
    return dict(rq, out_zp=5, out_min=-100, out_max=120)


# (x shape, weight shape, group, strides, pads, dilations, x_zp): weight zero points 0, as TFLite's
PLANNED_CONVS = [
    ((1, 3, 9, 10), (5, 3, 3, 3), 1, 1, 1, 1, -128),                 # a block of four channels and one; row tails
    ((1, 1, 49, 10), (6, 1, 10, 4), 1, 2, (4, 1, 5, 1), 1, 0),        # DS-CNN's first conv
    ((1, 6, 11, 13), (6, 1, 3, 3), 6, 1, 1, 1, 3),                   # depthwise 3x3, weights in registers
    ((1, 6, 11, 13), (6, 1, 3, 3), 6, 2, (0, 0, 1, 1), 1, -3),        # depthwise of stride 2, end pads only
    ((1, 4, 9, 9), (4, 1, 3, 3), 4, 1, 2, 2, 5),                     # dilated depthwise: the tap list
    ((1, 2, 3, 300), (2, 1, 3, 3), 2, 1, 1, 1, 1),                   # depthwise rows longer than its sums
    ((1, 4, 12, 14), (8, 2, 3, 3), 2, 2, (0, 1, 2, 0), 1, -5),        # groups of two channels
    ((1, 8, 6, 7), (12, 8, 1, 1), 1, 1, 0, 1, 7),                    # pointwise: one row of 42
    ((1, 4, 6, 6), (4, 4, 1, 1), 1, 2, 0, 1, 2),                     # 1x1 of stride 2, read in place
    ((1, 2, 13, 17), (4, 2, 3, 2), 1, (1, 3), 2, (2, 3), 9),          # column stride 3, dilation
    ((1, 3, 40), (4, 3, 5), 1, 3, (2, 1), 1, -60),                   # 1-D
    ((1, 3, 5, 70), (4, 3, 3, 3), 1, 1, 1, 1, 1),                    # rows longer than a chunk
    ((1, 16, 30, 30), (8, 16, 3, 3), 1, 1, 1, 1, 0),                 # the band refilled every few rows
]


MODES = ["pow2", "double", "single", "shift"]


# every geometry once, each with one requantization mode in turn; the first with all three
@pytest.mark.parametrize("xs,ws,group,strides,pads,dil,x_zp,mode",
                         [c + (m,) for c, m in zip(PLANNED_CONVS, MODES * len(PLANNED_CONVS))]
                         + [PLANNED_CONVS[0] + (m,) for m in MODES[1:] + ["single_low"]])
def test_planned_conv(xs, ws, group, strides, pads, dil, x_zp, mode, tmp_path):
    g = new_graph(x=(xs, "int8"))
    m = ws[0]
    w = g.add_const("w", rand(ws, "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, m).astype(np.int32)).name
    y = qconv(g, "x", w, b, x_zp, [0], group, window_attrs(len(xs) - 2, strides, pads, dil),
              plan_requant(m, int(np.prod(ws[1:])), mode, per_channel=mode != "single"))
    assert planned(g, "y")
    check(g, y, tmp_path)


@pytest.mark.parametrize("rows,k,n,x_zp,mode", [(1, 64, 12, 0, "pow2"), (3, 37, 9, -128, "double"),
                                                (2, 640, 128, 5, "single"), (1, 5, 3, 127, "pow2"),
                                                (1, 8, 130, -1, "double"), (1, 33, 20, 3, "single"),
                                                (1, 16, 20, 0, "single_low"), (1, 24, 17, -9, "shift"),
                                                (1, 7, 6, 9, "shift"), (2, 6, 5, -4, "pow2")])  # inputs 4k + 3, + 2
def test_planned_dense(rows, k, n, x_zp, mode, tmp_path):
    g = new_graph(x=((rows, k), "int8"))
    w = g.add_const("w", rand((k, n), "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, n).astype(np.int32)).name
    y = ops.add(g, "qmatmul", ["x", w, b], "y", x_zp=x_zp, w_zp=[0], **plan_requant(n, k, mode, mode != "double"))
    assert planned(g, "y")
    check(g, y, tmp_path)


def inner_of(g, name: str) -> str:
    """The inner loop the C backend plans for a conv (TINYC_INNER_...)."""
    e = Emitter(g)
    assert plans.qconv(e, g.node(name), "x", "y") is not None
    return next(k for k in ("DEPTHWISE_SMALL", "DEPTHWISE_3X3", "TAPS") if f"TINYC_INNER_{k}," in "".join(e.decls))


# pads (top, left, bottom, right) of the depthwise 3x3 planes: TFLite's SAME at stride 1 and at stride 2 on
# even sizes, one side only, none
DEPTHWISE_PADS = [(1, 1, 1, 1), (0, 0, 1, 1), (1, 0, 0, 1), (0, 1, 1, 0), (0, 0, 0, 0)]


@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("pads", DEPTHWISE_PADS)
def test_planned_depthwise_planes(stride, pads, tmp_path):
    """The depthwise 3x3 read straight from x, on every plane from 1x1 to 6x12: window by window up to 4
    columns wide (DEPTHWISE_SMALL), row by row past it (DEPTHWISE_3X3: the x_zp row above and below, the
    columns off the plane left out, pairs of outputs, a single one), the tap list where one window has both
    columns off the plane. Channel counts 1, 3, 5 and 7, x_zp -128, 0, 127 and small ones, every
    requantization mode per channel and per tensor, random x and x at its ends, under ASan/UBSan."""
    strides = stride if isinstance(stride, tuple) else (stride, stride)
    feeds, outputs, inners = {}, [], set()
    g = new_graph()
    for i, (h, wd) in enumerate((h, wd) for h in range(1, 7) for wd in range(1, 13)):
        oh, ow = ((n + a + b - 3) // s + 1 for n, a, b, s in zip((h, wd), pads[:2], pads[2:], strides))
        if oh <= 0 or ow <= 0:
            continue
        ch, x_zp, mode = (1, 3, 5, 7)[i % 4], (-128, 0, 127, 6, -3)[i % 5], (MODES + ["single_low"])[i % 5]
        x = f"x{h}_{wd}"
        g.add_value(Value(x, (1, ch, h, wd), "int8"))
        g.inputs.append(x)
        feeds[x] = rand((1, ch, h, wd), "int8") if i % 3 else np.full((1, ch, h, wd), (-128, 127)[i % 2], np.int8)
        w = g.add_const(f"w{h}_{wd}", rand((ch, 1, 3, 3), "int8")).name
        b = g.add_const(f"b{h}_{wd}", RNG.integers(-3000, 3000, ch).astype(np.int32)).name
        y = ops.add(g, "qconv", [x, w, b], f"dw{h}_{wd}", group=ch, x_zp=x_zp, w_zp=[0],
                    **window_attrs(2, strides, pads),
                    **plan_requant(ch, 9, mode, per_channel=i % 2 == 0))
        inners.add(inner_of(g, y))
        outputs.append(y)
    assert inners >= {"DEPTHWISE_SMALL", "DEPTHWISE_3X3"}
    check(g, outputs, tmp_path, feeds, sanitize=True)


@pytest.mark.parametrize("extra", [0, 1])
def test_planned_int32_bound(extra, tmp_path):
    """The plan sums raw x times w in int32 while 128 * sum|w| + |bias - x_zp * sum w| (and the rounding's
    additions) fit: a dense layer of 131071 taps of -128 does (16384 * 131071 < 2**31), one more tap not,
    and a conv (and a depthwise 3x3 read in place, window by window and row by row) whose bias takes its
    bound to int32's limit does, one more unit of bias not; past the bound the general kernel (int64 sums)
    takes them. Every product at its extreme."""
    k = INT32_MAX // (128 * 128) + extra
    g = new_graph(x=((1, k), "int8"))
    w = g.add_const("w", np.full((k, 3), -128, np.int8)).name
    # a multiplier other than 2**30 (TINYC_RQ_SINGLE: nothing added before the shift) makes the bound exact
    y = ops.add(g, "qmatmul", ["x", w], "y", x_zp=0, w_zp=[0], multiplier=[(1 << 30) + 1], shift=[-20], out_zp=0,
                out_min=-128, out_max=127, rounding="single")
    assert planned(g, "y") == (not extra)
    check(g, y, tmp_path, {"x": np.full((1, k), -128, np.int8)})
    g = new_graph(x=((1, 2, 4, 4), "int8"))
    w = g.add_const("w", np.full((2, 2, 3, 3), -128, np.int8)).name
    out_zp = -3
    bias = INT32_MAX - 128 * 128 * 18 - abs(out_zp) + extra  # single rounding adds nothing before its shift
    b = g.add_const("b", np.full(2, bias, np.int32)).name
    y = qconv(g, "x", w, b, 0, [0], 1, window_attrs(2, 1, 0), dict(
        multiplier=[(1 << 30) + 1, 1 << 30], shift=[-24, -30], out_zp=out_zp, out_min=-128, out_max=127, rounding="single"))
    assert planned(g, "y") == (not extra)
    check(g, y, tmp_path, {"x": np.full((1, 2, 4, 4), -128, np.int8)})
    for plane, inner in [((3, 3), "DEPTHWISE_SMALL"), ((3, 6), "DEPTHWISE_3X3")]:  # a window wholly on the plane
        g = new_graph(x=((1, 2) + plane, "int8"))
        w = g.add_const("w", np.full((2, 1, 3, 3), -128, np.int8)).name
        b = g.add_const("b", np.full(2, INT32_MAX - 128 * 128 * 9 - abs(out_zp) + extra, np.int32)).name
        y = qconv(g, "x", w, b, 0, [0], 2, window_attrs(2, 1, 1), dict(
            multiplier=[(1 << 30) + 1] * 2, shift=[-24, -30], out_zp=out_zp, out_min=-128, out_max=127, rounding="single"))
        assert (inner_of(g, y) == inner) if not extra else not planned(g, y)
        check(g, y, tmp_path, {"x": np.full((1, 2) + plane, -128, np.int8)})


@pytest.mark.parametrize("extra", [0, 1])
def test_planned_double_narrow_bound(extra, tmp_path):
    """The double_narrow mode's high mul takes 2 * (sum + bias) in int32: a bias that brings the sums'
    bound to 2**30 - 1 plans it, one more unit the double mode (the 64-bit nudge first); both bit-exact
    at every product's extreme, the two ends of the rounding, under ASan/UBSan."""
    g = new_graph(x=((1, 2, 4, 4), "int8"))
    w = g.add_const("w", np.full((2, 2, 3, 3), -128, np.int8)).name
    b = g.add_const("b", np.full(2, INT32_MAX // 2 - 128 * 128 * 18 + extra, np.int32)).name
    y = qconv(g, "x", w, b, 0, [0], 1, window_attrs(2, 1, 0), dict(
        multiplier=[(1 << 30) + 1, INT32_MAX], shift=[-30, -29], out_zp=0, out_min=-128, out_max=127, rounding="double"))
    assert plan_mode(g, "y") == ("double" if extra else "double_narrow")
    for v in (-128, 127, 0):
        check(g, y, tmp_path, {"x": np.full((1, 2, 4, 4), v, np.int8)}, sanitize=v == -128)


@pytest.mark.parametrize("live", [False, True])
def test_planned_double_constant_channels(live, tmp_path):
    """Channels of zero weights with biases of +-2**30 and more (the official MobileNet's dead channels)
    output one constant each: the plan gives them stand-in biases inside double_narrow's bound with the
    same outputs. A channel that reaches past the bound and whose output is not one constant (live: one
    weight 1 beside the bias 2**30, scale 2**-31, where 2**30 - 128 rounds to 0 and 2**30 + 128 to 1) keeps
    the layer on the double mode. Against the interpreter at the extremes and at random, under ASan/UBSan."""
    m, c = 6, 16
    g = new_graph(x=((1, c, 3, 5), "int8"))
    wv = rand((m, c, 1, 1), "int8")
    wv[[1, 2, 4]] = 0
    wv[4, 0] = int(live)
    w = g.add_const("w", wv).name
    bias = RNG.integers(-3000, 3000, m)
    bias[[1, 2, 4]] = [1 << 30, -(1 << 30) - 128, 1 << 30]
    b = g.add_const("b", bias.astype(np.int32)).name
    rq = requant(m, c, "double")
    rq["multiplier"][1], rq["shift"][1] = 0, 0  # a multiplier of 0 as TFLite leaves a dead channel
    rq["multiplier"][4], rq["shift"][4] = 1 << 30, -30
    y = qconv(g, "x", w, b, -3, [0], 1, window_attrs(2), rq)
    assert plan_mode(g, "y") == ("double" if live else "double_narrow")
    for x in (rand((1, c, 3, 5), "int8"), np.full((1, c, 3, 5), -128, np.int8), np.full((1, c, 3, 5), 127, np.int8)):
        check(g, y, tmp_path, {"x": x}, sanitize=True)


# a 3x3 conv (its blocks store the sums), and a 1x1 conv of sixteen input channels (the unrolled blocks and,
# in rows of 18, the columns alone, requantized in registers)
@pytest.mark.parametrize("xs,ws", [((1, 2, 4, 4), (2, 2, 3, 3)), ((1, 16, 3, 6), (4, 16, 1, 1))])
@pytest.mark.parametrize("extra", [0, 1])
def test_planned_shift_bias_bound(xs, ws, extra, tmp_path):
    """The shift mode folds its rounding term 2**(e-1) and zp * 2**e into the bias: a bias that brings
    the folded sums' bound to INT32_MAX keeps it, one more unit takes the single mode (the same rounding
    by the multiplier 2**30, the zero point added after), both bit-exact at the extremes."""
    taps, e, out_zp = int(np.prod(ws[1:])), 13, -128
    spread = 128 * 128 * taps
    g = new_graph(x=(xs, "int8"))
    w = g.add_const("w", np.full(ws, -128, np.int8)).name
    bias = -(INT32_MAX - spread + (1 << (e - 1)) + (out_zp << e)) - extra
    b = g.add_const("b", np.full(ws[0], bias, np.int32)).name
    y = qconv(g, "x", w, b, 0, [0], 1, window_attrs(2, 1, 0), dict(
        multiplier=[1 << 30], shift=[1 - e], out_zp=out_zp, out_min=-128, out_max=127, rounding="single"))
    assert plan_mode(g, "y") == ("single" if extra else "shift")
    for v in (-128, 127, 0):
        check(g, y, tmp_path, {"x": np.full(xs, v, np.int8)}, sanitize=v == 127)


# (x shape, weight shape, strides, x_zp, mode): 1x1 convs, whose blocks of four columns of four channels
# requantize from registers in the shift and double_narrow modes
POINTWISE = [((1, 16, 5, 7), (6, 16, 1, 1), 1, -128, "shift"),   # 35 columns: eight blocks and three alone
             ((1, 16, 5, 7), (6, 16, 1, 1), 1, 5, "double"),     # four channels and two alone
             ((1, 5, 9, 11), (8, 5, 1, 1), 2, 0, "shift"),       # stride 2: rows of six, read in place
             ((1, 5, 9, 11), (8, 5, 1, 1), 2, -9, "double"),
             ((1, 1, 4, 4), (4, 1, 1, 1), 1, 3, "shift"),        # one input channel: the first tap only
             ((1, 8, 4, 5), (4, 8, 1, 1), 3, 1, "shift")]        # stride 3: the tap-list blocks


@pytest.mark.parametrize("xs,ws,strides,x_zp,mode", POINTWISE)
def test_planned_pointwise(xs, ws, strides, x_zp, mode, tmp_path):
    """Each 1x1 block's sums requantized in registers, against the interpreter at random and at the
    extremes, under ASan/UBSan."""
    g = new_graph(x=(xs, "int8"))
    m = ws[0]
    w = g.add_const("w", rand(ws, "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, m).astype(np.int32)).name
    y = qconv(g, "x", w, b, x_zp, [0], 1, window_attrs(2, strides), plan_requant(m, ws[1], mode))
    assert plan_mode(g, "y") == ("double_narrow" if mode == "double" else mode)
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8)):
        check(g, y, tmp_path, {"x": x}, sanitize=True)


# (x shape, output channels, stride, x_zp, per-channel, output range): 1x1 convs in the shift mode around
# sixteen input channels, whose blocks of four columns sum their sixteen taps unrolled; a row's last
# columns take four channels' sums in one call, four inputs a loop (15, 17: three and one left over)
SIXTEEN = [((1, 16, 5, 7), 8, 1, -128, True, (0, 127)),    # 35 columns: eight blocks, three alone
           ((1, 16, 9, 9), 6, 2, 127, False, (-128, 127)),  # rows of five: a block and one alone; two channels alone
           ((1, 16, 8, 8), 4, 2, 0, True, (-100, 120)),     # rows of four: blocks only
           ((1, 16, 3, 3), 4, 1, 5, False, (0, 127)),       # a 3x3 plane: two blocks and one alone
           ((1, 15, 3, 3), 4, 1, -3, True, (-128, 127)),    # the tap loop; 15 = 4 * 3 + 3
           ((1, 17, 4, 5), 8, 1, 9, True, (0, 127)),        # 17 = 4 * 4 + 1
           ((1, 17, 7, 6), 4, 2, -128, False, (-128, 127)), # stride 2, rows of three: the columns alone
           ((1, 32, 3, 3), 4, 1, 0, True, (0, 127)),        # two blocks of the loop and one alone, 32 taps
           ((1, 32, 3, 5), 8, 1, 3, True, (0, 127), 2)]     # two groups of sixteen channels in, four out


@pytest.mark.parametrize("xs,m,stride,x_zp,per_channel,out,group", [c + (1,) * (7 - len(c)) for c in SIXTEEN])
def test_planned_pointwise_sixteen(xs, m, stride, x_zp, per_channel, out, group, tmp_path):
    """1x1 convs of 15, 16, 17 and 32 input channels (and two groups of 16), strides 1 and 2, per-channel
    and per-tensor requantization, zero points at both ends, a ReLU's range and int8's: against the
    interpreter at random and at the extremes, under ASan/UBSan."""
    g = new_graph(x=(xs, "int8"))
    w = g.add_const("w", rand((m, xs[1] // group, 1, 1), "int8")).name
    b = g.add_const("b", RNG.integers(-3000, 3000, m).astype(np.int32)).name
    rq = dict(plan_requant(m, xs[1] // group, "shift", per_channel), out_min=out[0], out_max=out[1])
    y = qconv(g, "x", w, b, x_zp, [0], group, window_attrs(2, stride), rq)
    assert plan_mode(g, "y") == "shift"
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8)):
        check(g, y, tmp_path, {"x": x}, sanitize=True)


@pytest.mark.parametrize("xs,x_zp", [((1, 5, 7, 3), -7), ((2, 3, 1, 1), 0), ((1, 4, 17), 100)])
def test_global_avgpool(xs, x_zp, tmp_path):
    """A window over its whole plane (tinyc_pool.h: unrolled short planes, word sums of long ones)."""
    g = new_graph(x=(xs, "int8"))
    y = ops.add(g, "qavgpool", ["x"], "y", kernel=xs[2:], **window_attrs(len(xs) - 2), ceil_mode=False,
                count_include_pad=False, x_zp=x_zp, out_min=-120, out_max=110)
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8)):
        check(g, y, tmp_path, {"x": x})


def test_planned_kernels_under_sanitizers(tmp_path):
    """The planned conv (4x4 blocks, tails, band), depthwise, dense and the global pool under ASan/UBSan."""
    g = new_graph(x=((1, 5, 7, 9), "int8"))
    w3 = g.add_const("w3", rand((6, 5, 3, 3), "int8")).name
    wd = g.add_const("wd", rand((6, 1, 3, 3), "int8")).name
    wf = g.add_const("wf", rand((6, 10), "int8")).name
    a = qconv(g, "x", w3, "", -128, [0], 1, window_attrs(2, 1, 1), plan_requant(6, 45, "double"))
    d = qconv(g, a, wd, "", 3, [0], 6, window_attrs(2, 2, 1), plan_requant(6, 9, "pow2"))
    p = ops.add(g, "qavgpool", [d], "p", kernel=(4, 5), **window_attrs(2), ceil_mode=False, count_include_pad=False,
                x_zp=0, out_min=-128, out_max=127)
    f = ops.add(g, "reshape", [p], "f", shape=(1, 6))
    y = ops.add(g, "qmatmul", [f, wf], "fc", x_zp=-2, w_zp=[0], **plan_requant(10, 6, "single", False))
    assert all(planned(g, n) for n in (a, d, y))
    check(g, [a, d, y], tmp_path, sanitize=True)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_planned_qadd(rounding, tmp_path):
    """The planned add's tables (each input's rescale over the 256 int8 values) and its requantized sum,
    broadcast along rows longer than a chunk and across them, against the interpreter under ASan/UBSan."""
    g = new_graph(a=((2, 3, 70), "int8"), b=((3, 1), "int8"))
    params = dict(qm.add_params(0.05, 0.02, 0.07, 20), rounding=rounding)
    ops.add(g, "qadd", ["a", "b"], "y", a_zp=-128, b_zp=127, out_zp=-1, out_min=-120, out_max=127, **params)
    e = Emitter(g)
    assert plans.qadd(e, g.node("y"), "&bcast", ["a", "b", "y"]) is not None
    x = {"a": rand((2, 3, 70), "int8"), "b": rand((3, 1), "int8")}
    x["a"][0, 0, :2], x["b"][:2, 0] = [-128, 127], [-128, 127]  # each table's ends
    check(g, "y", tmp_path, x, sanitize=True)


# (input shape, pads begin + end, mode): merged rows, constant planes, odd widths, wide reflections
PADS = [
    ((1, 1, 49, 10), (0, 0, 4, 1, 0, 0, 5, 1), "constant"),  # DS-CNN's first conv's padding
    ((3, 5, 7), (1, 0, 2, 0, 0, 3), "constant"),
    ((2, 3, 1, 5), (0, 1, 0, 0, 1, 0, 2, 0), "constant"),        # padded outer dims: whole planes filled
    ((7,), (3, 2), "constant"),
    ((2, 5, 3), (1, 2, 4, 0, 3, 5), "reflect"),
    ((3, 1, 4), (0, 2, 1, 1, 1, 0), "edge"),
]


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "float32"])
@pytest.mark.parametrize("xs,pads,mode", PADS)
def test_pad_paths(xs, pads, mode, dtype, tmp_path):
    """Every pad mode over 1-, 4- byte elements against the interpreter (numpy.pad)."""
    g = new_graph(x=(xs, dtype))
    check(g, ops.add(g, "pad", ["x"], "y", pads=pads, mode=mode, value=-3 if mode == "constant" else None), tmp_path)


# (input shape, perm): a one-channel space-to-depth fold (odd and even widths), 2-D
# transposes (in 4 x 4 blocks where both sides are multiples of four: ResNet-8's pooling windows), a
# 3-D rotation
TRANSPOSES = [((1, 1, 29, 2, 6, 2), (0, 1, 3, 5, 2, 4)), ((1, 1, 3, 2, 5, 2), (0, 1, 3, 5, 2, 4)),
              ((4, 3, 2, 3), (1, 3, 0, 2)), ((7, 5), (1, 0)), ((1, 64, 64), (0, 2, 1)), ((12, 8), (1, 0)),
              ((2, 3, 5), (2, 0, 1))]


@pytest.mark.parametrize("dtype", ["int8", "int32"])
@pytest.mark.parametrize("xs,perm", TRANSPOSES)
def test_transpose_paths(xs, perm, dtype, tmp_path):
    g = new_graph(x=(xs, dtype))
    y = ops.add(g, "transpose", ["x"], "y", perm=perm)
    check(g, y, tmp_path)
    blocks = dtype == "int8" and xs in ((1, 64, 64), (12, 8))  # the 4 x 4 blocks, inlined with the shape's constants
    assert ("tinyc_transpose_4x4_b1(" in emit_c(plan_memory(g.connect()))["model.c"]) == blocks


# (input shape, blocks, pads (top, left, bottom, right), perm): DS-CNN's first conv in both orientations,
# pads past whole rows and columns, blocks of 3 and 1, batch 2, a plane narrower than its pads
SPACE_TO_DEPTH = [((1, 1, 49, 10), (2, 2), (4, 1, 5, 1), (0, 1, 2, 3)),
                  ((1, 1, 49, 10), (2, 2), (1, 4, 1, 5), (0, 1, 3, 2)),
                  ((2, 3, 7, 5), (3, 3), (2, 0, 0, 1), (0, 1, 2, 3)),
                  ((1, 2, 5, 8), (1, 2), (3, 2, 0, 1), (0, 1, 3, 2)),
                  ((1, 1, 2, 1), (2, 3), (2, 3, 0, 2), (0, 1, 2, 3))]


def space_to_depth_by_hand(x, blocks, pads, perm, value):
    """y[n, (c * sh + i) * sw + j, r, q] = the padded plane's element (r * sh + i, q * sw + j), one by one."""
    x = x.transpose(perm)
    (sh, sw), (top, left, bottom, right) = blocks, pads
    n, c, h, w = x.shape
    rows, cols = (h + top + bottom) // sh, (w + left + right) // sw
    y = np.empty((n, c * sh * sw, rows, cols), x.dtype)
    for b, ch, i, j, r, q in np.ndindex(n, c, sh, sw, rows, cols):
        u, v = r * sh + i - top, q * sw + j - left
        y[b, (ch * sh + i) * sw + j, r, q] = x[b, ch, u, v] if 0 <= u < h and 0 <= v < w else value
    return y


@pytest.mark.parametrize("xs,blocks,pads,perm", SPACE_TO_DEPTH)
def test_space_to_depth(xs, blocks, pads, perm, tmp_path):
    """The interpreter against the definition by hand; the C kernel against the interpreter, sanitized."""
    g = new_graph(x=(xs, "int8"))
    y = ops.add(g, "space_to_depth", ["x"], "y", blocks=blocks, pads=pads, perm=perm, value=-7)
    x = rand(xs, "int8")
    want = space_to_depth_by_hand(x, blocks, pads, perm, -7)
    np.testing.assert_array_equal(ops.OPS["space_to_depth"].compute([x], g.node("y").attrs)[0], want)
    check(g, y, tmp_path, feeds={"x": x}, sanitize=True)


def test_data_movement_under_sanitizers(tmp_path):
    """The word paths of pad and of the space-to-depth fold, and the strided gather, under ASan and UBSan."""
    g = new_graph(x=((1, 1, 49, 10), "int8"), z=((2, 5, 3), "int32"))
    p = ops.add(g, "pad", ["x"], "p", pads=(0, 0, 9, 2, 0, 0, 0, 0), mode="constant", value=-128)
    f = ops.add(g, "reshape", [p], "r", shape=(1, 1, 29, 2, 6, 2))
    t = ops.add(g, "transpose", [f], "t", perm=(0, 1, 3, 5, 2, 4))
    e = ops.add(g, "pad", ["z"], "e", pads=(1, 2, 4, 0, 3, 5), mode="reflect", value=None)
    s = ops.add(g, "transpose", [e], "s", perm=(2, 0, 1))
    b = ops.add(g, "transpose", [ops.add(g, "reshape", [p], "r2", shape=(58, 12))], "b", perm=(1, 0))
    check(g, [t, s, b], tmp_path, sanitize=True)


def softmax_attrs(in_scale, out_scale, out_zp=-128, axis=-1, table_max=2 ** 20) -> dict:
    table = np.round(np.exp(-np.arange(256) * in_scale) * table_max).astype(np.int64)
    return dict(axis=axis, table=table.tolist(), inv_out_scale=int(round(2 ** 16 / out_scale)), out_zp=out_zp)


@pytest.mark.parametrize("xs,attrs", [
    ((3, 12), softmax_attrs(0.1, 1 / 256)),                     # kws' head: one 32-bit division each
    ((4, 1), softmax_attrs(0.05, 1 / 256)),                      # 1-element rows: 1.0 exactly
    ((2, 7, 3), softmax_attrs(0.3, 1 / 200, out_zp=5, axis=1)),  # strided rows, an odd scale
    ((2, 9), softmax_attrs(0.02, 2 ** -12, table_max=2 ** 30)),  # m past 32 bits: the 64-bit division
])
def test_qsoftmax_rows(xs, attrs, tmp_path):
    """Random rows, rows all equal (1/n each, rounded half up) and one dominant value per row."""
    x = rand(xs, "int8")
    x[0] = 17
    x[-1] = -128
    x[-1].flat[0] = 127
    g = new_graph(x=(xs, "int8"))
    check(g, ops.add(g, "qsoftmax", ["x"], "y", **attrs), tmp_path, {"x": x}, sanitize=xs == (3, 12))
