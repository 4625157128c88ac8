"""`tinyc validate` / CompiledModel.validate: the emitted C against onnxruntime and the TFLite interpreter,
layer by layer. The oracle is the reference runtime itself: on the official DS-CNN the C matches TFLite's
reference kernels bit for bit at every layer, and each layer is within onnxruntime's float
requantization (1 LSB) when fed tinyc's input to it; a wrong reference is one error line."""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest

import tinyc
from conftest import MLPERF_MODELS
from onnx_builders import tiny_cnn
from tinyc.cli import main
from tinyc.validate import align

KWS_ONNX, KWS_TFLITE = MLPERF_MODELS["kws"]
VWW_TFLITE = MLPERF_MODELS["vww"][1]


@pytest.fixture(scope="module")
def kws(mlperf_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its dynamic batch, bound to 1
        cm = tinyc.compile(mlperf_dir / KWS_ONNX, target="cpu")
    return cm, [cm.random_inputs(seed) for seed in range(3)]


def test_tflite_every_layer_bit_exact(kws, mlperf_dir):
    cm, xs = kws
    result = cm.validate(xs, reference=mlperf_dir / KWS_TFLITE)
    layers = result["layers"]
    # the 9 convolutions, the pool, the flatten, the dense layer and the softmax all have a TFLite twin
    assert len(layers) >= 13 and all(layer["unit"] == "LSB" for layer in layers)
    assert all(layer["max_diff"] == 0 and layer["snr_db"] is None for layer in layers)
    assert [out["tensor"] for out in result["output"]] == ["Identity"]
    assert result["first_departure"] is None
    # the ONNX twin's flatten output is renamed by tf2onnx: paired by order (the only int8[1, 64] between
    # the pool and the dense layer), every other tensor by name
    by_order = [(layer["tensor"], layer["reference_tensor"]) for layer in layers if layer["mapped_by"] == "order"]
    assert by_order == [("functional_1/flatten/Reshape_prequant", "functional_1/flatten/Reshape")]


def test_onnxruntime_each_layer_within_its_float_requantization(kws):
    cm, xs = kws
    result = cm.validate(xs)
    convs = [layer for layer in result["layers"] if layer["op"] == "qconv"]
    assert len(convs) == 9
    # fed tinyc's input, a layer differs by at most the 1 LSB of onnxruntime's float rounding ...
    assert all(layer["layer_max_diff"] <= 1 for layer in result["layers"])
    assert result["first_departure"] is None
    # ... while end to end those differences add up downstream (which is why the layer-alone figure decides)
    assert max(layer["max_diff"] for layer in result["layers"]) >= 1


def test_the_first_departing_layer_is_named(kws, mlperf_dir):
    """A broken layer (one conv's weights changed after compiling) is the first departure; layers before
    it stay exact against TFLite."""
    cm, xs = kws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        broken = tinyc.compile(mlperf_dir / KWS_ONNX, target="cpu")
    conv = [n for n in broken.graph.nodes() if n.op == "qconv"][2]
    w = broken.graph.values[conv.inputs[1]]
    w.data = np.ascontiguousarray(np.clip(w.data.astype(np.int16) + 9, -128, 127).astype(np.int8))
    broken = tinyc.CompiledModel(broken.graph, broken.target, broken.config, "m", model=broken.model)
    result = broken.validate(xs[:1], reference=mlperf_dir / KWS_TFLITE)
    names = [layer["tensor"] for layer in result["layers"]]
    assert result["first_departure"] == conv.outputs[0]
    assert all(layer["max_diff"] == 0 for layer in result["layers"][:names.index(conv.outputs[0])])


def test_float_model_in_absolute_difference():
    cm = tinyc.compile(tiny_cnn(), target="host")
    result = cm.validate([cm.random_inputs(s) for s in range(2)])
    assert {layer["unit"] for layer in result["layers"]} == {"abs"}
    assert result["output"][0]["max_diff"] < 1e-5 and result["first_departure"] is None
    assert {layer["tensor"] for layer in result["layers"]} >= {"c", "r", "p", "logits", "probs"}


def test_align_layouts():
    x = np.arange(24).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(align(x, (1, 3, 4, 2)), x.transpose(0, 2, 3, 1))
    assert align(x, (1, 2, 3, 4)) is x
    assert align(np.arange(4).reshape(1, 4, 1, 1), (1, 4)).shape == (1, 4)
    assert align(x, (1, 24)) is None


def test_cli_tflite_json(mlperf_dir, capsys):
    code = main(["validate", str(mlperf_dir / KWS_ONNX), "--reference", "tflite", str(mlperf_dir / KWS_TFLITE),
                 "--random", "2", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["samples"] == 2 and result["output"][0]["max_diff"] == 0


def test_cli_text_and_inputs_folder(mlperf_dir, kws, tmp_path, capsys):
    cm, xs = kws
    for i, x in enumerate(xs[:2]):
        np.save(tmp_path / f"{i}.npy", x["input_1"])
    np.savez(tmp_path / "2.npz", **xs[2])
    assert main(["validate", str(mlperf_dir / KWS_ONNX), "--inputs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "validation against onnxruntime on 3 input(s)" in out
    assert "no layer departs by more than 1 LSB" in out and "output Identity: max |diff|" in out


def one_line_error(capsys, code: int) -> str:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith("tinyc: note: ")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tinyc: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


@pytest.mark.parametrize("argv, words", [
    (["--reference", "tflite", "{dir}/" + VWW_TFLITE], ["not this model's", "input_1"]),
    (["--reference", "tflite", "{tmp}/absent.tflite"], ["no such .tflite file"]),
    (["--reference", "tflite", "{tmp}/junk.tflite"], ["not a TFLite model"]),
    (["--reference", "tensorrt"], ["expected `onnxruntime` or `tflite FILE.tflite`"]),
    (["--random", "0"], ["at least one input"]),
    (["--inputs", "{tmp}/empty"], ["no .npy or .npz file"]),
    (["--inputs", "{tmp}/wrong"], ["input_1", "int8[1, 49, 10, 1]"]),
])
def test_bad_validation_requests(mlperf_dir, tmp_path, capsys, argv, words):
    (tmp_path / "junk.tflite").write_bytes(b"not flatbuffers")
    (tmp_path / "empty").mkdir()
    (tmp_path / "wrong").mkdir()
    np.save(tmp_path / "wrong" / "a.npy", np.zeros(3, np.int8))
    argv = [a.format(dir=mlperf_dir, tmp=tmp_path) for a in argv]
    line = one_line_error(capsys, main(["validate", str(mlperf_dir / KWS_ONNX), *argv]))
    assert all(w in line for w in words), line


def test_a_reference_whose_tensors_do_not_match():
    """The same names with other shapes (the conv unpadded: 'c' is 6x6, not 8x8) is one clear error."""
    cm = tinyc.compile(tiny_cnn(), target="host")
    other = tiny_cnn()
    conv = next(n for n in other.graph.node if n.op_type == "Conv")
    del conv.attribute[:]
    fc_w = next(i for i in other.graph.initializer if i.name == "fc_w")
    fc_w.CopyFrom(onnx.numpy_helper.from_array(np.ones((36, 3), np.float32), "fc_w"))
    cm.model = other  # a reference that is not this model's
    with pytest.raises(tinyc.InputError, match=r"'c' is float32\[1, 4, 6, 6\], tinyc's is float32\[1, 4, 8, 8\]: "
                                               r"the reference is not this model's"):
        cm.validate(cm.random_inputs(0))


def test_accelerator_layers_on_diana(capsys):
    """Layers on DIANA's digital core, each within 1 LSB of onnxruntime alone (HTVM-style flow, every layer
    output in L2); with L1 reuse, the outputs kept in L1 are listed as not compared and the layer after
    them is not judged alone, so a correct model validates either way."""
    assert main(["validate", "zoo:kws", "--target", "diana", "--config", "digital", "--no-l1-reuse", "--random", "2",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    digital = [layer for layer in result["layers"] if layer["core"] == "digital"]
    assert len(digital) == 10 and all(layer["layer_max_diff"] <= 1 for layer in digital)
    assert result["kept_in_l1"] == [] and result["first_departure"] is None
    assert main(["validate", "zoo:kws", "--target", "diana", "--config", "digital", "--random", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kept_in_l1"] and not set(result["kept_in_l1"]) & {layer["tensor"] for layer in result["layers"]}
    assert any(layer["spans"] for layer in result["layers"]) and result["first_departure"] is None


@pytest.mark.parametrize("net, variant, config", [("kws", "int8", "digital"), ("ic", "ternary", "mixed")])
def test_every_dumped_tensor_is_the_interpreters(net, variant, config):
    """The validation build's dump is what the layers computed: each tensor bit-exact with the IR's
    reference interpreter (the spec), accelerator layers included, and the outputs the normal build's."""
    from tinyc.ir.interpret import interpret
    from tinyc.validate import run_dumped
    cm = tinyc.compile(tinyc.zoo.build(net, variant), target="diana", config=config, l1_reuse=False)
    x = cm.random_inputs(1)
    dumped = run_dumped(cm, x)
    spec = interpret(cm.graph, {n: cm.input_array(n, x) for n in cm.graph.inputs}, keep_all=True)
    accelerated = [n.outputs[0] for n in cm.graph.nodes() if n.placement and n.placement.core != "host"]
    assert accelerated and set(accelerated) <= set(dumped)
    if variant == "ternary":
        assert any(n.placement and n.placement.core == "analog" for n in cm.graph.nodes())
    for name, value in dumped.items():
        np.testing.assert_array_equal(value, spec[name], err_msg=name)
    for name, value in cm.run(x).items():
        np.testing.assert_array_equal(value, dumped[name])
