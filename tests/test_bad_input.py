"""Bad input: every model of the corpus fails with the right TinycError naming the file, the node and the
reason, never another exception and never a silent compile; the CLI prints exactly one line and exits 2."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto as T
from onnx import helper

import tinyc
from tinyc import BadModelError, DoesNotFitError, UnsupportedError
from tinyc.cli import main
from onnx_builders import const, model, tensor, tiny_cnn

REPO = Path(__file__).resolve().parents[1]
X = "audio_in"  # the input of every small model; distinct enough to find in a message


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]  # writes the bad input into a folder, returns the path to compile
    error: type
    node: str | None  # what the message must name after the file (a node, an input, or the graph)
    reason: str  # a word of the reason


def node(op, inputs, outputs, name, **attrs):
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def unary(op, name, shape=(1, 8), dtype=T.FLOAT, opset=17, ir_version=8):
    """One `op` node from the input X to y."""
    return model([node(op, [X], ["y"], name)], [tensor(X, list(shape), dtype)], [tensor("y", list(shape), dtype)],
                 opset=opset, ir_version=ir_version)


def with_const(op, name, const_array, shape=(1, 8), out_shape=None, **attrs):
    """One float `op` node reading X and a constant c."""
    return model([node(op, [X, "c"], ["y"], name, **attrs)], [tensor(X, list(shape))],
                 [tensor("y", list(out_shape or shape))], [const("c", const_array)])


def quantize(scale, zero_point, name="quant"):
    return model([node("QuantizeLinear", [X, "s", "z"], ["y"], name)], [tensor(X, [1, 8])],
                 [tensor("y", [1, 8], T.INT8)],
                 [const("s", np.asarray(scale, np.float32)), const("z", np.asarray(zero_point, np.int8))])


def qlinear_conv(y_scale):
    inits = [const("w", np.ones((2, 1, 3, 3), np.int8)), const("s", np.float32(0.05)),
             const("ys", np.float32(y_scale)), const("z", np.int8(0))]
    return model([node("QLinearConv", [X, "s", "z", "w", "s", "z", "ys", "z"], ["y"], "qconv")],
                 [tensor(X, [1, 1, 6, 6], T.INT8)], [tensor("y", [1, 2, 4, 4], T.INT8)], inits)


def conv(x_shape, w_shape, out_shape, name="conv", **attrs):
    return with_const("Conv", name, np.ones(w_shape, np.float32), x_shape, out_shape, **attrs)


def conv_with_short_bias():
    inits = [const("w", np.ones((2, 1, 3, 3), np.float32)), const("b", np.ones(3, np.float32))]
    return model([node("Conv", [X, "w", "b"], ["y"], "conv")], [tensor(X, [1, 1, 6, 6])], [tensor("y", [1, 2, 4, 4])],
                 inits)


def cycle():
    return model([node("Add", [X, "b"], ["a"], "add_1"), node("Relu", ["a"], ["b"], "relu_2")],
                 [tensor(X, [1, 8])], [tensor("b", [1, 8])])


def custom_op():
    return model([node("Spectrogram", [X], ["y"], "stft", domain="com.acme")], [tensor(X, [1, 8])],
                 [tensor("y", [1, 8])], domains=["com.acme"])


def missing_external_weights():
    m = with_const("Add", "add", np.ones((1, 8), np.float32))
    weights = m.graph.initializer[0]
    weights.ClearField("raw_data")
    weights.data_location = T.EXTERNAL
    weights.external_data.add(key="location", value="weights.bin")
    return m


def not_utf8() -> bytes:
    """Protobuf leaves ONNX's strings unchecked: a byte that is not UTF-8 parses into a bytes name."""
    data = unary("Relu", "act").SerializeToString()
    return data.replace(b"act", b"a\xc7t")


