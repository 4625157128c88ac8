"""canonicalize's QDQ folding: QuantizeLinear/DequantizeLinear groups become integer ops.

Every rewrite is anchored at a `quantize` node q: the float computation between the dequantized int8
inputs and q is replaced by integer ops producing q's output, with TFLite's int8 arithmetic
(conv/dense/add/mul: fixed-point multipliers; pools and data movement: on the int8 data). Whatever runs
after the core op (relu, clip, or a change of scale) is folded into clip bounds or a 256-entry table.
Float ops that no QDQ group covers stay float; unused float nodes are pruned at the end.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import geometry as geo
from ..ir import ops as irops
from ..ir import quant_math as qm
from ..ir.graph import Graph, Quant
from ..ir.ops import OPS

# the ops that only move data are moved before the dequantize, by dequantize_after_movement; the ones
# computing on int8 data in their input's quantization are each OpDef's same_quant
MOVES = ("reshape", "transpose", "slice", "expand", "tile", "gather")
EXP_ONE = 1 << 20  # fixed-point 1.0 of the softmax exp table


class _Rewriter:
    def __init__(self, g: Graph):
        self.g = g
        self.producer = {}
        self.refresh()

    def refresh(self):
        self.producer = {o: n for n in self.g.nodes() for o in n.outputs}

    def made_by(self, value: str, op: str):
        n = self.producer.get(value)
        return n if n is not None and n.op == op else None

    def int8_source(self, value: str, per_tensor: bool = True):
        """(int8 value, scale, zero point) when `value` is a dequantized int8/uint8 tensor."""
        dq = self.made_by(value, "dequantize")
        if dq is None:
            return None
        src = self.g.values[dq.inputs[0]]
        scale, zp = np.asarray(dq.attrs["scale"], np.float64), np.asarray(dq.attrs["zero_point"], np.int64)
        if src.dtype not in ("int8", "uint8") or (per_tensor and scale.size != 1):
            return None
        name = dq.inputs[0]
        if src.dtype == "uint8":
            if src.is_const:
                name = self.g.add_const(name + "_s8", (src.data.astype(np.int16) - 128).astype(np.int8)).name
            else:
                name = irops.add(self.g, "flip_sign", [name], name + "_s8", dtype="int8")
            zp = zp - 128
        self.g.values[name].quant = Quant(scale.astype(np.float32), zp.astype(np.int32), dq.attrs["axis"])
        return name, (float(scale[0]) if per_tensor else scale), (int(zp[0]) if per_tensor else zp)

    def tail(self, q):
        """Walk up from q through elementwise float ops: (the value they start from, their nodes top-down)."""
        chain, value = [], q.inputs[0]
        while (n := self.producer.get(value)) is not None and OPS[n.op].elementwise:
            chain.insert(0, n)
            value = n.inputs[0]
        return value, chain

    def table(self, in_scale: float, in_zp: int, chain, q) -> np.ndarray:
        """table[x + 128] = q(chain(dequantize(x))) for every int8 x, with the float ops' own semantics."""
        x = (np.arange(-128, 128, dtype=np.int64) - in_zp).astype(np.float32) * np.float32(in_scale)
        for n in chain:
            x, = OPS[n.op].compute([x], n.attrs)
        y, = OPS["quantize"].compute([x], dict(q.attrs, axis=None))
        return (y.astype(np.int16) - (128 if q.attrs["dtype"] == "uint8" else 0)).astype(np.int8)

    def finish(self, q, result: str):
        """Make `result` (int8) become q's output, flipping to uint8 when q produced uint8."""
        out = q.outputs[0]
        self.g.remove_node(q.name)
        scale, zp = np.asarray(q.attrs["scale"], np.float32), np.asarray(q.attrs["zero_point"], np.int32)
        self.g.values[out].quant = Quant(scale, zp)
        if q.attrs["dtype"] == "uint8":
            self.g.values[result].quant = Quant(scale, zp - 128)
            self.g.add_node(q.name, "flip_sign", [result], [out], dtype="uint8")
            return
        maker = self.g.producers().get(result)
        if maker is not None and result not in self.g.inputs and result not in self.g.outputs and \
                result not in self.g.consumers():
            self.g.set_node(maker, outputs=[out if v == result else v for v in self.g.nx.nodes[maker]["outputs"]])
            del self.g.values[result]
        else:
            self.g.add_node(q.name, "reshape", [result], [out], shape=self.g.values[out].shape)

    def remap(self, q, result: str, scale: float, zp: int, chain) -> str:
        """Map an int8 tensor quantized (scale, zp) through chain and q's quantization, by table."""
        table = self.table(scale, zp, chain, q)
        if not chain and np.array_equal(table, np.arange(-128, 128)):
            return result
        return irops.add(self.g, "lut", [result], q.name + "_lut", table=table)


