"""The host's global average pool (tinyc_pool.h) and float <-> int8 boundary (kernels_quant.py) against
the reference interpreter, bit for bit, and the boundary against onnxruntime.

Planes of up to 16 values are summed unrolled; longer ones by word loads (bytes biased to unsigned in
16-bit lanes), from an aligned start with the bytes before it and after the last whole word one by
one, in runs of at most 256 words. The cases land on each path, on planes that start at every
alignment, on runs past 256 words, on the lanes' bounds (every value -128 or 127) and on the
rounding's ties (half away from zero, for even and odd plane sizes).

Quantize finds x's code among 255 step keys computed from the interpreter; every float32 is too many
for CI, so the cases are every step key and its neighbours a few ulps either side, the specials (zeros,
infinities, NaNs of both signs and payloads, subnormals, the largest floats) and a large sample of
random bit patterns and of values around the codes' range, per tensor and per channel, with negative
scales and each dtype's zero points at both ends.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import tinyc
from test_c_backend import check, new_graph, rand, run_c, window_attrs
from tinyc.backends.c import emit_c
from tinyc.backends.c.kernels_quant import float_keys, key_floats, step_keys
from tinyc.ir import interpret, ops
from tinyc.ir import quant_math as qm
from tinyc.passes.memory import plan_memory

RNG = np.random.default_rng(11)
# the interpreter's division and product flag the inputs' signalling NaNs and overflows to infinity
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]


def global_pool(xs, x_zp=0, lo=-128, hi=127, name="x"):
    g = new_graph(**{name: (xs, "int8")})
    y = ops.add(g, "qavgpool", [name], "y", kernel=xs[2:], **window_attrs(len(xs) - 2), ceil_mode=False,
                count_include_pad=True, x_zp=x_zp, out_min=lo, out_max=hi)
    return g, y


def emitted(g, y) -> str:
    g.outputs = [y]
    return emit_c(plan_memory(g.connect()))["model.c"]


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


# plane sizes: 1..16 unrolled; 17.. by words: n % 4 != 0 in groups of four planes split at masked words
# (17, 25, 125, 1023: the lanes' bound), the planes left over at every alignment; 64 and 1024: aligned
# planes of n / 4 words (1024: one run of 256); 1028 and 1037: runs of 256 words, then the rest
PLANES = [(1, 6, 1, 1), (1, 3, 1, 2), (2, 5, 3, 1), (1, 7, 3, 3), (1, 5, 4, 4), (1, 4, 17), (1, 9, 5, 5),
          (1, 6, 25, 5), (1, 5, 8, 8), (1, 5, 1023), (1, 3, 1, 1024), (1, 3, 4, 257), (1, 5, 1037),
          (1, 2, 2, 3, 3)]


@pytest.mark.parametrize("xs", PLANES)
def test_global_pool_planes(xs, tmp_path):
    g, y = global_pool(xs, x_zp=int(RNG.integers(-128, 128)))
    assert "tinyc_global_avgpool_s8(" in emitted(g, y)
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8), ties(xs)):
        check(g, y, tmp_path, {"x": x})


def relu_then_pool(xs):
    """x through a table of max(x, 0), so the pool's input is proven in [0, 127] (tinyc.ir.ranges) and
    its word sums take the small path: no sign flip, two words added bytewise first."""
    g = new_graph(x=(xs, "int8"))
    ops.add(g, "lut", ["x"], "r", table=np.maximum(np.arange(-128, 128), 0).astype(np.int8))  # table[x + 128]
    y = ops.add(g, "qavgpool", ["r"], "y", kernel=xs[2:], **window_attrs(len(xs) - 2), ceil_mode=False,
                count_include_pad=True, x_zp=0, out_min=-128, out_max=127)
    return g, y


@pytest.mark.parametrize("xs", PLANES)
def test_global_pool_nonnegative(xs, tmp_path):
    """A pool after a ReLU on every plane size, against TFLite's rounding by hand (a non-negative total t
    of n values averages to (t + n // 2) // n), at the lanes' bounds too (every value 127)."""
    g, y = relu_then_pool(xs)
    assert ", 1);" in [line for line in emitted(g, y).splitlines() if "tinyc_global_avgpool_s8(" in line][0]
    n = int(np.prod(xs[2:]))
    for x in (rand(xs, "int8"), np.full(xs, 127, np.int8), np.zeros(xs, np.int8), np.abs(ties(xs))):
        got = check(g, y, tmp_path, {"x": x}, sanitize=xs == (1, 6, 25, 5))[y]
        totals = np.maximum(x.astype(np.int64), 0).reshape(xs[0], xs[1], -1).sum(axis=2)
        np.testing.assert_array_equal(got.reshape(totals.shape), (totals + n // 2) // n)


@pytest.mark.parametrize("lo,hi", [(-3, 127), (-128, 5), (0, 0), (-100, 90)])
def test_global_pool_clip_bounds(lo, hi, tmp_path):
    """A fused clip (a ReLU's zero point) on a short and a long plane."""
    for xs in ((1, 8, 3, 3), (1, 4, 25, 5)):
        g, y = global_pool(xs, lo=lo, hi=hi)
        check(g, y, tmp_path)


@pytest.mark.parametrize("xs", [(1, 7, 3, 3), (1, 6, 25, 5), (2, 3, 8, 8), (1, 3, 1037)])
def test_global_pool_requantized(xs, tmp_path):
    """An average quantized unlike its input (qavgpool_requant): the plane's sum less n x_zp, requantized
    once by the count's multiplier."""
    n = int(np.prod(xs[2:]))
    g = new_graph(x=(xs, "int8"))
    rq = qm.requant_attrs(np.array([1.7 / n]), -9, (-128, 127), "qavgpool_requant")
    y = ops.add(g, "qavgpool_requant", ["x"], "y", kernel=xs[2:], **window_attrs(len(xs) - 2), ceil_mode=False,
                count_include_pad=False, x_zp=-5, count_min=n, **rq)
    assert "tinyc_global_avgpool_requant_s8(" in emitted(g, y)
    for x in (rand(xs, "int8"), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8)):
        check(g, y, tmp_path, {"x": x}, sanitize=xs == (1, 6, 25, 5))


def test_global_pool_under_sanitizers(tmp_path):
    """Every path (unrolled, aligned words, groups of four planes, unaligned words with runs) under
    ASan and UBSan: no load past a tensor's end, none unaligned."""
    g = new_graph(a=((1, 5, 3, 3), "int8"), b=((1, 7, 25, 5), "int8"), c=((1, 2, 8, 8), "int8"),
                  d=((1, 3, 1037), "int8"))
    outs = [ops.add(g, "qavgpool", [v], v + "_pool", kernel=g.values[v].shape[2:],
                    **window_attrs(len(g.values[v].shape) - 2), ceil_mode=False, count_include_pad=False, x_zp=0,
                    out_min=-128, out_max=127) for v in ("a", "b", "c", "d")]
    check(g, outs, tmp_path, sanitize=True)
    check(g, outs, tmp_path, {v: np.full(g.values[v].shape, -128, np.int8) for v in "abcd"}, sanitize=True)


# ---------------------------------------------------------------- quantize / dequantize
QUANTS = [(0.0078125, -3, "int8"), (0.1, 127, "int8"), (0.1, -128, "int8"), (3.7e-5, 0, "uint8"),
          (0.02, 255, "uint8"), (-0.05, 10, "int8"), (1e30, 0, "int8"), (1e-30, -1, "uint8")]
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17549435e-38, -1.17549435e-38,
                     3.4028235e38, -3.4028235e38, 0.5, -0.5, 1.5, -1.5], np.float32)
