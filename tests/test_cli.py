"""The `tinyc` command: each subcommand does what the API does, and every error is one line with exit code 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

import tinyc
from tinyc.cli import main
from onnx_builders import tiny_cnn

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tiny_cnn.onnx"
    onnx.save(tiny_cnn(), path)
    return path


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((1, 1, 8, 8)).astype(np.float32)


def one_line_error(capsys, code: int) -> str:
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyc: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def test_compile_writes_a_c_project(model_path, tmp_path, capsys):
    out = tmp_path / "project"
    assert main(["compile", str(model_path), "-o", str(out)]) == 0
    assert {"model.c", "model.h", "Makefile"} <= {p.name for p in out.iterdir()}
    assert f"wrote {out}/" in capsys.readouterr().out


def test_compile_as_a_command(model_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "tinyc.cli", "compile", str(model_path), "-o", str(tmp_path / "p")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / "model.c").is_file()


def test_run_gives_the_api_outputs_and_onnxruntimes(model_path, image, tmp_path, capsys):
    np.save(tmp_path / "image.npy", image)
    assert main(["run", str(model_path), "--input", f"image={tmp_path / 'image.npy'}",
                 "-o", str(tmp_path / "out.npz")]) == 0
    got = dict(np.load(tmp_path / "out.npz"))
    assert list(got) == ["probs"]
    api = tinyc.compile(str(model_path)).run({"image": image})
    np.testing.assert_array_equal(got["probs"], api["probs"])
    want, = onnxruntime.InferenceSession(str(model_path)).run(None, {"image": image})
    np.testing.assert_allclose(got["probs"], want, rtol=1e-4, atol=1e-6)


def test_run_prints_a_summary_without_output_file(model_path, capsys):
    assert main(["run", str(model_path)]) == 0  # random inputs
    assert capsys.readouterr().out.startswith("probs: float32[1, 3] argmax=")


def test_report_json(model_path, capsys):
    assert main(["report", str(model_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["layers"] == len(report["layers"]) > 0
    assert report["totals"]["macs"] > 0
    assert report["target"] == "cpu"


def test_report_text(model_path, capsys):
    assert main(["report", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_cnn for cpu") and "total:" in out


def test_targets_lists_cpu(capsys):
    assert main(["targets"]) == 0
    assert any(line.split()[0] == "cpu" for line in capsys.readouterr().out.splitlines() if line.strip())


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinyc {tinyc.__version__}"


def test_unknown_target(model_path, tmp_path, capsys):
    code = main(["compile", str(model_path), "--target", "nosuchchip", "-o", str(tmp_path / "p")])
    line = one_line_error(capsys, code)
    assert "nosuchchip" in line and "cpu" in line  # says what exists
    assert not (tmp_path / "p").exists()


def test_unknown_config(model_path, tmp_path, capsys):
    line = one_line_error(capsys, main(["compile", str(model_path), "--config", "analog", "-o", str(tmp_path / "p")]))
    assert "'analog'" in line


def test_missing_model_file(tmp_path, capsys):
    missing = tmp_path / "nothere.onnx"
    line = one_line_error(capsys, main(["compile", str(missing), "-o", str(tmp_path / "p")]))
    assert str(missing) in line and "No such file" in line
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("spec, words", [
    ("image", ["'image'", "NAME=FILE.npy"]),
    ("image={dir}/absent.npy", ["absent.npy", "No such file"]),
    ("image={dir}/notnpy.npy", ["notnpy.npy", "not a .npy or .npz array"]),
    ("image={dir}/wrong_shape.npy", ["'image'", "float32[1, 1, 8, 8]", "[3]"]),
    ("voice={dir}/wrong_shape.npy", ["no input 'voice'", "its inputs are image"]),
    ("{dir}/two.npz", ["no input 'extra'"]),
    ("image={dir}/xy.npz", ["holds x, y", "none named 'image'"]),
])
def test_bad_input_spec(model_path, tmp_path, capsys, spec, words):
    (tmp_path / "notnpy.npy").write_text("not numpy")
    np.savez(tmp_path / "two.npz", image=np.zeros((1, 1, 8, 8), np.float32), extra=np.zeros(2, np.float32))
    np.savez(tmp_path / "xy.npz", x=np.zeros(2, np.float32), y=np.zeros(2, np.float32))
    np.save(tmp_path / "wrong_shape.npy", np.zeros(3, np.float32))
    line = one_line_error(capsys, main(["run", str(model_path), "--input", spec.format(dir=tmp_path)]))
    assert all(w in line for w in words), line


def test_output_under_a_file(model_path, tmp_path, capsys):
    """An output directory that cannot be made is an error line too, not an OSError traceback."""
    (tmp_path / "file").write_text("")
    line = one_line_error(capsys, main(["compile", str(model_path), "-o", str(tmp_path / "file" / "p")]))
    assert str(tmp_path / "file") in line


def test_zoo_models_by_name(tmp_path, capsys):
    """zoo:NAME[:VARIANT] compiles the bundled network: the outputs are onnxruntime's on the same model."""
    import tinyc.zoo
    model = tinyc.zoo.build("ad", "float")
    x = np.random.default_rng(5).standard_normal((1, 640)).astype(np.float32)
    name = model.graph.input[0].name
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "zoo:ad:float", "--target", "host", "--input", f"{name}={tmp_path / 'x.npy'}", "-o", str(tmp_path / "y.npz")]) == 0
    expected = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {name: x})[0]
    got = np.load(tmp_path / "y.npz")
    np.testing.assert_allclose(got[model.graph.output[0].name], expected, rtol=1e-4, atol=1e-5)
    capsys.readouterr()
    assert main(["report", "zoo:kws"]) == 0
    assert "kws_int8 for cpu" in capsys.readouterr().out
    assert "unknown zoo model 'zoo:nope'" in one_line_error(capsys, main(["report", "zoo:nope"]))


