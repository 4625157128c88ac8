"""ONNX -> tinyc Graph. Each ONNX node becomes one or a few IR ops (tinyc/frontend/onnx_ops.py, onnx_qops.py);
values keep their ONNX names so that errors and reports speak the model's language."""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import BadModelError, DoesNotFitError, NeedsConstantError, TinycError, UnsupportedError
from ..ir.graph import Graph, Value
from ..ir.ops import OPS
from ..ir.verify import verify
from .loader import TENSOR_DTYPES, default_opset, dtype_name, load, node_label, op_name
from . import onnx_qops, onnx_qops_contrib  # noqa: F401  (register the quantization converters)
from . import onnx_ops_math, onnx_ops_nn, onnx_ops_rnn, onnx_ops_tensor  # noqa: F401  (register the other converters)
from .onnx_ops import CONVERTERS

QUANT_BOUNDARY = ("quantize", "dequantize", "flip_sign")  # never folded by Context.emit
MAX_TENSOR_BYTES = 2 ** 32  # no tensor of a 32-bit microcontroller is larger than its address space


class Context:
    """What a converter needs: the graph being built, constants by name, and `emit` to add an op."""

    def __init__(self, graph: Graph, node: onnx.NodeProto, opset: int, readers: dict[str, int] | None = None):
        self.graph = graph
        self.node = node
        self.opset = opset
        self.readers = readers or {}  # value name -> how many nodes and graph outputs of the model read it

    def value(self, name: str) -> Value:
        return self.graph.values[name]

    def const(self, index: int, what: str) -> np.ndarray | None:
        """The constant data of input `index`, None when omitted; an error when computed at run time."""
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        v = self.graph.values[self.node.input[index]]
        if not v.is_const:
            raise NeedsConstantError(f"{what} must be a constant (an initializer), it is computed at run time",
                                     value=v.name)
        return v.data

    def emit(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        """Add an IR node; its output is named `out` (an ONNX name) or gets a fresh name. An op whose
        inputs are all constants is computed now and its output is a constant (shape arithmetic such as
        PyTorch's Shape -> Gather -> Concat -> Reshape folds away), the quantization boundary aside:
        canonicalize reads DequantizeLinear of constant weights as the weights' quantization."""
        ins = [self.graph.values[v] if v else None for v in inputs]
        (shape, dtype), = OPS[op].infer(ins, attrs)
        check_shape(tuple(int(d) for d in shape), dtype, f"the output of {op}")
        name = out if out is not None else self.graph.unique_value_name(f"{self.node.name or self.node.op_type}_{op}")
        present = [v for v in ins if v is not None]
        if present and all(v.is_const for v in present) and op not in QUANT_BOUNDARY:
            data, = OPS[op].compute([v.data if v is not None else None for v in ins], attrs)
            self.graph.add_value(Value(name, tuple(int(d) for d in shape), dtype, data=np.array(data, order="C")))
            return name
        self.graph.add_value(Value(name, tuple(int(d) for d in shape), dtype))
        self.graph.add_node(f"{self.node.name or self.node.op_type}" + ("" if out else f"/{op}"), op, inputs, [name],
                            **attrs)
        return name

    def add_const(self, base: str, data: np.ndarray) -> str:
        return self.graph.add_const(base, data).name


def check_shape(shape: tuple[int, ...], dtype: str, what: str) -> None:
    """Static buffers need every tensor non-empty and addressable; sizes in Python ints never overflow."""
    if any(d < 0 for d in shape):
        raise BadModelError(f"{what} has an impossible shape {list(shape)}")
    if 0 in shape:
        raise UnsupportedError(f"{what} is empty (shape {list(shape)}); tinyc does not support zero-size tensors")
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes >= MAX_TENSOR_BYTES:
        raise DoesNotFitError(f"{what} is a {dtype}{list(shape)} tensor of {nbytes} B, more than a 32-bit "
                              "microcontroller can address")


def _tensor_dtype(elem_type: int, what: str) -> str:
    if elem_type not in TENSOR_DTYPES:
        raise UnsupportedError(f"{what} has dtype {dtype_name(elem_type)}; tinyc supports "
                               + ", ".join(TENSOR_DTYPES.values()))
    return TENSOR_DTYPES[elem_type]


def from_onnx(model, source: str | None = None, batch: int | None = None) -> Graph:
    proto, source = load(model, source, batch)
    opset = default_opset(proto)
    g = Graph(_c_name(proto.graph.name or "model"))
    g.source = source
    try:
        _convert(proto, g, opset)
    except TinycError as e:
        raise e.located(file=source) from None
    return verify(g.connect(), after="the ONNX frontend")


def _convert(proto: onnx.ModelProto, g: Graph, opset: int) -> None:
    if proto.graph.sparse_initializer:
        raise UnsupportedError("sparse initializers", node=proto.graph.sparse_initializer[0].values.name)
    for init in proto.graph.initializer:
        try:
            dtype = _tensor_dtype(init.data_type, "the initializer")
        except TinycError as e:
            raise e.located(node=init.name) from None
        g.add_value(Value(init.name, tuple(init.dims), dtype, data=np.array(numpy_helper.to_array(init), order="C")))
    for inp in proto.graph.input:
        if inp.name in g.values:
            continue
        try:
            t = inp.type.tensor_type
            shape = tuple(d.dim_value for d in t.shape.dim)
            dtype = _tensor_dtype(t.elem_type, "the input")
            if 0 in shape:  # no run-time tensor, only a parameter such as an empty axes list, can be empty
                raise NeedsConstantError(f"the input is empty (shape {list(shape)}); tinyc does not support "
                                         "zero-size tensors", value=inp.name)
            check_shape(shape, dtype, "the input")
            g.add_value(Value(inp.name, shape, dtype))
        except TinycError as e:
            raise e.located(node=inp.name) from None
        g.inputs.append(inp.name)
    if not g.inputs:
        raise UnsupportedError("the model has no runtime input")
    if not proto.graph.output:
        raise BadModelError("the graph has no outputs: nothing to compute")
    _all_ops_supported(proto.graph)
    readers: dict[str, int] = {}
    for name in [i for node in proto.graph.node for i in node.input] + [o.name for o in proto.graph.output]:
        readers[name] = readers.get(name, 0) + 1
    for node in proto.graph.node:
        where = node_label(node)
        try:
            for name in node.input:
                if name and name not in g.values:
                    raise BadModelError(f"input {name!r} is not defined before this node")
            CONVERTERS[op_name(node)](Context(g, node, opset, readers))
        except TinycError as e:
            raise e.located(node=where) from None
        except Exception as e:  # a converter tripping on a model nobody foresaw still names the node
            raise UnsupportedError(f"{node.op_type}: cannot convert ({type(e).__name__}: {e})",
                                   node=where) from None
    g.outputs = [o.name for o in proto.graph.output]
    for name in g.outputs:
        if name not in g.values:
            raise BadModelError("graph output is never produced", node=name)
    _outputs_are_produced(g)


def _all_ops_supported(graph: onnx.GraphProto) -> None:
    """One error naming every unsupported op of the model (and its first node), not only the first."""
    missing: dict[str, str] = {}
    for node in graph.node:
        op_type = op_name(node)
        if op_type not in CONVERTERS and op_type not in missing:
            missing[op_type] = node_label(node)
    if not missing:
        return
    first = next(iter(missing.values()))
    if len(missing) == 1:
        raise UnsupportedError(f"op {next(iter(missing))} is not supported; tinyc supports "
                               + ", ".join(sorted(CONVERTERS)), node=first)
    ops = ", ".join(f"{op} (node {where})" for op, where in missing.items())
    raise UnsupportedError(f"{len(missing)} ops are not supported: {ops}; tinyc supports "
                           + ", ".join(sorted(CONVERTERS)), node=first)


def _outputs_are_produced(g: Graph) -> None:
    """Every output gets a buffer of its own: a constant output is copied out of the weights."""
    producers = g.producers()
    for name in g.outputs:
        if name in producers:
            continue
        if name in g.inputs:
            raise UnsupportedError("a graph output that is also a graph input", node=name)
        v = g.values.pop(name)
        kept = g.add_const(name + "_const", v.data).name
        g.replace_uses(name, kept)
        g.outputs = [name if o == kept else o for o in g.outputs]
        g.add_value(Value(name, v.shape, v.dtype))
        g.add_node(f"{name}_copy", "reshape", [kept], [name], shape=v.shape)


def _c_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name) or "model"
