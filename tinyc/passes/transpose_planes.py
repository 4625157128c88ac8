"""transpose_planes: layers over tall, narrow planes computed over the transposed planes.

A PE array that computes output columns side by side (tinyc.targets.jobs.Cycles.column_lanes) leaves
lanes idle on a narrow plane: DS-CNN's 25x5 planes fill 5 of a 16-column array's lanes. The same layers over
the transposed planes (5x25) fill 16 of 16 and then 9: conv(x)^T is the conv of x^T with the kernel
transposed and the strides, pads and dilations swapped, and elementwise ops, pools and pads commute
with the transpose the same way, so the integers are exactly those of the layers as they were.

A region is a connected set of such layers; a transpose (or, where the plane is one row or one column
wide, a reshape, which moves nothing) enters it and leaves it. Each region is tried on a copy and kept
only where the whole network's modeled cycles (accelerator layers tiled, host layers by the host's cost
model, the transposes included) drop, so the pass reads the cores' lanes as data and never names a core.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import TinycError
from ..ir import ops
from ..ir.graph import Graph, Node, Value
from ..targets import host_cost

SWAP = (0, 1, 3, 2)  # [N, C, H, W] -> [N, C, W, H]
WINDOWED = ("qconv", "conv", "qavgpool", "qavgpool_requant", "avgpool", "maxpool")
# elementwise beside the ops OpDef.elementwise marks (the float functions fold_qdq tabulates)
ELEMENTWISE = ("lut", "flip_sign", "cast", "qadd", "qmul", "add", "mul")
PAIRED_ATTRS = ("strides", "dilations", "kernel")  # (along H, along W)


def transpose_planes(g: Graph, target, config: str, downstream: Callable[[Graph], Graph]) -> Graph:
    """`downstream`: the passes that follow, up to memory planning, which price a candidate."""
    if not target.accelerators(config):
        return g
    regions = [r for r in _regions(g) if any(_narrow(g, g.node(n)) for n in r)]
    if not regions:
        return g
    best, best_cycles = g, _priced(g, target, downstream)
    for region in regions:
        trial, entering = _transposed(best, region)
        cycles = _priced(trial, target, downstream)
        if cycles is not None and (best_cycles is None or cycles < best_cycles):
            trial.notes[entering[0]] = (f"transpose_planes: {len(region)} layers over transposed planes, "
                                        f"{best_cycles} -> {cycles} modeled cycles")
            best, best_cycles = trial, cycles
    return best


def network_cycles(g: Graph, target) -> int:
    """The network's modeled cycles once placed, tiled and planned (a reshape that moves nothing is free):
    each accelerator job's cost, each host layer's estimate."""
    total = 0
    for n in g.nodes():
        p = n.placement
        if p is not None and p.core != target.host.name:
            total += p.cost["cycles"] if p.cost else 0
        else:
            total += host_cost.host_cycles(g, n, target.host)
    return total


def _priced(g: Graph, target, downstream) -> int | None:
    try:
        return network_cycles(downstream(g), target)
    except TinycError:  # a layout the later passes cannot place is no candidate
        return None


def _narrow(g: Graph, n: Node) -> bool:
    """A windowed layer whose output plane is taller than it is wide."""
    if n.op not in WINDOWED:
        return False
    shape = g.values[n.outputs[0]].shape
    return shape[2] > shape[3]


def _commutes(g: Graph, n: Node) -> bool:
    """Whether the node computes the transpose of its result from transposed [N, C, H, W] inputs, its
    attributes swapped (a conv's bias is per channel; any other operand must be 4-D so that broadcasting
    swaps with it)."""
    elementwise = n.op in ELEMENTWISE or ops.OPS[n.op].elementwise
    if n.op not in WINDOWED and not elementwise and not (n.op == "pad" and n.attrs["mode"] == "constant"):
        return False
    tensors = n.inputs[:2] if n.op in ("qconv", "conv") else n.inputs
    values = [g.values[v] for v in tensors + n.outputs if v]
    if any(len(v.shape) != 4 for v in values):
        return False
    return all(v.quant is None or v.quant.axis in (None, 0, 1) for v in values)


def _regions(g: Graph) -> list[list[str]]:
    """Connected sets of nodes that commute with the transpose, joined by the tensors between them."""
    order = {n.name: i for i, n in enumerate(g.nodes())}
    members = {n.name for n in g.nodes() if _commutes(g, n)}
    producers, readers = g.producers(), g.consumers()
    seen, regions = set(), []
    for start in sorted(members, key=order.get):
        if start in seen:
            continue
        region, todo = [], [start]
        seen.add(start)
        while todo:
            name = todo.pop()
            region.append(name)
            n = g.node(name)
            near = [producers[v] for v in n.inputs if v in producers]
            near += [r for v in n.outputs for r in readers.get(v, [])]
            for other in near:
                if other in members and other not in seen:
                    seen.add(other)
                    todo.append(other)
        regions.append(sorted(region, key=order.get))
    return regions


def _swapped_attrs(n: Node) -> dict:
    a = dict(n.attrs)
    for k in PAIRED_ATTRS:
        if k in a:
            a[k] = tuple(a[k])[::-1]
    if n.op == "pad":
        p = list(a["pads"])
        p[2], p[3], p[6], p[7] = p[3], p[2], p[7], p[6]
        a["pads"] = tuple(p)
    elif "pads" in a:  # (top, left, bottom, right)
        top, left, bottom, right = a["pads"]
        a["pads"] = (left, top, right, bottom)
    return a


def _between(g: Graph, x: str, y: str, name: str) -> str:
    """A node writing y, x with its planes transposed: a reshape where one side of the plane is 1 (the
    bytes are the same), else a transpose."""
    shape = g.values[x].shape
    if shape[2] == 1 or shape[3] == 1:
        return g.add_node(name, "reshape", [x], [y], shape=g.values[y].shape)
    return g.add_node(name, "transpose", [x], [y], perm=SWAP)


def _transposed(g: Graph, region: list[str]) -> tuple[Graph, list[str]]:
    """The region over transposed planes, and the nodes that transpose what enters it."""
    g = g.copy()
    inside = set(region)
    readers = g.consumers()
    twins: dict[str, str] = {}  # a value -> its transposed twin
    entering = []

    def twin_of(v: str) -> str:
        old = g.values[v]
        twins[v] = g.add_value(Value(g.unique_value_name(v + "_planes"), tuple(old.shape[i] for i in SWAP),
                                     old.dtype, quant=old.quant)).name
        g.planes_swapped[twins[v]] = v
        return twins[v]

    for name in region:
        n = g.node(name)
        inputs = []
        for i, v in enumerate(n.inputs):
            if not v or (n.op in ("qconv", "conv") and i == 2):  # no operand, or a bias per channel
                inputs.append(v)
            elif g.values[v].is_const:
                data = np.ascontiguousarray(np.swapaxes(g.values[v].data, 2, 3))
                inputs.append(g.add_const(v + "_planes", data, g.values[v].quant).name)
            else:
                if v not in twins:  # produced outside the region (the region is in topological order)
                    entering.append(_between(g, v, twin_of(v), v + "_planes"))
                inputs.append(twins[v])
        g.set_node(name, inputs=inputs, outputs=[twin_of(v) for v in n.outputs], attrs=_swapped_attrs(n))
        for v in n.outputs:
            if v in g.outputs or any(r not in inside for r in readers.get(v, [])):
                _between(g, twins[v], v, v + "_back")
    return g.connect().prune(), entering
