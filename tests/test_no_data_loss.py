"""tinyc never deletes or overwrites what it did not write: a user's directory, files, or the input model."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from tinyc.cli import main
from tinyc.compiler import PROJECT_MARK
from onnx_builders import tiny_cnn


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data_loss") / "tiny_cnn.onnx"
    onnx.save(tiny_cnn(), path)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("tinyc: error: "), err
    return err.strip()


def test_compile_into_a_users_directory_touches_nothing(model_path, tmp_path, capsys):
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.c").write_text("int main(void) { return 0; }\n")
    (project / "model.c").write_text("/* the user's own model.c */\n")
    before = snapshot(project)
    line = error_line(capsys, main(["compile", str(model_path), "-o", str(project)]))
    assert f"{project}: not empty" in line and "--force" in line
    assert snapshot(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no staging directory left behind


def test_compile_into_the_current_directory_keeps_the_model(model_path, tmp_path, capsys, monkeypatch):
    work = tmp_path / "here"
    work.mkdir()
    model = work / "m.onnx"
    model.write_bytes(model_path.read_bytes())
    monkeypatch.chdir(work)
    before = snapshot(work)
    error_line(capsys, main(["compile", "m.onnx", "-o", "."]))
    assert snapshot(work) == before


def test_recompile_replaces_tinycs_files_and_keeps_the_users(model_path, tmp_path, capsys):
    project = tmp_path / "proj"
    assert main(["compile", str(model_path), "-o", str(project)]) == 0
    written = set(snapshot(project))
    assert PROJECT_MARK in written and "model.c" in written
    (project / "app.c").write_text("/* added by the user */\n")
    (project / "model.c").write_text("/* edited, to be regenerated */\n")
    assert main(["compile", str(model_path), "-o", str(project)]) == 0
    after = snapshot(project)
    assert set(after) == written | {"app.c"}
    assert after["app.c"] == b"/* added by the user */\n"
    assert b"edited" not in after["model.c"]
    capsys.readouterr()


def test_recompile_removes_only_files_tinyc_listed(model_path, tmp_path, capsys):
    """A file an earlier tinyc wrote and the new project no longer has goes; the mark cannot name a path
    outside the project."""
    project = tmp_path / "proj"
    assert main(["compile", str(model_path), "-o", str(project)]) == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (project / "old_kernel.c").write_text("/* from an older tinyc */\n")
    mark = project / PROJECT_MARK
    mark.write_text(mark.read_text() + "old_kernel.c\n../outside.txt\n")
    assert main(["compile", str(model_path), "-o", str(project)]) == 0
    assert not (project / "old_kernel.c").exists()
    assert outside.read_text() == "keep"
    capsys.readouterr()


def test_force_writes_beside_the_users_files(model_path, tmp_path, capsys):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.c").write_text("/* the user's */\n")
    assert main(["compile", str(model_path), "-o", str(project), "--force"]) == 0
    assert (project / "app.c").read_text() == "/* the user's */\n"
    assert (project / "model.c").is_file() and (project / PROJECT_MARK).is_file()
    capsys.readouterr()


def test_empty_directory_is_used(model_path, tmp_path, capsys):
    project = tmp_path / "empty"
    project.mkdir()
    assert main(["compile", str(model_path), "-o", str(project)]) == 0
    assert (project / "model.c").is_file()
    capsys.readouterr()


def test_output_that_is_a_file_is_refused(model_path, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    line = error_line(capsys, main(["compile", str(model_path), "-o", str(target)]))
    assert "not a directory" in line and target.read_text() == "mine"


@pytest.mark.parametrize("command", ["quantize", "run"])
def test_output_never_overwrites_the_input_model(model_path, tmp_path, capsys, command):
    model = tmp_path / "m.onnx"
    model.write_bytes(model_path.read_bytes())
    before = model.read_bytes()
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((2, 1, 8, 8), np.float32))
    extra = ["--calib", str(calib)] if command == "quantize" else []
    line = error_line(capsys, main([command, str(model), *extra, "-o", os.path.relpath(model)]))
    assert "is the input model" in line
    assert model.read_bytes() == before
