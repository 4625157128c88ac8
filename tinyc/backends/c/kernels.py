"""One function per IR op: a node -> the C statements that run it with the runtime kernels.

Each function checks what its kernel supports (raising UnsupportedError, which the emitter locates at
the node), declares the node's static descriptors through the Emitter and returns the call.
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedError
from ...ir import geometry as geo
from ...ir.adc import ADC_ATTRS
from ...ir.ops_tensor import strides_of
from ...ir.ranges import value_range
from . import plans
from .cdata import c_literals

MAX_DIMS = 6
INT32 = (-2 ** 31, 2 ** 31 - 1)
ROUNDINGS = {"double": "TINYC_ROUND_DOUBLE", "single": "TINYC_ROUND_SINGLE"}
SUFFIX = {"float32": "f32", "int8": "s8", "uint8": "u8", "int32": "s32"}


def need(ok, why: str) -> None:
    if not ok:
        raise UnsupportedError(why)


def dtypes(e, node, *allowed) -> list[str]:
    """The input dtypes (None for an omitted input), each checked against its tuple of allowed dtypes."""
    found = [e.g.values[v].dtype if v else None for v in node.inputs]
    for i, (dt, ok) in enumerate(zip(found, allowed)):
        need(dt is None or dt in ok, f"{node.op} input {i} is {dt}; the C kernel takes {'/'.join(ok)}")
    return found


def out(e, node):
    return e.g.values[node.outputs[0]]


def arg(e, node, i) -> str:
    return e.ptr(node.inputs[i] if i < len(node.inputs) else "")


def int32s(values, what: str, lo: int = INT32[0], hi: int = INT32[1]) -> np.ndarray:
    arr = np.asarray(values, np.int64).reshape(-1)
    need(arr.size == 0 or (arr.min() >= lo and arr.max() <= hi), f"{what} must lie in [{lo}, {hi}]")
    return arr


def size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def per_channel(e, base: str, values, channels: int, ctype: str, what: str):
    """(array name, step): step 1 indexes per channel, 0 repeats one value."""
    arr = np.asarray(values).reshape(-1)
    need(arr.size in (1, channels), f"{what} has {arr.size} values for {channels} channels")
    if ctype == "int32_t":
        arr = int32s(arr, what)
    return e.array(base, ctype, arr), int(arr.size != 1)


# ---------------------------------------------------------------- descriptors
def window(e, node, kernel, m: int, groups: int) -> str:
    x, y = e.g.values[node.inputs[0]], out(e, node)
    need(1 <= len(x.shape) - 2 <= 3, f"{node.op} takes 1 to 3 spatial dims, got shape {list(x.shape)}")
    a = node.attrs
    k3, s3, p3, d3 = geo.geometry_3d(kernel, a["strides"], a["pads"], a["dilations"])
    fill = (1,) * (5 - len(x.shape))
    return "&" + e.struct(node.name + "_window", "tinyc_window",
                          [x.shape[0], x.shape[1], m, groups, fill + x.shape[2:], fill + y.shape[2:],
                           k3, s3, d3, p3[:3], p3[3:]])


def broadcast_strides(out_shape, shape) -> list[int]:
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out_shape, strides_of(shape))]


def merge(shape, *strides):
    """Drop unit dims and fuse neighbours every operand walks contiguously: fewer, longer loops."""
    dims = [(d, [s[i] for s in strides]) for i, d in enumerate(shape) if d != 1]
    merged: list = []
    for d, st in dims:
        if merged and all(ps == s * d for ps, s in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * d, st)
        else:
            merged.append((d, st))
    return [d for d, _ in merged], [[st[k] for _, st in merged] for k in range(len(strides))]


def bcast(e, node, out_shape, a_shape, b_shape, scale_a: int = 1, scale_b: int = 1, keep_empty=False) -> str:
    shape, (sa, sb) = merge(out_shape, broadcast_strides(out_shape, a_shape), broadcast_strides(out_shape, b_shape))
    if not shape and not keep_empty:
        shape, sa, sb = [1], [0], [0]
    need(len(shape) <= MAX_DIMS, f"{node.op} broadcasts over {len(shape)} dims; the kernels take {MAX_DIMS}")
    pad = [0] * (MAX_DIMS - len(shape))
    return "&" + e.struct(node.name + "_bcast", "tinyc_bcast",
                          [len(shape), shape + pad, [s * scale_a for s in sa] + pad, [s * scale_b for s in sb] + pad])


def requant(e, node, channels: int) -> str:
    a = node.attrs
    if a.get("multiplier") is None:
        need(out(e, node).dtype == "int32", "without a multiplier the output is the int32 accumulator")
        return "NULL"
    mult = np.asarray(a["multiplier"]).reshape(-1)
    shift = np.asarray(a["shift"]).reshape(-1)
    if mult.size != shift.size:
        mult, shift = np.broadcast_to(mult, (channels,)), np.broadcast_to(shift, (channels,))
    rounding = a.get("rounding")
    need(rounding in ROUNDINGS, f"rounding {rounding!r} is not one of {'/'.join(ROUNDINGS)}")
    m, step = per_channel(e, node.name + "_multiplier", mult, channels, "int32_t", "multiplier")
    # single rounding adds 2**(30 - shift): the shift must leave that a valid int64 shift
    lo, hi = (-32, 30) if rounding == "single" else (-63, 63)
    s, _ = per_channel(e, node.name + "_shift", int32s(shift, "shift", lo, hi), channels, "int32_t", "shift")
    bounds = int32s([a["out_zp"], a["out_min"], a["out_max"]], "out_zp/out_min/out_max")
    return "&" + e.struct(node.name + "_requant", "tinyc_requant", [m, s, step] + bounds.tolist()
                          + [ROUNDINGS[rounding]])


# ---------------------------------------------------------------- float ops
def conv(e, node):
    dtypes(e, node, ("float32",), ("float32",), ("float32",))
    w = e.g.values[node.inputs[1]]
    g = window(e, node, w.shape[2:], w.shape[0], node.attrs["group"])
    return [f"tinyc_conv_f32({g}, {arg(e, node, 0)}, {arg(e, node, 1)}, {arg(e, node, 2)}, {e.ptr(node.outputs[0])});"]


def matmul(e, node):
    dtypes(e, node, ("float32",), ("float32",))
    a, b = (e.g.values[v].shape for v in node.inputs)
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    m, k, n = a2[-2], a2[-1], b2[-1]
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    desc = bcast(e, node, batch, a2[:-2], b2[:-2], m * k, k * n, keep_empty=True)
    return [f"tinyc_matmul_f32({desc}, {arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])}, {m}, {k}, {n});"]


def binary(kernel):
    def emit(e, node):
        dtypes(e, node, ("float32",), ("float32",))
        a, b = (e.g.values[v].shape for v in node.inputs)
        desc = bcast(e, node, out(e, node).shape, a, b)
        return [f"{kernel}({desc}, {arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])});"]
    return emit


def relu(e, node):
    dt, = dtypes(e, node, ("float32", "int8", "uint8"))
    y = out(e, node)
    if dt == "uint8":
        return [f"memcpy({e.ptr(node.outputs[0])}, {arg(e, node, 0)}, {y.nbytes});"]
    return [f"tinyc_relu_{SUFFIX[dt]}({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {y.size});"]


def clip(e, node):
    dtypes(e, node, ("float32",))
    lo, hi = c_literals([node.attrs["min"], node.attrs["max"]], "float")
    return [f"tinyc_clip_f32({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {out(e, node).size}, {lo}, {hi});"]


def sigmoid(e, node):
    dtypes(e, node, ("float32",))
    return [f"tinyc_sigmoid_f32({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {out(e, node).size});"]


def axis_split(shape, axis: int):
    axis %= max(len(shape), 1)
    return size(shape[:axis]), shape[axis], size(shape[axis + 1:])


def softmax(e, node):
    dtypes(e, node, ("float32",))
    outer, length, inner = axis_split(out(e, node).shape, node.attrs["axis"])
    return [f"tinyc_softmax_f32({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {outer}, {length}, {inner});"]


def avgpool(e, node):
    dtypes(e, node, ("float32",))
    c = out(e, node).shape[1]
    g = window(e, node, node.attrs["kernel"], c, c)
    return [f"tinyc_avgpool_f32({g}, {arg(e, node, 0)}, {e.ptr(node.outputs[0])}, "
            f"{int(bool(node.attrs['count_include_pad']))});"]


def maxpool(e, node):
    dt, = dtypes(e, node, ("float32", "int8", "uint8"))
    c = out(e, node).shape[1]
    g = window(e, node, node.attrs["kernel"], c, c)
    return [f"tinyc_maxpool_{SUFFIX[dt]}({g}, {arg(e, node, 0)}, {e.ptr(node.outputs[0])});"]


# ---------------------------------------------------------------- int8 <-> uint8 (data movement: kernels_data.py;
# float <-> int8: kernels_quant.py)
def flip_sign(e, node):
    dtypes(e, node, ("int8", "uint8"))
    return [f"tinyc_flip_sign({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {out(e, node).size});"]


# ---------------------------------------------------------------- integer ops
def qconv(e, node):
    dtypes(e, node, ("int8",), ("int8",), ("int32",))
    w = e.g.values[node.inputs[1]]
    a = node.attrs
    planned = plans.qconv(e, node, arg(e, node, 0), e.ptr(node.outputs[0]))
    if planned:
        return planned
    g = window(e, node, w.shape[2:], w.shape[0], a["group"])
    wzp, step = per_channel(e, node.name + "_w_zp", a["w_zp"], w.shape[0], "int32_t", "w_zp")
    x_zp, = int32s([a["x_zp"]], "x_zp")
    return [f"tinyc_qconv_s8({g}, {arg(e, node, 0)}, {x_zp}, {arg(e, node, 1)}, {wzp}, {step}, {arg(e, node, 2)}, "
            f"{requant(e, node, w.shape[0])}, {e.ptr(node.outputs[0])});"]


def qmatmul(e, node):
    dtypes(e, node, ("int8",), ("int8",), ("int32",))
    x, w = e.g.values[node.inputs[0]], e.g.values[node.inputs[1]]
    need(len(w.shape) == 2, "qmatmul weights must be [K, N]")
    k, n = w.shape
    a = node.attrs
    planned = plans.qmatmul(e, node, arg(e, node, 0), e.ptr(node.outputs[0]), x.size // max(k, 1))
    if planned:
        return planned
    wzp, step = per_channel(e, node.name + "_w_zp", a["w_zp"], n, "int32_t", "w_zp")
    x_zp, = int32s([a["x_zp"]], "x_zp")
    return [f"tinyc_qmatmul_s8({arg(e, node, 0)}, {x_zp}, {arg(e, node, 1)}, {wzp}, {step}, {arg(e, node, 2)}, "
            f"{requant(e, node, n)}, {e.ptr(node.outputs[0])}, {x.size // max(k, 1)}, {k}, {n});"]


def adc(e, node) -> str:
    """The ADC read-out's tinyc_adc, checked to be what the C arithmetic takes."""
    a = node.attrs
    need(0 <= a["adc_shift"] <= 31 and 0 <= a["post_shift"] <= 31 and a["adc_min"] <= a["adc_max"]
         and -128 <= a["out_min"] <= a["out_max"] <= 127, "ADC shifts 0..31 and ordered int8 clip bounds")
    fields = int32s([a[f] for f in ADC_ATTRS], "ADC").tolist()  # tinyc_adc's fields, in order
    return "&" + e.struct(node.name + "_adc", "tinyc_adc", fields)


