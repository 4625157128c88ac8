"""Random small float ONNX networks of the layers tinyc deploys, for property tests and the soak run.

A network is drawn step by step on its current tensor: convolutions (1-D or 2-D, kernels 1..5, strides
1..2, asymmetric pads, dilation, groups up to depthwise), pools, global average pool, Relu/Clip, Add of
a residual or of two branches, dense layers (Gemm or MatMul) after a Flatten, elementwise functions
(Tanh, Erf, LeakyRelu, Elu, HardSigmoid, HardSwish), Sub/Max/Min of two branches, and data movement and
reductions (Slice, Tile, Resize, Gather, SpaceToDepth, GlobalMaxPool, ReduceMax, ReduceMean). Every structural
choice goes through a Chooser, so the same builder serves hypothesis (which shrinks a failure to a
small network) and benchmarks/soak.py (a seeded random.Random, fast and reproducible by seed); the
weights and data come from a numpy generator seeded by one of those choices.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from math import prod

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import helper

from onnx_builders import const, model, tensor

MAX_STEPS = 6
MAX_CHANNELS = 8
CALIBRATION_SAMPLES = 4
SCHEMES = {  # name -> tinyc.quantize options: what DIANA's cores accept, and the general default
    "pow2-per-tensor": dict(power_of_two=True, per_channel=False),
    "per-channel": dict(power_of_two=False, per_channel=True),
}


class Chooser:
    """The choices a network is built from; subclasses take them from hypothesis or a seeded RNG."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def pick(self, options):
        return options[self.integer(0, len(options) - 1)]

    def flag(self) -> bool:
        return bool(self.integer(0, 1))


class HypothesisChooser(Chooser):
    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))


class SeededChooser(Chooser):
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)


@dataclass
class RandomNet:
    model: onnx.ModelProto = field(repr=False)  # float; the test quantizes it
    calibration: np.ndarray = field(repr=False)  # [N, *input shape]
    sample: np.ndarray = field(repr=False)  # one float input the calibration did not see, a little wider
    scheme: str  # a key of SCHEMES
    int8_io: bool  # the quantized model takes and returns int8 (else float around Q/DQ)
    layers: list[str]  # the steps, for reading a failure

    @property
    def input_name(self) -> str:
        return self.model.graph.input[0].name


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]  # [1, C, *spatial] or [1, features]

    @property
    def flat(self) -> bool:
        return len(self.shape) == 2


