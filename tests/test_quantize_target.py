"""tinyc quantize for a target's cores: what each core accepts, read off the target's patterns; the range
analysis that proves a ternary layer's 7-bit input through pools; the ops the quantizer folds or tabulates."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from onnx_builders import const, model, tensor
from tinyc.ir.interpret import interpret
from tinyc.ir.ranges import value_range
from tinyc.quantizer import quantize
from tinyc.zoo import build, sample


def pooled_cnn(seed=0):
    """conv -> relu -> MaxPool -> conv -> relu -> AveragePool -> conv -> conv: pools before ternary layers."""
    rng = np.random.default_rng(seed)
    conv = lambda name, x, w, y: helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[3, 3],  # noqa: E731
                                                  pads=[1, 1, 1, 1])
    nodes = [conv("conv1", "x", "w1", "c1"), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             conv("conv2", "p", "w2", "c2"), helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("AveragePool", ["r2"], ["p2"], name="apool", kernel_shape=[2, 2], strides=[2, 2]),
             conv("conv3", "p2", "w3", "c3"),
             helper.make_node("Conv", ["c3", "w4"], ["y"], name="conv4", kernel_shape=[1, 1])]
    weights = [const(n, rng.normal(0, 0.3, s)) for n, s in
               (("w1", (8, 3, 3, 3)), ("w2", (8, 8, 3, 3)), ("w3", (8, 8, 3, 3)), ("w4", (4, 8, 1, 1)))]
    return model(nodes, [tensor("x", [1, 3, 16, 16])], [tensor("y", [1, 4, 4, 4])], weights)


def test_ternary_input_range_carried_through_pools():
    """The 7-bit clamp before a pool's quantization becomes a table; its range and the pools' carry the
    bounds, so both ternary layers behind pools reach the analog core. Soundness against the interpreter:
    every value seen on 64 random inputs lies within the proven range."""
    rng = np.random.default_rng(1)
    q = quantize(pooled_cnn(), rng.normal(size=(8, 3, 16, 16)).astype(np.float32), per_channel=False,
                 power_of_two=True, ternary="auto")
    cm = tinyc.compile(q, target="diana", config="analog")
    cores = {layer["name"]: layer["core"] for layer in cm.report["layers"]}
    assert cores["conv2_q"] == cores["conv3_q"] == "analog", cm.report["layers"]
    g = cm.graph
    proven = {v: value_range(g, v)[:2] for n in g.nodes() for v in n.outputs if g.values[v].dtype == "int8"}
    assert proven["p_q"][0] >= -64 and proven["p_q"][1] <= 63 and proven["p2_q"][1] <= 63
    probe = g.copy()
    probe.outputs = list(proven)
    for _ in range(16):
        x = rng.normal(size=(1, 3, 16, 16)).astype(np.float32) * 4
        for v, a in interpret(probe, {"x": x}).items():
            assert proven[v][0] <= a.min() and a.max() <= proven[v][1], v


ZOO = ("kws", "vww", "ic", "ad")


def _cli(argv, capsys):
    from tinyc.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tinyc: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    """Each zoo float network and its calibration data, saved as a user would have them."""
    d = tmp_path_factory.mktemp("zoo")
    for name in ZOO:
        onnx.save(build(name, "float"), d / f"{name}.onnx")
        np.save(d / f"{name}_calib.npy", sample(name, 8, seed=1))
    return d


@pytest.mark.parametrize("name", ZOO)
def test_quantize_for_diana_puts_every_layer_the_cores_take_on_them(name, zoo_files, tmp_path, capsys):
    """tinyc quantize --target diana, then compile (mixed): every conv/dense layer runs on an accelerator
    but those the quantizer names as host only, each with the cores' reasons."""
    out = tmp_path / "q.onnx"
    code, text, err = _cli(["quantize", zoo_files / f"{name}.onnx", "--calib", zoo_files / f"{name}_calib.npy",
                            "--target", "diana", "-o", out], capsys)
    assert code == 0, err
    host_only = {line.split()[0] for line in text.splitlines()[1:] if "host only" in line}
    cm = tinyc.compile(out, target="diana", config="mixed", tiler="dory")  # dory: the fast tiler, same cores
    mac_layers = [x for x in cm.report["layers"] if x["op"] in ("qconv", "aconv", "qmatmul", "amatmul")]
    on_host = {x["name"][:-len("_q")] for x in mac_layers if x["core"] == "host"}
    print(f"\n  {name}: {len(mac_layers) - len(on_host)} of {len(mac_layers)} conv/dense layers on accelerators, "
          f"host only: {sorted(on_host)}")
    assert on_host == host_only
    assert not on_host  # kws's 10x4 first conv too: per tensor, the lowerings bring it to the digital core


