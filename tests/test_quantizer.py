"""tinyc.quantizer: post-training int8 QDQ that tracks the float model, in the format canonicalize reads."""
import numpy as np
import onnx
from conftest import onnxruntime_batch, snr_db
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyc.errors import BadModelError, InputError, TinycError, UnsupportedError
from tinyc.quantizer import quantize, quantize_file
from tinyc.zoo import build, sample

SNR_DB = {"kws": 25, "vww": 40, "ic": 30, "ad": 20}  # measured >= 29, 49, 37, 25 dB (minmax, 16 samples)


def inits(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def producers(model):
    return {o: n for n in model.graph.node for o in n.output}


def qdq_nodes(model):
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


@pytest.mark.parametrize("power_of_two", [False, True], ids=["float-scales", "pow2"])
@pytest.mark.parametrize("name", ["kws", "vww", "ic", "ad"])
def test_quantized_zoo_model_tracks_float(name, power_of_two, capsys):
    f = build(name, "float")
    q = quantize(f, sample(name, 16, seed=1), power_of_two=power_of_two)
    onnx.checker.check_model(q, full_check=True)
    assert [t.type.tensor_type.elem_type for t in [*q.graph.input, *q.graph.output]] == [TensorProto.FLOAT] * 2
    xs = sample(name, 8, seed=2)
    snr = snr_db(onnxruntime_batch(f, xs), onnxruntime_batch(q, xs))
    with capsys.disabled():
        print(f"\n  quantize {name} {'pow2' if power_of_two else 'float scales'}: {snr:.1f} dB vs float")
    assert snr >= SNR_DB[name]
    if power_of_two:
        c, prod = inits(q), producers(q)
        softmax_q = {n.output[0] for n in q.graph.node
                     if n.op_type == "QuantizeLinear" and n.input[0] in prod and prod[n.input[0]].op_type == "Softmax"}
        for n in qdq_nodes(q):
            assert np.all(np.frexp(c[n.input[1]].astype(np.float64))[0] == 0.5), n.name
            assert not c[n.input[2]].any() or softmax_q & {n.input[0], n.output[0]}, n.name


def test_weights_biases_and_activations_format():
    q = quantize(build("kws", "float"), sample("kws", 4, seed=1))
    c, prod = inits(q), producers(q)
    zps = [int(c[n.input[2]]) for n in qdq_nodes(q) if c[n.input[2]].ndim == 0]
    assert -128 in zps  # asymmetric activations: Relu outputs use the whole int8 range
    for n in q.graph.node:
        if n.op_type not in ("Conv", "MatMul"):
            continue
        x_dq, w_dq = prod[n.input[0]], prod[n.input[1]]
        w, ws = c[w_dq.input[0]], c[w_dq.input[1]]
        axis = helper.get_attribute_value(w_dq.attribute[0])
        assert w.dtype == np.int8 and not c[w_dq.input[2]].any()
        assert (axis, ws.shape) == ((0, (w.shape[0],)) if n.op_type == "Conv" else (1, (w.shape[1],)))
        bias = n.input[2] if n.op_type == "Conv" else \
            next(i for u in q.graph.node if n.output[0] in u.input for i in u.input if i != n.output[0])
        b_dq = prod[bias]
        assert c[b_dq.input[0]].dtype == np.int32 and not c[b_dq.input[2]].any()
        assert np.array_equal(c[b_dq.input[1]], c[x_dq.input[1]] * ws)
    for n in q.graph.node:  # every activation QuantizeLinear is read back by a DequantizeLinear
        if n.op_type == "QuantizeLinear":
            assert any(u.op_type in ("DequantizeLinear", "Reshape") for u in q.graph.node if n.output[0] in u.input)


def test_int8_io_and_determinism():
    cal = sample("ic", 4, seed=1)
    a = quantize(build("ic", "float"), cal, power_of_two=True, io="int8")
    assert a.SerializeToString() == quantize(build("ic", "float"), cal, power_of_two=True, io="int8").SerializeToString()
    assert [t.type.tensor_type.elem_type for t in [*a.graph.input, *a.graph.output]] == [TensorProto.INT8] * 2
    out = onnxruntime_batch(a, np.zeros((1, 1, 3, 32, 32), np.int8)[0])
    assert out.dtype == np.int8 and out.shape == (1, 10)


def test_ternary_named_layers():
    q = quantize(build("ic", "float"), sample("ic", 4, seed=1), power_of_two=True, ternary=["conv2", "conv5"])
    c, prod = inits(q), producers(q)
    for n in q.graph.node:
        if n.op_type == "Conv":
            w = c[prod[n.input[1]].input[0]]
            assert (set(np.unique(w)) <= {-1, 0, 1}) == (n.name in ("conv2", "conv5")), n.name
    clips = [n for n in q.graph.node if n.op_type == "Clip"]
    assert sorted(n.input[0] for n in clips) == ["add1_relu", "conv1_relu"]  # the inputs of conv2, conv5
    with pytest.raises(TinycError, match="no Conv/MatMul/Gemm node named nope"):
        quantize(build("ic", "float"), sample("ic", 2), ternary=["conv2", "nope"])


def small_model(op="Relu"):
    """Conv without bias, MaxPool, GlobalAveragePool, a Constant-shaped Reshape and two Gemms."""
    rng = np.random.default_rng(0)
    const = lambda name, a: numpy_helper.from_array(np.asarray(a, np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["r"], name="act"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Constant", [], ["shape"], name="shape", value=numpy_helper.from_array(np.array([1, 8]))),
        helper.make_node("Reshape", ["g", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "g1w", "g1b"], ["h"], name="gemm1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h"], ["hr"], name="gemm1_relu"),
        helper.make_node("Gemm", ["hr", "g2w"], ["y"], name="gemm2"),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [const("w", rng.normal(0, 0.3, (8, 3, 3, 3))), const("g1w", rng.normal(0, 0.5, (16, 8))),
         const("g1b", rng.normal(0, 0.1, 16)), const("g2w", rng.normal(0, 0.3, (16, 4)))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("power_of_two", [False, True])
def test_gemm_pools_constants_and_calibration_layouts(power_of_two):
    f, cal = small_model(), np.random.default_rng(1).normal(size=(16, 3, 8, 8)).astype(np.float32)
    q = quantize(f, cal, power_of_two=power_of_two, method="percentile", percentile=99.9)
    assert q.SerializeToString() == quantize(f.SerializeToString(), cal[:, None], power_of_two=power_of_two,
                                             method="percentile", percentile=99.9).SerializeToString()
    assert q.SerializeToString() == quantize(f, {"x": cal}, power_of_two=power_of_two, method="percentile",
                                             percentile=99.9).SerializeToString()
    ops = [n.op_type for n in q.graph.node]
    assert "Gemm" not in ops and ops.count("MatMul") == 2 and ops.count("Add") == 1  # gemm2 has no bias
    xs = np.random.default_rng(2).normal(size=(8, 3, 8, 8)).astype(np.float32)
    assert snr_db(onnxruntime_batch(f, xs), onnxruntime_batch(q, xs)) >= 24  # measured 28.5 (float scales) and 34.4 dB (pow2)
    with pytest.raises(TinycError, match=r"expected \(N, 3, 8, 8\) or \(N, 1, 3, 8, 8\)"):
        quantize(f, cal[:, :2])


def test_quantize_file(tmp_path):
    build_path, calib_path, out_path = tmp_path / "ad.onnx", tmp_path / "calib.npy", tmp_path / "ad_q.onnx"
    onnx.save(build("ad", "float"), build_path)
    np.save(calib_path, sample("ad", 8, seed=1))
    quantize_file(build_path, calib_path, out_path, power_of_two=True, percentile=99.9)
    xs = sample("ad", 4, seed=2)
    assert snr_db(onnxruntime_batch(onnx.load(build_path), xs), onnxruntime_batch(onnx.load(out_path), xs)) >= SNR_DB["ad"]


def test_errors_are_clear():
    cal = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(BadModelError, match="not an ONNX model"):
        quantize(b"\x00garbage\xff" * 10, cal)
    with pytest.raises(BadModelError, match="missing.onnx"):
        quantize("missing.onnx", cal)
    with pytest.raises(UnsupportedError, match="act: op Round is not supported"):
        quantize(small_model("Round"), cal)
    with pytest.raises(UnsupportedError, match="already quantized"):
        quantize(build("ad", "int8"), sample("ad", 1))
    m = small_model()
    m.graph.node[0].input[1] = "w_copy"
    m.graph.node.insert(0, helper.make_node("Identity", ["w"], ["w_copy"], name="copy"))
    with pytest.raises(UnsupportedError, match="conv: input 1 of Conv must be a constant"):
        quantize(m, cal)
    with pytest.raises(InputError, match="method"):
        quantize(small_model(), cal, method="entropy")


def _dense(bias):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Gemm", ["r", "w", "b"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(np.ones((4, 2), np.float32), "w"), numpy_helper.from_array(np.float32(bias), "b")]
    g = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def bias_codes(q):
    return inits(q)["fc.bias_q"]


def test_bias_keeps_its_sign():
    """A bias beyond int32 saturates (float32 rounded the bound to 2^31 and the cast wrapped it to INT32.min),
    and a layer fed a tensor that was always 0 in calibration keeps an ordinary bias (its scale was 2^-106)."""
    cal = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    assert list(bias_codes(quantize(_dense([1e12, -1e12]), cal, power_of_two=True))) == [2 ** 31 - 1, -2 ** 31]
    q = quantize(_dense([0.5, 1.0]), -np.abs(cal), power_of_two=True, per_channel=False)
    assert list(bias_codes(q)) == [32, 64]
