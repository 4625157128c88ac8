"""transpose_planes (tinyc/passes/transpose_planes.py): layers over tall, narrow planes computed over the
transposed planes, where the PE array's column lanes make that cheaper.

Oracles: onnxruntime for the interpreter on the model built here; the host-only build (config cpu), bit for
bit, for the transposed deployment (the pass changes the layout the layers compute in, never a result);
the cost model's formula by hand for the cycles it saves."""
import re

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

import tinyc
import tinyc.zoo
from onnx_builders import const, model, tensor


def tall_model(seed=0):
    """int8 x[1, 16, 48, 4] -> conv 3x3 -> depthwise 3x3 stride 2 (pads 1, 1, 0, 1) -> two 1x1 convs, their
    sum s and a 3x1 max pool of it; s is a graph output too, so the region both enters and leaves. Every
    scale a power of two."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def dq(name, scale, dtype=np.int8, tag=""):
        inits.extend([const(name + tag + "_s", np.float32(scale)), const(name + tag + "_zp", np.zeros((), dtype))])
        nodes.append(helper.make_node("DequantizeLinear", [name, name + tag + "_s", name + tag + "_zp"],
                                      [name + tag + "_f"]))
        return name + tag + "_f"

    def q(name, src, scale=2.0 ** -4):
        inits.extend([const(name + "_qs", np.float32(scale)), const(name + "_qzp", np.int8(0))])
        nodes.append(helper.make_node("QuantizeLinear", [src, name + "_qs", name + "_qzp"], [name]))
        return name

    def conv(i, x, c_in, c_out, kernel, strides, pads, group=1):
        w = rng.integers(-30, 30, (c_out, c_in // group) + kernel).astype(np.int8)
        inits.extend([const(f"w{i}", w), const(f"b{i}", rng.integers(-200, 200, c_out).astype(np.int32))])
        nodes.append(helper.make_node("Conv", [dq(x, 2.0 ** -4, tag=f"_{i}"), dq(f"w{i}", 2.0 ** -6), dq(f"b{i}", 2.0 ** -10, np.int32)],
                                      [f"c{i}"], kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                                      group=group))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        return q(f"y{i}", f"r{i}")

    a = conv(0, "x", 16, 128, (3, 3), (1, 1), (1, 1, 1, 1))
    mid = conv(1, a, 128, 128, (3, 3), (2, 2), (1, 1, 0, 1), group=128)
    b, c = conv(2, mid, 128, 8, (1, 1), (1, 1), (0, 0, 0, 0)), conv(3, mid, 128, 8, (1, 1), (1, 1), (0, 0, 0, 0))
    nodes.append(helper.make_node("Add", [dq(b, 2.0 ** -4, tag="_add"), dq(c, 2.0 ** -4, tag="_add")], ["sum"]))
    s = q("s", "sum", 2.0 ** -3)
    nodes.append(helper.make_node("MaxPool", [s], ["y"], kernel_shape=[3, 1], strides=[2, 1]))
    return model(nodes, [tensor("x", [1, 16, 48, 4], TensorProto.INT8)],
                 [tensor("y", [1, 8, 11, 2], TensorProto.INT8), tensor(s, [1, 8, 24, 2], TensorProto.INT8)],
                 inits)


TALL = tall_model()


def test_the_interpreter_equals_onnxruntime_on_the_tall_model():
    cm = tinyc.compile(TALL, target="cpu")
    x = cm.random_inputs(1)
    want = ort.InferenceSession(TALL.SerializeToString()).run(None, x)
    got = cm.interpret(x)
    for name, w in zip(("y", "s"), want):
        assert np.abs(got[name].astype(int) - w.astype(int)).max() <= 1  # onnxruntime requantizes in float


def test_tall_planes_run_transposed_bit_exact_with_the_host_build_sanitized():
    cm = tinyc.compile(TALL, target="diana", config="digital")
    host = tinyc.compile(TALL, target="diana", config="cpu")
    for seed in range(3):
        x = cm.random_inputs(seed)
        got, want = cm.run(x, sanitize=seed == 0), host.run(x)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    notes = [entry["lowering"] for entry in cm.report["layers"] if entry["name"].endswith("_planes")]
    assert len(notes) == 1 and notes[0].startswith("transpose_planes: ")
    before, after = map(int, re.search(r"(\d+) -> (\d+) modeled cycles", notes[0]).groups())
    assert after < before
    convs = [entry for entry in cm.report["layers"] if entry["op"] == "qconv"]
    assert [entry["core"] for entry in convs] == ["digital"] * 4
    assert [entry["shapes"]["outputs"][0] for entry in convs] == [[1, 128, 4, 48], [1, 128, 2, 24], [1, 8, 2, 24], [1, 8, 2, 24]]


def test_dscnn_depthwise_cycles_by_hand():
    """DS-CNN's 25x5 planes: the digital core's passes take 16 output channels by 16 output columns, each
    stepping over the 9 taps, plus the job's 100 set-up cycles. 25 rows of 5 columns: 4 * 25 * 1 passes, 1000
    cycles; transposed, 5 rows of 25 columns: 4 * 5 * 2 passes, 460 cycles."""
    cm = tinyc.compile(tinyc.zoo.build("kws", "int8"), target="diana", config="digital")
    dw = next(entry for entry in cm.report["layers"] if entry["name"] == "dw1_q")
    assert dw["shapes"]["outputs"] == [[1, 64, 5, 25]]
    assert dw["modeled"]["cycles"] == 4 * 5 * 2 * 9 + 100


def test_square_planes_and_host_only_builds_are_left_as_they_are():
    for cm in (tinyc.compile(tinyc.zoo.build("ic", "int8"), target="diana", config="digital"),
               tinyc.compile(TALL, target="diana", config="cpu")):
        assert not [entry for entry in cm.report["layers"] if "transpose_planes" in entry.get("lowering", "")]
        assert cm.graph.values[cm.graph.inputs[0]].shape == tuple(cm.report["inputs"][0]["shape"])


def test_validate_compares_transposed_layers_with_the_models_tensors():
    """Against onnxruntime, layer by layer: each transposed layer's output is compared as the model's
    tensor of that name (its planes swapped back), every one within 1 LSB alone."""
    cm = tinyc.compile(TALL, target="diana", config="digital", l1_reuse=False)
    result = cm.validate([cm.random_inputs(seed) for seed in range(2)])
    compared = {layer["tensor"]: layer for layer in result["layers"]}
    assert {"y0", "y1", "y2", "y3", "s", "y"} <= set(compared)
    assert compared["y0"]["shape"] == [1, 128, 48, 4] and compared["y0"]["layer"] == "Conv_q"
    assert all(layer["layer_max_diff"] <= 1 for layer in result["layers"]) and result["first_departure"] is None
