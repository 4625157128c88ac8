"""Reading an ONNX model: bytes or file in, checked, opset-normalized, shape-inferred ModelProto out."""
from __future__ import annotations

import os
import re

import onnx
from onnx import external_data_helper, shape_inference, version_converter

from ..errors import BadModelError, InputError, UnsupportedError, note

MIN_OPSET = 13  # older models are converted up to TARGET_OPSET (Softmax, Squeeze, Clip changed at 11-13)
TARGET_OPSET = 17
TENSOR_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64",
}


def dtype_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "undefined"


def node_label(node: onnx.NodeProto) -> str:
    """How errors name a node: its name, or its op and outputs when it has none."""
    return node.name or f"{node.op_type} -> {', '.join(node.output)}"


def op_name(node: onnx.NodeProto) -> str:
    """The op's name in the converter table: its type, prefixed by its domain outside ONNX's own."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def load(model, source: str | None = None, batch: int | None = None) -> tuple[onnx.ModelProto, str]:
    """Return the model and the name to report it by (its path, or "<bytes>"/"<model>"). batch: the size
    a dynamic batch dimension is bound to (default 1, with a note)."""
    if isinstance(model, onnx.ModelProto):
        return _prepare(model, source or "<model>", batch), source or "<model>"
    base_dir = None
    if isinstance(model, (bytes, bytearray)):
        source = source or "<bytes>"
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        base_dir = os.path.dirname(os.path.abspath(model))
        source = source or os.fspath(model)
        try:
            with open(model, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BadModelError(f"cannot read the file: {e.strerror}", file=source) from None
    else:
        raise BadModelError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    if not data:
        raise BadModelError("the file is empty, not an ONNX model", file=source)
    try:
        proto = onnx.ModelProto.FromString(data)
    except Exception:
        raise BadModelError("not an ONNX model (the protobuf does not parse; truncated or another format?)",
                            file=source) from None
    if base_dir is not None:
        _load_external_data(proto, base_dir, source)
    return _prepare(proto, source, batch), source


def _load_external_data(model: onnx.ModelProto, base_dir: str, source: str) -> None:
    """Weights stored beside the model are found relative to the model's folder, not the working directory."""
    for tensor in model.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        try:
            external_data_helper.load_external_data_for_tensor(tensor, base_dir)
        except Exception as e:
            raise BadModelError(f"cannot read the weights stored outside the model: {_complaint(e)[0]}",
                                file=source, node=tensor.name) from None
        tensor.data_location = onnx.TensorProto.DEFAULT  # the data is inside now, as onnx.load leaves it
        del tensor.external_data[:]


def _prepare(model: onnx.ModelProto, source: str, batch: int | None) -> onnx.ModelProto:
    if not model.HasField("graph") or not model.opset_import:
        raise BadModelError("not an ONNX model (no graph or no opset import)", file=source)
    _check_names(model.graph, source)
    _check_dataflow(model.graph, source)
    opset = default_opset(model)
    if opset > onnx.defs.onnx_opset_version():  # ops of an unknown opset may mean something else
        raise UnsupportedError(f"opset {opset} is newer than the newest this onnx package knows "
                               f"({onnx.defs.onnx_opset_version()})", file=source)
    if 0 < opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, TARGET_OPSET)
        except Exception as e:
            raise UnsupportedError(f"cannot convert opset {opset} to {TARGET_OPSET}: {_complaint(e)[0]}",
                                   file=source) from None
    model = _bind_batch(model, source, batch)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        reason, node = _complaint(e)
        raise BadModelError(f"the ONNX checker rejects the model: {reason}", file=source, node=node) from None
    try:
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:
        reason, node = _complaint(e)
        raise BadModelError(f"ONNX type and shape inference fails: {reason}", file=source, node=node) from None


def _check_names(graph: onnx.GraphProto, source: str) -> None:
    """ONNX strings are proto2 strings, not checked when parsed: one that is not UTF-8 arrives as bytes."""
    names = [graph.name] + [v.name for v in (*graph.input, *graph.output, *graph.value_info, *graph.initializer)]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise BadModelError(f"a name is not UTF-8 text: {bad!r}", file=source)


def _check_dataflow(graph: onnx.GraphProto, source: str) -> None:
    """Every node input is defined before the node. The checker says only "not topologically sorted";
    this names the node and tells a missing value from a cycle."""
    defined = {""} | {v.name for v in graph.input} | {t.name for t in graph.initializer} | \
        {t.values.name for t in graph.sparse_initializer}
    made_later = {o for n in graph.node for o in n.output}
    for node in graph.node:
        for name in node.input:
            if name not in defined:
                why = ("made by a later node (the graph has a cycle, or its nodes are out of order)"
                       if name in made_later else "not defined anywhere in the graph")
                raise BadModelError(f"input {name!r} is {why}", file=source, node=node_label(node))
        defined.update(node.output)


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _bind_batch(model: onnx.ModelProto, source: str, batch: int | None) -> onnx.ModelProto:
    """A symbolic first dimension of an input is the batch: bind it to `batch` (1 when not given, with a
    note). Any other symbolic dimension would make buffer sizes unknown at compile time, which static
    memory planning cannot do."""
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise InputError(f"batch must be a positive integer, not {batch!r}", file=source)
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    initializers = {i.name for i in model_copy.graph.initializer}
    fixed, bound = {}, False  # each input's static batch; whether a dynamic one was bound
    for inp in model_copy.graph.input:
        if inp.name in initializers:
            continue
        if not inp.type.HasField("tensor_type"):
            raise UnsupportedError("only tensor inputs are supported", file=source, node=inp.name)
        if not inp.type.tensor_type.HasField("shape"):
            raise UnsupportedError("the input has no shape (rank unknown)", file=source, node=inp.name)
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                if axis == 0:
                    fixed[inp.name] = dim.dim_value
                continue
            what = dim.dim_param or "unknown"
            if axis != 0:
                raise UnsupportedError(f"dynamic dimension {axis} ({what!r}): tinyc needs static shapes",
                                       file=source, node=inp.name)
            if batch is None:
                note(f"dynamic batch dimension {what!r} bound to 1 (batch=N, `--batch N` on the command line, "
                     "for another size)", file=source, node=inp.name)
            dim.Clear()
            dim.dim_value, bound = batch or 1, True
    differ = [(name, n) for name, n in fixed.items() if n != batch]
    if batch is not None and not bound and differ:
        name, n = differ[0]
        raise InputError(f"batch {batch} asked for, but the input's batch dimension is fixed at {n} "
                         "(only a dynamic batch dimension can be bound)", file=source, node=name)
    return model_copy


def _complaint(e: Exception) -> tuple[str, str | None]:
    """ONNX's checker and shape inference speak in several lines with the node inside: make it one line,
    and take the node out so that the error's location names it."""
    text = " ".join(str(e).split()) or type(e).__name__
    checker = re.search(r"[Nn]ame: ?(\S*?) ?OpType: (\S+)", text)
    inference = re.search(r"\(op_type:([^,]+), node name: ([^)]*)\)", text)
    node = ((checker.group(1) or checker.group(2)) if checker else
            (inference.group(2) or inference.group(1)) if inference else None)
    text = re.sub(r"\s*==> Context: Bad node spec for node\. Name: ?\S*? ?OpType: \S+", "", text)
    text = re.sub(r"node: name: ?\S*? ?OpType: \S+", "this node", text)
    text = re.sub(r"Inference error\(s\): |\(op_type:[^,]+, node name: [^)]*\): ?|\[\w+Error\] ", "", text)
    return text[:300], node
