"""Small ONNX models written in code, for tests that need a model of a given form rather than a real network."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tensor(name: str, shape, dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, inits=(), opset: int = 17, ir_version: int = 8, domains=(),
          name: str = "testnet") -> onnx.ModelProto:
    """A model of the default opset `opset`, plus version 1 of every custom domain in `domains`."""
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version)


def tiny_cnn(seed: int = 0) -> onnx.ModelProto:
    """A float classifier with the usual layers: image[1,1,8,8] -> conv, relu, pool, dense, softmax -> probs[1,3]."""
    rng = np.random.default_rng(seed)
    weights = [const("conv_w", rng.standard_normal((4, 1, 3, 3)).astype(np.float32)),
               const("conv_b", rng.standard_normal(4).astype(np.float32)),
               const("fc_w", rng.standard_normal((64, 3)).astype(np.float32) * 0.3),
               const("fc_b", rng.standard_normal(3).astype(np.float32))]
    nodes = [helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["probs"], name="softmax")]
    return model(nodes, [tensor("image", [1, 1, 8, 8])], [tensor("probs", [1, 3])], weights, name="tiny_cnn")