def test_quantize_flags(zoo_files, tmp_path, capsys):
    """--per-channel, --per-tensor, --ternary (names, auto, none), --io int8, --target/--config as read off
    the written model; without --target the defaults are per-channel, float scales, no ternary."""
    model, calib = zoo_files / "ic.onnx", zoo_files / "ic_calib.npy"

    def quantized(*flags):
        out = tmp_path / f"q{len(list(tmp_path.iterdir()))}.onnx"
        code, text, err = _cli(["quantize", model, "--calib", calib, "-o", out, *flags], capsys)
        assert code == 0, err
        q = onnx.load(out)
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        return q, inits, text

    def weight_scales(inits):
        return {k[:-len(".weight_scale")]: v for k, v in inits.items() if k.endswith(".weight_scale")}

    def ternary_layers(inits):
        return {k[:-len(".weight_q")] for k, v in inits.items()
                if k.endswith(".weight_q") and set(np.unique(v)) <= {-1, 0, 1}}

    _, inits, _ = quantized()
    assert all(v.size > 1 for v in weight_scales(inits).values()) and not ternary_layers(inits)
    assert any(np.frexp(v)[0].min() != 0.5 for v in weight_scales(inits).values())  # float scales
    _, inits, _ = quantized("--per-tensor", "--pow2")
    assert all(v.size == 1 and np.frexp(v)[0] == 0.5 for v in weight_scales(inits).values())
    _, inits, _ = quantized("--ternary", "conv2,conv5", "--pow2")
    assert ternary_layers(inits) == {"conv2", "conv5"}
    _, inits, _ = quantized("--ternary", "auto")
    assert ternary_layers(inits) == {f"conv{i}" for i in range(2, 10)}
    q, inits, text = quantized("--target", "diana", "--config", "digital", "--io", "int8")
    assert not ternary_layers(inits)  # per channel where the scales agree on one shift, else per tensor
    assert [t.type.tensor_type.elem_type for t in [*q.graph.input, *q.graph.output]] == [TensorProto.INT8] * 2
    assert "10 of 10 conv/dense layers taken by an accelerator" in text and "int8 I/O" in text
    _, inits, _ = quantized("--target", "diana", "--config", "analog", "--ternary", "none")
    assert not ternary_layers(inits)
    _, inits, _ = quantized("--target", "diana", "--per-channel")  # an explicit flag beats the target's choice
    assert all(v.size > 1 for v in weight_scales(inits).values())
    _, inits, text = quantized("--target", "diana", "--config", "analog")
    assert ternary_layers(inits) == {f"conv{i}" for i in range(1, 10)} | {"fc1"}  # no int8 core: all ternary
    q, inits, text = quantized("--target", "diana", "--config", "digital", "--ternary", "auto", "--per-channel")
    host = [line for line in text.splitlines()[1:] if "host only" in line]  # the flags beat the target
    assert host and all("digital: one requantization shift 0..31 for the layer (has " in line for line in host)


def test_calibration_from_npy_npz_and_folder(zoo_files, tmp_path, capsys):
    """The same samples as one .npy, a .npz by input name, or a folder of one .npy per sample (with or
    without the batch axis) or of batches: the same bytes."""
    data = np.load(zoo_files / "ad_calib.npy")
    np.savez(tmp_path / "calib.npz", input=data)
    folder = tmp_path / "samples"
    folder.mkdir()
    for i, x in enumerate(data):
        np.save(folder / f"{i:02d}.npy", x[None] if i % 2 else x)
    batches = tmp_path / "batches"
    batches.mkdir()
    np.save(batches / "a.npy", data[:5])
    np.save(batches / "b.npy", data[5:])
    written = []
    for calib in (zoo_files / "ad_calib.npy", tmp_path / "calib.npz", folder, batches):
        out = tmp_path / f"{calib.stem}_q.onnx"
        code, _, err = _cli(["quantize", zoo_files / "ad.onnx", "--calib", calib, "--pow2", "-o", out], capsys)
        assert code == 0, err
        written.append(out.read_bytes())
    assert all(w == written[0] for w in written[1:])


