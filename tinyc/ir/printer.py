"""Readable text dump and Graphviz DOT export of a Graph."""
from __future__ import annotations

import numpy as np

from .graph import Graph, Value


def _type(v: Value) -> str:
    text = f"{v.dtype}[{'x'.join(map(str, v.shape))}]"
    if v.quant is not None:
        scale = np.asarray(v.quant.scale).ravel()
        text += f" q(scale={scale[0]:.6g}{'...' if scale.size > 1 else ''})"
    return text


def _attr(value) -> str:
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} x{value.size}>" if value.size > 4 else str(value.tolist())
    return repr(value)


def dump(g: Graph) -> str:
    lines = [f"graph {g.name}("
             + ", ".join(f"%{i}: {_type(g.values[i])}" for i in g.inputs) + ")"]
    for n in g.nodes():
        outs = ", ".join(f"%{o}: {_type(g.values[o])}" for o in n.outputs)
        ins = ", ".join(("$" if g.values[v].is_const else "%") + v if v else "_" for v in n.inputs)
        attrs = ", ".join(f"{k}={_attr(v)}" for k, v in sorted(n.attrs.items()))
        where = f" on {n.placement.core}" if n.placement else ""
        lines.append(f"  {outs} = {n.op}({ins}){'  {' + attrs + '}' if attrs else ''}  # {n.name}{where}")
    lines.append("  return " + ", ".join("%" + o for o in g.outputs))
    return "\n".join(lines) + "\n"


def to_dot(g: Graph) -> str:
    def q(s: str) -> str:
        return '"' + s.replace('"', '\\"') + '"'
    lines = [f"digraph {q(g.name)} {{", "  node [shape=box];"]
    for n in g.nodes():
        lines.append(f"  {q(n.name)} [label={q(n.op + chr(10) + n.name)}];")
    for u, v in sorted(g.nx.edges):
        lines.append(f"  {q(u)} -> {q(v)};")
    return "\n".join(lines) + "\n}\n"
