"""Models quantized the way onnxruntime.quantization quantizes them, compiled by tinyc, against onnxruntime.

Per op: every quantized op of onnxruntime's QOperator format (its com.microsoft contrib ops beside ONNX's
QLinearConv and QLinearMatMul), written directly with chosen scales, for uint8 and int8 tensors. Where
onnxruntime's arithmetic is a table (QLinearSigmoid, QLinearLeakyRelu, QLinearConcat's rescaling) tinyc
builds the same table and must agree exactly; elsewhere onnxruntime requantizes in float and tinyc in
TFLite's fixed point, so they may differ by 1 LSB, never more.

Networks: the zoo's float MLPerf Tiny networks quantized by onnxruntime.quantization.quantize_static in both
formats, per tensor and per channel, built at test time.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import tinyc
from onnx_builders import const, model, tensor

MS = "com.microsoft"
DTYPES = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


def _zp(dtype: str, centre: int) -> np.ndarray:
    """A zero point `centre` codes above the middle of the dtype's range."""
    return np.array(centre + (128 if dtype == "uint8" else 0), dtype)


def _qparams(prefix: str, scale: float, dtype: str, centre: int):
    return [const(prefix + "_scale", np.float32(scale)), const(prefix + "_zp", _zp(dtype, centre))]


def float_layers(cm) -> list[str]:
    """The layers that compute in float (a dequantize of the graph's output aside)."""
    return [f"{n.name}: {n.op}" for n in cm.graph.nodes() if cm.graph.values[n.outputs[0]].dtype == "float32"
            and not (n.op == "dequantize" and n.outputs[0] in cm.graph.outputs)]


def _session(m: onnx.ModelProto):
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def _lsb(ref: np.ndarray, got: np.ndarray) -> int:
    assert ref.dtype == got.dtype and ref.shape == got.shape
    return int(np.abs(ref.astype(np.int64) - got.astype(np.int64)).max())


# ---------------------------------------------------------------- one quantized op, against onnxruntime
def _unary(op_type: str, shape, x_scale: float, y_scale: float, y_centre: int, out_shape, **attrs):
    def build(dtype):
        t = DTYPES[dtype]
        node = helper.make_node(op_type, ["x", "x_scale", "x_zp", "y_scale", "y_zp"], ["y"], domain=MS, **attrs)
        inits = _qparams("x", x_scale, dtype, 3) + _qparams("y", y_scale, dtype, y_centre)
        return model([node], [tensor("x", shape, t)], [tensor("y", out_shape, t)], inits, domains=[MS])
    return build


def _binary(op_type: str, b_shape, c_scale: float):
    def build(dtype):
        t = DTYPES[dtype]
        node = helper.make_node(op_type, ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "c_scale", "c_zp"], ["c"],
                                domain=MS)
        inits = _qparams("a", 0.03, dtype, -5) + _qparams("b", 0.07, dtype, 9) + _qparams("c", c_scale, dtype, 2)
        return model([node], [tensor("a", [1, 8, 4, 4], t), tensor("b", b_shape, t)], [tensor("c", [1, 8, 4, 4], t)],
                     inits, domains=[MS])
    return build


def _concat(dtype):
    """Three inputs, two quantized unlike the output."""
    t = DTYPES[dtype]
    ins, inits = ["y_scale", "y_zp"], _qparams("y", 0.05, dtype, -3)
    for i, (scale, centre) in enumerate([(0.05, -3), (0.02, 7), (0.11, -20)]):
        ins += [f"x{i}", f"x{i}_scale", f"x{i}_zp"]
        inits += _qparams(f"x{i}", scale, dtype, centre)
    node = helper.make_node("QLinearConcat", ins, ["y"], domain=MS, axis=1)
    return model([node], [tensor(f"x{i}", [1, 2 + i, 3, 3], t) for i in range(3)], [tensor("y", [1, 9, 3, 3], t)],
                 inits, domains=[MS])


