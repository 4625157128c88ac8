"""What the lowering passes share (lower_*.py): each rewrites a node that no accelerator of the
configuration takes into ops that compute exactly the same integers, one of which some core's pattern
takes. A rewrite is tried on a copy of the graph and kept only when dispatch's own check (the pattern's
constraints, then the core's memories) accepts the job it makes, so a lowering applies only where it
brings a layer to a core; the passes read the cores' patterns as data and never name a core. Where no
rewrite applies, graph.notes says why, and dispatch adds that to the layer's host reason.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node, Value
from .dispatch import verdict

# a rewrite edits the graph in place and returns the name of the node whose job a core should take
Rewrite = Callable[[Graph, Node], str]


def lower(g: Graph, target, config: str, pass_name: str, op_names: tuple[str, ...], options: Callable) -> Graph:
    """For the nodes of `op_names` that no core takes, and not for their numbers alone: options(graph,
    node, verdict, probe) gives None (not this lowering's node), a reason this node cannot be lowered, or
    the (what, rewrite) pairs to try, cheapest first; the first a core takes is kept (probe(rewrite) is
    the verdict on a rewrite's job, for options that search). A trial that fails on every core exactly
    as the node itself does changed nothing that stops it: the node is not this lowering's to fix, and
    no note is left."""
    g = g.copy()
    cores = target.accelerators(config)
    if not cores:
        return g
    readers = g.consumers()
    for name in [n.name for n in g.nodes() if n.op in op_names]:
        node = g.node(name)
        before = verdict(g, target, cores, name, readers)
        if before.taken or before.numeric:
            continue
        def probe(rewrite, g=g, node=node):
            return _trial(g, target, cores, node, rewrite)[1]
        tried = options(g, node, before, probe)
        if tried is None:
            continue
        if isinstance(tried, str):
            g.notes[name] = f"{pass_name}: {tried}"
            continue
        why = []
        for what, rewrite in tried:
            trial, after = _trial(g, target, cores, node, rewrite)
            if after.taken:
                trial.notes.pop(name, None)
                g = trial.prune()
                readers = g.consumers()
                break
            if after.failures == before.failures:
                break
            why.append(f"{what}: {after.why}")
        else:
            if why:
                g.notes[name] = f"{pass_name}: {len(why)} rewrite(s) tried, none taken; the last, {why[-1]}"
    return g


def _trial(g: Graph, target, cores, node: Node, rewrite: Rewrite):
    """The rewrite on a copy of the graph, and the verdict of the cores on the job it makes."""
    trial = g.copy()
    return trial, verdict(trial, target, cores, rewrite(trial, node))


def replace_conv(g: Graph, n: Node, x: str, weights: np.ndarray, attrs: dict) -> str:
    """Put a qconv of `x` and `weights` (with n's bias) in n's place, under n's name, writing n's output
    (through a reshape when its shape differs); returns the new qconv's name. The graph keeps n's MACs
    as the model's (the new conv may add taps of weight zero)."""
    out = n.outputs[0]
    g.model_macs.setdefault(n.name, ops.OPS[n.op].macs(g, n))
    g.remove_node(n.name)
    inputs = [x, g.add_const(n.name + "_weights", weights).name] + n.inputs[2:3]
    (shape, dtype), = ops.OPS["qconv"].infer([g.values[v] if v else None for v in inputs], attrs)
    y = out
    if tuple(shape) != g.values[out].shape:
        y = g.add_value(Value(g.unique_value_name(out + "_lowered"), tuple(int(d) for d in shape), dtype)).name
        g.add_node(n.name + "_shape", "reshape", [y], [out], shape=tuple(g.values[out].shape))
    conv = g.add_node(n.name, "qconv", inputs, [y], **attrs)
    g.connect()
    return conv


def reshaped(g: Graph, x: str, shape: tuple[int, ...], name: str) -> str:
    return ops.add(g, "reshape", [x], name, shape=tuple(int(d) for d in shape))
