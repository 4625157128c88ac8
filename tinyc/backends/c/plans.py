"""The int8 conv and dense layers planned at compile time for the host's fast kernels
(tinyc_kernels_plan.c, tinyc_kernels_depthwise.c): weights packed in the kernels' block order, x's zero point folded into the bias,
the requantization's mode chosen per layer and every int32 bound the kernels rely on proved here.

A layer the plan cannot prove (weights not constant, nonzero weight zero points, an int32 output, shifts
out of the 32-bit range, sums that may leave int32, 3-D windows) returns None: its emitter then calls the
general kernel, which decides int32 or int64 sums at run time.
"""
from __future__ import annotations

import numpy as np

from ...ir import quant_math as qm

INT32_MAX = 2 ** 31 - 1
POW2_MULTIPLIER = 1 << 30  # quantize_multiplier of a power of two
CHUNK = 64  # TINYC_CHUNK: the depthwise 3x3 sums up to four chunks of a row at once
SMALL_WIDTH = 4  # a depthwise 3x3 at most this wide runs window by window (tinyc_kernels_depthwise.c)
BAND_BYTES = 4096  # scratch for a padded conv's input rows: enough for several rows of every MLPerf Tiny layer
MODES = {"shift": "TINYC_RQ_SHIFT", "pow2": "TINYC_RQ_POW2", "double": "TINYC_RQ_DOUBLE",
         "double_narrow": "TINYC_RQ_DOUBLE_NARROW", "single": "TINYC_RQ_SINGLE", "single_low": "TINYC_RQ_SINGLE_LOW"}
NARROW = INT32_MAX // 2  # the double_narrow mode's high mul takes 2 * (sum + bias) in int32


def _mode(attrs, channels: int):
    """(mode, multipliers, right shifts e in 0..31) per channel, or None where 32 bits do not do."""
    if attrs.get("multiplier") is None or attrs.get("rounding") not in ("double", "single"):
        return None
    mult = np.broadcast_to(np.asarray(attrs["multiplier"], np.int64).reshape(-1), (channels,))
    shift = np.broadcast_to(np.asarray(attrs["shift"], np.int64).reshape(-1), (channels,))
    if attrs["rounding"] == "single" and (mult == POW2_MULTIPLIER).all() and (shift <= 1).all():
        e = 1 - shift  # floor((acc * 2**30 + 2**(30 - shift)) / 2**(31 - shift)) = (acc + 2**(e-1)) >> e
        mode = "shift"
    elif attrs["rounding"] == "single":
        mode, e = _single(shift)
    else:
        e = -shift
        mode = "pow2" if (mult == POW2_MULTIPLIER).all() else "double"
    if e.min() < (1 if mode == "single_low" else 0) or e.max() > 31 or mult.min() < -INT32_MAX:
        return None
    return mode, mult, e


def _single(shift):
    """The single rounding floor((acc * m + 2**(30 - shift)) / 2**(31 - shift)): its mode and right shifts."""
    low = (shift >= 0).all()  # 31 - shift <= 31: the product's low word holds the result
    return ("single_low", 31 - shift) if low else ("single", -shift - 1)


def _rebiased(acc, folded, bias):
    """The bound of the sums with `bias` in place of the folded bias (acc bounds them with it)."""
    return acc - np.abs(folded) + np.abs(bias)


def _shift_bias(a, folded, acc, shift):
    """The shift mode's bias with its rounding term 2**(e-1) and zp * 2**e folded in (the kernel then
    only shifts it and clamps), or None where the sums with it may leave int32."""
    biased = folded + np.where(shift > 0, 1 << np.maximum(shift - 1, 0), 0) + (int(a["out_zp"]) << shift)
    if _rebiased(acc, folded, biased).max(initial=0) > INT32_MAX:
        return None
    return biased


def _requant(e, node, sums, abs_sums, bias, x_zp: int, channels: int):
    """The tinyc_rq32 fields of a layer whose channel j sums raw x times weights (sums[j], abs_sums[j]
    the sum of the weights and of their magnitudes), or None when its bounds do not hold in int32."""
    folded = np.asarray(bias, np.int64) - x_zp * np.asarray(sums, np.int64)
    acc = 128 * np.asarray(abs_sums, np.int64) + np.abs(folded)  # |x| <= 128: a bound of every partial sum
    return _rq32(e, node.name, node.attrs, folded, acc, channels)


