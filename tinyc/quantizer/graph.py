"""The float graph read as layers (Gemm and MatMul + Add become one dense kind), its activation
tensors grouped by shared quantization, and the quantization parameters of every group."""
from collections import defaultdict

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tinyc.errors import TinycError, UnsupportedError

from .weights import channels, pow2_ceil, ternarize

SHAPE_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity"}
POOL_OPS = {"AveragePool", "GlobalAveragePool", "MaxPool"}
ACT_OPS = {"Relu", "Clip"}
LAYER_OPS = {"Conv", "MatMul", "Gemm"}
# ops run between DequantizeLinear and QuantizeLinear: data movement and maxima keep their input's
# quantization (their outputs lie in its range); the functions get their own
MOVE_OPS = {"Slice", "Gather", "Tile", "Expand", "DepthToSpace", "SpaceToDepth", "GlobalMaxPool", "ReduceMax"}
FLOAT_OPS = {"Add", "Sub", "Mul", "Div", "Softmax", "Sigmoid", "Tanh", "Erf", "Exp", "LeakyRelu", "Elu", "HardSigmoid",
             "HardSwish", "Max", "Min", "ReduceMean", "Resize"}
# a per-channel affine map of a layer's output, folded into its weights and bias (BatchNormalization
# first; BatchNormalization and an Add of a constant are only supported there)
AFFINE_OPS = {"BatchNormalization", "Mul", "Add", "Sub", "Div"}
SUPPORTED = SHAPE_OPS | POOL_OPS | ACT_OPS | LAYER_OPS | MOVE_OPS | FLOAT_OPS | AFFINE_OPS | {"Constant"}
SOFTMAX_QPARAMS = (2.0 ** -8, -128)  # TFLite's fixed softmax output: [0, 1) over all 256 codes


def _attr(node, name, default):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