def _bounds(chain, scale: float, zp: int) -> tuple[int, int] | None:
    """int8 clip bounds equal to relu/clip after an op quantized (scale, zp); None for other ops."""
    lo, hi = -128, 127
    for n in chain:
        if n.op == "relu":
            lo = max(lo, zp)
        elif n.op == "clip":
            lo = max(lo, zp + math.ceil(np.float32(n.attrs["min"]) / np.float32(scale) - 0.5)
                     if np.isfinite(n.attrs["min"]) else lo)
            hi = min(hi, zp + math.floor(np.float32(n.attrs["max"]) / np.float32(scale) + 0.5)
                     if np.isfinite(n.attrs["max"]) else hi)
        else:
            return None
    return lo, min(max(hi, lo), 127)


def _bias(r: _Rewriter, name: str, acc_scale: np.ndarray, channels: int) -> np.ndarray | None:
    """The bias as int32 in the accumulator's scale (in_scale * w_scale), from DQ(int32) or a float const."""
    if not name:
        return np.zeros(channels, np.int32)
    dq = r.made_by(name, "dequantize")
    if dq is not None and r.g.values[dq.inputs[0]].is_const:
        data = r.g.values[dq.inputs[0]].data.astype(np.float64).reshape(-1)
        real = (data - np.asarray(dq.attrs["zero_point"], np.float64)) * np.asarray(dq.attrs["scale"], np.float64)
        if np.allclose(np.broadcast_to(dq.attrs["scale"], (channels,)), acc_scale, rtol=1e-5) and \
                not np.any(dq.attrs["zero_point"]):
            return np.broadcast_to(data, (channels,)).astype(np.int32)
    elif r.g.values[name].is_const and r.g.values[name].dtype == "float32":
        real = r.g.values[name].data.astype(np.float64).reshape(-1)
    else:
        return None
    if real.size not in (1, channels):
        return None
    bias = np.rint(np.broadcast_to(real, (channels,)) / acc_scale)
    if np.any(np.abs(bias) > qm.INT32_MAX):
        return None  # beyond the int32 accumulator (astype would wrap): the layer stays in float
    return bias.astype(np.int32)


def _integer_weighted(r: _Rewriter, core, requant) -> tuple[str, np.ndarray, int] | None:
    """conv or matmul (+ bias add) between dequantized int8 tensors -> qconv / qmatmul with the attributes
    requant(accumulator scale per channel, kind) ({} keeps the int32 accumulator). Returns the output,
    the accumulator's scale and the output's channel axis."""
    bias_name = ""
    if core.op == "add":
        mm = next((r.made_by(v, "matmul") for v in core.inputs if r.made_by(v, "matmul")), None)
        if mm is None:
            return None
        bias_name = core.inputs[1] if core.inputs[0] == mm.outputs[0] else core.inputs[0]
        core = mm
    x = r.int8_source(core.inputs[0])
    w = r.int8_source(core.inputs[1], per_tensor=False)
    if x is None or w is None:
        return None
    wv = r.g.values[w[0]]
    if core.op == "conv":
        channels, axis, kind = wv.shape[0], 0, "qconv"
        bias_name = core.inputs[2] if len(core.inputs) > 2 else ""
    else:
        if len(wv.shape) != 2 or len(r.g.values[x[0]].shape) < 2:
            return None
        channels, axis, kind = wv.shape[1], 1, "qmatmul"
    dq_w = r.made_by(core.inputs[1], "dequantize")
    if np.size(w[1]) > 1 and dq_w.attrs["axis"] != axis:
        return None
    w_scale = np.broadcast_to(w[1], (channels,)).astype(np.float64)
    acc_scale = np.float64(np.float32(x[1])) * w_scale.astype(np.float32).astype(np.float64)
    bias = _bias(r, bias_name, acc_scale, channels)
    if bias is None:
        return None
    b = r.g.add_const(core.name + "_bias", bias).name
    attrs = dict(x_zp=x[2], w_zp=np.broadcast_to(w[2], (channels,)).astype(np.int32), **requant(acc_scale, kind))
    if kind == "qconv":
        attrs.update({k: core.attrs[k] for k in irops.CONV_ATTRS})
    out = irops.add(r.g, kind, [x[0], w[0], b], core.name + "_q", **attrs)
    return out, acc_scale, 1 if kind == "qconv" else len(r.g.values[out].shape) - 1


