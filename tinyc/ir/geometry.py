"""Sliding-window geometry shared by conv and pooling ops (1 to 3 spatial dimensions)."""
from __future__ import annotations

import numpy as np


def window_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                    dilation: int = 1, ceil_mode: bool = False) -> int:
    span = (kernel - 1) * dilation + 1
    room = size + pad_begin + pad_end - span
    if room < 0:
        return 0
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:  # a window may not start inside the end padding
        out -= 1
    return out


def out_spatial(in_spatial, kernel, strides, pads, dilations, ceil_mode=False) -> tuple[int, ...]:
    n = len(in_spatial)
    return tuple(window_out_size(in_spatial[i], kernel[i], strides[i], pads[i], pads[i + n],
                                 dilations[i], ceil_mode) for i in range(n))


def whole_plane(in_shape, out_shape, attrs: dict) -> bool:
    """Whether a pool's window is its whole unpadded input plane, one output per plane: a global pool."""
    return (tuple(attrs["kernel"]) == tuple(in_shape[2:]) and not any(attrs["pads"])
            and set(attrs["dilations"]) <= {1} and int(np.prod(out_shape[2:])) == 1)


def to_3d(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) with 1..3 spatial dims -> (N, C, D, H, W), unit dims in front."""
    return x.reshape(x.shape[:2] + (1,) * (5 - x.ndim) + x.shape[2:])


def geometry_3d(kernel, strides, pads, dilations):
    """Pad the per-dimension parameters to three spatial dimensions the same way as to_3d."""
    n = len(kernel)
    fill = 3 - n
    return ((1,) * fill + tuple(kernel), (1,) * fill + tuple(strides),
            (0,) * fill + tuple(pads[:n]) + (0,) * fill + tuple(pads[n:]), (1,) * fill + tuple(dilations))


def windows(x: np.ndarray, kernel, strides, pads, dilations, out_sp, pad_value):
    """Yield, per kernel offset, the strided view of padded x that the window reads: (N, C, *out_sp)."""
    k3, s3, p3, d3 = geometry_3d(kernel, strides, pads, dilations)
    o3 = (1,) * (3 - len(out_sp)) + tuple(out_sp)
    x3 = to_3d(x)
    extra = [max(0, (o3[i] - 1) * s3[i] + (k3[i] - 1) * d3[i] + 1 - (x3.shape[2 + i] + p3[i])) for i in range(3)]
    width = [(0, 0), (0, 0)] + [(p3[i], max(p3[i + 3], extra[i])) for i in range(3)]
    xp = np.pad(x3, width, constant_values=pad_value)
    for kd in range(k3[0]):
        for kh in range(k3[1]):
            for kw in range(k3[2]):
                a, b, c = kd * d3[0], kh * d3[1], kw * d3[2]
                view = xp[:, :, a:a + (o3[0] - 1) * s3[0] + 1:s3[0],
                          b:b + (o3[1] - 1) * s3[1] + 1:s3[1],
                          c:c + (o3[2] - 1) * s3[2] + 1:s3[2]]
                yield (kd, kh, kw), view.reshape(view.shape[:2] + tuple(out_sp))


def valid_counts(in_spatial, kernel, strides, pads, dilations, out_sp, include_pad: bool) -> np.ndarray:
    """How many window positions fall inside the input (or inside the declared padding)."""
    n = len(in_spatial)
    if include_pad:
        grown = tuple(in_spatial[i] + pads[i] + pads[i + n] for i in range(n))
        ones = np.ones((1, 1) + grown)
        inner = tuple(0 for _ in range(2 * n))
        total = sum(v for _, v in windows(ones, kernel, strides, inner, dilations, out_sp, 0.0))
        return total.reshape(out_sp)
    ones = np.ones((1, 1) + tuple(in_spatial))
    total = sum(v for _, v in windows(ones, kernel, strides, pads, dilations, out_sp, 0.0))
    return total.reshape(out_sp)