def test_report_and_profile_on_diana(capsys):
    """The text report names each layer's core and, for a layer left on the host, the constraint it
    failed: DIANA's analog array takes no depthwise conv (groups 1 only)."""
    assert main(["report", "zoo:kws:ternary", "--target", "diana", "--config", "analog"]) == 0
    out = capsys.readouterr().out
    assert all(f"  dw{i}_q: analog: groups 1 (is 64)" in out for i in range(1, 5))
    assert sum(" analog " in line for line in out.splitlines()) == 4  # the 4 pointwise convs
    assert main(["run", "zoo:ad", "--target", "diana", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "cycles (modeled)" in out and "ms at 260 MHz" in out


def test_targets_lists_diana_cores_and_configs(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "cores: host (cpu), digital (accelerator), analog (accelerator)" in out
    assert "configs: mixed = digital + analog (default), cpu = host only, digital = digital, analog = analog" in out


def test_usage_errors_are_one_line(capsys):
    """argparse's own errors (a bad --tiler, a missing -o, no command) read like every other error."""
    for argv in (["report", "zoo:ad", "--tiler", "greedy"], ["compile", "zoo:ad"], []):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        line = one_line_error(capsys, exit_.value.code)
        assert "--help" in line


def test_tiler_option(capsys):
    """--tiler reaches tinyc.compile: dory (in the HTVM-style flow, without L1 reuse) keeps a layer that fits
    L1 whole in one box."""
    assert main(["report", "zoo:ad", "--target", "diana", "--config", "digital", "--tiler", "dory", "--no-l1-reuse",
                 "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    tiled = [layer for layer in layers if layer.get("tile")]
    assert tiled and all(layer["tile"]["buffers"] == 1 for layer in tiled)


def test_a_configuration_that_takes_no_layer_says_so(capsys):
    """The int8 zoo has no ternary weights: under analog every layer runs on the host, with a note."""
    assert main(["report", "zoo:ad", "--target", "diana", "--config", "analog"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("tinyc: note: configuration analog of diana places no layer on an accelerator")


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("tinyc: note: ")]


def test_run_input_from_npz_and_notes(model_path, image, tmp_path, capsys):
    """A .npz input (alone or as NAME=FILE.npz) gives the .npy's outputs; a flat array of the right size
    and running without --input are each said in a note, not done silently."""
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "flat.npy", image.ravel())
    np.savez(tmp_path / "all.npz", image=image)
    runs = {}
    for spec in (f"image={tmp_path / 'image.npy'}", str(tmp_path / "all.npz"), f"image={tmp_path / 'all.npz'}",
                 f"image={tmp_path / 'flat.npy'}"):
        assert main(["run", str(model_path), "--input", spec]) == 0
        runs[spec] = capsys.readouterr()
    assert len({r.out for r in runs.values()}) == 1
    assert [_notes(r.err) for r in runs.values()][:3] == [[], [], []]
    assert _notes(runs[f"image={tmp_path / 'flat.npy'}"].err) == [
        "tinyc: note: input 'image': a float32[64] array taken as [1, 1, 8, 8] (the same elements in row-major order)"]
    assert main(["run", str(model_path)]) == 0
    assert _notes(capsys.readouterr().err) == [
        "tinyc: note: no --input given: running on seeded random inputs (image float32[1, 1, 8, 8])"]


def test_run_duplicate_input(model_path, image, tmp_path, capsys):
    np.save(tmp_path / "image.npy", image)
    spec = f"image={tmp_path / 'image.npy'}"
    assert "--input image is given twice" in one_line_error(capsys, main(["run", str(model_path), "--input", spec,
                                                                        "--input", spec]))


def test_run_output_is_the_npz_named(model_path, tmp_path, capsys):
    """-o names the file written: a .npz, replaced when it is one; never another kind of file, a directory
    or the model."""
    out = tmp_path / "out.npz"
    assert main(["run", str(model_path), "-o", str(out)]) == 0
    assert f"wrote {out}: probs float32[1, 3]" in capsys.readouterr().out
    first = out.read_bytes()
    assert main(["run", str(model_path), "-o", str(out)]) == 0 and out.read_bytes() == first
    capsys.readouterr()
    (tmp_path / "notes.npz").write_text("my notes")
    (tmp_path / "dir.npz").mkdir()
    for bad, words in ((tmp_path / "out.txt", "-o takes a .npz file name"),
                       (tmp_path / "notes.npz", "exists and is not a .npz file"),
                       (tmp_path / "dir.npz", "exists and is not a .npz file")):
        assert words in one_line_error(capsys, main(["run", str(model_path), "-o", str(bad)]))
    assert (tmp_path / "notes.npz").read_text() == "my notes" and not (tmp_path / "out.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npz", "notes.npz", "out.npz"]


def test_dynamic_batch_noted_and_bound_by_batch(tmp_path, capsys):
    """A symbolic batch dimension is bound to 1 with a note (API: a TinycNote warning), or to --batch N;
    batch 3 gives onnxruntime's outputs for the 3 samples."""
    m = tiny_cnn()
    for v in (m.graph.input[0], m.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    path = tmp_path / "dyn.onnx"
    onnx.save(m, path)
    with pytest.warns(tinyc.TinycNote, match="dynamic batch dimension 'N' bound to 1"):
        assert tinyc.compile(path).graph.values["image"].shape == (1, 1, 8, 8)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "--batch", "3", "--input", f"image={tmp_path / 'x.npy'}",
                 "-o", str(tmp_path / "y.npz")]) == 0
    assert _notes(capsys.readouterr().err) == []
    want, = onnxruntime.InferenceSession(str(path)).run(None, {"image": x})
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["probs"], want, rtol=1e-4, atol=1e-6)
    assert main(["run", str(path), "--batch", "3", "--input", f"image={tmp_path / 'x.npy'}"]) == 0
    assert capsys.readouterr().out.startswith(f"probs: float32[3, 3] argmax={want.argmax(1).tolist()} ")
    assert main(["report", str(path)]) == 0
    assert _notes(capsys.readouterr().err) == [f"tinyc: note: {path}: image: dynamic batch dimension 'N' bound to 1 "
                                               "(batch=N, `--batch N` on the command line, for another size)"]
    line = one_line_error(capsys, main(["report", str(model_path_of(tmp_path)), "--batch", "2"]))
    assert "batch 2 asked for, but the input's batch dimension is fixed at 1" in line
    assert "positive integer" in one_line_error(capsys, main(["report", str(path), "--batch", "0"]))


def model_path_of(folder: Path) -> Path:
    path = folder / "static.onnx"
    onnx.save(tiny_cnn(), path)
    return path


def test_report_of_a_model_too_big_still_shows_its_layers(capsys):
    """The float VWW needs more than DIANA's L2: the table (with each layer's weight bytes) comes first,
    then the one error line."""
    code = main(["report", "zoo:vww:float", "--target", "diana"])
    out, err = capsys.readouterr()
    assert code == 2 and err.strip().endswith("diana has 512000 B") and len(err.strip().splitlines()) == 1
    assert "weights B" in out and "fc1" in out and "total: 59 layers" in out


def test_io_quantization_in_report_and_model_h(mlperf_dir, tmp_path, capsys):
    """An int8-I/O model's input and output scale and zero point, in model.h and the report, are the
    .tflite twin's (the TFLite interpreter's quantization parameters)."""
    from ai_edge_litert.interpreter import Interpreter
    onnx_name, tflite_name = "kws_ref_model.onnx", "kws_ref_model.tflite"
    interp = Interpreter(model_path=str(mlperf_dir / tflite_name))
    (in_scale, in_zp), (out_scale, out_zp) = (interp.get_input_details()[0]["quantization"],
                                              interp.get_output_details()[0]["quantization"])
    assert main(["report", str(mlperf_dir / onnx_name), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["inputs"][0]["scale"], report["inputs"][0]["zero_point"]) == pytest.approx((in_scale, in_zp))
    assert (report["outputs"][0]["scale"], report["outputs"][0]["zero_point"]) == pytest.approx((out_scale, out_zp))
    assert main(["compile", str(mlperf_dir / onnx_name), "-o", str(tmp_path / "p")]) == 0
    header = (tmp_path / "p" / "model.h").read_text()
    assert f"#define KWS_REF_MODEL_INPUT0_ZERO_POINT {in_zp}" in header
    assert f"#define KWS_REF_MODEL_OUTPUT0_ZERO_POINT {out_zp}" in header
    scale = float(header.split("#define KWS_REF_MODEL_INPUT0_SCALE ")[1].split("f")[0])
    assert np.float32(scale) == np.float32(in_scale)
    assert "real = (q + 128) * 0.00390625" in header
