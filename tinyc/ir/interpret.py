"""The reference interpreter: runs a Graph with each op's numpy semantics. It is the spec of the IR."""
from __future__ import annotations

import numpy as np

from ..errors import BadModelError
from .graph import Graph
from .ops import OPS


def interpret(g: Graph, inputs: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Outputs by name; with keep_all every intermediate value too (for per-layer comparisons)."""
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in inputs:
            raise BadModelError(f"missing input {name!r}", file=g.source or None)
        v = g.values[name]
        arr = np.asarray(inputs[name])
        if arr.dtype != np.dtype(v.dtype) or arr.size != v.size:
            raise BadModelError(f"input {name!r} must be {v.dtype}{list(v.shape)}, got {arr.dtype}{list(arr.shape)}",
                                file=g.source or None)
        env[name] = arr.reshape(v.shape)
    for v in g.values.values():
        if v.is_const:
            env[v.name] = v.data
    for n in g.nodes():
        args = [env[v] if v else None for v in n.inputs]
        for name, value in zip(n.outputs, OPS[n.op].compute(args, n.attrs)):
            env[name] = value
    if keep_all:
        return env
    return {name: env[name] for name in g.outputs}