def _fold_weighted(r: _Rewriter, core, chain, out_scale, out_zp) -> str | None:
    bounds = _bounds(chain, out_scale, out_zp)
    if bounds is None:
        return None
    folded = _integer_weighted(r, core, lambda acc_scale, kind: qm.requant_attrs(
        acc_scale / np.float64(np.float32(out_scale)), out_zp, bounds, kind))
    return folded[0] if folded else None


def _fold_accumulators(g: Graph) -> None:
    """A conv or matmul (+ bias) of dequantized int8 tensors whose float result no quantize takes (onnxruntime's
    QGemm without y_scale, a model's last layer left float): the int32 accumulator, dequantized."""
    r = _Rewriter(g.prune())
    cores = [n for n in g.nodes() if n.op in ("conv", "matmul", "add") and g.values[n.outputs[0]].dtype == "float32"]
    for core in sorted(cores, key=lambda n: n.op != "add"):  # a bias add takes its matmul along
        if core.name not in g.nx or (folded := _integer_weighted(r, core, lambda *_: {})) is None:
            continue
        acc, acc_scale, axis = folded
        g.remove_node(core.name)
        scale = acc_scale.astype(np.float32)
        per_channel = np.unique(scale).size > 1
        g.add_node(core.name, "dequantize", [acc], core.outputs, scale=scale if per_channel else scale[:1],
                   zero_point=np.zeros(scale.size if per_channel else 1, np.int32), axis=axis if per_channel else None)
        r.refresh()


def _fold_add(r: _Rewriter, core, chain, out_scale, out_zp) -> str | None:
    a, b = r.int8_source(core.inputs[0]), r.int8_source(core.inputs[1])
    bounds = _bounds(chain, out_scale, out_zp)
    if a is None or b is None or bounds is None:
        return None
    params = qm.add_params(a[1], b[1], out_scale)
    return irops.add(r.g, "qadd", [a[0], b[0]], core.name + "_q", a_zp=a[2], b_zp=b[2], out_zp=out_zp,
                     out_min=bounds[0], out_max=bounds[1], **params)


def _fold_mul(r: _Rewriter, core, chain, out_scale, out_zp) -> str | None:
    a, b = r.int8_source(core.inputs[0]), r.int8_source(core.inputs[1])
    bounds = _bounds(chain, out_scale, out_zp)
    if a is None or b is None or bounds is None:
        return None
    real = np.float64(np.float32(a[1])) * np.float64(np.float32(b[1])) / np.float64(np.float32(out_scale))
    return irops.add(r.g, "qmul", [a[0], b[0]], core.name + "_q", a_zp=a[2], b_zp=b[2],
                     **qm.requant_attrs(np.array([real]), out_zp, bounds, "qmul"))


def _fold_concat(r: _Rewriter, q, core, chain) -> str | None:
    """A concat of inputs quantized unlike each other: each is mapped to the output's quantization by a
    table first (what onnxruntime's QLinearConcat does, so both agree exactly)."""
    sources = [r.int8_source(v) for v in core.inputs]
    if chain or any(s is None for s in sources) or len({(s[1], s[2]) for s in sources}) == 1:
        return None
    moved = [r.remap(q, name, scale, zp, []) for name, scale, zp in sources]
    return irops.add(r.g, "concat", moved, core.name + "_q", axis=core.attrs["axis"])


def _fold_same_quant(r: _Rewriter, q, core, chain) -> str | None:
    """Data movement and pooling run on int8 data in their input's quantization; the rest is a table."""
    sources = [r.int8_source(v) for v in core.inputs]
    if any(s is None for s in sources) or len({(s[1], s[2]) for s in sources}) != 1:
        return None
    _, scale, zp = sources[0]
    attrs = dict(core.attrs)
    op = core.op
    if op == "avgpool":
        op = "qavgpool"
        attrs.update(x_zp=zp, out_min=-128, out_max=127)
    elif op == "pad":
        value, = OPS["quantize"].compute([np.float32([attrs["value"]])],
                                         dict(scale=[scale], zero_point=[zp], axis=None, dtype="int8"))
        attrs["value"] = int(value[0])
    moved = irops.add(r.g, op, [s[0] for s in sources], core.name + "_q", **attrs)
    r.g.values[moved].quant = Quant(np.float32([scale]), np.int32([zp]))
    return r.remap(q, moved, scale, zp, chain)