def _narrowed(a, folded, acc, mult, shift):
    """The folded biases with which every channel's sums stay within NARROW, or None. A channel beyond
    it whose output is one constant over all its sums (a bias alone: its weights are zeros or next to
    it) takes the stand-in bias nearest its own inside the bound that gives the same constant; the
    requantization is monotonic in the sum, so its two ends decide."""
    spread = acc - np.abs(folded)  # the sums' reach around the folded bias

    def ends(bias):
        return [qm.requantize(bias + d, mult, -shift, int(a["out_zp"]), int(a["out_min"]), int(a["out_max"]))
                for d in (-spread, spread)]
    stand_in = np.clip(folded, -(NARROW - spread), NARROW - spread)
    low, high = ends(folded)
    new_low, new_high = ends(stand_in)
    wide = acc > NARROW
    if (spread[wide] > NARROW).any() or not ((low == high) & (new_low == low) & (new_high == low))[wide].all():
        return None
    return np.where(wide, stand_in, folded)


def _rq32(e, name: str, a, folded, acc, channels: int):
    """The tinyc_rq32 fields requantizing sums bounded by acc (per channel, bias included) after adding
    the folded bias, or None when the arithmetic of tinyc_rq32_run may leave int32."""
    found = _mode(a, channels)
    if found is None:
        return None
    mode, mult, shift = found
    if mode == "shift":
        biased = _shift_bias(a, folded, acc, shift)
        if biased is None:  # the same rounding with its multiplier 2**30, the zero point added after
            mode, shift = _single(1 - shift)
            if shift.min() < 0:  # mixed scales, some of at least 1/2: single rounding's high word cannot
                return None
        else:
            acc, folded = _rebiased(acc, folded, biased), biased
    if mode == "double":
        narrowed = _narrowed(a, folded, acc, mult, shift)
        if narrowed is not None:
            mode, acc, folded = "double_narrow", _rebiased(acc, folded, narrowed), narrowed
    # the largest value each mode's rounding adds to on the way (tinyc_rq32_run)
    if mode == "pow2":
        if shift.max() > 30:
            return None
        top = acc + 1 + (1 << shift)
    elif mode in ("double", "double_narrow"):
        top = ((acc * np.abs(mult)) >> 31) + 1 + np.where(shift > 0, 1 << np.maximum(shift - 1, 0), 0)
    elif mode == "single_low":  # the result itself must fit
        top = np.maximum(acc, (acc * np.abs(mult) + (1 << (shift - 1))) >> shift)
    else:  # shift (its rounding and zero point in the bias) and single
        top = acc
    out_zp, lo, hi = int(a["out_zp"]), int(a["out_min"]), int(a["out_max"])
    zp_after = 0 if mode == "shift" else abs(out_zp)  # added after the shift (in the shift mode's bias)
    if max(acc.max(initial=0), top.max(initial=0)) + zp_after > INT32_MAX:
        return None
    if not -128 <= lo <= hi <= 127:
        return None
    return [e.array(name + "_rq_bias", "int32_t", folded), e.array(name + "_rq_multiplier", "int32_t", mult),
            e.array(name + "_rq_shift", "int32_t", shift), MODES[mode], out_zp, lo, hi]


def _small_windows(h: int, wd: int, oh: int, ow: int, sh: int, sw: int, pt: int, pl: int):
    """A small depthwise 3x3's window descriptors (TINYC_INNER_DEPTHWISE_SMALL): 16 * (the plane offset of
    each window's first tap on the plane) + 3 * rows + columns, rows (columns) 0 when all three lie on the
    plane, 1 when the first is off it, 2 when the last is; None when a window has two off it."""
    def kinds(n, stride, pad, size):
        first = np.arange(n) * stride - pad
        kind = np.where(first < 0, 1, 0) + np.where(first + 2 >= size, 2, 0)
        return np.maximum(first, 0), kind
    top, rows = kinds(oh, sh, pt, h)
    left, cols = kinds(ow, sw, pl, wd)
    if rows.max() > 2 or cols.max() > 2:
        return None
    return (16 * (top[:, None] * wd + left[None, :]) + 3 * rows[:, None] + cols[None, :]).reshape(-1)


