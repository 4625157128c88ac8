"""Static memory planning: every non-constant tensor gets an offset in one arena, from liveness.

Buffers are placed largest first at the lowest offset that overlaps no buffer live at the same time
(a greedy best-fit that is usually at the lower bound: the largest sum of simultaneously live bytes).
A reshape's output shares its input's buffer: the bytes are the same, only the shape changes.
A tensor the L1 plan keeps in an accelerator's memory (passes/l1_plan.py) never reaches main memory:
it gets no buffer and no offset (the driver passes NULL for it, a validation build does not dump it).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph
from ..targets.tiles import tile_of

ALIGN = 16


@dataclass
class Buffer:
    values: list[str]
    nbytes: int
    first: int  # step of the first write
    last: int  # step of the last read
    offset: int = 0


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def kept_in_l1(g: Graph) -> set[str]:
    """The tensors the L1 plan keeps in an accelerator's memory between its layers: never in main memory."""
    return {n.outputs[0] for n in g.nodes()
            if n.placement is not None and n.placement.tile and tile_of(n.placement.tile).resident.output}


def buffers(g: Graph) -> list[Buffer]:
    nodes = g.nodes()
    in_l1 = kept_in_l1(g)
    end = len(nodes)
    owner: dict[str, Buffer] = {}
    result: list[Buffer] = []

    def new(name: str, step: int):
        buf = Buffer([name], g.values[name].nbytes, step, step)
        owner[name] = buf
        result.append(buf)

    for name in g.inputs:
        new(name, -1)
    for step, n in enumerate(nodes):
        for v in n.inputs:
            if v in owner:
                owner[v].last = max(owner[v].last, step)
        src = n.inputs[0] if n.inputs else ""
        if n.op == "reshape" and src in owner and src not in g.outputs:
            owner[src].values.append(n.outputs[0])
            owner[n.outputs[0]] = owner[src]
            continue
        for v in n.outputs:
            if v not in in_l1:
                new(v, step)
    for v in g.outputs:
        if v in owner:
            owner[v].last = end
    return result


def lower_bound(bufs: list[Buffer]) -> int:
    steps = sorted({b.first for b in bufs})
    return max((sum(b.nbytes for b in bufs if b.first <= t <= b.last) for t in steps), default=0)


def place(bufs: list[Buffer]) -> int:
    """Set every buffer's offset, largest first at the lowest offset that overlaps no buffer live at the
    same time; returns the bytes the placement spans (also the L1 plan's placement, passes/l1_plan.py)."""
    placed: list[Buffer] = []
    for buf in sorted(bufs, key=lambda b: (-b.nbytes, b.first, b.values[0])):
        busy = sorted((p.offset, p.offset + _align(p.nbytes)) for p in placed
                      if p.first <= buf.last and buf.first <= p.last)
        offset = 0
        for start, stop in busy:
            if offset + buf.nbytes <= start:
                break
            offset = max(offset, stop)
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.nbytes for b in bufs), default=0)


def plan_memory(g: Graph) -> Graph:
    """A copy of the graph with every activation's arena offset (None for one kept in L1), the arena size
    and its lower bound."""
    g = g.copy()
    for name in kept_in_l1(g):
        g.values[name].offset = None
    bufs = buffers(g)
    place(bufs)
    for buf in bufs:
        for name in buf.values:
            g.values[name].offset = buf.offset
    g.arena_bytes = _align(max((b.offset + b.nbytes for b in bufs), default=0))
    g.arena_lower_bound = lower_bound(bufs)
    return g