def _fold_average(r: _Rewriter, core, chain, out_scale, out_zp) -> str | None:
    """An average pool whose output is quantized unlike its input: qavgpool_requant, one rounding (a pool
    in the input's quantization and then a table would round twice, up to 3 LSB off measured)."""
    x = r.int8_source(core.inputs[0])
    bounds = _bounds(chain, out_scale, out_zp)
    a = core.attrs
    if x is None or bounds is None or (np.float32(x[1]) == np.float32(out_scale) and x[2] == out_zp):
        return None
    out_sp = r.g.values[core.outputs[0]].shape[2:]
    counts = geo.valid_counts(r.g.values[x[0]].shape[2:], a["kernel"], a["strides"], a["pads"], a["dilations"],
                              out_sp, a["count_include_pad"]).astype(np.int64)
    lo, hi = int(counts.min()), int(counts.max())
    step = np.float64(np.float32(x[1])) / np.float64(np.float32(out_scale))
    real = np.array([step / c if c else 0.0 for c in range(lo, hi + 1)])
    return irops.add(r.g, "qavgpool_requant", [x[0]], core.name + "_q", x_zp=x[2], count_min=lo,
                     **{k: a[k] for k in irops.POOL_ATTRS + ("count_include_pad",)},
                     **qm.requant_attrs(real, out_zp, bounds, "qavgpool_requant"))


def _fold_softmax(r: _Rewriter, core, chain, out_scale, out_zp) -> str | None:
    x = r.int8_source(core.inputs[0])
    if x is None or chain:
        return None
    d = np.arange(256, dtype=np.float64)
    table = np.rint(np.exp(-d * np.float64(np.float32(x[1]))) * EXP_ONE).astype(np.int64)
    inv = int(round((1 << irops.SOFTMAX_FRAC_BITS) / np.float64(np.float32(out_scale))))
    return irops.add(r.g, "qsoftmax", [x[0]], core.name + "_q", axis=core.attrs["axis"], table=table,
                     inv_out_scale=inv, out_zp=out_zp)


def dequantize_after_movement(g: Graph) -> Graph:
    """move(dequantize(x)) -> dequantize(move(x)) for an op that only moves data (per-axis scales through a
    transpose only, their axis following it): the quantized tensor moves as int8, however many moves
    a QDQ group spans (onnxruntime's Resize, Gather chains); a Gemm with transB=1 (PyTorch's Linear)
    reads dequantized int8 weights like a MatMul, and the int8 transpose of constant weights folds away."""
    for n in g.nodes():
        dq = g.node(p) if n.op in MOVES and (p := g.producers().get(n.inputs[0])) else None
        if dq is None or dq.op != "dequantize" or (dq.attrs["axis"] is not None and n.op != "transpose"):
            continue
        axis = dq.attrs["axis"]
        moved = irops.add(g, n.op, [dq.inputs[0]], n.name + "_int", **n.attrs)
        g.remove_node(n.name)
        g.add_node(n.name, "dequantize", [moved], n.outputs,
                   **dict(dq.attrs, axis=None if axis is None else list(n.attrs["perm"]).index(axis)))
    return g.prune()


def fold_qdq(g: Graph) -> Graph:
    r = _Rewriter(g)
    for q in [n for n in g.nodes() if n.op == "quantize"]:
        if np.size(q.attrs["scale"]) != 1:
            continue
        out_scale = float(np.asarray(q.attrs["scale"])[0])
        out_zp = int(np.asarray(q.attrs["zero_point"])[0]) - (128 if q.attrs["dtype"] == "uint8" else 0)
        top, chain = r.tail(q)
        core = r.producer.get(top)
        result = None
        if core is not None and core.op in ("conv", "matmul", "add"):
            result = _fold_weighted(r, core, chain, out_scale, out_zp)
            if result is None and core.op == "add":
                result = _fold_add(r, core, chain, out_scale, out_zp)
        elif core is not None and OPS[core.op].same_quant:
            special = {"avgpool": lambda: _fold_average(r, core, chain, out_scale, out_zp),
                       "concat": lambda: _fold_concat(r, q, core, chain)}
            result = special[core.op]() if core.op in special else None
            result = result or _fold_same_quant(r, q, core, chain)
        elif core is not None and core.op == "mul":
            result = _fold_mul(r, core, chain, out_scale, out_zp)
        elif core is not None and core.op == "softmax":
            result = _fold_softmax(r, core, chain, out_scale, out_zp)
        elif (src := r.int8_source(top)) is not None:
            result = r.remap(q, src[0], src[1], src[2], chain)
        if result is not None:
            r.finish(q, result)
        r.refresh()
    _fold_accumulators(g)
    return g.prune()