NANS = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF], np.uint32).view(np.float32)


def boundary_inputs(scale: float, zp: int, dtype: str, samples: int) -> np.ndarray:
    """Every step key of this quantization and +-4 keys (ulps) around it, the specials, random bit
    patterns, and random values over the codes' range and a little past it."""
    steps = step_keys(abs(scale), zp, dtype)
    steps = steps[steps < 2 ** 32]
    near = (steps[:, None] + np.arange(-4, 5)[None, :]).reshape(-1) % 2 ** 32
    info = np.iinfo(dtype)
    span = np.float32(abs(scale)) * np.float32(info.max - info.min + 8)
    rng = np.random.default_rng(abs(zp) + samples)
    patterns = rng.integers(0, 2 ** 32, samples, dtype=np.uint64).astype(np.uint32).view(np.float32)
    xs = [key_floats(near), SPECIALS, NANS, patterns, (rng.uniform(-1.0, 1.0, samples) * span).astype(np.float32)]
    x = np.concatenate(xs)
    return np.concatenate([x, -x])


def test_step_keys_are_where_the_code_steps():
    """The keys order floats as numbers (the search's premise), and at each step key the interpreter's
    code is one step past its value at the key below (codes no float reaches have no key)."""
    ordered = np.array([-np.inf, -3.0, -1e-45, -0.0, 0.0, 1e-45, 2.0, np.inf], np.float32)
    assert (np.diff(float_keys(ordered)) > 0).all() and (float_keys(NANS) < float_keys([-np.inf])).all()
    assert (key_floats(float_keys(SPECIALS)).view(np.uint32) == SPECIALS.view(np.uint32)).all()
    for scale, zp, dtype in QUANTS:
        steps = step_keys(abs(scale), zp, dtype)
        attrs = dict(scale=abs(scale), zero_point=zp, axis=None, dtype=dtype)
        found = steps < 2 ** 32
        at = ops.OPS["quantize"].compute([key_floats(steps[found])], attrs)[0].astype(int)
        below = ops.OPS["quantize"].compute([key_floats(steps[found] - 1)], attrs)[0].astype(int)
        assert (at > below).all() and found.sum() >= 1