def test_quantize_bad_input_is_one_line(zoo_files, tmp_path, capsys):
    model, calib, out = zoo_files / "ad.onnx", zoo_files / "ad_calib.npy", tmp_path / "q.onnx"
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "bad.npy").write_text("not an array")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.save(mixed / "a.npy", np.zeros((640,), np.float32))
    np.save(mixed / "b.npy", np.zeros((2, 3), np.float32))
    cases = [
        (["--calib", calib, "--target", "nope"], "unknown target 'nope'"),
        (["--calib", calib, "--target", "diana", "--config", "fast"], "target diana has configurations"),
        (["--calib", calib, "--config", "mixed"], "--config needs --target"),
        (["--calib", empty], "no .npy files in the calibration folder"),
        (["--calib", tmp_path / "bad.npy"], "not a .npy or .npz array file"),
        (["--calib", mixed], "the calibration files' sample shapes differ"),
        (["--calib", calib, "--ternary", "fc2,nope"], "ternary: no Conv/MatMul/Gemm node named nope"),
    ]
    for flags, message in cases:
        code, _, err = _cli(["quantize", model, *flags, "-o", out], capsys)
        assert message in one_line_error(code, err), (flags, err)
        assert not out.exists()
    from tinyc.cli import main
    with pytest.raises(SystemExit) as exit_:  # a usage error: argparse's exit, one line as well
        main(["quantize", str(model), "--calib", str(calib), "--per-channel", "--per-tensor", "-o", str(out)])
    assert "not allowed with argument" in one_line_error(exit_.value.code, capsys.readouterr().err)


def _bn(name, x, y, channels, rng):
    params = [const(f"{name}_{p}", v.astype(np.float32)) for p, v in (
        ("gamma", rng.uniform(0.5, 2, channels)), ("beta", rng.normal(0, 0.5, channels)),
        ("mean", rng.normal(0, 0.5, channels)), ("var", rng.uniform(0.5, 2, channels)))]
    return helper.make_node("BatchNormalization", [x] + [p.name for p in params], [y], name=name, epsilon=1e-3), params


def bn_sigmoid_cnn(seed=0):
    """conv -> BatchNormalization -> Relu -> conv -> Mul/Sub by per-channel constants -> Sigmoid -> pool ->
    Gemm -> Div by a scalar: every affine map folds into its layer, the Sigmoid becomes a table."""
    rng = np.random.default_rng(seed)
    bn, bn_params = _bn("bn", "c1", "b1", 8, rng)
    nodes = [helper.make_node("Conv", ["x", "w1", "bias1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             bn, helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c2", "k_mul"], ["m2"], name="scale2"),
             helper.make_node("Sub", ["m2", "k_sub"], ["s2"], name="shift2"),
             helper.make_node("Sigmoid", ["s2"], ["g2"], name="sigmoid"),
             helper.make_node("GlobalAveragePool", ["g2"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["h"], name="fc"),
             helper.make_node("Div", ["h", "k_div"], ["y"], name="temperature")]
    inits = [const("w1", rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)),
             const("bias1", rng.normal(0, 0.1, 8).astype(np.float32)),
             const("w2", rng.normal(0, 0.2, (6, 8, 3, 3)).astype(np.float32)),
             const("k_mul", rng.uniform(0.5, 1.5, (6, 1, 1)).astype(np.float32)),
             const("k_sub", rng.normal(0, 0.3, (1, 6, 1, 1)).astype(np.float32)),
             const("wf", rng.normal(0, 0.5, (6, 4)).astype(np.float32)), const("bf", np.zeros(4, np.float32)),
             const("k_div", np.float32(0.5)), *bn_params]
    return model(nodes, [tensor("x", [1, 3, 8, 8])], [tensor("y", [1, 4])], inits)


def _onnxruntime(m, xs):
    import onnxruntime as ort
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[None]})[0] for x in xs])


@pytest.mark.parametrize("power_of_two", [False, True], ids=["float-scales", "pow2"])
def test_batchnorm_and_sigmoid_quantized_against_onnxruntime(power_of_two):
    """The QDQ model tracks the float model (onnxruntime both); tinyc's compiled QDQ model matches
    onnxruntime's run of it within 1 LSB of the output scale (onnxruntime requantizes in float)."""
    from conftest import snr_db
    f = bn_sigmoid_cnn()
    rng = np.random.default_rng(2)
    q = quantize(f, rng.normal(size=(32, 3, 8, 8)).astype(np.float32), power_of_two=power_of_two)
    ops = [n.op_type for n in q.graph.node]
    assert "BatchNormalization" not in ops and "Mul" not in ops and "Sub" not in ops and "Div" not in ops
    assert ops.count("Sigmoid") == 1
    xs = rng.normal(size=(16, 3, 8, 8)).astype(np.float32)
    snr = snr_db(_onnxruntime(f, xs), _onnxruntime(q, xs))
    print(f"\n  BN + Sigmoid, {'pow2' if power_of_two else 'float scales'}: QDQ {snr:.1f} dB vs float")
    assert snr >= 25
    cm = tinyc.compile(q, target="cpu")
    assert "sigmoid" not in {n.op for n in cm.graph.nodes()}  # a table on int8, not a float op
    dq = next(n for n in q.graph.node if n.output[0] == "y")  # the output's DequantizeLinear
    scale = float(next(numpy_helper.to_array(i) for i in q.graph.initializer if i.name == dq.input[1]))
    ref = _onnxruntime(q, xs)
    got = np.concatenate([cm.interpret({"x": x[None]})["y"] for x in xs])
    np.testing.assert_array_equal(got[:1], cm.run({"x": xs[:1]})["y"])  # the emitted C = the interpreter
    lsb = np.rint(np.abs(got - ref) / scale)
    print(f"  tinyc vs onnxruntime on the QDQ model: max {lsb.max():.0f} LSB, {np.mean(lsb <= 1):.0%} within 1 LSB")
    # onnxruntime requantizes each layer in float, tinyc in fixed point (TFLite's): a layer's 1-LSB
    # difference travels on through the pool and the Gemm, so the output may differ by a few LSB
    assert np.mean(lsb <= 1) >= 0.9 and lsb.max() <= 4