def half_of(m: onnx.ModelProto) -> bytes:
    data = m.SerializeToString()
    return data[:len(data) // 2]


def file_of(make: Callable[[], onnx.ModelProto | bytes]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        data = make()
        path = folder / "model.onnx"
        path.write_bytes(data if isinstance(data, bytes) else data.SerializeToString())
        return path
    return write


def a_directory(folder: Path) -> Path:
    (folder / "model.onnx").mkdir()
    return folder / "model.onnx"


CASES = {
    # not an ONNX model at all
    "empty file": Case(file_of(lambda: b""), BadModelError, None, "empty"),
    "random bytes": Case(file_of(lambda: np.random.default_rng(7).bytes(2000)), BadModelError, None,
                         "not an ONNX model"),
    "truncated model": Case(file_of(lambda: half_of(tiny_cnn())), BadModelError, None, "truncated"),
    "a TensorProto": Case(file_of(lambda: const("t", np.ones(64, np.float32)).SerializeToString()),
                          BadModelError, None, "not an ONNX model"),
    "a GraphProto": Case(file_of(lambda: tiny_cnn().graph.SerializeToString()), BadModelError, None,
                         "not an ONNX model"),
    "a directory": Case(a_directory, BadModelError, None, "cannot read"),
    # broken graphs
    "a name that is not UTF-8": Case(file_of(not_utf8), BadModelError, None, "UTF-8"),
    "cycle": Case(file_of(cycle), BadModelError, "add_1", "cycle"),
    "undefined input": Case(file_of(lambda: model([node("Relu", ["nowhere"], ["y"], "act")], [tensor(X, [1, 8])],
                                                  [tensor("y", [1, 8])])), BadModelError, "act", "'nowhere'"),
    "unknown op": Case(file_of(lambda: unary("FooBar", "foo")), BadModelError, "foo", "FooBar"),
    "missing external weights": Case(file_of(missing_external_weights), BadModelError, "c", "weights.bin"),
    "no outputs": Case(file_of(lambda: model([node("Relu", [X], ["y"], "act")], [tensor(X, [1, 8])], [])),
                       BadModelError, None, "no outputs"),
    "opset from the future": Case(file_of(lambda: unary("Relu", "act", opset=99)), UnsupportedError, None,
                                  "opset 99"),
    # valid ONNX that tinyc does not implement
    "unsupported op": Case(file_of(lambda: unary("Cos", "cosine")), UnsupportedError, "cosine", "Cos"),
    "a newline in a node name": Case(file_of(lambda: unary("Cos", "cos\nine")), UnsupportedError, "cos\\nine", "Cos"),
    "custom-domain op": Case(file_of(custom_op), UnsupportedError, "stft", "com.acme"),
    "float16": Case(file_of(lambda: unary("Relu", "act", dtype=T.FLOAT16)), UnsupportedError, X, "float16"),
    "double": Case(file_of(lambda: unary("Relu", "act", dtype=T.DOUBLE)), UnsupportedError, X, "double"),
    "double weights": Case(file_of(lambda: model([node("Add", [X, "c"], ["y"], "add")], [tensor(X, [1, 8], T.DOUBLE)],
                                                 [tensor("y", [1, 8], T.DOUBLE)], [const("c", np.ones((1, 8)))])),
                           UnsupportedError, "c", "double"),
    "operand types differ": Case(file_of(lambda: with_const("Add", "add", np.ones((1, 8)))), BadModelError, "add",
                                 "type"),
    "int4": Case(file_of(lambda: unary("Identity", "id", dtype=T.INT4, opset=21, ir_version=10)),
                 UnsupportedError, X, "int4"),
    "dynamic spatial dimension": Case(file_of(lambda: unary("Relu", "act", shape=(1, "time", 8))),
                                      UnsupportedError, X, "'time'"),
    "zero-size input": Case(file_of(lambda: unary("Relu", "act", shape=(1, 0, 8))), UnsupportedError, X,
                            "zero-size"),
    "zero-size weights": Case(file_of(lambda: with_const("MatMul", "fc", np.ones((8, 0), np.float32),
                                                         out_shape=(1, 0))), UnsupportedError, "fc", "zero-size"),
    "window larger than its input": Case(file_of(lambda: conv([1, 1, 4, 4], (1, 1, 5, 5), [1, 1, 0, 0])),
                                         UnsupportedError, "conv", "zero-size"),
    "Reshape shape computed at run time": Case(
        file_of(lambda: model([node("Reshape", [X, "shape"], ["y"], "reshape")],
                              [tensor(X, [1, 8]), tensor("shape", [2], T.INT64)], [tensor("y", ["a", "b"])])),
        UnsupportedError, "reshape", "constant"),
    # sizes
    "1e9 elements": Case(file_of(lambda: unary("Relu", "act", shape=(1, 1000, 1000, 1000))), DoesNotFitError,
                         "testnet", "512000 B"),
    "beyond 32-bit addressing": Case(file_of(lambda: unary("Relu", "act", shape=(1, 10 ** 6, 10 ** 6))),
                                     DoesNotFitError, X, "32-bit"),
    "too big for L2": Case(file_of(lambda: with_const("MatMul", "fc", np.ones((1000, 1000), np.float32),
                                                      shape=(1, 1000))), DoesNotFitError, "testnet", "512000 B"),
    # quantization parameters
    "scale and zero point shapes differ": Case(file_of(lambda: quantize([0.1] * 8, [0] * 3)), UnsupportedError,
                                               "quant", "zero point shape"),
    "NaN scale": Case(file_of(lambda: quantize(np.nan, 0)), BadModelError, "quant", "finite"),
    "infinite scale": Case(file_of(lambda: quantize(np.inf, 0)), BadModelError, "quant", "finite"),
    "zero scale": Case(file_of(lambda: quantize(0.0, 0)), BadModelError, "quant", "nonzero"),
    "infinite QLinearConv scale": Case(file_of(lambda: qlinear_conv(np.inf)), BadModelError, "qconv", "finite"),
    "quantization axis out of range": Case(
        file_of(lambda: model([node("QuantizeLinear", [X, "s", "z"], ["y"], "quant", axis=5)], [tensor(X, [1, 8])],
                              [tensor("y", [1, 8], T.INT8)],
                              [const("s", np.full(8, 0.1, np.float32)), const("z", np.zeros(8, np.int8))])),
        BadModelError, "quant", "axis 5"),
    # attributes and shapes
    "per-axis scales unlike the channels": Case(
        file_of(lambda: model([node("QuantizeLinear", [X, "s", "z"], ["y"], "quant", axis=1)], [tensor(X, [1, 8])],
                              [tensor("y", [1, 8], T.INT8)],
                              [const("s", np.full(3, 0.1, np.float32)), const("z", np.zeros(3, np.int8))])),
        BadModelError, "quant", "3 scales for the 8 channels"),
    "Conv bias of the wrong size": Case(file_of(conv_with_short_bias), BadModelError, "conv", "bias"),
    "negative Conv pads": Case(file_of(lambda: conv([1, 1, 6, 6], (1, 1, 3, 3), [1, 1, 2, 2], pads=[-1] * 4)),
                               BadModelError, "conv", "negative"),
    "negative Pad pads": Case(file_of(lambda: with_const("Pad", "pad", np.array([0, 0, 0, -2], np.int64),
                                                         out_shape=(1, 6))), UnsupportedError, "pad", "negative"),
    "kernel_shape unlike the weights": Case(file_of(lambda: conv([1, 1, 6, 6], (1, 1, 3, 3), [1, 1, 5, 5],
                                                                 kernel_shape=[2, 2])),
                                            BadModelError, "conv", "kernel_shape"),
    "Reshape to an impossible shape": Case(file_of(lambda: with_const("Reshape", "reshape", np.array([3, 3]),
                                                                      out_shape=(3, 3))),
                                           BadModelError, "reshape", "cannot reshape"),
}

if not hasattr(T, "INT4"):  # onnx < 1.16 cannot even build it
    del CASES["int4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Each case in a folder of its own (the CLI's output directory goes beside it)."""
    paths = {}
    for i, (name, case) in enumerate(CASES.items()):
        folder = tmp_path_factory.mktemp(f"case{i}")
        paths[name] = case.build(folder)
    return paths


def check_message(text: str, path: Path, case: Case):
    where = f"{path}: {case.node}: " if case.node else f"{path}: "
    assert text.startswith(where), text
    assert case.reason in text[len(where):], text
    assert "\n" not in text


@pytest.mark.parametrize("name", CASES)
def test_api(name, corpus):
    case, path = CASES[name], corpus[name]
    with pytest.raises(case.error) as err:  # any other exception fails the test
        tinyc.compile(str(path))
    check_message(str(err.value), path, case)


def check_cli(code: int, stdout: str, stderr: str, path: Path, case: Case):
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tinyc: error: ")
    check_message(lines[0][len("tinyc: error: "):], path, case)
    assert "Traceback" not in stdout + stderr
    assert not (path.parent / "out").exists()  # no partial project


@pytest.mark.parametrize("name", CASES)
def test_cli_in_process(name, corpus, capsys):
    path = corpus[name]
    code = main(["compile", str(path), "-o", str(path.parent / "out")])
    out, err = capsys.readouterr()
    check_cli(code, out, err, path, CASES[name])


@pytest.fixture(scope="module")
def cli_runs(corpus) -> dict[str, subprocess.CompletedProcess]:
    """Every case through the real command, all started together (each run is mostly interpreter start-up)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tinyc.cli", "compile", str(path), "-o", str(path.parent / "out")],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return dict(zip(corpus, pool.map(run, corpus.values())))


@pytest.mark.parametrize("name", CASES)
def test_cli_subprocess(name, corpus, cli_runs):
    proc = cli_runs[name]
    check_cli(proc.returncode, proc.stdout, proc.stderr, corpus[name], CASES[name])


@pytest.mark.parametrize("command", [["run"], ["report", "--json"]])
@pytest.mark.parametrize("name", ["truncated model", "cycle", "unsupported op", "too big for L2"])
def test_other_model_commands(name, command, corpus, capsys):
    path = corpus[name]
    code = main([command[0], str(path), *command[1:]])
    out, err = capsys.readouterr()
    check_cli(code, out, err, path, CASES[name])


def test_failed_compile_leaves_an_existing_output_alone(corpus, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "model.c").write_text("/* an earlier build */")
    assert main(["compile", str(corpus["unsupported op"]), "-o", str(out)]) == 2
    assert (out / "model.c").read_text() == "/* an earlier build */"


@pytest.mark.parametrize("source", ["bytes", "proto"])
def test_models_in_memory_are_named_too(source):
    """Bytes and ModelProto have no file name: the message says which kind of source it was."""
    m = unary("Cos", "cosine")
    with pytest.raises(UnsupportedError, match=r"^<(bytes|model)>: cosine: op Cos"):
        tinyc.compile(m.SerializeToString() if source == "bytes" else m)


def test_external_weights_are_read_beside_the_model(tmp_path, monkeypatch):
    """The counterpart of the missing-weights case: present, they are found from any working directory."""
    m = with_const("Add", "add", np.arange(8, dtype=np.float32).reshape(1, 8))
    onnx.save(m, tmp_path / "model.onnx", save_as_external_data=True, location="weights.bin", size_threshold=0)
    monkeypatch.chdir(REPO)
    cm = tinyc.compile(str(tmp_path / "model.onnx"))
    np.testing.assert_array_equal(cm.graph.values["c"].data, np.arange(8, dtype=np.float32).reshape(1, 8))


def qdq_conv(bias_scale) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv with DQ'd int8 weights and int32 bias -> Q/DQ -> y."""
    inits = [const("xs", np.float32(0.05)), const("z", np.int8(0)), const("w", np.ones((2, 1, 3, 3), np.int8)),
             const("ws", np.float32(0.01)), const("b", np.array([10, 10], np.int32)),
             const("bs", np.asarray(bias_scale, np.float32)), const("bz", np.zeros(2, np.int32)),
             const("ys", np.float32(0.1))]
    nodes = [node("QuantizeLinear", [X, "xs", "z"], ["xq"], "qx"),
             node("DequantizeLinear", ["xq", "xs", "z"], ["xd"], "dqx"),
             node("DequantizeLinear", ["w", "ws", "z"], ["wd"], "dqw"),
             node("DequantizeLinear", ["b", "bs", "bz"], ["bd"], "dqb", axis=0),
             node("Conv", ["xd", "wd", "bd"], ["c"], "conv"), node("QuantizeLinear", ["c", "ys", "z"], ["yq"], "qy"),
             node("DequantizeLinear", ["yq", "ys", "z"], ["y"], "dqy")]
    return model(nodes, [tensor(X, [1, 1, 4, 4])], [tensor("y", [1, 2, 2, 2])], inits)


def test_a_bias_beyond_int32_is_not_wrapped():
    """Valid but extreme: the second channel's bias is 1e31 in the accumulator's scale. Folded into an int32
    bias it used to wrap to a large negative number; the result must stay onnxruntime's."""
    m = qdq_conv([0.0005, 1e30])
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32)
    want, = onnxruntime.InferenceSession(m.SerializeToString()).run(None, {X: x})
    np.testing.assert_allclose(tinyc.compile(m).run({X: x})["y"], want, atol=0.1 + 1e-6)


@pytest.fixture(scope="module")
def float_ad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quantize") / "ad_float.onnx"
    onnx.save(tinyc.zoo.build("ad", "float"), path)
    return path


def calibration_file(folder: Path, kind: str) -> Path:
    data = np.asarray(tinyc.zoo.sample("ad", 4), np.float32).copy()
    if kind == "nan":
        data[1, 7] = np.nan
    elif kind == "inf":
        data[0, 0] = -np.inf
    np.save(folder / f"{kind}.npy", data)
    return folder / f"{kind}.npy"


@pytest.mark.parametrize("kind, extra, words", [
    ("ok", ["--percentile", "150"], ["percentile must be above 50 and at most 100", "not 150"]),
    ("ok", ["--percentile", "20"], ["percentile must be above 50", "not 20"]),
    ("nan", [], ["input 'input' holds 1 NaN or infinite value(s) of 2560"]),
    ("inf", [], ["input 'input' holds 1 NaN or infinite value(s)"]),
])
def test_bad_quantize_requests(float_ad, tmp_path, capsys, kind, extra, words):
    out = tmp_path / "q.onnx"
    code = main(["quantize", str(float_ad), "--calib", str(calibration_file(tmp_path, kind)), *extra, "-o", str(out)])
    out_text, err = capsys.readouterr()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"tinyc: error: {float_ad}: "), err
    assert all(w in err for w in words), err
    assert "Traceback" not in out_text + err and not out.exists()


def test_constant_calibration_data_is_noted(float_ad, tmp_path, capsys):
    """All-zero calibration data still quantizes (0 is exact at any scale) but says what it did."""
    np.save(tmp_path / "zeros.npy", np.zeros((4, 640), np.float32))
    assert main(["quantize", str(float_ad), "--calib", str(tmp_path / "zeros.npy"), "-o", str(tmp_path / "q.onnx")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tinyc: note: ")]
    assert notes[0] == ("tinyc: note: calibration data for input 'input' is 0 everywhere: its range, and the ranges it "
                        "leads to, come from that one value (give varied samples for useful scales)")
    assert "0 on every calibration sample (first 'input'): quantized with scale 1.0" in notes[1]
    assert (tmp_path / "q.onnx").is_file()


def test_quantize_output_must_be_a_file(float_ad, tmp_path, capsys):
    calib = calibration_file(tmp_path, "ok")
    code = main(["quantize", str(float_ad), "--calib", str(calib), "-o", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and err == f"tinyc: error: {tmp_path}: is a directory; give -o the .onnx file to write\n"