def _gemm(per_channel: bool, float_out: bool = False):
    """QGemm as onnxruntime writes a Dense layer: int8 weights [N, K] with transB, an int32 bias in the
    accumulator's scale; without y_scale the output is float."""
    def build(dtype):
        rng = np.random.default_rng(3)
        t = DTYPES[dtype]
        n, k = 6, 16
        w_scale = (rng.uniform(0.005, 0.02, n) if per_channel else np.array(0.01)).astype(np.float32)
        inits = _qparams("a", 0.04, dtype, 5) + [
            const("w", rng.integers(-127, 128, (n, k)).astype(np.int8)), const("w_scale", w_scale),
            const("w_zp", np.zeros(w_scale.shape, np.int8)),
            const("bias", rng.integers(-3000, 3000, n).astype(np.int32))]
        ins = ["a", "a_scale", "a_zp", "w", "w_scale", "w_zp", "bias"]
        if not float_out:
            inits += _qparams("y", 0.2, dtype, -2)
            ins += ["y_scale", "y_zp"]
        node = helper.make_node("QGemm", ins, ["y"], domain=MS, transB=1)
        y = tensor("y", [1, n], TensorProto.FLOAT if float_out else t)
        return model([node], [tensor("a", [1, k], t)], [y], inits, domains=[MS])
    return build