@pytest.mark.parametrize("scale,zp,dtype", QUANTS)
def test_quantize_exact(scale, zp, dtype, tmp_path):
    x = boundary_inputs(scale, zp, dtype, 100_000)
    g = new_graph(x=(x.shape, "float32"))
    y = ops.add(g, "quantize", ["x"], "q", scale=scale, zero_point=zp, axis=None, dtype=dtype)
    check(g, y, tmp_path, {"x": x})


def bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_quantize_per_channel_and_dequantize_exact(tmp_path):
    """Per-channel tables (axis 1, mixed signs of scale) and every code's float, bit for bit."""
    x = boundary_inputs(0.03, 5, "int8", 20_000)
    x = x[: x.size // 3 * 3].reshape(1, 3, -1)
    g = new_graph(x=(x.shape, "float32"), a=((2, 256), "int8"), b=((2, 3, 256), "uint8"))
    q = ops.add(g, "quantize", ["x"], "q", scale=[0.03, -0.5, 7e-3], zero_point=[5, -128, 127], axis=1, dtype="int8")
    outs = [q, ops.add(g, "dequantize", [q], "dq", scale=[0.03, -0.5, 7e-3], zero_point=[5, -128, 127], axis=1),
            ops.add(g, "dequantize", ["a"], "da", scale=0.1, zero_point=-7, axis=None),
            ops.add(g, "dequantize", ["b"], "db", scale=[1e-3, 3.3, 1e38], zero_point=[0, 128, 255], axis=1)]
    g.outputs = outs
    codes = np.arange(256)
    feeds = {"x": x, "a": np.stack([codes - 128, codes[::-1] - 128]).astype(np.int8),
             "b": np.broadcast_to(codes, (2, 3, 256)).astype(np.uint8)}
    got, want = run_c(g, feeds, tmp_path), interpret(g, feeds)
    np.testing.assert_array_equal(got[q], want[q])
    for name in outs[1:]:
        bits_equal(got[name], want[name])


def test_boundary_under_sanitizers(tmp_path):
    x = boundary_inputs(0.05, -3, "int8", 2000)
    g = new_graph(x=(x.shape, "float32"))
    q = ops.add(g, "quantize", ["x"], "q", scale=0.05, zero_point=-3, axis=None, dtype="int8")
    u = ops.add(g, "quantize", ["x"], "u", scale=0.05, zero_point=128, axis=None, dtype="uint8")
    outs = [q, u, ops.add(g, "dequantize", [q], "dq", scale=0.05, zero_point=-3, axis=None),
            ops.add(g, "dequantize", [u], "du", scale=0.05, zero_point=128, axis=None)]
    g.outputs = outs
    got, want = run_c(g, {"x": x}, tmp_path, sanitize=True), interpret(g, {"x": x})
    for name in outs:
        bits_equal(got[name], want[name])


def qdq_model(shape, scale, zp, dtype, axis=None) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> Relu -> QuantizeLinear -> DequantizeLinear: tinyc's
    quantize, an int8 table and its dequantize."""
    tp = TensorProto.INT8 if dtype == "int8" else TensorProto.UINT8
    dims = [] if axis is None else [len(scale)]
    s = helper.make_tensor("s", TensorProto.FLOAT, dims, np.ravel(scale).tolist())
    z = helper.make_tensor("z", tp, dims, np.ravel(zp).tolist())
    kw = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **kw),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], **kw),
             helper.make_node("Relu", ["d"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["q2"], **kw),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"], **kw)]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))], [s, z])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("scale,zp,dtype,axis", [(0.0078125, -3, "int8", None), (0.013, 128, "uint8", None),
                                                 ([0.02, 0.5, 3e-3], [0, -100, 90], "int8", 1)])
def test_boundary_against_onnxruntime(scale, zp, dtype, axis):
    """onnxruntime as the oracle: the same floats out, bit for bit, ties, saturation and NaN included."""
    per = np.float32(np.max(np.abs(scale)))
    x = boundary_inputs(float(np.min(np.abs(scale))), int(np.ravel(zp)[0]), dtype, 3000)
    ties = ((np.arange(-300, 300) + 0.5) * per).astype(np.float32)
    x = np.concatenate([x, ties])[: 3 * 2000].reshape(1, 3, 2000)
    model = qdq_model(x.shape, scale, zp, dtype, axis)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    cm = tinyc.compile(model, target="cpu")
    assert {"quantize", "dequantize"} <= {cm.graph.node(layer["name"]).op for layer in cm.report["layers"]}
    bits_equal(cm.run({"x": x})["y"], want)