def test_other_float_ops_get_their_own_quantization():
    """LeakyRelu, Tanh, Mul/Sub/Div of two activations, ReduceMean, GlobalMaxPool: each reads dequantized
    int8 and its output is quantized; the QDQ model tracks the float one in onnxruntime, and tinyc's
    compiled QDQ model matches onnxruntime's run of it within 1 LSB."""
    from conftest import snr_db
    rng = np.random.default_rng(0)
    conv = lambda name, x, w, y: helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[1, 1])  # noqa: E731
    nodes = [conv("conv1", "x", "w1", "a"), conv("conv2", "x", "w2", "b"),
             helper.make_node("LeakyRelu", ["a"], ["la"], name="leaky", alpha=0.1),
             helper.make_node("Tanh", ["b"], ["tb"], name="tanh"),
             helper.make_node("Mul", ["la", "tb"], ["m"], name="mul"),
             helper.make_node("Sub", ["m", "tb"], ["s"], name="sub"),
             helper.make_node("Sigmoid", ["b"], ["sb"], name="sigmoid"),
             helper.make_node("Relu", ["la"], ["rl"], name="relu"),
             helper.make_node("Add", ["sb", "rl"], ["d"], name="denominator"),  # > 0: a sigmoid plus a relu
             helper.make_node("Div", ["s", "d"], ["q"], name="div"),
             helper.make_node("GlobalMaxPool", ["q"], ["gm"], name="gmax"),
             helper.make_node("ReduceMean", ["q"], ["rm"], name="mean", axes=[2, 3], keepdims=1),
             helper.make_node("Add", ["gm", "rm"], ["y"], name="add")]
    f = model(nodes, [tensor("x", [1, 3, 6, 6])], [tensor("y", [1, 4, 1, 1])],
              [const("w1", rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32)),
               const("w2", rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32))], opset=17)
    onnx.checker.check_model(f)
    xs = rng.normal(size=(16, 3, 6, 6)).astype(np.float32)
    q = quantize(f, xs)
    producers = {o: n for n in q.graph.node for o in n.output}
    consumers = {}
    for n in q.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for op in ("LeakyRelu", "Tanh", "Mul", "Sub", "Div", "Sigmoid", "GlobalMaxPool", "ReduceMean"):
        n = next(n for n in q.graph.node if n.op_type == op)
        assert producers[n.input[0]].op_type == "DequantizeLinear", op
        assert [c.op_type for c in consumers[n.output[0]]] == ["QuantizeLinear"], op
    snr = snr_db(_onnxruntime(f, xs), _onnxruntime(q, xs))
    print(f"\n  LeakyRelu, Tanh, Mul/Sub/Div, ReduceMean, GlobalMaxPool: QDQ {snr:.1f} dB vs float")
    assert snr >= 20
    cm = tinyc.compile(q, target="cpu")  # and tinyc runs the QDQ model as onnxruntime does (measured: equal)
    dq = next(n for n in q.graph.node if n.output[0] == "y")
    scale = float(next(numpy_helper.to_array(i) for i in q.graph.initializer if i.name == dq.input[1]))
    got = np.concatenate([cm.interpret({"x": x[None]})["y"] for x in xs])
    assert np.abs(got - _onnxruntime(q, xs)).max() <= scale * 1.001


def test_batchnorm_without_a_layer_before_it_is_refused():
    rng = np.random.default_rng(0)
    bn, params = _bn("bn", "r", "y", 3, rng)
    f = model([helper.make_node("Relu", ["x"], ["r"], name="relu"), bn], [tensor("x", [1, 3, 4, 4])],
              [tensor("y", [1, 3, 4, 4])], params)
    with pytest.raises(tinyc.TinycError, match="bn: BatchNormalization that does not alone follow a Conv"):
        quantize(f, np.zeros((2, 3, 4, 4), np.float32))
