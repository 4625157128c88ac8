"""Converters of ONNX's recurrent layers (LSTM, GRU, RNN), unrolled over their static sequence into
matmuls, slices and elementwise ops with ONNX's equations. The input projection of every step is one
matmul over the whole sequence; the recurrent projection is one matmul per step."""
from __future__ import annotations

import numpy as np

from ..errors import BadModelError, UnsupportedError
from .onnx_ops import attr, converts, float_only, inp
from .onnx_ops_nn import weights
from .onnx_ops_tensor import emit_slice

ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}
# op type -> (gates per step, default activations)
LAYERS = {"LSTM": (4, ["Sigmoid", "Tanh", "Tanh"]), "GRU": (3, ["Sigmoid", "Tanh"]), "RNN": (1, ["Tanh"])}


class _Layer:
    """The unrolled layer's parameters and the helpers its step equations use."""

    def __init__(self, ctx):
        self.ctx = ctx
        op = ctx.node.op_type
        float_only(ctx, inp(ctx, 0))
        self.gates, defaults = LAYERS[op]
        self.layout = attr(ctx, "layout", 0)
        direction = attr(ctx, "direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise BadModelError(f"{op} direction {direction!r}")
        self.directions = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        names = attr(ctx, "activations", defaults * len(self.directions))
        if any(a not in ACTIVATIONS for a in names) or len(names) != len(defaults) * len(self.directions):
            raise UnsupportedError(f"{op} activations {names} (tinyc takes {', '.join(ACTIVATIONS)})")
        self.activations = [[ACTIVATIONS[a] for a in names[k * len(defaults):(k + 1) * len(defaults)]]
                            for k in range(len(self.directions))]
        self.clip = attr(ctx, "clip")
        if attr(ctx, "input_forget", 0):
            raise UnsupportedError("LSTM input_forget")
        self.x = inp(ctx, 0) if self.layout == 0 else ctx.emit("transpose", [inp(ctx, 0)], perm=(1, 0, 2))
        self.seq, self.batch, _ = ctx.value(self.x).shape
        self.hidden = attr(ctx, "hidden_size", ctx.value(inp(ctx, 1)).shape[1] // self.gates)
        lens = ctx.const(4, f"{op}'s sequence_lens")
        if lens is not None and np.any(np.asarray(lens) != self.seq):
            raise UnsupportedError(f"{op} with sequence_lens {np.asarray(lens).tolist()} shorter than the "
                                   f"sequence ({self.seq}): tinyc unrolls whole sequences")
        self.w = weights(ctx, 1, f"{op}'s W")
        self.r = weights(ctx, 2, f"{op}'s R")
        bias = weights(ctx, 3, f"{op}'s B")
        g, h = self.gates, self.hidden
        self.b = np.zeros((len(self.directions), 2 * g * h), np.float32) if bias is None else bias
        if self.w.shape[:2] != (len(self.directions), g * h) or self.r.shape != (len(self.directions), g * h, h) or \
                self.b.shape != (len(self.directions), 2 * g * h):
            raise BadModelError(f"{op} W, R or B shapes do not match hidden_size {h}")

    def const(self, base, data):
        return self.ctx.add_const(base, np.ascontiguousarray(np.asarray(data, np.float32)))

    def emit(self, op, inputs, **attrs):
        return self.ctx.emit(op, inputs, **attrs)

    def initial(self, index: int, d: int) -> str:
        """initial_h / initial_c of direction d as [batch, hidden], zeros when omitted."""
        name = inp(self.ctx, index)
        if not name:
            return self.const("zeros", np.zeros((self.batch, self.hidden)))
        axis = 1 if self.layout else 0
        part = emit_slice(self.ctx, name, {axis: (d, d + 1, 1)}, None)
        return self.emit("reshape", [part], shape=(self.batch, self.hidden))

    def gate(self, z: str, k: int) -> str:
        """Gate k of a [batch, gates * hidden] pre-activation."""
        return emit_slice(self.ctx, z, {1: (k * self.hidden, (k + 1) * self.hidden, 1)}, None)

    def act(self, name: str, x: str) -> str:
        if self.clip is not None:
            x = self.emit("clip", [x], min=-float(self.clip), max=float(self.clip))
        return self.emit(name, [x])

    def projections(self, d: int) -> list[str]:
        """X_t W^T + Wb (+ Rb where the equations add it unchanged), per step: [batch, gates * hidden]."""
        g, h = self.gates, self.hidden
        wb, rb = self.b[d, :g * h], self.b[d, g * h:]
        bias = wb + rb
        if self.ctx.node.op_type == "GRU" and attr(self.ctx, "linear_before_reset", 0):
            bias = np.concatenate([wb[:2 * h] + rb[:2 * h], wb[2 * h:]])  # Rbh is added inside the reset gate
        xw = self.emit("matmul", [self.x, self.const("W_t", self.w[d].T)])
        xw = self.emit("add", [xw, self.const("bias", bias)])
        return [self.emit("reshape", [emit_slice(self.ctx, xw, {0: (t, t + 1, 1)}, None)],
                          shape=(self.batch, g * h)) for t in range(self.seq)]

    def recur(self, h: str, d: int, rows=slice(None)) -> str:
        return self.emit("matmul", [h, self.const("R_t", self.r[d][rows].T)])


def _lstm_step(layer: _Layer, d: int, xw: str, h: str, c: str) -> tuple[str, str]:
    f, g, hact = layer.activations[d]
    p = layer.ctx.const(7, "LSTM's P")
    z = layer.emit("add", [xw, layer.recur(h, d)])
    i_, o_, f_, c_ = (layer.gate(z, k) for k in range(4))
    if p is not None:
        pi, po, pf = (layer.const("P", p[d, k * layer.hidden:(k + 1) * layer.hidden]) for k in range(3))
        i_ = layer.emit("add", [i_, layer.emit("mul", [pi, c])])
        f_ = layer.emit("add", [f_, layer.emit("mul", [pf, c])])
    it, ft, ct = layer.act(f, i_), layer.act(f, f_), layer.act(g, c_)
    c_new = layer.emit("add", [layer.emit("mul", [ft, c]), layer.emit("mul", [it, ct])])
    if p is not None:
        o_ = layer.emit("add", [o_, layer.emit("mul", [po, c_new])])
    return layer.emit("mul", [layer.act(f, o_), layer.act(hact, c_new)]), c_new


def _gru_step(layer: _Layer, d: int, xw: str, h: str, c) -> tuple[str, None]:
    f, g = layer.activations[d]
    hid = layer.hidden
    zr = layer.emit("add", [emit_slice(layer.ctx, xw, {1: (0, 2 * hid, 1)}, None),
                            layer.recur(h, d, slice(0, 2 * hid))])
    zt, rt = layer.act(f, layer.gate(zr, 0)), layer.act(f, layer.gate(zr, 1))
    xh = layer.gate(xw, 2)
    if attr(layer.ctx, "linear_before_reset", 0):
        rh = layer.emit("add", [layer.recur(h, d, slice(2 * hid, None)),
                                layer.const("Rbh", layer.b[d, 5 * hid:])])
        pre = layer.emit("add", [xh, layer.emit("mul", [rt, rh])])
    else:
        pre = layer.emit("add", [xh, layer.recur(layer.emit("mul", [rt, h]), d, slice(2 * hid, None))])
    ht = layer.act(g, pre)
    keep = layer.emit("sub", [layer.const("one", np.float32(1)), zt])
    return layer.emit("add", [layer.emit("mul", [keep, ht]), layer.emit("mul", [zt, h])]), None


def _rnn_step(layer: _Layer, d: int, xw: str, h: str, c) -> tuple[str, None]:
    return layer.act(layer.activations[d][0], layer.emit("add", [xw, layer.recur(h, d)])), None


STEPS = {"LSTM": _lstm_step, "GRU": _gru_step, "RNN": _rnn_step}


@converts(*LAYERS)
def recurrent(ctx):
    layer = _Layer(ctx)
    step = STEPS[ctx.node.op_type]
    b, hid = layer.batch, layer.hidden
    ys, finals_h, finals_c = [], [], []
    for d, direction in enumerate(layer.directions):
        xw = layer.projections(d)
        h, c = layer.initial(5, d), layer.initial(6, d) if ctx.node.op_type == "LSTM" else None
        order = range(layer.seq) if direction == "forward" else range(layer.seq - 1, -1, -1)
        hs = {}
        for t in order:
            h, c = step(layer, d, xw[t], h, c)
            hs[t] = h
        ys.append([hs[t] for t in range(layer.seq)])
        finals_h.append(h)
        finals_c.append(c)
    outputs = list(ctx.node.output) + ["", "", ""]
    n_dir = len(layer.directions)
    if outputs[0]:  # Y: [seq, dirs, batch, hidden], or [batch, seq, dirs, hidden] in layout 1
        steps = [ctx.emit("concat", [ctx.emit("reshape", [ys[d][t]], shape=(1, 1, b, hid)) for d in range(n_dir)],
                          axis=1) if n_dir > 1 else ctx.emit("reshape", [ys[0][t]], shape=(1, 1, b, hid))
                 for t in range(layer.seq)]
        y = ctx.emit("concat", steps, axis=0) if len(steps) > 1 else steps[0]
        if layer.layout:
            y = ctx.emit("transpose", [y], perm=(2, 0, 1, 3))
        ctx.emit("reshape", [y], outputs[0], shape=ctx.value(y).shape)
    for name, finals in ((outputs[1], finals_h), (outputs[2], finals_c)):
        if not name:
            continue
        parts = [ctx.emit("reshape", [v], shape=(1, b, hid)) for v in finals]
        y = ctx.emit("concat", parts, axis=0) if len(parts) > 1 else parts[0]
        if layer.layout:
            y = ctx.emit("transpose", [y], perm=(1, 0, 2))
        ctx.emit("reshape", [y], name, shape=ctx.value(y).shape)
