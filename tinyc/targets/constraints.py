"""Constraints of accelerator patterns, shared by every core that needs them.

Each function returns a `Constraint` whose `holds(g, nodes)` returns True or what it found instead.
`nodes` is the matched chain (node views, producer first); its first node is the job's main op (qconv,
qmatmul or qadd): the geometry and the requantization are that node's attributes. The output checked is
the chain's last one, the job's output.
"""
from __future__ import annotations

import numpy as np

from ..ir.ops import OPS
from ..ir.ranges import value_range
from .base import Constraint

POWER_OF_TWO_MULTIPLIER = 1 << 30  # real = multiplier * 2**(shift - 31) is then 2**(shift - 1): a plain shift

def _words(values) -> str:
    """(1, 3, 5, 7) -> "1, 3, 5 or 7"."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _by(values) -> str:
    return "x".join(str(int(v)) for v in values)


def int8_operands() -> Constraint:
    def holds(g, nodes):
        main = nodes[0]
        named = list(zip(OPS[main.op].operands, main.inputs)) + [("output", nodes[-1].outputs[0])]
        wrong = [f"{role} is {g.values[v].dtype}" for role, v in named if g.values[v].dtype != "int8"]
        return ", ".join(wrong) or True
    return Constraint("int8 operands and output", holds, numeric=True)


def power_of_two_scales() -> Constraint:
    """Every multiplier 2**30 and a single rounding: what a core that requantizes by a shift computes."""
    def holds(g, nodes):
        a, requantizers = nodes[0].attrs, OPS[nodes[0].op].requantizers
        for (mult_key, shift_key), what in requantizers.items():
            if a.get(mult_key) is None:
                return "no requantization"
            mult, shift = np.ravel(a[mult_key]), np.ravel(a[shift_key])
            off = np.flatnonzero(mult != POWER_OF_TWO_MULTIPLIER)
            if off.size:
                i = int(off[0])
                real = float(mult[i]) * 2.0 ** (int(shift[i]) - 31)
                where = f" on {what} {i}" if mult.size > 1 else f" on the {what}" if len(requantizers) > 1 else ""
                return f"requantizes by {real:.6g}{where}"
        if a["rounding"] != "single":
            return f"rounds {a['rounding']}, not once"
        return True
    return Constraint("power-of-two scales, requantization by a shift", holds, numeric=True)


def one_shift(lowest: int, highest: int) -> Constraint:
    """One right shift s = 1 - shift for the whole layer (qconv, qmatmul), in [lowest, highest]."""
    def holds(g, nodes):
        shifts = sorted({1 - int(s) for s in np.ravel(nodes[0].attrs["shift"])})
        if len(shifts) > 1:
            return f"has {len(shifts)} shifts, {shifts[0]}..{shifts[-1]}"
        return lowest <= shifts[0] <= highest or f"is {shifts[0]}"
    return Constraint(f"one requantization shift {lowest}..{highest} for the layer", holds, numeric=True)


def zero_points_zero() -> Constraint:
    def holds(g, nodes):
        wrong = []
        for key, role in OPS[nodes[0].op].zero_points.items():
            nonzero = [int(v) for v in np.ravel(nodes[0].attrs[key]) if v != 0]
            if nonzero:
                wrong.append(f"{role} {nonzero[0]}")
        return ", ".join(wrong) or True
    return Constraint("zero points 0", holds, numeric=True)


def image_batch_one() -> Constraint:
    def holds(g, nodes):
        shape = g.values[nodes[0].inputs[0]].shape
        return (len(shape) == 4 and shape[0] == 1) or f"input is {list(shape)}"
    return Constraint("2-D only (NCHW with N = 1)", holds)


def vector_input() -> Constraint:
    def holds(g, nodes):
        shape = g.values[nodes[0].inputs[0]].shape
        return (len(shape) == 2 and shape[0] == 1) or f"input is {list(shape)}"
    return Constraint("one input vector ([1, K])", holds)


def groups_one() -> Constraint:
    def holds(g, nodes):
        return nodes[0].attrs["group"] == 1 or f"is {nodes[0].attrs['group']}"
    return Constraint("groups 1", holds)


def one_group_per_channel() -> Constraint:
    def holds(g, nodes):
        n = nodes[0]
        c_in, c_out = g.values[n.inputs[0]].shape[1], g.values[n.outputs[0]].shape[1]
        return n.attrs["group"] == c_in == c_out or f"groups {n.attrs['group']}, {c_in} in and {c_out} out channels"
    return Constraint("depthwise (groups = input channels = output channels)", holds)


def kernel_sizes(sizes: tuple[int, ...]) -> Constraint:
    def holds(g, nodes):
        kernel = g.values[nodes[0].inputs[1]].shape[2:]
        return all(k in sizes for k in kernel) or f"is {_by(kernel)}"
    return Constraint(f"kernel {_words(sizes)} on each side", holds)


def strides(allowed: tuple[int, ...]) -> Constraint:
    def holds(g, nodes):
        s = nodes[0].attrs["strides"]
        return all(v in allowed for v in s) or f"is {_by(s)}"
    return Constraint(f"stride {_words(allowed)} on each side", holds)


def dilation_one() -> Constraint:
    def holds(g, nodes):
        d = nodes[0].attrs["dilations"]
        return all(v == 1 for v in d) or f"is {_by(d)}"
    return Constraint("dilation 1", holds)


def pads_within_half_kernel() -> Constraint:
    """pads are ONNX-ordered (top, left, bottom, right); each at most its axis' kernel // 2."""
    def holds(g, nodes):
        pads = tuple(int(p) for p in nodes[0].attrs["pads"])
        kernel = g.values[nodes[0].inputs[1]].shape[2:]
        half = [k // 2 for k in kernel] * 2
        return all(p <= h for p, h in zip(pads, half)) or \
            f"is {', '.join(map(str, pads))} for a {_by(kernel)} kernel"
    return Constraint("padding at most kernel // 2 on each side", holds)


def same_shapes() -> Constraint:
    def holds(g, nodes):
        n = nodes[0]
        shapes = [g.values[v].shape for v in n.inputs] + [g.values[nodes[-1].outputs[0]].shape]
        return len(set(shapes)) == 1 or f"adds {list(shapes[0])} and {list(shapes[1])}"
    return Constraint("both inputs the output's shape (no broadcast)", holds)


def ternary_weights() -> Constraint:
    def holds(g, nodes):
        w = g.values[nodes[0].inputs[1]]
        if not w.is_const:
            return "not constant"
        other = sorted(set(np.unique(w.data).tolist()) - {-1, 0, 1})
        return not other or f"has {other[0]}"
    return Constraint("weights in {-1, 0, 1}", holds, numeric=True)


def input_bits(bits: int) -> Constraint:
    """The input's proven range (tinyc.ir.ranges: its producer's clip bounds) fits `bits` signed bits."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def holds(g, nodes):
        found_lo, found_hi, source = value_range(g, nodes[0].inputs[0])
        return lo <= found_lo and found_hi <= hi or f"{found_lo}..{found_hi} from {source}"
    return Constraint(f"input proven within {bits} bits signed ({lo}..{hi})", holds, numeric=True)


def rows_at_most(rows: int) -> Constraint:
    """in_ch * kh * kw (dense: in_ch) weights per output channel: the array rows one load holds."""
    def holds(g, nodes):
        w = g.values[nodes[0].inputs[1]].shape
        found = int(np.prod(w[1:])) if nodes[0].op == "qconv" else w[0]
        return found <= rows or f"is {found}"
    return Constraint(f"rows in_ch*kh*kw at most {rows}", holds)


def pads_at_most(most: int) -> Constraint:
    def holds(g, nodes):
        pads = tuple(int(p) for p in nodes[0].attrs["pads"])
        return max(pads) <= most or f"is {', '.join(map(str, pads))}"
    return Constraint(f"padding at most {most} on each side", holds)


def requantization(r) -> tuple[Constraint, ...]:
    """What a job kind's requantizer (tinyc.targets.jobs.Requantizer) takes, as the constraints of its
    patterns: a shift-only or ADC read-out needs power-of-two scales and one shift in its range, a
    multiplier+shift one shift (per channel, or per layer) in its range; zero points 0 unless it takes
    them (the weights' always 0)."""
    if r.kind in ("shift", "adc"):
        found = (power_of_two_scales(), one_shift(*r.shifts))
    elif r.kind == "multiplier":
        found = (right_shifts(*r.shifts, per_channel=r.per_channel),)
    else:
        found = ()
    return found + ((weight_zero_points_zero(),) if r.zero_points else (zero_points_zero(),))


def right_shifts(lowest: int, highest: int, per_channel: bool) -> Constraint:
    """A fixed-point requantization (multiplier, shift) whose right shifts s = -shift lie in
    [lowest, highest]; one multiplier and shift for the layer unless per channel."""
    def holds(g, nodes):
        a = nodes[0].attrs
        if a.get("multiplier") is None:
            return "no requantization"
        mult, shifts = np.ravel(a["multiplier"]), np.ravel(a["shift"])
        if not per_channel and (np.unique(mult).size > 1 or np.unique(shifts).size > 1):
            return f"has {np.unique(mult).size} multipliers and {np.unique(shifts).size} shifts"
        s = sorted({-int(v) for v in shifts})
        return lowest <= s[0] and s[-1] <= highest or f"shifts {s[0]}..{s[-1]}"
    scope = "per output channel" if per_channel else "one for the layer"
    return Constraint(f"requantization multiplier and right shift {lowest}..{highest}, {scope}", holds, numeric=True)


def weight_zero_points_zero() -> Constraint:
    def holds(g, nodes):
        a = nodes[0].attrs
        if "w_zp" not in a:
            return True
        nonzero = [int(v) for v in np.ravel(a["w_zp"]) if v != 0]
        return not nonzero or f"weights {nonzero[0]}"
    return Constraint("weight zero points 0", holds, numeric=True)


def kernel_shapes(shapes: tuple[tuple[int, int], ...]) -> Constraint:
    def holds(g, nodes):
        kernel = tuple(g.values[nodes[0].inputs[1]].shape[2:])
        return kernel in shapes or f"is {_by(kernel)}"
    return Constraint(f"kernel {_words([_by(s) for s in shapes])}", holds)
