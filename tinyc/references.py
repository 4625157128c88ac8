"""The reference runtimes `tinyc validate` compares the emitted C with, each keeping every intermediate
tensor: onnxruntime on a copy of the compiled ONNX model (those tensors made graph outputs), and the
TFLite interpreter's reference kernels on a .tflite twin (every tensor preserved).

Both offer: `name`; `inputs` and `outputs` as (name, shape, dtype); `order`, the tensors an order
pairing may use, in execution order; and run(feeds, ours) -> (every tensor by name end to end, every
tensor by name with each layer fed tinyc's values of its inputs, or None where the runtime cannot).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .ir.ops import OPS


class OnnxRuntime:
    """onnxruntime on copies of the model whose every tensor tinyc also computes is a graph output: one
    run end to end, one with each such tensor fed from tinyc's run instead (so that a layer is measured
    alone, on the same input as tinyc's). Like TFLite: name, inputs and outputs as (name, shape, dtype),
    `order` (the tensors an order pairing may use; none: tinyc keeps every ONNX name it computes) and
    run(feeds, ours) -> (tensors by name end to end, tensors by name layer by layer or None)."""

    FED = "__tinyc"  # suffix of the graph input that feeds tinyc's value of a tensor

    def __init__(self, model, wanted: dict[str, tuple[tuple[int, ...], str]]):
        import onnx
        proto = _onnx_proto(model)
        inferred = onnx.shape_inference.infer_shapes(proto)
        types = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input)}
        outputs = [o.name for o in proto.graph.output]
        init = {i.name for i in proto.graph.initializer}
        self.name = "onnxruntime"
        self.inputs = [(i.name, tuple(d.dim_value if d.HasField("dim_value") else -1
                                      for d in i.type.tensor_type.shape.dim), _np_dtype(i.type))
                       for i in proto.graph.input if i.name not in init]
        self.outputs = [(o, (), "") for o in outputs]
        self.order = []
        named = [o for n in proto.graph.node for o in n.output if o in wanted and o in types]
        proto.graph.output.extend(types[t] for t in named if t not in outputs)
        # fed from tinyc where it can stand in (a tensor that does not is refused by the mapping); a uint8
        # tensor tinyc holds as int8 (flip_sign: q_u8 - 128 == q_s8) is fed flipped back
        shared = [t for t in named if same_codes(_np_dtype(types[t].type), wanted[t][1])
                  and _fits(types[t].type, wanted[t][0])]
        self.fed_dtype = {t: _np_dtype(types[t].type) for t in shared}
        self.fetch = [o.name for o in proto.graph.output]
        self.session = _session(proto)
        for node in proto.graph.node:
            node.input[:] = [v + self.FED if v in shared else v for v in node.input]
        for t in shared:
            fed = proto.graph.input.add()
            fed.CopyFrom(types[t])
            fed.name = t + self.FED
        self.fed = shared
        self.alone = _session(proto)

    def run(self, feeds, ours):
        given = {name: x for (name, _, _), x in zip(self.inputs, feeds)}
        chained = dict(zip(self.fetch, self.session.run(self.fetch, given)))
        given.update({t + self.FED: _flipped(ours[t], self.fed_dtype[t]) for t in self.fed})
        return chained, dict(zip(self.fetch, self.alone.run(self.fetch, given)))


def same_codes(ref_dtype: str, dtype: str) -> bool:
    """Whether tinyc's tensor of `dtype` holds the reference's codes of `ref_dtype`, as is or flipped."""
    return ref_dtype == dtype or {ref_dtype, dtype} == {"int8", "uint8"}


def _flipped(x: np.ndarray, dtype: str) -> np.ndarray:
    """tinyc's codes as the reference's `dtype` holds them: int8 <-> uint8 by the top bit, as flip_sign does."""
    return x if x.dtype.name == dtype else OPS["flip_sign"].compute([x], {"dtype": dtype})[0]


def _fits(type_proto, shape: tuple[int, ...]) -> bool:
    """Whether a tensor of `shape` can be fed where the ONNX type stands (a dynamic dimension takes any size)."""
    dims = type_proto.tensor_type.shape.dim
    return len(dims) == len(shape) and all(not d.HasField("dim_value") or d.dim_value == n for d, n in zip(dims, shape))


def _np_dtype(type_proto) -> str:
    import onnx
    return onnx.helper.tensor_dtype_to_np_dtype(type_proto.tensor_type.elem_type).name


def _session(proto):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise InputError(f"onnxruntime cannot run the model: {' '.join(str(e).split())[:200]}") from None


class TFLite:
    """The TFLite interpreter's reference kernels with every tensor kept; `order`: op outputs in execution
    order."""
    def __init__(self, path: str):
        import warnings
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        try:
            with warnings.catch_warnings():  # keeping every tensor is what validation is for
                warnings.simplefilter("ignore")
                self.interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                          experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
            self.interp.allocate_tensors()
        except Exception as e:
            raise InputError(f"not a TFLite model the interpreter can load: {' '.join(str(e).split())[:200]}",
                             file=str(path)) from None
        self.name = f"tflite {path}"
        details = {d["index"]: d for d in self.interp.get_tensor_details()}
        self.details = details
        self.inputs = [(d["name"], tuple(d["shape"]), np.dtype(d["dtype"]).name) for d in self.interp.get_input_details()]
        self.input_index = [d["index"] for d in self.interp.get_input_details()]
        self.outputs = [(d["name"], tuple(d["shape"]), np.dtype(d["dtype"]).name)
                        for d in self.interp.get_output_details()]
        self.order = [details[i]["name"] for op in self.interp._get_ops_details() for i in op["outputs"] if i >= 0]
        self.by_name = {details[i]["name"]: i for op in self.interp._get_ops_details() for i in op["outputs"] if i >= 0}

    def run(self, feeds, ours):
        for index, x in zip(self.input_index, feeds):
            self.interp.set_tensor(index, x)
        self.interp.invoke()
        return {name: np.array(self.interp.get_tensor(i)) for name, i in self.by_name.items()}, None


def _onnx_proto(model):
    import onnx
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        return proto
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    return onnx.load(str(model))


def reference_for(cm, reference, wanted: dict[str, tuple[tuple[int, ...], str]]):
    """"onnxruntime" or a .tflite path (str or Path) -> the reference runtime."""
    if reference == "onnxruntime":
        if cm.model is None:
            raise InputError("this CompiledModel does not know the ONNX model it came from; compile it with "
                             "tinyc.compile, or give a .tflite reference")
        return OnnxRuntime(cm.model, wanted)
    path = Path(reference)
    if path.suffix != ".tflite":
        raise InputError(f"reference must be 'onnxruntime' or a .tflite file, not {str(reference)!r}")
    if not path.is_file():
        raise InputError("no such .tflite file", file=str(path))
    return TFLite(str(path))