def _constant(e, name: str):
    v = e.g.values[name] if name else None
    return v.data if v is not None and v.is_const else None


def _bias(e, node, channels: int):
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(channels, np.int64)
    return _constant(e, node.inputs[2])


def _ready(e, node):
    """The layer's int8 weights when the plan can take it: int8 output, zero weight zero points."""
    y = e.g.values[node.outputs[0]]
    w = _constant(e, node.inputs[1])
    if y.dtype != "int8" or w is None or np.any(np.asarray(node.attrs["w_zp"]) != 0):
        return None
    return np.asarray(w, np.int64)


def qconv(e, node, x_arg: str, y_arg: str):
    """The C statements of a planned conv, or None."""
    w = _ready(e, node)
    x, y = e.g.values[node.inputs[0]], e.g.values[node.outputs[0]]
    a = node.attrs
    if w is None or not 3 <= len(x.shape) <= 4 or x.shape[0] != 1:
        return None
    bias = _bias(e, node, w.shape[0])
    if bias is None:
        return None
    spatial = len(x.shape) - 2
    unit = (1,) * (2 - spatial)
    h, wd = unit + tuple(x.shape[2:])
    oh, ow = unit + tuple(y.shape[2:])
    kh, kw = unit + tuple(w.shape[2:])
    sh, sw = unit + tuple(a["strides"])
    dh, dw = unit + tuple(a["dilations"])
    pads = a["pads"]
    pt, pl = (0,) * (2 - spatial) + tuple(pads[:spatial])
    pb, pr = (0,) * (2 - spatial) + tuple(pads[spatial:])
    m, cg = w.shape[0], w.shape[1]
    groups = a["group"]
    mg = m // groups
    flat = w.reshape(m, -1)
    rq = _requant(e, node, flat.sum(1), np.abs(flat).sum(1), bias, int(a["x_zp"]), m)
    if rq is None or not oh or not ow:
        return None
    c, kr, kc = np.meshgrid(np.arange(cg), np.arange(kh), np.arange(kw), indexing="ij")
    band, band_w, band_rows, fill, lead, taps = None, 0, 0, oh, 0, None
    clip_l, clip_r = pl, int((ow - 1) * sw - pl + kw > wd)  # the first and last windows' columns off the plane
    depthwise = cg == mg == 1 and kh == kw == 3 and dh == dw == 1 and max(pads) <= 1  # read in place
    small = depthwise and ow <= SMALL_WIDTH and oh * ow <= 4 * CHUNK
    windows = _small_windows(h, wd, oh, ow, sh, sw, pt, pl) if small else None
    if windows is not None:
        inner, taps = "TINYC_INNER_DEPTHWISE_SMALL", windows
        clip_l = clip_r = 0
    elif depthwise and sw in (1, 2) and ow <= 4 * CHUNK and clip_l + clip_r <= ow:  # (not both in one window)
        inner = "TINYC_INNER_DEPTHWISE_3X3"
        band_w, band_rows = -(-wd // 4) * 4, 1  # the row of x_zp its windows read above and below the plane
    else:
        inner = "TINYC_INNER_TAPS"
        clip_l = clip_r = 0
        if kh == kw == sh == sw == 1 and not any(pads):  # pointwise: the plane is one long row
            h, wd, oh, ow = 1, h * wd, 1, oh * ow
            taps = c * h * wd
        elif not any(pads):
            taps = (c * h + kr * dh) * wd + kc * dw
        else:  # input column i at band column lead + i, lead a multiple of 4 so that rows copy by words
            lead = -(-pl // 4) * 4
            band_w = -(-max(lead + wd, lead - pl + (ow - 1) * sw + (kw - 1) * dw + 1) // 4) * 4
            reach = (kh - 1) * dh + 1

            def rows_of(n):
                return (n - 1) * sh + reach
            fill = max([n for n in range(1, oh + 1) if cg * rows_of(n) * band_w <= BAND_BYTES], default=1)
            band_rows = rows_of(fill)
            taps = (c * band_rows + kr * dh) * band_w + kc * dw + lead - pl
    if band_w:
        band = e.ident(node.name + "_band")
        e.decls.append(f"static int32_t {band}[{cg * band_rows * band_w // 4}]; /* word-aligned */\n")
    packed = []
    for g in range(groups):
        ws = flat[g * mg:(g + 1) * mg]
        blocks = mg // 4 * 4
        packed += [ws[j:j + 4].T.reshape(-1) for j in range(0, blocks, 4)] + [ws[j] for j in range(blocks, mg)]
    fields = [groups, cg, mg, h, wd, oh, ow, sh, sw, cg * kh * kw,
              "NULL" if taps is None else e.array(node.name + "_taps", "int32_t", taps.reshape(-1)),
              e.array(node.name + "_packed", "int8_t", np.concatenate(packed)), rq,
              f"(int8_t *){band}" if band else "NULL", band_w, band_rows, fill, pt, lead, int(a["x_zp"]), inner,
              clip_l, clip_r]
    plan = e.struct(node.name + "_plan", "tinyc_qconv_plan", fields)
    return [f"tinyc_qconv_plan_s8(&{plan}, {x_arg}, {y_arg});"]


def qmatmul(e, node, x_arg: str, y_arg: str, rows: int):
    """The C statements of a planned dense layer, or None: columns in blocks of sixteen [k][16], the rest
    in blocks of four [k][4], the last one filled up with zeros."""
    w = _ready(e, node)
    if w is None or w.ndim != 2 or not w.size:
        return None
    k, n = w.shape
    bias = _bias(e, node, n)
    if bias is None:
        return None
    rq = _requant(e, node, w.sum(0), np.abs(w).sum(0), bias, int(node.attrs["x_zp"]), n)
    if rq is None:
        return None
    sixteens = n // 16 * 16
    wide = np.pad(w, ((0, 0), (0, -n % 4)))  # the last block of four filled up with zero columns
    packed = ([w[:, j:j + 16].reshape(-1) for j in range(0, sixteens, 16)]
              + [wide[:, j:j + 4].reshape(-1) for j in range(sixteens, n, 4)])
    plan = e.struct(node.name + "_plan", "tinyc_qdense_plan",
                    [k, n, e.array(node.name + "_packed", "int8_t", np.concatenate(packed) if packed else []), rq])
    return [f"tinyc_qdense_plan_s8(&{plan}, {x_arg}, {y_arg}, {rows});"]


def qadd(e, node, desc: str, args: list[str]):
    """The C statements of a planned add, or None: each input's rescale, ((x - zp) << left_shift) times
    its multiplier, has 256 possible values, tabled here; the kernel adds two table entries and
    requantizes the sum (tinyc_rq32_run). None where the sum may leave int32."""
    a = node.attrs
    if e.g.values[node.outputs[0]].dtype != "int8" or a["left_shift"] < 0:
        return None
    v = np.arange(-128, 128, dtype=np.int64)
    tables = [qm.multiply_by_quantized_multiplier((v - a[f"{s}_zp"]) << a["left_shift"], a[f"{s}_multiplier"],
                                                  a[f"{s}_shift"]) for s in "ab"]
    acc = np.array([sum(int(np.abs(t).max()) for t in tables)])
    out = dict(multiplier=[a["out_multiplier"]], shift=[a["out_shift"]], rounding=a["rounding"], out_zp=a["out_zp"],
               out_min=a["out_min"], out_max=a["out_max"])
    if acc[0] > INT32_MAX:
        return None
    rq = _rq32(e, node.name, out, np.zeros(1, np.int64), acc, 1)
    if rq is None:
        return None
    plan = e.struct(node.name + "_plan", "tinyc_qadd_plan", [e.array(node.name + "_a", "int32_t", tables[0]),
                                                             e.array(node.name + "_b", "int32_t", tables[1]), rq])
    return [f"tinyc_qadd_plan_s8({desc}, &{plan}, {', '.join(args)});"]
