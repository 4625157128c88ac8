"""tinyc quantize for a target's cores: what each core accepts, read off the target's patterns; the range
analysis that proves a ternary layer's 7-bit input through pools; the ops the quantizer folds or tabulates."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
from onnx_builders import const, model, tensor
from tinyc.ir.interpret import interpret
from tinyc.ir.ranges import value_range
from tinyc.quantizer import quantize


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
