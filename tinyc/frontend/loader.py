"""Reading an ONNX model: bytes or file in, checked, opset-normalized, shape-inferred ModelProto out."""
from __future__ import annotations

import os

import onnx
from onnx import shape_inference, version_converter

from ..errors import BadModelError, UnsupportedError

MIN_OPSET = 13  # older models are converted up to TARGET_OPSET (Softmax, Squeeze, Clip changed at 11-13)
TARGET_OPSET = 17
TENSOR_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64",
}


def dtype_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "undefined"


def load(model, source: str | None = None) -> tuple[onnx.ModelProto, str]:
    """Return the model and the name to report it by (its path, or "<bytes>"/"<model>")."""
    if isinstance(model, onnx.ModelProto):
        return _prepare(model, source or "<model>"), source or "<model>"
    if isinstance(model, (bytes, bytearray)):
        source = source or "<bytes>"
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
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
    return _prepare(proto, source), source


def _prepare(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    if not model.HasField("graph") or not model.opset_import:
        raise BadModelError("not an ONNX model (no graph or no opset import)", file=source)
    opset = default_opset(model)
    if opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, TARGET_OPSET)
        except Exception as e:
            raise UnsupportedError(f"cannot convert opset {opset} to {TARGET_OPSET}: {_first_line(e)}",
                                   file=source) from None
    model = _bind_batch(model, source)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise BadModelError(f"the ONNX checker rejects the model: {_first_line(e)}", file=source) from None
    try:
        return shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise BadModelError(f"shape inference fails: {_first_line(e)}", file=source) from None


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _bind_batch(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """A symbolic first dimension of an input is the batch: bind it to 1. Any other symbolic dimension
    would make buffer sizes unknown at compile time, which static memory planning cannot do."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    initializers = {i.name for i in model_copy.graph.initializer}
    for inp in model_copy.graph.input:
        if inp.name in initializers:
            continue
        if not inp.type.HasField("tensor_type"):
            raise UnsupportedError("only tensor inputs are supported", file=source, node=inp.name)
        if not inp.type.tensor_type.HasField("shape"):
            raise UnsupportedError("the input has no shape (rank unknown)", file=source, node=inp.name)
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = 1
            else:
                what = dim.dim_param or "unknown"
                raise UnsupportedError(f"dynamic dimension {axis} ({what!r}): tinyc needs static shapes",
                                       file=source, node=inp.name)
    return model_copy


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
