"""Post-training static quantization of a float ONNX model to int8 QDQ, written by tinyc itself.

The output follows the tf2onnx style of the official MLPerf Tiny models, which canonicalize reads:
- weight: int8 initializer -> DequantizeLinear, zero point 0; conv [O, I/g, kh, kw] per-channel on
  axis 0, dense [K, N] per-channel on axis 1 (a scalar scale when per_channel=False);
- bias: int32 initializer -> DequantizeLinear, scale = input scale * weight scale, zero point 0;
- layer: Conv(DQ x, DQ w[, DQ b]); dense: MatMul(DQ x, DQ w)[ -> Add(., DQ b)] (Gemm becomes that);
  Add(DQ a, DQ b); AveragePool/MaxPool/GlobalAveragePool(DQ x) keep their input's scale;
  Softmax(DQ x) -> Q at scale 2^-8, zero point -128;
- then [Relu|Clip ...] -> [Clip(-64 s or 0 after Relu, 63 s) on the 7-bit inputs of ternary layers]
  -> QuantizeLinear -> one DequantizeLinear per tensor, shared by its consumers;
- Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Identity act on the int8 tensor (Q -> Reshape -> DQ).
Float I/O: input -> Q ... DQ -> output. io="int8": the graph input and output themselves are int8.
"""
from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyc.errors import BadModelError, TinycError, UnsupportedError

SHAPE_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity"}
POOL_OPS = {"AveragePool", "GlobalAveragePool", "MaxPool"}
ACT_OPS = {"Relu", "Clip"}
LAYER_OPS = {"Conv", "MatMul", "Gemm"}
SUPPORTED = SHAPE_OPS | POOL_OPS | ACT_OPS | LAYER_OPS | {"Add", "Softmax", "Constant"}
SOFTMAX_QPARAMS = (2.0 ** -8, -128)  # TFLite's fixed softmax output: [0, 1) over all 256 codes
INT32 = np.iinfo(np.int32)


def quantize(model, calibration, per_channel=True, power_of_two=False, ternary=None,
             method="minmax", percentile=99.99, io="float") -> onnx.ModelProto:
    """Quantize a float ONNX model (path, bytes or ModelProto) to int8 QDQ.

    calibration: an array of N samples for the model's single input, shaped (N, *shape without the
    batch) or (N, 1, *shape without the batch), or a dict input name -> such an array (same N).
    power_of_two: every scale rounded up to a power of two, symmetric activations (zero point 0).
    ternary: None, "auto" (every conv/dense but the first, the last and depthwise ones) or node names:
    those weights become {-1, 0, 1} (TWN threshold 0.7 mean|w|, scale the mean kept magnitude, to the
    nearest power of two with power_of_two) and their input activations are clamped to 7 bits.
    method: "minmax" or "percentile" (ranges cut at `percentile` and 100 - `percentile`).
    io: "float" keeps float graph input/output; "int8" makes them int8 (read the scales off the
    DequantizeLinear after the input and the QuantizeLinear before the output).
    """
    if method not in ("minmax", "percentile"):
        raise ValueError(f"method must be 'minmax' or 'percentile', not {method!r}")
    if io not in ("float", "int8"):
        raise ValueError(f"io must be 'float' or 'int8', not {io!r}")
    proto, file = _load(model)
    try:
        q = _Quantizer(proto, per_channel, power_of_two, ternary)
        ranges = _calibrate(q.emit(), q.activations, _samples(calibration, q.inputs), method, percentile)
        return q.emit(q.qparams(ranges), io)
    except TinycError as err:
        raise err.located(file=file)


def quantize_file(model_path, calib_npy_path, out_path, power_of_two=False, percentile=None):
    """The CLI's `tinyc quantize`: calibration from a .npy array (or a .npz of input name -> array)."""
    try:
        data = np.load(calib_npy_path)
    except (OSError, ValueError) as err:
        raise TinycError(f"cannot read calibration data: {err}", file=str(calib_npy_path)) from None
    calibration = dict(data) if isinstance(data, np.lib.npyio.NpzFile) else data
    model = quantize(model_path, calibration, power_of_two=power_of_two,
                     method="minmax" if percentile is None else "percentile",
                     percentile=99.99 if percentile is None else percentile)
    onnx.save(model, out_path)


def _load(model):
    file = None if isinstance(model, (onnx.ModelProto, bytes, bytearray)) else str(model)
    try:
        if isinstance(model, onnx.ModelProto):
            proto = onnx.ModelProto()
            proto.CopyFrom(model)
        else:
            proto = onnx.load(file) if file else onnx.load_from_string(bytes(model))
        onnx.checker.check_model(proto)
    except OSError as err:
        raise BadModelError(f"cannot read the model: {err.strerror or err}", file=file) from None
    except onnx.checker.ValidationError as err:
        raise BadModelError(f"fails the ONNX checker: {str(err).splitlines()[0]}", file=file) from None
    except Exception as err:  # protobuf's DecodeError and friends: whatever it was, it is not ONNX
        raise BadModelError(f"not an ONNX model ({type(err).__name__})", file=file) from None
    if _opset(proto) < 13:  # per-channel DequantizeLinear and input-style Clip/Squeeze need opset 13
        proto = onnx.version_converter.convert_version(proto, 17)
    return proto, file


def _opset(model):
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _attr(node, name, default):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _pow2_ceil(x):
    mant, exp = np.frexp(np.asarray(x, np.float64))
    return np.ldexp(1.0, np.where(mant == 0.5, exp - 1, exp))


def _channels(w, axis, per_channel):
    """The axes a weight scale reduces over, and the shape that broadcasts the scale back over w."""
    if not per_channel:
        return tuple(range(w.ndim)), (1,) * w.ndim
    return tuple(i for i in range(w.ndim) if i != axis), tuple(-1 if i == axis else 1 for i in range(w.ndim))


