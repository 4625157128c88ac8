"""Weight quantization: int8 scales per tensor or per channel (optionally powers of two), and TWN ternary."""
import numpy as np


def pow2_ceil(x):
    mant, exp = np.frexp(np.asarray(x, np.float64))
    return np.ldexp(1.0, np.where(mant == 0.5, exp - 1, exp))


def channels(w, axis, per_channel):
    """The axes a weight scale reduces over, and the shape that broadcasts the scale back over w."""
    if not per_channel:
        return tuple(range(w.ndim)), (1,) * w.ndim
    return tuple(i for i in range(w.ndim) if i != axis), tuple(-1 if i == axis else 1 for i in range(w.ndim))


def int8_weights(w, axis, per_channel, power_of_two):
    red, shape = channels(w, axis, per_channel)
    amax = np.abs(w).max(axis=red)
    scale = np.where(amax > 0, amax, 1.0) / 127  # an all-zero channel quantizes to 0 at any scale
    scale = (pow2_ceil(scale) if power_of_two else scale).astype(np.float32)
    return np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def ternarize(w, axis, per_channel, power_of_two):
    """TWN: the weights above 0.7 mean|w| become +-1, scaled by the mean magnitude of those kept."""
    red, _ = channels(w, axis, per_channel)
    mag = np.abs(w)
    kept = mag > 0.7 * mag.mean(axis=red, keepdims=True)
    alpha = (mag * kept).sum(axis=red) / np.maximum(kept.sum(axis=red), 1)
    alpha = np.where(alpha > 0, alpha, 1.0)
    if power_of_two:  # a ternary scale clips nothing, so the nearest power of two beats rounding up
        alpha = np.exp2(np.round(np.log2(alpha)))
    return (np.sign(w) * kept).astype(np.int8), alpha.astype(np.float32)