def aconv(e, node):
    dtypes(e, node, ("int8",), ("int8",), ("int32",))
    w = e.g.values[node.inputs[1]]
    need(node.attrs["group"] == 1, "aconv takes groups 1")
    g = window(e, node, w.shape[2:], w.shape[0], 1)
    return [f"tinyc_aconv_s8({g}, {arg(e, node, 0)}, {arg(e, node, 1)}, {arg(e, node, 2)}, {adc(e, node)}, "
            f"{e.ptr(node.outputs[0])});"]


def amatmul(e, node):
    dtypes(e, node, ("int8",), ("int8",), ("int32",))
    x, (k, n) = e.g.values[node.inputs[0]], e.g.values[node.inputs[1]].shape
    return [f"tinyc_amatmul_s8({arg(e, node, 0)}, {arg(e, node, 1)}, {arg(e, node, 2)}, {adc(e, node)}, "
            f"{e.ptr(node.outputs[0])}, {x.size // max(k, 1)}, {k}, {n});"]


QADD_FIELDS = ("left_shift", "a_zp", "a_multiplier", "a_shift", "b_zp", "b_multiplier", "b_shift", "out_zp",
               "out_multiplier", "out_shift", "out_min", "out_max")


def qadd(e, node):
    dtypes(e, node, ("int8",), ("int8",))
    a = node.attrs
    shifts = int32s([a["left_shift"], a["a_shift"], a["b_shift"], a["out_shift"]], "qadd shifts", -63, 63)
    need(shifts[0] >= 0, "left_shift must not be negative")
    x0, x1 = (e.g.values[v].shape for v in node.inputs)
    desc = bcast(e, node, out(e, node).shape, x0, x1)
    planned = plans.qadd(e, node, desc, [arg(e, node, 0), arg(e, node, 1), e.ptr(node.outputs[0])])
    if planned:
        return planned
    params = e.struct(node.name + "_params", "tinyc_qadd_params",
                      int32s([a[f] for f in QADD_FIELDS], "qadd parameters").tolist() + [ROUNDINGS[a["rounding"]]])
    return [f"tinyc_qadd_s8({desc}, &{params}, {arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])});"]