class QuantGraph:
    """What the quantizer reads off the float model: layers with their weights and biases, the
    Relu/Clip each quantized node owns, and which tensors share one quantization (qdq.py writes it)."""

    def __init__(self, model, per_channel, power_of_two, ternary):
        """per_channel: True, False, or the names of the layers whose weights get a scale per channel."""
        self.model, self.power_of_two = model, power_of_two
        self.per_channel_layers = per_channel
        g = model.graph
        self.consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.nodes = []
        for i, n in enumerate(g.node):
            n.name = n.name or f"{n.op_type}_{i}"
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED:
                quantized = any(k in n.op_type.lower() for k in ("quantize", "qlinear", "integer"))
                hint = " (the model is already quantized)" if quantized else ""
                raise UnsupportedError(f"op {n.domain + '.' if n.domain else ''}{n.op_type} is not "
                                       f"supported by the quantizer{hint}", node=n.name)
            if n.op_type == "Constant":
                a = n.attribute[0]
                v = helper.get_attribute_value(a)
                self.consts[n.output[0]] = numpy_helper.to_array(v) if a.name == "value" else np.array(v)
            else:
                self.nodes.append(n)
        self.inputs = {v.name: self._dims(v) for v in g.input if v.name not in self.consts}
        self.outputs = [v.name for v in g.output]
        self.consumers = defaultdict(list)
        for n in self.nodes:
            for t in n.input:
                self.consumers[t].append(n)
        # Per layer: weight, bias, output before activations (w, b, out); bias Adds folded in (bias_add).
        # Per quantized node: the Relu/Clip it owns (chain) and the tensor its Q reads (result).
        self.w, self.b, self.out, self.bias_add, self.tern = {}, {}, {}, {}, {}
        self.fused, self.chain, self.result, self.parent = set(), {}, {}, {}
        for n in self.nodes:
            if n.op_type in LAYER_OPS:
                self._layer(n)
            elif n.op_type in ("BatchNormalization", "Add") and n.name not in self.fused and (
                    n.op_type == "BatchNormalization" or any(t in self.consts for t in n.input)):
                what = n.op_type if n.op_type == "BatchNormalization" else f"{n.op_type} of a constant"
                raise UnsupportedError(f"{what} that does not alone follow a Conv, MatMul or Gemm (it is folded "
                                       "into that layer's weights and bias)", node=n.name)
        self.activations, self.softmax_out, self.relu_out = list(self.inputs), set(), set()
        for n in self.nodes:
            if n.name not in self.fused:
                self._activation(n)
        ternary_layers = self._make_ternary(ternary)
        self.ternary_inputs = {n.input[0] for n in self.nodes if n.name in ternary_layers}

    def _dims(self, v):
        t = v.type.tensor_type
        if t.elem_type != TensorProto.FLOAT:
            raise UnsupportedError(f"input {v.name!r} is not float: quantize a float model")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if not dims or dims[0] not in (None, 1) or None in dims[1:]:
            raise UnsupportedError(f"input {v.name!r} has shape {dims}: need batch 1 (or symbolic) "
                                   "and static other dimensions")
        return dims

    def _const(self, n, i):
        if n.input[i] not in self.consts:
            raise UnsupportedError(f"input {i} of {n.op_type} must be a constant (an initializer)", node=n.name)
        return self.consts[n.input[i]].astype(np.float32)

    def _layer(self, n):
        """Weights as conv [O, I/g, kh, kw] or dense [K, N], and the bias if any."""
        w, bias, out = self._const(n, 1), None, n.output[0]
        has_c = len(n.input) > 2 and n.input[2]
        if n.op_type == "Conv" and has_c:
            bias = self._const(n, 2)
        elif n.op_type == "Gemm":
            if _attr(n, "transA", 0):
                raise UnsupportedError("Gemm with transA=1", node=n.name)
            w = (w.T if _attr(n, "transB", 0) else w) * _attr(n, "alpha", 1.0)
            if has_c:
                c = self._const(n, 2) * _attr(n, "beta", 1.0)
                if c.size not in (1, w.shape[1]):
                    raise UnsupportedError(f"Gemm bias of shape {c.shape}", node=n.name)
                bias = np.broadcast_to(c.reshape(-1), (w.shape[1],)).copy()
        elif n.op_type == "MatMul" and w.ndim != 2:
            raise UnsupportedError(f"MatMul weight of rank {w.ndim} (need a dense [K, N])", node=n.name)
        axis = 0 if n.op_type == "Conv" else 1
        while (affine := self._affine(out, w.shape[axis], n.op_type == "Conv")) is not None:
            node, scale, shift = affine
            w = w * scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
            bias = (np.zeros(w.shape[axis], np.float32) if bias is None else bias) * scale + shift
            if n.op_type == "MatMul" and not self.bias_add.get(n.name) and node.op_type == "Add":
                self.bias_add[n.name] = node  # the bias Add keeps its name in the QDQ graph
            self.fused.add(node.name)
            out = node.output[0]
        self.w[n.name], self.b[n.name], self.out[n.name] = w, bias, out

    def _affine(self, t, channels, conv):
        """(node, scale, shift) when the only reader of t maps it y -> scale * y + shift per channel with
        constants: BatchNormalization (inference), or Mul/Add/Sub/Div by a scalar or a per-channel constant."""
        users = self.consumers[t]
        if t in self.outputs or len(users) != 1 or users[0].op_type not in AFFINE_OPS:
            return None
        n = users[0]
        if n.op_type == "BatchNormalization":
            if len(n.output) > 1 and any(n.output[1:]) or not all(i in self.consts for i in n.input[1:5]):
                return None
            gamma, beta, mean, var = (self._channel_const(n.input[i], channels, conv, vector=True)
                                      for i in range(1, 5))
            if any(p is None for p in (gamma, beta, mean, var)):
                return None
            scale = gamma / np.sqrt(var + np.float32(_attr(n, "epsilon", 1e-5)))
            return n, scale.astype(np.float32), (beta - mean * scale).astype(np.float32)
        other = n.input[1] if n.input[0] == t else n.input[0]
        k = self._channel_const(other, channels, conv) if other in self.consts else None
        if k is None or n.input[0] == n.input[1]:
            return None
        one, zero = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        if n.op_type == "Sub":
            return (n, one, -k) if n.input[0] == t else (n, -one, k)
        if n.op_type == "Div":
            return (n, 1 / k, zero) if n.input[0] == t else None
        return (n, k, zero) if n.op_type == "Mul" else (n, one, k)

    def _channel_const(self, name, channels, conv, vector=False):
        """A constant as one value per output channel: a scalar, or [C, 1, 1] after a conv and [C] after a
        dense layer (leading ones allowed), or any [C] with `vector` (BatchNormalization's parameters);
        None for any other shape (it is not a per-channel map)."""
        k = self.consts[name].astype(np.float32)
        if k.size == 1:
            return np.full(channels, k.reshape(()), np.float32)
        want, shape = ((channels,) if vector or not conv else (channels, 1, 1)), k.shape
        while len(shape) > len(want) and shape[0] == 1:
            shape = shape[1:]
        return k.reshape(-1) if shape == want else None

    def per_channel(self, layer):
        p = self.per_channel_layers
        return p if isinstance(p, bool) else layer in p

    def _owns(self, t):
        """The Relu/Clip (constant bounds) that alone reads t, if any: it runs before t's Q."""
        users = self.consumers[t]
        if t in self.outputs or len(users) != 1 or users[0].op_type not in ACT_OPS:
            return None
        return users[0] if all(not i or i in self.consts for i in users[0].input[1:]) else None

    def _activation(self, n):
        """Record where n's output gets quantized, and which tensors share a quantization."""
        if n.input[0] in self.consts:
            raise UnsupportedError(f"{n.op_type} of a constant: fold constants first", node=n.name)
        if n.op_type in SHAPE_OPS:
            self.parent[self.find(n.output[0])] = self.find(n.input[0])
            self.activations.append(n.output[0])
            return
        out, chain = self.out.get(n.name, n.output[0]), []
        while n.op_type != "Softmax" and (act := self._owns(out)):
            chain.append(act)
            self.fused.add(act.name)
            out = act.output[0]
        if n.op_type in POOL_OPS | MOVE_OPS:  # pools requantize nothing: their output keeps the input's scale
            self.parent[self.find(out)] = self.find(n.input[0])
        if n.op_type == "Softmax":
            self.softmax_out.add(out)
        if (chain[-1] if chain else n).op_type == "Relu":
            self.relu_out.add(out)
        self.chain[n.name], self.result[n.name] = chain, out
        self.activations.append(out)

    def find(self, t):
        """The representative of the tensors that share t's quantization (through pools and reshapes)."""
        while self.parent.get(t, t) != t:
            t = self.parent[t]
        return t

    def _make_ternary(self, ternary):
        """Make the chosen layers' weights ternary; the float emission then runs the ternary network."""
        layers = [n for n in self.nodes if n.op_type in LAYER_OPS]
        if ternary is None:
            return set()
        if ternary == "auto":
            names = {n.name for n in layers[1:-1] if _attr(n, "group", 1) == 1}
        else:
            names = {ternary} if isinstance(ternary, str) else set(ternary)
            unknown = names - {n.name for n in layers}
            if unknown:
                raise TinycError(f"ternary: no Conv/MatMul/Gemm node named {', '.join(sorted(unknown))} "
                                 f"(the layers: {', '.join(n.name for n in layers)})")
        for n in layers:
            if n.name not in names:
                continue
            name, w, axis = n.name, self.w[n.name], 0 if n.op_type == "Conv" else 1
            t, alpha = self.tern[name] = ternarize(w, axis, self.per_channel(name), self.power_of_two)
            self.w[name] = t * alpha.reshape(channels(w, axis, self.per_channel(name))[1])
        return names

    def qparams(self, ranges):
        """(scale, zero point, bits) of every group of tensors that share a quantization."""
        groups = defaultdict(list)
        for t in self.activations:
            groups[self.find(t)].append(t)
        q = {}
        for root, members in groups.items():
            bits = 7 if any(m in self.ternary_inputs for m in members) else 8
            if any(m in self.softmax_out for m in members):
                q[root] = (*SOFTMAX_QPARAMS, bits)
                continue
            qmin, qmax = -2 ** (bits - 1), 2 ** (bits - 1) - 1
            lo = min(0.0, *(ranges[m][0] for m in members))
            hi = max(0.0, *(ranges[m][1] for m in members))
            if self.power_of_two:  # a tensor that was always 0 gets scale 1, as below (not 2^-106: the bias
                # of a layer reading it would then overflow int32)
                q[root] = (float(pow2_ceil(max(-lo, hi) / qmax)) if hi > lo else 1.0, 0, bits)
            else:
                scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
                q[root] = (scale, int(np.clip(np.round(qmin - lo / scale), qmin, qmax)), bits)
        return q
