"""Converters of ONNX's normalizations, GlobalMaxPool, ConvTranspose and Resize, each lowered to IR ops
that exist: BatchNormalization folds into the conv before it (else a per-channel mul and add), the other
normalizations are reductions and elementwise ops as ONNX defines them, ConvTranspose is a conv over the
zero-interleaved input, and Resize is a gather (nearest) or a matmul by an interpolation matrix per axis."""
from __future__ import annotations

import math

import numpy as np

from ..errors import BadModelError, UnsupportedError
from ..ir.graph import Value
from ..ir.ops import OPS
from .onnx_ops import attr, conv_bias, converts, float_only, inp, one_output, out
from .onnx_ops_tensor import emit_slice


def weights(ctx, index: int, what: str) -> np.ndarray:
    """A float constant input, or the float values of DequantizeLinear(constant) as a QDQ model gives
    weights: an op lowered with rearranged weights (ConvTranspose, LSTM, GRU) then runs in float between
    the int8 tensors around it."""
    name = inp(ctx, index)
    maker = ctx.graph.producers().get(name) if name else None
    if maker is not None and ctx.graph.node(maker).op == "dequantize":
        node = ctx.graph.node(maker)
        src = ctx.graph.values[node.inputs[0]]
        if src.is_const:
            return OPS["dequantize"].compute([src.data], node.attrs)[0]
    data = ctx.const(index, what)
    return None if data is None else data.astype(np.float32)


def _channel_shape(rank: int, channels: int) -> tuple[int, ...]:
    return (channels,) + (1,) * (rank - 2)


