"""A float ONNX graph under construction: the few layer kinds the MLPerf Tiny networks use.

Weights are drawn from one seeded generator in build order, so a builder's layer order fixes its bytes.
He initialisation (std sqrt(2/fan_in) before a Relu, sqrt(1/fan_in) otherwise) keeps activations
near unit scale through every depth, which is what calibration of random networks needs.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR of opset 17: older onnxruntimes refuse newer IR numbers
BIAS_STD = 0.1


class Net:
    def __init__(self, name: str, seed: int, input_shape: list[int]):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.input_shape = input_shape
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.counts: dict[str, int] = {}

    def _fresh(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}{self.counts[kind]}"

    def _const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def _node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output or name], name=name, **attrs))
        return output or name

    def _params(self, shape: tuple, fan_in: int, relu: bool) -> tuple[np.ndarray, np.ndarray]:
        std = np.sqrt((2.0 if relu else 1.0) / fan_in)
        w = self.rng.normal(0.0, std, shape).astype(np.float32)
        b = self.rng.normal(0.0, BIAS_STD, shape[0] if len(shape) == 4 else shape[1]).astype(np.float32)
        return w, b

    def _relu(self, x: str, relu: bool) -> str:
        return self._node("Relu", [x], x + "_relu") if relu else x

    def conv(self, x: str, cin: int, cout: int, kernel, stride=1, pads=(0, 0, 0, 0), group=1,
             relu=True, kind="conv") -> str:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        name = self._fresh(kind)
        w, b = self._params((cout, cin // group, kh, kw), cin // group * kh * kw, relu)
        self._node("Conv", [x, self._const(name + ".weight", w), self._const(name + ".bias", b)], name,
                   kernel_shape=[kh, kw], strides=[stride, stride], pads=list(pads), group=group,
                   dilations=[1, 1])
        return self._relu(name, relu)

    def dense(self, x: str, k: int, n: int, relu=True, kind="fc") -> str:
        name = self._fresh(kind)
        w, b = self._params((k, n), k, relu)
        mm = self._node("MatMul", [x, self._const(name + ".weight", w)], name, output=name + "_matmul")
        self._node("Add", [mm, self._const(name + ".bias", b)], name + "_bias", output=name)
        return self._relu(name, relu)

    def add(self, a: str, b: str, relu=True) -> str:
        return self._relu(self._node("Add", [a, b], self._fresh("add")), relu)

    def avgpool(self, x: str, kernel: tuple[int, int]) -> str:
        return self._node("AveragePool", [x], self._fresh("avgpool"), kernel_shape=list(kernel),
                          strides=list(kernel))

    def flatten(self, x: str, n: int) -> str:
        name = self._fresh("flatten")
        return self._node("Reshape", [x, self._const(name + ".shape", np.array([1, n], np.int64))], name)

    def softmax(self, x: str) -> str:
        return self._node("Softmax", [x], self._fresh("softmax"), axis=-1)

    def finish(self, out: str, out_shape: list[int]) -> onnx.ModelProto:
        """The model with `out` renamed to the graph output "output", checked."""
        for n in self.nodes:
            n.input[:] = ["output" if i == out else i for i in n.input]
            n.output[:] = ["output" if o == out else o for o in n.output]
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="tinyc.zoo", ir_version=IR_VERSION)
        onnx.checker.check_model(model, full_check=True)
        return model