def _windows_see_data(size, kernel, stride, dilation, begin, end) -> bool:
    """Whether every pooling window (ceil mode included) has a tap inside the input, not only padding."""
    last = -(-(size + begin + end - (kernel - 1) * dilation - 1) // stride)
    return all(any(0 <= i * stride - begin + j * dilation < size for j in range(kernel)) for i in range(last + 1))


class _Builder:
    def __init__(self, choose: Chooser, rng: np.random.Generator):
        self.choose, self.rng = choose, rng
        self.nodes, self.inits, self.layers = [], [], []
        self.seen: list[_Tensor] = []  # every tensor so far, for residual Adds

    def fresh(self, op: str) -> str:
        return f"{op.lower()}{len(self.nodes)}"

    def node(self, op: str, inputs, shape, **attrs) -> _Tensor:
        out = _Tensor(self.fresh(op), tuple(shape))
        self.nodes.append(helper.make_node(op, list(inputs), [out.name], name=out.name, **attrs))
        self.seen.append(out)
        return out

    def weight(self, shape, fan_in: int) -> str:
        """He-style scale keeps activations near unit range however deep the chain."""
        name = f"w{len(self.inits)}"
        self.inits.append(const(name, (self.rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)))
        return name

    def log(self, text: str):
        self.layers.append(text)

    # ---- windows
    def window(self, size: int, max_kernel: int, dilate: bool, pad_below_kernel: bool):
        """(kernel, stride, dilation, pad_begin, pad_end) along one axis of `size`, never empty."""
        c = self.choose
        dilation = c.integer(1, 2) if dilate else 1
        kernel = c.integer(1, max_kernel)
        max_pad = kernel - 1 if pad_below_kernel else 2  # onnxruntime's pools need pads below the kernel
        begin, end = c.integer(0, max_pad), c.integer(0, max_pad)
        while (kernel - 1) * dilation + 1 > size + begin + end:
            kernel, dilation = kernel - 1, 1
            if pad_below_kernel:
                begin, end = min(begin, kernel - 1), min(end, kernel - 1)
        return kernel, c.integer(1, 2), dilation, begin, end

    def conv(self, x: _Tensor, same: bool = False) -> _Tensor:
        """A Conv; `same` keeps x's shape (stride 1, pads summing to the dilated kernel, maybe asymmetric)."""
        c, channels, spatial = self.choose, x.shape[1], x.shape[2:]
        divisors = [g for g in range(1, channels + 1) if channels % g == 0]
        group = c.pick([1, channels, c.pick(divisors)])
        out_channels = channels if same else group * c.integer(1, max(1, MAX_CHANNELS // group))
        geometry = []
        for size in spatial:
            if same:
                k, d = c.integer(1, 5), c.integer(1, 2)
                begin = c.integer(0, (k - 1) * d)
                geometry.append((k, 1, d, begin, (k - 1) * d - begin))
            else:
                geometry.append(self.window(size, 5, dilate=True, pad_below_kernel=False))
        k, s, d, pb, pe = (tuple(g[i] for g in geometry) for i in range(5))
        out_spatial = [(n + b + e - (kk - 1) * dd - 1) // ss + 1 for n, kk, ss, dd, b, e in zip(spatial, k, s, d, pb, pe)]
        w = self.weight((out_channels, channels // group, *k), channels // group * prod(k))
        inputs = [x.name, w]
        if c.flag():
            inputs.append(self.bias(out_channels))
        self.log(f"conv{len(spatial)}d {channels}->{out_channels} k{k} s{s} d{d} pads{pb + pe} g{group}")
        return self.node("Conv", inputs, (1, out_channels, *out_spatial), kernel_shape=k, strides=s,
                         dilations=d, pads=pb + pe, group=group)

    def bias(self, n: int) -> str:
        name = f"b{len(self.inits)}"
        self.inits.append(const(name, (self.rng.standard_normal(n) * 0.5).astype(np.float32)))
        return name

    def pool(self, x: _Tensor) -> _Tensor:
        c, spatial = self.choose, x.shape[2:]
        op = c.pick(["MaxPool", "AveragePool"])
        geometry = [self.window(n, 3, dilate=op == "MaxPool", pad_below_kernel=True) for n in spatial]
        k, s, d, pb, pe = (tuple(g[i] for g in geometry) for i in range(5))
        if not all(_windows_see_data(n, *g) for n, g in zip(spatial, geometry)):
            d = (1,) * len(spatial)  # the max of a window of padding alone is -inf: no int8 answer to compare
        spans = [n + b + e - (kk - 1) * dd - 1 for n, kk, dd, b, e in zip(spatial, k, d, pb, pe)]
        ceiled = [-(-span // ss) + 1 for span, ss in zip(spans, s)]
        # A last ceil-mode window that starts in the end pad is dropped by onnxruntime and kept by ONNX's
        # shape inference: no oracle agrees there, so such a pool floors.
        ceil = c.flag() and all((o - 1) * ss < n + b for o, ss, n, b in zip(ceiled, s, spatial, pb))
        out_spatial = ceiled if ceil else [span // ss + 1 for span, ss in zip(spans, s)]
        attrs = dict(kernel_shape=k, strides=s, pads=pb + pe, ceil_mode=int(ceil))
        if op == "MaxPool":
            attrs["dilations"] = d
        else:
            attrs["count_include_pad"] = int(c.flag())
        self.log(f"{op} k{k} s{s} d{d} pads{pb + pe} ceil{int(ceil)} {attrs.get('count_include_pad', '')}")
        return self.node(op, [x.name], (*x.shape[:2], *out_spatial), **attrs)

    # ---- dense
    def dense(self, x: _Tensor, features: int | None = None) -> _Tensor:
        c, k = self.choose, x.shape[1]
        n = features or c.integer(1, 16)
        form = c.pick(["Gemm", "Gemm-transB", "MatMul", "MatMul+Add"])
        self.log(f"{form} {k}->{n}")
        if form.startswith("Gemm"):
            trans = form.endswith("transB")
            w = self.weight((n, k) if trans else (k, n), k)
            inputs = [x.name, w] + ([self.bias(n)] if c.flag() else [])
            return self.node("Gemm", inputs, (1, n), transB=int(trans))
        y = self.node("MatMul", [x.name, self.weight((k, n), k)], (1, n))
        if form == "MatMul+Add":
            self.seen.remove(y)  # only the bias Add reads the product (the quantizer fuses the two)
            y = self.node("Add", [y.name, self.bias(n)], (1, n))
        return y

    def flatten(self, x: _Tensor) -> _Tensor:
        self.log("Flatten")
        return self.node("Flatten", [x.name], (1, prod(x.shape[1:])))

    # ---- element-wise
    def activation(self, x: _Tensor) -> _Tensor:
        if self.choose.flag():
            self.log("Relu")
            return self.node("Relu", [x.name], x.shape)
        lo, hi = self.choose.pick([(0.0, 6.0), (-1.0, 1.0), (0.0, 0.5), (-0.25, 2.0)])
        names = [f"clip{len(self.nodes)}_{side}" for side in ("min", "max")]
        self.inits += [const(names[0], np.float32(lo)), const(names[1], np.float32(hi))]
        self.log(f"Clip [{lo}, {hi}]")
        return self.node("Clip", [x.name, *names], x.shape)

    def add(self, x: _Tensor) -> _Tensor:
        """x plus an earlier tensor of its shape (a residual), or plus a new branch layer from x."""
        earlier = [t for t in self.seen if t.shape == x.shape and t.name != x.name]
        if earlier and self.choose.flag():
            other = self.choose.pick(earlier)
        else:
            other = self.dense(x, x.shape[1]) if x.flat else self.conv(x, same=True)
        self.log(f"Add {other.name}")
        return self.node("Add", [x.name, other.name], x.shape)

    # ---- the ops run between DequantizeLinear and QuantizeLinear (functions, data movement, reductions)
    def function(self, x: _Tensor) -> _Tensor:
        op, attrs = self.choose.pick([("Tanh", {}), ("Erf", {}), ("LeakyRelu", {"alpha": 0.1}), ("Elu", {}),
                                      ("HardSigmoid", {}), ("HardSwish", {})])
        self.log(op)
        return self.node(op, [x.name], x.shape, **attrs)

    def minmax(self, x: _Tensor) -> _Tensor:
        """Sub, Max or Min of x and a new branch layer from x (as add)."""
        other = self.dense(x, x.shape[1]) if x.flat else self.conv(x, same=True)
        op = self.choose.pick(["Sub", "Max", "Min"])
        self.log(f"{op} {other.name}")
        return self.node(op, [x.name, other.name], x.shape)

    def const_ints(self, base: str, values) -> str:
        name = f"{base}{len(self.inits)}"
        self.inits.append(const(name, np.array(values, np.int64)))
        return name

    def move(self, x: _Tensor) -> _Tensor:
        """Data movement or a maximum over a spatial tensor: the output keeps the input's quantization."""
        c, shape = self.choose, x.shape
        axis = c.integer(2, len(shape) - 1)
        kind = c.pick(["Slice", "Tile", "Resize", "Gather", "GlobalMaxPool", "ReduceMax", "ReduceMean", "blocks"])
        if kind == "Slice" and shape[axis] > 1:
            step = c.pick([1, 2, -1])
            start, end = (c.integer(0, shape[axis] // 2), shape[axis]) if step > 0 else (shape[axis] - 1, -shape[axis] - 1)
            out = list(shape)
            out[axis] = len(range(*slice(start, end if end >= -shape[axis] else None, step).indices(shape[axis])))
            self.log(f"Slice axis {axis} {start}:{end}:{step}")
            return self.node("Slice", [x.name, self.const_ints("st", [start]), self.const_ints("en", [end]),
                                       self.const_ints("ax", [axis]), self.const_ints("sp", [step])], out)
        if kind in ("Tile", "Resize") and shape[axis] <= 8:
            reps = [1] * len(shape)
            reps[axis] = 2
            out = [d * r for d, r in zip(shape, reps)]
            self.log(f"{kind} x2 on axis {axis}")
            if kind == "Tile":
                return self.node("Tile", [x.name, self.const_ints("rep", reps)], out)
            scales = f"scales{len(self.inits)}"
            self.inits.append(const(scales, np.array(reps, np.float32)))
            return self.node("Resize", [x.name, "", scales], out, mode=c.pick(["nearest", "linear"]))
        if kind == "Gather":
            index = [c.integer(0, shape[1] - 1) for _ in range(c.integer(1, MAX_CHANNELS))]
            self.log(f"Gather channels {index}")
            return self.node("Gather", [x.name, self.const_ints("idx", index)], (1, len(index), *shape[2:]), axis=1)
        if kind == "blocks" and len(shape) == 4 and shape[2] % 2 == 0 and shape[3] % 2 == 0:
            self.log("SpaceToDepth 2")
            return self.node("SpaceToDepth", [x.name], (1, shape[1] * 4, shape[2] // 2, shape[3] // 2), blocksize=2)
        if kind in ("ReduceMax", "ReduceMean"):
            self.log(f"{kind} axis {axis}")
            out = list(shape)
            out[axis] = 1
            return self.node(kind, [x.name], out, axes=[axis])
        self.log("GlobalMaxPool")
        return self.node("GlobalMaxPool", [x.name], (*shape[:2], *(1 for _ in shape[2:])))

    def step(self, x: _Tensor) -> _Tensor:
        kinds = ["dense", "activation", "add", "function", "minmax"] if x.flat else \
            ["conv", "conv", "pool", "global-pool", "activation", "add", "flatten-dense", "function", "minmax",
             "move", "move"]
        kind = self.choose.pick(kinds)
        if kind == "global-pool":
            self.log("GlobalAveragePool")
            return self.node("GlobalAveragePool", [x.name], (*x.shape[:2], *(1 for _ in x.shape[2:])))
        if kind == "flatten-dense":
            return self.dense(self.flatten(x))
        return getattr(self, kind)(x)


def build_net(choose: Chooser, scheme: str | None = None) -> RandomNet:
    """A random network from `choose`'s choices; `scheme` fixes the quantization, else it is chosen too."""
    rng = np.random.default_rng(choose.integer(0, 2 ** 32 - 1))
    b = _Builder(choose, rng)
    rank = choose.integer(1, 2)
    spatial = tuple(choose.integer(3, 24) for _ in range(rank)) if rank == 1 else \
        tuple(choose.integer(2, 10) for _ in range(rank))
    x = _Tensor("input", (1, choose.integer(1, MAX_CHANNELS), *spatial))
    b.seen.append(x)
    for _ in range(choose.integer(1, MAX_STEPS)):
        x = b.step(x)
    net = model(b.nodes, [tensor("input", list(b.seen[0].shape))], [tensor(x.name, list(x.shape))], b.inits,
                name="random_net")
    onnx.checker.check_model(net, full_check=True)
    shape = b.seen[0].shape
    return RandomNet(
        model=net,
        calibration=rng.standard_normal((CALIBRATION_SAMPLES, *shape)).astype(np.float32),
        sample=(rng.standard_normal(shape) * 1.25).astype(np.float32),
        scheme=scheme or choose.pick(sorted(SCHEMES)),
        int8_io=choose.flag(),
        layers=b.layers,
    )


@st.composite
def nets(draw, scheme: str | None = None) -> RandomNet:
    return build_net(HypothesisChooser(draw), scheme)