POOL = [1, 4, 10, 10]
# case -> (model builder for a dtype, the most LSB tinyc may differ from onnxruntime). 0 where onnxruntime
# computes a table (its lookup ops, QLinearConcat's rescaling) or data movement; 1 where it requantizes in float.
CASES = {
    "add": (_binary("QLinearAdd", [1, 8, 4, 4], 0.09), 1),
    "add-broadcast": (_binary("QLinearAdd", [8, 1, 1], 0.09), 1),
    "mul": (_binary("QLinearMul", [1, 8, 4, 4], 0.05), 1),
    "mul-broadcast": (_binary("QLinearMul", [8, 1, 1], 0.05), 1),
    "concat": (_concat, 0),
    "sigmoid": (_unary("QLinearSigmoid", [1, 4, 8, 8], 0.05, 1 / 256, -128, [1, 4, 8, 8]), 0),
    "leaky-relu": (_unary("QLinearLeakyRelu", [1, 4, 8, 8], 0.05, 0.04, -100, [1, 4, 8, 8], alpha=0.1), 0),
    "avgpool": (_unary("QLinearAveragePool", POOL, 0.05, 0.03, -4, [1, 4, 4, 4], kernel_shape=[3, 3],
                       strides=[2, 2]), 1),
    "avgpool-pads-counted": (_unary("QLinearAveragePool", POOL, 0.05, 0.03, -4, [1, 4, 5, 5], kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), 1),
    # windows counting 4, 6 or 9 positions, into a finer output scale (a pool, then a table: 3 LSB off)
    "avgpool-pads": (_unary("QLinearAveragePool", POOL, 0.05, 0.012, -4, [1, 4, 5, 5], kernel_shape=[3, 3],
                            strides=[2, 2], pads=[1, 1, 1, 1]), 1),
    "avgpool-ceil": (_unary("QLinearAveragePool", POOL, 0.05, 0.03, -4, [1, 4, 5, 5], kernel_shape=[3, 3],
                            strides=[2, 2], ceil_mode=1), 1),
    "avgpool-same-quant": (_unary("QLinearAveragePool", POOL, 0.05, 0.05, 3, [1, 4, 5, 5], kernel_shape=[2, 2],
                                  strides=[2, 2]), 1),
    "global-avgpool": (_unary("QLinearGlobalAveragePool", [1, 8, 5, 6], 0.05, 0.01, 1, [1, 8, 1, 1]), 1),
    "global-avgpool-nhwc": (_unary("QLinearGlobalAveragePool", [1, 5, 6, 8], 0.05, 0.01, 1, [1, 1, 1, 8],
                                   channels_last=1), 1),
    "softmax": (_unary("QLinearSoftmax", [1, 3, 10], 0.1, 1 / 256, -128, [1, 3, 10], axis=-1, opset=13), 1),
    "gemm": (_gemm(per_channel=False), 1),
    "gemm-per-channel": (_gemm(per_channel=True), 1),
}
SEEDS = range(4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_op_against_onnxruntime(case, dtype):
    """Every layer integer, and each output within the case's LSB of onnxruntime's on full-range inputs
    (the interpreter, the C's spec: test_ops_in_c checks the C against it)."""
    build, max_lsb = CASES[case]
    m = build(dtype)
    cm = tinyc.compile(m, target="cpu")
    assert not float_layers(cm), f"left in float: {float_layers(cm)}"
    session, worst = _session(m), 0
    for seed in SEEDS:
        x = cm.random_inputs(seed)
        spec = cm.interpret(x)
        for ref, o in zip(session.run(None, x), m.graph.output):
            worst = max(worst, _lsb(ref, spec[o.name]))
    print(f"{case} {dtype}: {worst} LSB from onnxruntime")
    assert worst <= max_lsb


def _merged(models: dict) -> onnx.ModelProto:
    """Several models side by side in one graph, each one's names prefixed by its key."""
    parts = [onnx.compose.add_prefix(m, f"{key}_") for key, m in models.items()]
    graph = helper.make_graph([n for p in parts for n in p.graph.node], "ops",
                              [i for p in parts for i in p.graph.input], [o for p in parts for o in p.graph.output],
                              [t for p in parts for t in p.graph.initializer])
    return helper.make_model(graph, opset_imports=parts[0].opset_import, ir_version=parts[0].ir_version)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ops_in_c(dtype):
    """Every case in one C build (under ASan and UBSan): the C equals the interpreter bit for bit, and so
    onnxruntime within the case's LSB."""
    m = _merged({case.replace("-", "_"): build(dtype) for case, (build, _) in CASES.items()})
    cm = tinyc.compile(m, target="cpu")
    session = _session(m)
    limits = {o.name: CASES[case][1] for o, case in zip(m.graph.output, CASES)}
    for seed in SEEDS[:2]:
        x = cm.random_inputs(seed)
        got, spec = cm.run(x, sanitize=True), cm.interpret(x)
        for ref, o in zip(session.run(None, x), m.graph.output):
            np.testing.assert_array_equal(got[o.name], spec[o.name])
            assert _lsb(ref, got[o.name]) <= limits[o.name], o.name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_channel", [False, True])
def test_gemm_with_float_output(dtype, per_channel):
    """QGemm without y_scale: tinyc's int32 accumulator (exact) dequantized; onnxruntime's in float."""
    m = _gemm(per_channel=per_channel, float_out=True)(dtype)
    cm = tinyc.compile(m, target="cpu")
    assert [n.op for n in cm.graph.nodes()][-2:] == ["qmatmul", "dequantize"]
    session = _session(m)
    for seed in SEEDS:
        x = cm.random_inputs(seed)
        np.testing.assert_allclose(cm.run(x)["y"], session.run(None, x)[0], rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- networks quantized by onnxruntime
CALIBRATION_SEEDS = range(4)
TEST_SEEDS = range(100, 110)
FORMS = {"qdq": ("QDQ", False), "qdq-per-channel": ("QDQ", True), "qoperator": ("QOperator", False),
         "qoperator-per-channel": ("QOperator", True)}
# beside quantize_static's defaults (int8 activations and weights, asymmetric activations, symmetric
# weights): its other choices, each on one form of the depthwise (kws) or the residual (ic) network
OPTIONS = {
    "u8s8": ("kws", "qoperator", dict(activation_type="QUInt8")),
    "u8s8-reduce-range": ("ic", "qdq", dict(activation_type="QUInt8", reduce_range=True)),
    "u8u8": ("ic", "qoperator-per-channel", dict(activation_type="QUInt8", weight_type="QUInt8")),
    "u8u8-symmetric": ("kws", "qdq-per-channel", dict(activation_type="QUInt8", weight_type="QUInt8",
                                                      extra_options={"ActivationSymmetric": True,
                                                                     "WeightSymmetric": True})),
    "s8s8-symmetric-activations": ("ic", "qoperator", dict(extra_options={"ActivationSymmetric": True})),
}
DIANA_L2 = 512000
# onnxruntime requantizes every layer in float, tinyc in fixed point: each layer within 1 LSB (the per-op
# tests above), and the differences carried through a whole network stay within a few output steps.
MAX_NETWORK_LSB = 3


def ort_quantize(float_model: onnx.ModelProto, calibration: list[dict], form: str, path, **options):
    """float_model quantized by onnxruntime.quantization.quantize_static on the calibration feeds, in
    one of FORMS, written to `path`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    float_path = path.with_name(path.stem + "_float.onnx")
    onnx.save(float_model, float_path)
    quant_format, per_channel = FORMS[form]
    for key in ("activation_type", "weight_type"):
        if key in options:
            options[key] = getattr(QuantType, options[key])
    quantize_static(str(float_path), str(path), Feeds(), quant_format=getattr(QuantFormat, quant_format),
                    per_channel=per_channel, **options)
    return path


def _output_step(cm) -> float:
    """The quantization step of the model's (dequantized) output."""
    return float(np.ravel(cm.graph.node(cm.graph.producers()[cm.graph.outputs[0]]).attrs["scale"])[0])


NETWORKS = [(net, form, {}) for net in ("kws", "vww", "ic", "ad") for form in FORMS] + \
    [(net, form, dict(options, variant=variant)) for variant, (net, form, options) in OPTIONS.items()]


@pytest.fixture(scope="module", params=NETWORKS,
                ids=lambda p: "-".join([p[0], p[1]] + ([p[2]["variant"]] if p[2] else [])))
def network(request, tmp_path_factory):
    net, form, options = request.param
    options = dict(options)
    variant = options.pop("variant", "defaults")
    calibration = [{"input": tinyc.zoo.sample(net, 1, seed)} for seed in CALIBRATION_SEEDS]
    path = ort_quantize(tinyc.zoo.build(net, "float"), calibration, form,
                        tmp_path_factory.mktemp("ort") / f"{net}_{form}_{variant}.onnx", **options)
    return f"{net} {form} {variant}", net, path, tinyc.compile(path, target="cpu")


def test_network_is_integer_and_fits_diana(network):
    label, _, _, cm = network
    weights = sum(v.nbytes for v in cm.graph.values.values() if v.is_const)
    print(f"{label}: {weights} B of weights + {cm.graph.arena_bytes} B of activations")
    assert weights + cm.graph.arena_bytes <= DIANA_L2
    assert not float_layers(cm)[1:], f"left in float: {float_layers(cm)}"  # the input's quantize aside


def test_network_agrees_with_onnxruntime(network):
    """Every output within MAX_NETWORK_LSB output steps of onnxruntime's; so the classifiers' argmax agrees
    wherever onnxruntime's top two are more than 2 * MAX_NETWORK_LSB apart (a difference that small cannot
    flip it), and on all inputs but at most one elsewhere."""
    label, net, path, cm = network
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    step = _output_step(cm)
    worst, agree, decisive, decisive_agree = 0, 0, 0, 0
    for seed in TEST_SEEDS:
        x = {"input": tinyc.zoo.sample(net, 1, seed)}
        ref = session.run(None, x)[0].ravel()
        got = cm.run(x)[cm.graph.outputs[0]].ravel()
        worst = max(worst, int(np.abs(np.rint((ref - got) / step)).max()))
        same = int(ref.argmax() == got.argmax())
        top2 = np.sort(ref)[-2:]
        agree += same
        if (top2[1] - top2[0]) / step > 2 * MAX_NETWORK_LSB:
            decisive, decisive_agree = decisive + 1, decisive_agree + same
    print(f"{label}: max {worst} LSB from onnxruntime; argmax {agree}/{len(TEST_SEEDS)} "
          f"({decisive_agree}/{decisive} where its top two differ by more than {2 * MAX_NETWORK_LSB} LSB)")
    assert worst <= MAX_NETWORK_LSB
    if net != "ad":  # the autoencoder's output is a reconstruction, not classes
        assert decisive_agree == decisive
        assert agree >= len(TEST_SEEDS) - 1


def _every_op_float_model() -> onnx.ModelProto:
    """A float network of the ops onnxruntime quantizes beyond the MLPerf Tiny ones: LeakyRelu, MaxPool,
    Pad, Sigmoid, Mul, Split, Concat, Resize, GlobalAveragePool, Flatten and a Gemm with transB."""
    rng = np.random.default_rng(7)
    weights = [const("w1", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)),
               const("b1", rng.standard_normal(8).astype(np.float32)),
               const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), const("split", np.array([4, 4], np.int64)),
               const("scales", np.array([1, 1, 2, 2], np.float32)),
               const("w2", rng.standard_normal((5, 8)).astype(np.float32)),
               const("b2", rng.standard_normal(5).astype(np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.1),
             helper.make_node("MaxPool", ["l"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Pad", ["p", "pads"], ["pd"]),
             helper.make_node("Sigmoid", ["pd"], ["s"]),
             helper.make_node("Mul", ["pd", "s"], ["m"]),
             helper.make_node("Split", ["m", "split"], ["sa", "sb"], axis=1),
             helper.make_node("Add", ["sa", "sb"], ["a"]),
             helper.make_node("Concat", ["a", "sa"], ["cc"], axis=1),
             helper.make_node("Resize", ["cc", "", "scales"], ["r"], mode="nearest"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1)]
    return model(nodes, [tensor("x", [1, 3, 16, 16])], [tensor("y", [1, 5])], weights)


@pytest.mark.parametrize("form, options", [
    ("qdq", {}), ("qdq-per-channel", dict(activation_type="QUInt8")),
    ("qoperator", dict(activation_type="QUInt8")), ("qoperator-per-channel", {})])
def test_every_quantized_op_network(form, options, tmp_path):
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(8)]
    path = ort_quantize(_every_op_float_model(), feeds[:4], form, tmp_path / "every_op.onnx", **options)
    cm = tinyc.compile(path, target="cpu")
    assert not float_layers(cm)[1:], f"left in float: {float_layers(cm)}"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = max(int(np.abs(np.rint((session.run(None, x)[0] - cm.run(x)["y"]) / _output_step(cm))).max())
                for x in feeds[4:])
    print(f"{form} {options}: max {worst} LSB from onnxruntime")
    assert worst <= MAX_NETWORK_LSB


def test_network_layers_within_one_lsb(network):
    """Each integer layer alone (cm.validate: onnxruntime's layer fed tinyc's inputs to it) within 1 LSB
    of onnxruntime's: every layer of the QDQ forms; of the QOperator forms the ONNX-domain ones only (ONNX's
    shape inference gives the com.microsoft ops' outputs no type to fetch them by; test_op_against_onnxruntime
    covers those). With uint8 activations too: tinyc holds them as int8 codes 128 lower, fed back flipped."""
    label, net, _, cm = network
    result = cm.validate([{"input": tinyc.zoo.sample(net, 1, seed)} for seed in TEST_SEEDS[:2]])
    alone = {layer["tensor"]: layer["layer_max_diff"] for layer in result["layers"] if layer["unit"] == "LSB"}
    print(f"{label}: {len(alone)} integer layers, at most {max(alone.values())} LSB alone: {list(alone.values())}")
    assert len(alone) >= 2 and max(alone.values()) <= 1, alone


def test_uint8_layers_are_measured_alone(tmp_path):
    """A layer after a broken one (its weights changed after compiling) is still within 1 LSB alone on a
    uint8-activation model: onnxruntime's layer gets tinyc's (broken) uint8 input, not its own."""
    calibration = [{"input": tinyc.zoo.sample("kws", 1, seed)} for seed in CALIBRATION_SEEDS]
    path = ort_quantize(tinyc.zoo.build("kws", "float"), calibration, "qdq", tmp_path / "kws_u8.onnx",
                        activation_type="QUInt8")
    cm = tinyc.compile(path, target="cpu")
    convs = [n for n in cm.graph.nodes() if n.op == "qconv"]
    w = cm.graph.values[convs[2].inputs[1]]
    w.data = np.ascontiguousarray(np.clip(w.data.astype(np.int16) + 9, -128, 127).astype(np.int8))
    broken = tinyc.CompiledModel(cm.graph, cm.target, cm.config, "m", model=cm.model)
    layers = {layer["tensor"]: layer for layer in broken.validate({"input": tinyc.zoo.sample("kws", 1, 100)})["layers"]}
    after = layers[convs[3].outputs[0]]
    inferred = onnx.shape_inference.infer_shapes(onnx.load(path))
    typed = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert typed[convs[3].inputs[0]] == TensorProto.UINT8 and cm.graph.values[convs[3].inputs[0]].dtype == "int8"
    assert layers[convs[2].outputs[0]]["layer_max_diff"] > 1
    assert after["max_diff"] > 1 and after["layer_max_diff"] <= 1, after
