"""The graph rewrite: the float graph again (for calibration) or its QDQ form with the chosen scales."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyc.frontend.loader import default_opset

from .graph import LAYER_OPS, SHAPE_OPS
from .weights import int8_weights

INT32 = np.iinfo(np.int32)


def emit(graph, q=None, io="float") -> onnx.ModelProto:
    """The float graph (q None) or the QDQ graph with the quantization parameters q (graph.qparams)."""
    return QDQEmitter(graph, q, io == "int8").model()


class QDQEmitter:
    # Tensor names in the QDQ graph: `t` float as its producer wrote it (`t_prequant` for a graph
    # output, whose name goes to its last Q or DQ), `t_q` the int8 tensor, `t_dq` its float view.
    def __init__(self, src, q, int8_io):
        self.src, self.q, self.int8_io = src, q, int8_io
        self.nodes, self.inits, self.done = [], {}, set()

    def model(self):
        s, g = self.src, self.src.model.graph
        if self.q and not self.int8_io:
            for x in s.inputs:
                self._quant(x, x)
        for n in s.nodes:
            if n.name not in s.fused:
                self._node(n)
        if self.q and not self.int8_io:
            for o in s.outputs:
                self._dq(o, out=o)
        inputs, outputs = [v for v in g.input if v.name in s.inputs], list(g.output)
        io = [[onnx.ValueInfoProto() for _ in vs] for vs in (inputs, outputs)]
        for new, old in zip(io[0] + io[1], inputs + outputs):
            new.CopyFrom(old)
            if self.q and self.int8_io:
                new.type.tensor_type.elem_type = TensorProto.INT8
        graph = helper.make_graph(self.nodes, g.name, io[0], io[1], initializer=list(self.inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", default_opset(s.model))],
                                  producer_name="tinyc", ir_version=max(s.model.ir_version, 7))
        onnx.checker.check_model(model)
        return model

    def _init(self, name, value):
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def _add(self, op, inputs, output, name, like=None, **attrs):
        node = helper.make_node(op, inputs, [output], name=name, **attrs)
        node.attribute.extend(like.attribute if like is not None else [])
        self.nodes.append(node)
        return output

    def _inputs(self, n):
        """n's inputs, its constant ones (Reshape shapes, Clip bounds) brought along as initializers."""
        return [self._init(t, self.src.consts[t]) if t in self.src.consts else t for t in n.input]

    def _f(self, t):
        return t + "_prequant" if self.q and t in self.src.outputs else t

    def _qn(self, t):
        return t if self.int8_io and (t in self.src.outputs or t in self.src.inputs) else t + "_q"

    def _qinit(self, t):
        root = self.src.find(t)
        scale, zp, _ = self.q[root]
        return self._init(root + "_scale", np.float32(scale)), self._init(root + "_zero_point", np.int8(zp))

    def _dq(self, t, out=None):
        if self.q is None:
            return t
        out = out or t + "_dq"
        if out not in self.done:
            self.done.add(out)
            self._add("DequantizeLinear", [self._qn(t), *self._qinit(t)], out, out + "_dequantize")
        return out

    def _quant(self, t, x):
        """Quantize x (the float value of t), through the 7-bit clamp where t feeds a ternary layer."""
        scale, zp, bits = self.q[self.src.find(t)]
        if bits == 7:
            lo = 0.0 if t in self.src.relu_out else scale * (-64 - zp)
            x = self._add("Clip", [x, self._init(t + "_clip_min", np.float32(lo)),
                                   self._init(t + "_clip_max", np.float32(scale * (63 - zp)))],
                          t + "_clip", t + "_clip")
        self._add("QuantizeLinear", [x, *self._qinit(t)], self._qn(t), t + "_quantize")

    def _dq_const(self, name, q, scale, axis):
        zp = np.zeros_like(scale, q.dtype)
        return self._add("DequantizeLinear", [self._init(name + "_q", q), self._init(name + "_scale", scale),
                                              self._init(name + "_zero_point", zp)],
                         name + "_dq", name + "_dequantize", **({"axis": axis} if scale.ndim else {}))

    def _weights(self, n):
        """Weight and bias of layer n: float initializers, or int8/int32 ones behind a DequantizeLinear."""
        s, name = self.src, n.name
        w, b, axis = s.w[name], s.b[name], 0 if n.op_type == "Conv" else 1
        if self.q is None:
            return self._init(name + ".weight", w), b is not None and self._init(name + ".bias", b)
        qw, ws = s.tern.get(name) or int8_weights(w, axis, s.per_channel(name), s.power_of_two)
        wdq = self._dq_const(name + ".weight", qw, ws, axis)
        if b is None:
            return wdq, None
        bs = (np.float32(self.q[s.find(n.input[0])][0]) * ws).astype(np.float32)  # exact for powers of two
        # in float64: float32 rounds INT32.max up to 2^31, which the cast wraps to INT32.min (flips the sign)
        qb = np.clip(np.round(b.astype(np.float64) / bs), INT32.min, INT32.max).astype(np.int32)
        return wdq, self._dq_const(name + ".bias", qb, bs, 0)

    def _node(self, n):
        s, op = self.src, n.op_type
        if op in SHAPE_OPS:
            ins = self._inputs(n)
            if self.q:
                ins[0] = self._qn(n.input[0])
            self._add(op, ins, self._qn(n.output[0]) if self.q else n.output[0], n.name, like=n)
            return
        if op in LAYER_OPS:
            w, b = self._weights(n)
            x, out = self._dq(n.input[0]), s.out[n.name]
            if op == "Conv":
                y = self._add("Conv", [x, w] + ([b] if b else []), self._f(out), n.name, like=n)
            elif not b:
                y = self._add("MatMul", [x, w], self._f(out), n.name)
            else:
                add = s.bias_add.get(n.name)
                mm = self._add("MatMul", [x, w], n.output[0] if add else out + "_matmul", n.name)
                y = self._add("Add", [mm, b], self._f(out), add.name if add else n.name + "_bias")
        else:
            ins = [self._dq(t) if t and t not in s.consts else t for t in self._inputs(n)]
            y = self._add(op, ins, self._f(n.output[0]), n.name, like=n)
        for act in s.chain[n.name]:
            y = self._add(act.op_type, [y] + self._inputs(act)[1:], self._f(act.output[0]), act.name, like=act)
        if self.q:
            self._quant(s.result[n.name], y)