# ---------------------------------------------------------------- normalizations
@converts("BatchNormalization")
def batch_norm(ctx):
    one_output(ctx)
    if attr(ctx, "training_mode", 0):
        raise UnsupportedError("BatchNormalization in training mode (tinyc compiles inference)")
    float_only(ctx, inp(ctx, 0))
    x = ctx.value(inp(ctx, 0))
    scale, bias, mean, var = (ctx.const(i, f"BatchNormalization's {what}").astype(np.float64).reshape(-1)
                              for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    if len(x.shape) < 2 or any(v.size != x.shape[1] for v in (scale, bias, mean, var)):
        raise BadModelError(f"BatchNormalization parameters do not match {list(x.shape)}'s channels")
    mul = scale / np.sqrt(var + np.float64(np.float32(attr(ctx, "epsilon", 1e-5))))
    add = bias - mean * mul
    if _fold_into_conv(ctx, mul, add):
        return
    shape = _channel_shape(len(x.shape), x.shape[1])
    y = ctx.emit("mul", [inp(ctx, 0), ctx.add_const("bn_scale", mul.astype(np.float32).reshape(shape))])
    ctx.emit("add", [y, ctx.add_const("bn_bias", add.astype(np.float32).reshape(shape))], out(ctx))


def _fold_into_conv(ctx, mul: np.ndarray, add: np.ndarray) -> bool:
    """conv -> BatchNormalization, the conv's output read by nothing else: scale its weights and bias."""
    x = inp(ctx, 0)
    maker = ctx.graph.producers().get(x)
    if maker is None or ctx.readers.get(x, 0) != 1 or ctx.graph.node(maker).op != "conv":
        return False
    node = ctx.graph.node(maker)
    w = ctx.graph.values[node.inputs[1]]
    b = ctx.graph.values[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    if not w.is_const or (b is not None and not b.is_const):
        return False
    bias = b.data.astype(np.float64) if b is not None else np.zeros(w.shape[0])
    weights = (w.data.astype(np.float64) * mul.reshape((-1,) + (1,) * (len(w.shape) - 1))).astype(np.float32)
    new_w = ctx.add_const(node.inputs[1] + "_bn", weights)
    new_b = ctx.add_const(maker + "_bn_bias", (bias * mul + add).astype(np.float32))
    ctx.graph.add_value(Value(out(ctx), ctx.graph.values.pop(x).shape, "float32"))
    ctx.graph.set_node(maker, inputs=[node.inputs[0], new_w, new_b], outputs=[out(ctx)])
    return True


def _normalize(ctx, axes: tuple[int, ...], eps: float):
    """(x - mean) / sqrt(var + eps) over axes, var the mean of the squared deviation; returns
    (normalized, mean, standard deviation) value names."""
    mean = ctx.emit("reduce_mean", [inp(ctx, 0)], axes=axes, keepdims=True)
    centered = ctx.emit("sub", [inp(ctx, 0), mean])
    var = ctx.emit("reduce_mean", [ctx.emit("mul", [centered, centered])], axes=axes, keepdims=True)
    std = ctx.emit("sqrt", [ctx.emit("add", [var, ctx.add_const("epsilon", np.float32(eps))])])
    return ctx.emit("div", [centered, std]), mean, std


@converts("InstanceNormalization")
def instance_norm(ctx):
    float_only(ctx, inp(ctx, 0))
    x = ctx.value(inp(ctx, 0))
    rank, c = len(x.shape), x.shape[1]
    scale = ctx.const(1, "InstanceNormalization's scale").astype(np.float32).reshape(_channel_shape(rank, c))
    bias = ctx.const(2, "InstanceNormalization's B").astype(np.float32).reshape(_channel_shape(rank, c))
    y, _, _ = _normalize(ctx, tuple(range(2, rank)), attr(ctx, "epsilon", 1e-5))
    y = ctx.emit("mul", [y, ctx.add_const("scale", scale)])
    ctx.emit("add", [y, ctx.add_const("bias", bias)], out(ctx))


@converts("LayerNormalization")
def layer_norm(ctx):
    float_only(ctx, inp(ctx, 0))
    rank = len(ctx.value(inp(ctx, 0)).shape)
    axis = attr(ctx, "axis", -1) % rank
    y, mean, std = _normalize(ctx, tuple(range(axis, rank)), attr(ctx, "epsilon", 1e-5))
    outputs = list(ctx.node.output) + ["", ""]
    has_bias = bool(inp(ctx, 2))
    y = ctx.emit("mul", [y, inp(ctx, 1)], None if has_bias else outputs[0])
    if has_bias:
        ctx.emit("add", [y, inp(ctx, 2)], outputs[0])
    if outputs[1]:
        ctx.emit("reshape", [mean], outputs[1], shape=ctx.value(mean).shape)
    if outputs[2]:
        ctx.emit("reciprocal", [std], outputs[2])


@converts("GlobalMaxPool")
def global_max_pool(ctx):
    x = ctx.value(inp(ctx, 0))
    if x.dtype not in ("int8", "uint8"):
        float_only(ctx, inp(ctx, 0))
    n = len(x.shape) - 2
    ctx.emit("maxpool", [inp(ctx, 0)], out(ctx), kernel=tuple(x.shape[2:]), strides=(1,) * n, pads=(0,) * (2 * n),
             dilations=(1,) * n, ceil_mode=False)


# ---------------------------------------------------------------- ConvTranspose
@converts("ConvTranspose")
def conv_transpose(ctx):
    """A conv, stride 1, over x with stride - 1 zeros between its elements, padded (k - 1) * d - pad on
    each side (cropped where that is negative), with the weights flipped and in/out channels swapped."""
    float_only(ctx, inp(ctx, 0))
    x = ctx.value(inp(ctx, 0))
    w = weights(ctx, 1, "ConvTranspose's weights")
    group = attr(ctx, "group", 1)
    n_sp = len(x.shape) - 2
    c, m = x.shape[1], w.shape[1] * group
    if w.shape[0] != c or c % group:
        raise BadModelError(f"ConvTranspose weights {list(w.shape)} for {c} input channels in {group} groups")
    kernel = tuple(attr(ctx, "kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise BadModelError(f"kernel_shape {list(kernel)} differs from the weights' {list(w.shape[2:])}")
    strides = tuple(attr(ctx, "strides", [1] * n_sp))
    dilations = tuple(attr(ctx, "dilations", [1] * n_sp))
    extra = tuple(attr(ctx, "output_padding", [0] * n_sp))
    begins, ends = _transpose_pads(ctx, x.shape[2:], kernel, strides, dilations, extra)
    y = inp(ctx, 0)
    for axis, s in enumerate(strides):
        if s > 1:
            y = _interleave_zeros(ctx, y, 2 + axis, s)
    spans = {}
    pads = [0] * (2 * len(x.shape))
    for i in range(n_sp):
        reach = (kernel[i] - 1) * dilations[i]
        lo, hi = reach - begins[i], reach - ends[i] + extra[i] - (strides[i] - 1)
        dim = ctx.value(y).shape[2 + i]
        pads[2 + i], pads[2 + i + len(x.shape)] = max(lo, 0), max(hi, 0)
        if lo < 0 or hi < 0:
            spans[2 + i] = (max(-lo, 0), dim - max(-hi, 0), 1)
    if spans:
        y = emit_slice(ctx, y, spans, None)
    if any(pads):
        y = ctx.emit("pad", [y], pads=tuple(pads), mode="constant", value=0.0)
    flipped = np.flip(w, axis=tuple(range(2, w.ndim)))
    cg, mg = c // group, m // group
    conv_w = flipped.reshape((group, cg, mg) + kernel).swapaxes(1, 2).reshape((m, cg) + kernel)
    ctx.emit("conv", [y, ctx.add_const("convtranspose_w", np.ascontiguousarray(conv_w)), conv_bias(ctx, 2, m)],
             out(ctx), group=group, strides=(1,) * n_sp, pads=(0,) * (2 * n_sp), dilations=dilations)


def _transpose_pads(ctx, spatial, kernel, strides, dilations, extra):
    """Begin and end pads of the transposed conv, from pads, or from output_shape / auto_pad as ONNX says."""
    n = len(spatial)
    auto_pad = attr(ctx, "auto_pad", "NOTSET")
    out_shape = attr(ctx, "output_shape")
    if out_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_shape = [d * s for d, s in zip(spatial, strides)]
    if out_shape is None:
        pads = list(attr(ctx, "pads", [0] * (2 * n))) if auto_pad != "VALID" else [0] * (2 * n)
        return pads[:n], pads[n:]
    out_shape = list(out_shape)[-n:]
    total = [s * (d - 1) + e + (k - 1) * dl + 1 - o
             for d, k, s, dl, e, o in zip(spatial, kernel, strides, dilations, extra, out_shape)]
    if auto_pad == "SAME_UPPER":
        return [t // 2 for t in total], [t - t // 2 for t in total]
    return [t - t // 2 for t in total], [t // 2 for t in total]


def _interleave_zeros(ctx, x: str, axis: int, stride: int) -> str:
    """x with stride - 1 zeros after each element along axis (the trailing ones included)."""
    shape = ctx.value(x).shape
    split = shape[:axis + 1] + (1,) + shape[axis + 1:]
    y = ctx.emit("reshape", [x], shape=split)
    pads = [0] * (2 * len(split))
    pads[len(split) + axis + 1] = stride - 1
    y = ctx.emit("pad", [y], pads=tuple(pads), mode="constant", value=0.0)
    return ctx.emit("reshape", [y], shape=shape[:axis] + (shape[axis] * stride,) + shape[axis + 1:])


# ---------------------------------------------------------------- Resize
TRANSFORMS = {  # coordinate_transformation_mode -> the input coordinate of output index o
    "half_pixel": lambda o, scale, n_in, n_out: (o + 0.5) / scale - 0.5,
    "pytorch_half_pixel": lambda o, scale, n_in, n_out: (o + 0.5) / scale - 0.5 if n_out > 1 else 0.0,
    # ONNX's reference (whose outputs the node tests hold) takes the unrounded output length here
    "align_corners": lambda o, scale, n_in, n_out: o * (n_in - 1) / (scale * n_in - 1) if scale * n_in != 1 else 0.0,
    "asymmetric": lambda o, scale, n_in, n_out: o / scale,
    "half_pixel_symmetric": lambda o, scale, n_in, n_out:
        n_in / 2 * (1 - n_out / (scale * n_in)) + (o + 0.5) / scale - 0.5,
}
NEAREST = {
    "round_prefer_floor": lambda v: math.ceil(v - 0.5),
    "round_prefer_ceil": lambda v: math.floor(v + 0.5),
    "floor": math.floor,
    "ceil": math.ceil,
}


def _cubic(r: float, a: float) -> list[float]:
    """Keys' cubic convolution weights of the taps at floor - 1 .. floor + 2, r the fraction past floor."""
    def near(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return [far(r + 1), near(r), near(1 - r), far(2 - r)]


def _resize_axis(ctx, n_in: int, n_out: int, scale: float):
    """Nearest: the index each output reads; linear and cubic: the [n_out, n_in] interpolation matrix."""
    mode = attr(ctx, "mode", "nearest")
    where = TRANSFORMS[attr(ctx, "coordinate_transformation_mode", "half_pixel")]
    coords = [where(o, scale, n_in, n_out) for o in range(n_out)]
    if mode == "nearest":
        rounding = NEAREST[attr(ctx, "nearest_mode", "round_prefer_floor")]
        return np.array([min(max(rounding(v), 0), n_in - 1) for v in coords], np.int64)
    matrix = np.zeros((n_out, n_in), np.float64)
    a, exclude = attr(ctx, "cubic_coeff_a", -0.75), attr(ctx, "exclude_outside", 0)
    for o, v in enumerate(coords):
        base = math.floor(v)
        r = v - base
        taps = [(base, 1 - r), (base + 1, r)] if mode == "linear" else \
            list(zip(range(base - 1, base + 3), _cubic(r, a)))
        if exclude:
            taps = [(i, t) for i, t in taps if 0 <= i < n_in]
            total = sum(t for _, t in taps)
            taps = [(i, t / total) for i, t in taps]
        for i, t in taps:
            matrix[o, min(max(i, 0), n_in - 1)] += t
    return matrix.astype(np.float32)


@converts("Resize")
def resize(ctx):
    x = ctx.value(inp(ctx, 0))
    rank = len(x.shape)
    mode = attr(ctx, "mode", "nearest")
    transform = attr(ctx, "coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear", "cubic") or transform not in TRANSFORMS:
        raise UnsupportedError(f"Resize mode {mode!r} with coordinate_transformation_mode {transform!r}")
    if attr(ctx, "antialias", 0) or attr(ctx, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise UnsupportedError("Resize with antialias or a keep_aspect_ratio_policy")
    if mode != "nearest" or x.dtype not in ("int8", "uint8"):
        float_only(ctx, inp(ctx, 0))
    axes = [a % rank for a in attr(ctx, "axes", list(range(rank)))]
    scales, sizes = ctx.const(2, "Resize's scales"), ctx.const(3, "Resize's sizes")
    per_axis = {}
    for k, axis in enumerate(axes):
        n_in = x.shape[axis]
        if sizes is not None and sizes.size:
            n_out = int(sizes[k])
            scale = n_out / n_in
        elif scales is not None and scales.size:
            scale = float(np.float32(scales[k]))
            n_out = int(math.floor(n_in * scale))
        else:
            raise BadModelError("Resize needs scales or sizes")
        per_axis[axis] = (n_in, n_out, scale)
    y = inp(ctx, 0)
    todo = [a for a, (n_in, n_out, scale) in per_axis.items() if not (n_in == n_out and scale == 1.0)]
    if not todo:
        ctx.emit("reshape", [y], out(ctx), shape=x.shape)
    for k, axis in enumerate(todo):
        n_in, n_out, scale = per_axis[axis]
        y = _resample(ctx, y, axis, _resize_axis(ctx, n_in, n_out, scale), out(ctx) if k == len(todo) - 1 else None)


def _resample(ctx, x: str, axis: int, how: np.ndarray, name: str | None) -> str:
    """Gather by indices, or contract axis with an interpolation matrix (a matmul on a 3-d view)."""
    if how.ndim == 1:
        return ctx.emit("gather", [x], name, axis=axis, indices=how)
    shape = ctx.value(x).shape
    n_out = how.shape[0]
    if axis == len(shape) - 1:
        return ctx.emit("matmul", [x, ctx.add_const("resize_matrix", np.ascontiguousarray(how.T))], name)
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:]))
    y = ctx.emit("reshape", [x], shape=(outer, shape[axis], inner))
    y = ctx.emit("matmul", [ctx.add_const("resize_matrix", how), y])
    return ctx.emit("reshape", [y], name, shape=shape[:axis] + (n_out,) + shape[axis + 1:])