GLOBAL_POOL_MAX = 2 ** 22  # tinyc_global_avgpool_s8's lifted sums fit int32 up to planes of this size


def global_plane(e, node) -> int | None:
    """The plane size of a pool whose window is its whole plane (no padding, one output per plane), or
    None for any other window."""
    x = e.g.values[node.inputs[0]]
    plane = size(x.shape[2:])
    whole = geo.whole_plane(x.shape, out(e, node).shape, node.attrs)
    return plane if whole and 1 <= plane <= GLOBAL_POOL_MAX else None


def qavgpool(e, node):
    dtypes(e, node, ("int8",))
    a = node.attrs
    c = out(e, node).shape[1]
    zp, lo, hi = int32s([a["x_zp"], a["out_min"], a["out_max"]], "x_zp/out_min/out_max")
    plane = global_plane(e, node)
    if plane is not None:
        planes = e.g.values[node.inputs[0]].shape[0] * c
        nonnegative = value_range(e.g, node.inputs[0])[0] >= 0  # int8 in [0, 127]: word sums without the sign flip
        return [f"tinyc_global_avgpool_s8({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {planes}, {plane}, "
                f"{max(lo, -128)}, {min(hi, 127)}, {int(nonnegative)});"]
    g = window(e, node, a["kernel"], c, c)
    return [f"tinyc_qavgpool_s8({g}, {arg(e, node, 0)}, {e.ptr(node.outputs[0])}, "
            f"{int(bool(a['count_include_pad']))}, {zp}, {lo}, {hi});"]


