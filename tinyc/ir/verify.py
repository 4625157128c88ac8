"""IR invariants, checked after every pass: a failure here is a tinyc bug, reported as VerifyError."""
from __future__ import annotations

import networkx as nx

from ..errors import VerifyError
from .graph import DTYPES, Graph
from .ops import OPS


def verify(g: Graph, after: str = "") -> Graph:
    where = f" after {after}" if after else ""

    def fail(node: str, why: str):
        raise VerifyError(f"IR invariant broken{where}: {why}", file=g.source or None, node=node)

    if not nx.is_directed_acyclic_graph(g.nx):
        fail(g.name, "the graph has a cycle")
    produced: dict[str, str] = {}
    for n in g.nodes():
        for v in n.outputs:
            if v in produced or v in g.inputs or (v in g.values and g.values[v].is_const):
                fail(n.name, f"value {v!r} is defined more than once")
            produced[v] = n.name
    for name in g.inputs:
        if name not in g.values:
            fail(name, "graph input has no value")
    for n in g.nodes():
        if n.op not in OPS:
            fail(n.name, f"unknown op {n.op!r}")
        for v in n.inputs:
            if v and v not in g.values:
                fail(n.name, f"input {v!r} is not defined")
            if v and v not in produced and v not in g.inputs and not g.values[v].is_const:
                fail(n.name, f"input {v!r} has no producer")
        ins = [g.values[v] if v else None for v in n.inputs]
        inferred = OPS[n.op].infer(ins, n.attrs)
        for v, (shape, dtype) in zip(n.outputs, inferred):
            have = g.values.get(v)
            if have is None:
                fail(n.name, f"output {v!r} has no value")
            if tuple(have.shape) != tuple(shape) or have.dtype != dtype:
                fail(n.name, f"output {v!r} is {have.dtype}{list(have.shape)}, the op gives {dtype}{list(shape)}")
    for v in g.values.values():
        if v.dtype not in DTYPES:
            fail(v.name, f"dtype {v.dtype} is not an IR dtype")
        if v.is_const and (tuple(v.data.shape) != tuple(v.shape) or str(v.data.dtype) != v.dtype):
            fail(v.name, "constant data disagrees with its declared type")
    for name in g.outputs:
        if name not in produced and name not in g.inputs and not g.values[name].is_const:
            fail(name, "graph output is never produced")
    return g
