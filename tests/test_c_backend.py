"""The C backend against the reference interpreter: every op, bit-exact for integer ops."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinyc import toolchain
from tinyc.backends.c import emit_c
from tinyc.backends.c.emit import EMITTERS
from tinyc.errors import ToolchainError, UnsupportedError
from tinyc.ir import interpret, ops, verify
from tinyc.ir import quant_math as qm
from tinyc.ir.graph import Graph, Value
from tinyc.passes.memory import plan_memory

RNG = np.random.default_rng(1234)


def rand(shape, dtype="float32"):
    if dtype == "float32":
        return RNG.standard_normal(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def test_every_op_has_an_emitter():
    """The C backend's table is keyed by the IR's ops: every op the frontend or a pass can produce has a
    host kernel (an accelerated node runs the accelerator's driver instead, but any node may stay on the
    host), and the table names no op the IR does not define."""
    assert sorted(set(ops.OPS) - set(EMITTERS)) == []
    assert sorted(set(EMITTERS) - set(ops.OPS)) == []


def new_graph(**inputs) -> Graph:
    g = Graph("test")
    for name, (shape, dtype) in inputs.items():
        g.add_value(Value(name, tuple(shape), dtype))
        g.inputs.append(name)
    return g


def run_c(g: Graph, feeds: dict, workdir, sanitize=False) -> dict:
    g.connect()
    verify(g)
    g = plan_memory(g)
    exe = toolchain.build(emit_c(g), workdir, sanitize=sanitize)
    outs = toolchain.run_executable(exe, [feeds[n] for n in g.inputs],
                                    [(g.values[o].shape, g.values[o].dtype) for o in g.outputs])
    return dict(zip(g.outputs, outs))


def check(g: Graph, outputs, tmp_path, feeds=None, sanitize=False):
    g.outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    feeds = feeds or {n: rand(g.values[n].shape, g.values[n].dtype) for n in g.inputs}
    got = run_c(g, feeds, tmp_path, sanitize)
    want = interpret(g, feeds)
    for name in g.outputs:
        assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype, name
        if want[name].dtype == np.float32:
            scale = max(1.0, float(np.abs(want[name]).max(initial=0)))
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5 * scale, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    return got


def window_attrs(nd, strides=1, pads=0, dilations=1):
    expand = (lambda v, n: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n)
    return dict(strides=expand(strides, nd), pads=expand(pads, 2 * nd), dilations=expand(dilations, nd))


# (x shape, weight shape, group, strides, pads, dilations, bias)
CONVS = [
    ((1, 4, 11), (6, 4, 3), 1, 2, (1, 2), 2, True),                    # 1-D, stride, dilation, asymmetric pads
    ((1, 4, 9, 7), (6, 2, 3, 3), 2, (2, 1), (1, 0, 2, 1), 1, True),    # 2-D grouped
    ((2, 5, 8, 8), (5, 1, 3, 3), 5, 1, 1, 1, False),                  # depthwise, batch 2
    ((1, 3, 5, 6, 7), (4, 3, 2, 3, 3), 1, (1, 2, 1), 1, (2, 1, 1), True),  # 3-D
    ((1, 2, 150), (3, 2, 5), 1, 1, (2, 2), 1, True),                  # rows longer than a chunk
    ((1, 8, 6, 6), (16, 8, 1, 1), 1, 1, 0, 1, True),                  # pointwise
    ((1, 2, 4, 4), (3, 2, 5, 5), 1, 1, 2, 1, True),                   # kernel wider than the input
]


@pytest.mark.parametrize("xs,ws,group,strides,pads,dil,bias", CONVS)
def test_conv(xs, ws, group, strides, pads, dil, bias, tmp_path):
    g = new_graph(x=(xs, "float32"))
    w = g.add_const("w", rand(ws)).name
    b = g.add_const("b", rand(ws[:1])).name if bias else ""
    inputs = ["x", w] + ([b] if bias else [])
    y = ops.add(g, "conv", inputs, "conv", group=group, **window_attrs(len(xs) - 2, strides, pads, dil))
    check(g, y, tmp_path)


@pytest.mark.parametrize("xs,ws,group,strides,pads,dil,bias", CONVS)
def test_qconv_int8_out(xs, ws, group, strides, pads, dil, bias, tmp_path):
    g = new_graph(x=(xs, "int8"))
    m = ws[0]
    w = g.add_const("w", rand(ws, "int8")).name
    b = g.add_const("b", RNG.integers(-5000, 5000, m).astype(np.int32)).name if bias else ""
    k = int(np.prod(ws[1:]))
    reals = np.where(np.arange(m) % 2, RNG.uniform(0.3, 3.0, m) / k, RNG.uniform(1.0, 2.5, m))  # shifts of both signs
    mult, shift = zip(*(qm.quantize_multiplier(r) for r in reals))
    assert min(shift) <= 0 < max(shift)
    y = ops.add(g, "qconv", ["x", w] + ([b] if bias else []), "qconv", group=group,
                x_zp=-3, w_zp=RNG.integers(-4, 4, m).tolist(), multiplier=list(mult), shift=list(shift),
                out_zp=5, out_min=-128, out_max=127, rounding="double",
                **window_attrs(len(xs) - 2, strides, pads, dil))
    check(g, y, tmp_path)


def test_qconv_int32_out_and_scalar_params(tmp_path):
    g = new_graph(x=((1, 3, 7, 7), "int8"))
    w = g.add_const("w", rand((4, 3, 3, 3), "int8")).name
    b = g.add_const("b", RNG.integers(-2 ** 20, 2 ** 20, 4).astype(np.int32)).name
    acc = ops.add(g, "qconv", ["x", w, b], "acc", group=1, x_zp=7, w_zp=0, multiplier=None, shift=None,
                  out_zp=0, out_min=-128, out_max=127, rounding="double", **window_attrs(2, 2, 1))
    y = ops.add(g, "qconv", ["x", w], "q", group=1, x_zp=-128, w_zp=2, multiplier=1 << 30, shift=-9,
                out_zp=-1, out_min=-100, out_max=90, rounding="single", **window_attrs(2, 1, (0, 1, 1, 0)))
    check(g, [acc, y], tmp_path)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_requantization_edges(rounding, tmp_path):
    """Large accumulators through extreme multipliers and shifts: ties, signs and saturation."""
    g = new_graph(x=((1, 8, 1, 1), "int8"))
    w = g.add_const("w", np.full((8, 8, 1, 1), 127, np.int8)).name
    b = g.add_const("b", np.array([0, -1, 2 ** 24, -2 ** 24, 12345, -12345, 2 ** 20, -2 ** 20], np.int32)).name
    mult = [2 ** 31 - 1, 2 ** 30, 1, 2 ** 30 + 1, 1518500250, 2 ** 31 - 1, 1073741824, 1234567890]
    shift = [0, 1, -31, -20, 5, -1, -30, 3]
    y = ops.add(g, "qconv", ["x", w, b], "q", group=1, x_zp=0, w_zp=0, multiplier=mult, shift=shift,
                out_zp=0, out_min=-128, out_max=127, rounding=rounding, **window_attrs(2))
    for x in (rand((1, 8, 1, 1), "int8"), np.full((1, 8, 1, 1), -128, np.int8), np.zeros((1, 8, 1, 1), np.int8)):
        check(g, y, tmp_path, {"x": x})


@pytest.mark.parametrize("a,b", [((3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 6)), ((4,), (2, 4, 3)),
                                 ((2, 3, 4), (4,)), ((1, 70), (70, 130))])
def test_matmul(a, b, tmp_path):
    g = new_graph(a=(a, "float32"), b=(b, "float32"))
    check(g, ops.add(g, "matmul", ["a", "b"], "mm"), tmp_path)


def test_matmul_const_weight(tmp_path):
    g = new_graph(a=((2, 3, 8), "float32"))
    w = g.add_const("w", rand((8, 5))).name
    check(g, ops.add(g, "matmul", ["a", w], "mm"), tmp_path)


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("a,b", [((2, 3, 4, 5), (3, 1, 5)), ((4, 1, 6), (1, 3, 1)), ((3, 4), ()),
                                 ((1, 2, 1, 2, 1, 2, 3), (2, 2, 1, 2, 3)), ((5,), (5,))])
def test_binary(op, a, b, tmp_path):
    g = new_graph(a=(a, "float32"), b=(b, "float32"))
    check(g, ops.add(g, op, ["a", "b"], op), tmp_path)


def test_binary_with_const(tmp_path):
    g = new_graph(a=((2, 3), "float32"))
    c = g.add_const("c", rand((3,))).name
    check(g, ops.add(g, "add", [c, "a"], "add"), tmp_path)


def test_elementwise_float(tmp_path):
    g = new_graph(x=((2, 3, 17), "float32"))
    outs = [ops.add(g, "relu", ["x"], "relu"), ops.add(g, "clip", ["x"], "clip", min=-0.5, max=0.75),
            ops.add(g, "sigmoid", ["x"], "sigmoid")]
    outs += [ops.add(g, "softmax", ["x"], f"softmax{a}", axis=a) for a in (0, 1, -1)]
    check(g, outs, tmp_path)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_relu_int(dtype, tmp_path):
    g = new_graph(x=((3, 50), dtype))
    check(g, ops.add(g, "relu", ["x"], "relu"), tmp_path)


# (x shape, kernel, strides, pads, dilations, ceil_mode)
POOLS = [
    ((1, 3, 10), (3,), 2, (1, 1), 1, False),
    ((2, 3, 7, 9), (3, 2), (2, 2), (1, 0, 1, 1), 1, True),
    ((1, 2, 8, 8), (2, 2), 2, 0, 1, False),
    ((1, 2, 9, 9), (3, 3), 2, (1, 1, 0, 0), (2, 2), True),
    ((1, 2, 5, 6, 7), (2, 3, 3), (2, 1, 2), 1, 1, True),
    ((1, 4, 6, 6), (6, 6), 1, 0, 1, False),  # global
]


@pytest.mark.parametrize("xs,kernel,strides,pads,dil,ceil", POOLS)
def test_float_pools(xs, kernel, strides, pads, dil, ceil, tmp_path):
    g = new_graph(x=(xs, "float32"))
    attrs = dict(kernel=kernel, ceil_mode=ceil, **window_attrs(len(xs) - 2, strides, pads, dil))
    outs = [ops.add(g, "maxpool", ["x"], "max", **attrs)]
    if dil == 1:
        outs += [ops.add(g, "avgpool", ["x"], f"avg{c}", count_include_pad=c, **attrs) for c in (False, True)]
    check(g, outs, tmp_path)


@pytest.mark.parametrize("xs,kernel,strides,pads,dil,ceil", POOLS)
def test_int_pools(xs, kernel, strides, pads, dil, ceil, tmp_path):
    g = new_graph(x=(xs, "int8"), u=(xs, "uint8"))
    attrs = dict(kernel=kernel, ceil_mode=ceil, **window_attrs(len(xs) - 2, strides, pads, dil))
    outs = [ops.add(g, "maxpool", ["x"], "max", **attrs), ops.add(g, "maxpool", ["u"], "umax", **attrs)]
    outs += [ops.add(g, "qavgpool", ["x"], f"avg{c}", count_include_pad=c, x_zp=-7, out_min=-120, out_max=100,
                     **attrs) for c in (False, True)]
    check(g, outs, tmp_path)


def test_reshape_shared_and_copied(tmp_path):
    g = new_graph(x=((2, 3, 4), "float32"))
    r = ops.add(g, "relu", ["x"], "r")
    shared = ops.add(g, "sigmoid", [ops.add(g, "reshape", [r], "flat", shape=(6, 4))], "s")
    kept = ops.add(g, "sigmoid", ["x"], "kept")
    copied = ops.add(g, "reshape", [kept], "copy", shape=(24,))
    check(g, [shared, kept, copied], tmp_path)
    c = emit_c(plan_memory(g))["model.c"]
    assert "shares its input's buffer" in c and c.count("memcpy(") >= 2


@pytest.mark.parametrize("shape,perm,dtype", [((2, 3, 4, 5), (0, 2, 3, 1), "float32"),
                                              ((2, 3, 2, 3, 2, 4), (5, 3, 1, 0, 4, 2), "int8"),
                                              ((3, 4), (0, 1), "uint8"), ((2, 3, 4), (1, 0, 2), "int32"),
                                              ((1, 5, 1, 7), (3, 2, 0, 1), "float32")])
def test_transpose(shape, perm, dtype, tmp_path):
    g = new_graph(x=(shape, dtype))
    check(g, ops.add(g, "transpose", ["x"], "t", perm=perm), tmp_path)


@pytest.mark.parametrize("dtype,axis", [("float32", 1), ("int8", -1), ("uint8", 0)])
def test_concat(dtype, axis, tmp_path):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, s in enumerate(shapes):
        s[axis] += i
    g = new_graph(**{f"x{i}": (s, dtype) for i, s in enumerate(shapes)})
    check(g, ops.add(g, "concat", g.inputs, "cat", axis=axis), tmp_path)


@pytest.mark.parametrize("mode,pads,dtype", [("constant", (0, 1, 2, 1, 0, 3), "float32"),
                                             ("reflect", (0, 5, 3, 0, 7, 2), "float32"),
                                             ("edge", (1, 2, 0, 0, 3, 1), "int8"),
                                             ("constant", (1, 0, 2, 2, 1, 0), "uint8"),
                                             ("reflect", (0, 1, 1, 0, 2, 1), "int32")])
def test_pad(mode, pads, dtype, tmp_path):
    g = new_graph(x=((2, 3, 4), dtype))
    check(g, ops.add(g, "pad", ["x"], "pad", pads=pads, mode=mode, value=3 if mode == "constant" else None),
          tmp_path)


def test_quantize(tmp_path):
    g = new_graph(x=((2, 3, 5), "float32"))
    outs = [ops.add(g, "quantize", ["x"], "q8", scale=0.02, zero_point=3, axis=None, dtype="int8"),
            ops.add(g, "quantize", ["x"], "qu8", scale=0.01, zero_point=128, axis=None, dtype="uint8"),
            ops.add(g, "quantize", ["x"], "qaxis", scale=[0.01, 0.25, 0.03], zero_point=[0, -3, 9], axis=1,
                    dtype="int8"),
            ops.add(g, "quantize", ["x"], "qlast", scale=[0.5, 0.25, 0.125, 1, 2], zero_point=1, axis=-1,
                    dtype="uint8")]
    x = rand((2, 3, 5)) * 3
    x.flat[:8] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9, 0.0], np.float32) * 0.25  # ties, saturation
    check(g, outs, tmp_path, {"x": x})


def test_dequantize_and_flip_sign(tmp_path):
    g = new_graph(a=((2, 4, 3), "int8"), b=((2, 4, 3), "uint8"), c=((2, 4, 3), "int32"))
    outs = [ops.add(g, "dequantize", ["a"], "da", scale=0.05, zero_point=-4, axis=None),
            ops.add(g, "dequantize", ["b"], "db", scale=[0.1, 0.2, 0.3, 0.4], zero_point=[128, 0, 5, 200], axis=1),
            ops.add(g, "dequantize", ["c"], "dc", scale=[1e-4, 2e-4, 3e-4], zero_point=0, axis=2),
            ops.add(g, "flip_sign", ["a"], "fa", dtype="uint8"), ops.add(g, "flip_sign", ["b"], "fb", dtype="int8")]
    check(g, outs, tmp_path)


@pytest.mark.parametrize("x_shape,const_w,requant,rounding", [((3, 40), True, True, "single"),
                                                              ((2, 3, 70), True, False, "single"),
                                                              ((5, 16), False, True, "double")])
def test_qmatmul(x_shape, const_w, requant, rounding, tmp_path):
    k, n = x_shape[-1], 67
    g = new_graph(x=(x_shape, "int8"), **({} if const_w else {"w": ((k, n), "int8")}))
    w = g.add_const("w", rand((k, n), "int8")).name if const_w else "w"
    b = g.add_const("b", RNG.integers(-9999, 9999, n).astype(np.int32)).name
    mult, shift = zip(*(qm.quantize_multiplier(r) for r in RNG.uniform(1e-4, 5e-3, n)))
    rq = dict(multiplier=list(mult), shift=list(shift)) if requant else dict(multiplier=None, shift=None)
    y = ops.add(g, "qmatmul", ["x", w, b], "mm", x_zp=-2, w_zp=RNG.integers(-3, 3, n).tolist(), out_zp=-6,
                out_min=-128, out_max=127, rounding=rounding, **rq)
    check(g, y, tmp_path)


@pytest.mark.parametrize("a,b", [((1, 4, 5, 5), (1, 4, 5, 5)), ((2, 3, 4), (3, 1)), ((1, 8), ())])
def test_qadd(a, b, tmp_path):
    g = new_graph(a=(a, "int8"), b=(b, "int8"))
    params = qm.add_params(0.05, 0.02, 0.07)
    y = ops.add(g, "qadd", ["a", "b"], "qadd", a_zp=3, b_zp=-9, out_zp=-1, out_min=-128, out_max=127, **params)
    check(g, y, tmp_path)


def test_lut_and_qsoftmax(tmp_path):
    g = new_graph(x=((2, 10, 3), "int8"))
    table = np.clip(np.round(np.tanh((np.arange(256) - 128) / 40.0) * 127), -128, 127).astype(np.int8)
    in_scale, out_scale = 0.1, 1 / 256
    exp_table = np.round(np.exp(-np.arange(256) * in_scale) * 2 ** 20).astype(np.int64)
    outs = [ops.add(g, "lut", ["x"], "lut", table=table.tolist())]
    outs += [ops.add(g, "qsoftmax", ["x"], f"sm{a}", axis=a, table=exp_table.tolist(),
                     inv_out_scale=int(round(2 ** 16 / out_scale)), out_zp=-128) for a in (1, -1)]
    check(g, outs, tmp_path)


def test_network_under_sanitizers(tmp_path):
    """A small int8 network touching most kernels, built with ASan and UBSan (any report fails the run)."""
    g = new_graph(img=((1, 3, 12, 12), "float32"), skip=((1, 8, 6, 6), "int8"))
    x = ops.add(g, "quantize", ["img"], "q", scale=0.05, zero_point=-1, axis=None, dtype="int8")
    x = ops.add(g, "pad", [x], "pad", pads=(0, 0, 1, 1, 0, 0, 1, 1), mode="reflect", value=None)
    w = g.add_const("w", rand((8, 3, 3, 3), "int8")).name
    x = ops.add(g, "qconv", [x, w], "conv", group=1, x_zp=-1, w_zp=0, multiplier=[1 << 30] * 8,
                shift=[-8, -7, -6, -5, -9, -8, -7, 1], out_zp=0, out_min=0, out_max=127, rounding="double",
                **window_attrs(2, 2, 0))
    x = ops.add(g, "qadd", [x, "skip"], "add", a_zp=0, b_zp=0, out_zp=0, out_min=-128, out_max=127,
                **qm.add_params(0.1, 0.1, 0.2))
    x = ops.add(g, "maxpool", [x], "mp", kernel=(2, 2), ceil_mode=True, **window_attrs(2, 2, (0, 0, 1, 1)))
    x = ops.add(g, "qavgpool", [x], "ap", kernel=(2, 2), ceil_mode=True, count_include_pad=True, x_zp=3,
                out_min=-128, out_max=127, **window_attrs(2, 2, 1))
    x = ops.add(g, "transpose", [x], "t", perm=(0, 2, 3, 1))
    x = ops.add(g, "reshape", [x], "flat", shape=(1, g.values[x].size))
    w2 = g.add_const("w2", rand((g.values[x].shape[1], 10), "int8")).name
    x = ops.add(g, "qmatmul", [x, w2], "fc", x_zp=0, w_zp=0, multiplier=[1 << 30], shift=[-6], out_zp=0,
                out_min=-128, out_max=127, rounding="single")
    x = ops.add(g, "flip_sign", [x], "u", dtype="uint8")
    y = ops.add(g, "dequantize", [x], "dq", scale=0.1, zero_point=128, axis=None)
    check(g, [ops.add(g, "softmax", [y], "sm", axis=1)], tmp_path, sanitize=True)


def test_emission_is_deterministic():
    def build():
        g = new_graph(x=((1, 2, 5, 5), "float32"))
        w = g.add_const("w", np.arange(2 * 2 * 9, dtype=np.float32).reshape(2, 2, 3, 3) / 7).name
        g.outputs = [ops.add(g, "conv", ["x", w], "c", group=1, **window_attrs(2, 1, 1))]
        return plan_memory(g.connect())
    assert emit_c(build()) == emit_c(build())
    assert "1.42857146f" in emit_c(build())["model.c"]


def test_header_and_size_mismatch(tmp_path):
    g = new_graph(x=((2, 3), "float32"))
    g.outputs = [ops.add(g, "relu", ["x"], "y")]
    g = plan_memory(g.connect())
    files = emit_c(g, prefix="net")
    assert "int net_run(const void *const inputs[], void *const outputs[]);" in files["model.h"]
    assert "#define NET_INPUT0_BYTES 24" in files["model.h"]
    exe = toolchain.build(files, tmp_path)
    with pytest.raises(ToolchainError, match="must be 24 bytes"):
        toolchain.run_executable(exe, [np.zeros(5, np.float32)], [((2, 3), "float32")])


def test_build_error_names_first_error(tmp_path):
    files = {"model.c": "int main(void) { return undeclared; }\n"}
    with pytest.raises(ToolchainError, match="undeclared"):
        toolchain.build(files, tmp_path)


def test_unsupported_dtype_is_reported():
    g = new_graph(x=((4,), "int32"))
    g.outputs = [ops.add(g, "sigmoid", ["x"], "s")]
    g = plan_memory(g.connect())
    with pytest.raises(UnsupportedError, match="sigmoid input 0 is int32"):
        emit_c(g)


def test_missing_compiler_is_a_toolchain_error(tmp_path):
    with pytest.raises(ToolchainError, match="no-such-cc not found"):
        toolchain.build({"model.c": "int main(void) { return 0; }\n"}, tmp_path, cc="no-such-cc")


def test_project_dict_builds_alone_with_make(tmp_path):
    g = new_graph(x=((3, 4), "int8"))
    g.outputs = [ops.add(g, "transpose", ["x"], "t", perm=(1, 0))]
    g = plan_memory(g.connect())
    for name, text in emit_c(g).items():
        (tmp_path / name).write_text(text)
    subprocess.run(["make", "-s"], cwd=tmp_path, check=True, capture_output=True)
    x = rand((3, 4), "int8")
    y, = toolchain.run_executable(tmp_path / "model", [x], [((4, 3), "int8")])
    np.testing.assert_array_equal(y, x.T)


def test_code_size_counts_weights_and_arena():
    g = new_graph(x=((1, 64), "int8"))
    w = g.add_const("w", rand((64, 32), "int8")).name
    g.outputs = [ops.add(g, "qmatmul", ["x", w], "fc", x_zp=0, w_zp=0, multiplier=None, shift=None, out_zp=0,
                         out_min=-128, out_max=127, rounding="single")]
    g = plan_memory(g.connect())
    size = toolchain.code_size(emit_c(g))
    assert size["text"] > 64 * 32 and size["bss"] >= g.arena_bytes


def test_awkward_names_compile(tmp_path):
    g = new_graph(**{"in/*put?? \"é\\": ((2,), "float32")})
    g.name = "net */ ??/"
    g.outputs = [ops.add(g, "relu", g.inputs, "3rd */ out/* ??= é")]
    check(g, g.outputs, tmp_path)
    assert '"in/*put\\077\\077 \\042\\303\\251\\134"' in emit_c(plan_memory(g))["model.c"]