def lut(e, node):
    dtypes(e, node, ("int8",))
    table = np.asarray(node.attrs["table"]).reshape(-1)
    need(table.size == 256, f"lut needs 256 entries, got {table.size}")
    t = e.array(node.name + "_table", "int8_t", table.astype(np.int8))
    return [f"tinyc_lut_s8({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {out(e, node).size}, {t});"]


def qsoftmax(e, node):
    dtypes(e, node, ("int8",))
    a = node.attrs
    table = int32s(a["table"], "qsoftmax table", 0, 2 ** 31 - 1)
    need(table.size == 256, f"qsoftmax needs 256 table entries, got {table.size}")
    outer, length, inner = axis_split(out(e, node).shape, a["axis"])
    top = int(table.max()) * max(length, 1)
    need(0 <= int(a["inv_out_scale"]) and top * max(int(a["inv_out_scale"]), 1 << 17) < 2 ** 62,
         "qsoftmax table and inv_out_scale overflow int64")
    t = e.array(node.name + "_table", "int32_t", table)
    zp, = int32s([a["out_zp"]], "out_zp")
    return [f"tinyc_qsoftmax_s8({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {outer}, {length}, {inner}, {t}, "
            f"{int(a['inv_out_scale'])}LL, {zp});"]


EMITTERS = {
    "conv": conv, "matmul": matmul, "add": binary("tinyc_add_f32"), "mul": binary("tinyc_mul_f32"),
    "relu": relu, "clip": clip, "sigmoid": sigmoid, "softmax": softmax, "avgpool": avgpool,
    "maxpool": maxpool, "flip_sign": flip_sign, "qconv": qconv,
    "qmatmul": qmatmul, "qadd": qadd, "aconv": aconv, "amatmul": amatmul, "qavgpool": qavgpool, "lut": lut, "qsoftmax": qsoftmax,
}