def _int8_weights(w, axis, per_channel, power_of_two):
    red, shape = _channels(w, axis, per_channel)
    amax = np.abs(w).max(axis=red)
    scale = np.where(amax > 0, amax, 1.0) / 127  # an all-zero channel quantizes to 0 at any scale
    scale = (_pow2_ceil(scale) if power_of_two else scale).astype(np.float32)
    return np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def _ternarize(w, axis, per_channel, power_of_two):
    """TWN: the weights above 0.7 mean|w| become +-1, scaled by the mean magnitude of those kept."""
    red, _ = _channels(w, axis, per_channel)
    mag = np.abs(w)
    kept = mag > 0.7 * mag.mean(axis=red, keepdims=True)
    alpha = (mag * kept).sum(axis=red) / np.maximum(kept.sum(axis=red), 1)
    alpha = np.where(alpha > 0, alpha, 1.0)
    if power_of_two:  # a ternary scale clips nothing, so the nearest power of two beats rounding up
        alpha = np.exp2(np.round(np.log2(alpha)))
    return (np.sign(w) * kept).astype(np.int8), alpha.astype(np.float32)


class _Quantizer:
    """The float graph read as layers (Gemm and MatMul + Add become one dense kind), activation
    tensors grouped by shared quantization, and the two emissions: float (calibrated) and QDQ."""

    def __init__(self, model, per_channel, power_of_two, ternary):
        self.model, self.per_channel, self.power_of_two = model, per_channel, power_of_two
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
            elif n.op_type == "Add" and n.name not in self.fused and any(t in self.consts for t in n.input):
                raise UnsupportedError("Add of a constant that is not a dense layer's bias", node=n.name)
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
        elif n.op_type == "MatMul":
            if w.ndim != 2:
                raise UnsupportedError(f"MatMul weight of rank {w.ndim} (need a dense [K, N])", node=n.name)
            users = self.consumers[out]
            if out not in self.outputs and len(users) == 1 and users[0].op_type == "Add":
                add = users[0]
                other = add.input[1] if add.input[0] == out else add.input[0]
                if other in self.consts and self.consts[other].size == w.shape[1]:
                    bias, out = self.consts[other].astype(np.float32).reshape(-1), add.output[0]
                    self.bias_add[n.name] = add
                    self.fused.add(add.name)
        self.w[n.name], self.b[n.name], self.out[n.name] = w, bias, out

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
        if n.op_type in POOL_OPS:  # pools requantize nothing: their output keeps the input's scale
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
            t, alpha = self.tern[name] = _ternarize(w, axis, self.per_channel, self.power_of_two)
            self.w[name] = t * alpha.reshape(_channels(w, axis, self.per_channel)[1])
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
            if self.power_of_two:
                q[root] = (float(_pow2_ceil(max(-lo, hi, 1e-30) / qmax)), 0, bits)
            else:
                scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
                q[root] = (scale, int(np.clip(np.round(qmin - lo / scale), qmin, qmax)), bits)
        return q

    def emit(self, q=None, io="float"):
        """The float graph (q None) or the QDQ graph with the quantization parameters q."""
        return _Emitter(self, q, io == "int8").model()


class _Emitter:
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
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _opset(s.model))],
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
        qw, ws = s.tern.get(name) or _int8_weights(w, axis, s.per_channel, s.power_of_two)
        wdq = self._dq_const(name + ".weight", qw, ws, axis)
        if b is None:
            return wdq, None
        bs = (np.float32(self.q[s.find(n.input[0])][0]) * ws).astype(np.float32)  # exact for powers of two
        qb = np.clip(np.round(b / bs), INT32.min, INT32.max).astype(np.int32)
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


def _samples(calibration, inputs):
    """The calibration data as a list of feeds, each a dict input name -> batch-1 array."""
    if not isinstance(calibration, dict):
        if len(inputs) != 1:
            raise TinycError(f"the model has {len(inputs)} inputs: pass calibration as a dict name -> array")
        calibration = {next(iter(inputs)): calibration}
    arrays = {}
    for name, dims in inputs.items():
        if name not in calibration:
            raise TinycError(f"no calibration data for input {name!r}")
        a, one = np.asarray(calibration[name], dtype=np.float32), tuple(dims[1:])
        if a.shape[1:] not in (one, (1, *one)):
            shape = ", ".join(map(str, one))
            raise TinycError(f"calibration data for input {name!r} has shape {a.shape}; expected "
                             f"(N, {shape}) or (N, 1, {shape})")
        arrays[name] = a.reshape(len(a), 1, *one)
    counts = {len(a) for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise TinycError(f"calibration arrays hold different or zero sample counts: {sorted(counts)}")
    return [{k: a[i] for k, a in arrays.items()} for i in range(counts.pop())]


def _calibrate(model, tensors, samples, method, percentile):
    """(min, max) of every tensor over the samples, read from the float model run by onnxruntime."""
    import onnxruntime as ort

    inputs = {i.name for i in model.graph.input}
    probe = [t for t in dict.fromkeys(tensors) if t not in inputs]
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in probe)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one thread: the same ranges, hence the same bytes, every run
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    keep = (lambda v: v.ravel()) if method == "percentile" else (lambda v: np.array([v.min(), v.max()]))
    values = defaultdict(list)
    for feed in samples:
        for name, v in [*zip(probe, sess.run(probe, feed)), *feed.items()]:
            values[name].append(keep(v))
    lo, hi = (0, 100) if method == "minmax" else (100 - percentile, percentile)
    return {t: tuple(float(np.percentile(np.concatenate(vs), p)) for p in (lo, hi)) for t, vs in values.items()}
