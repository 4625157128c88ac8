"""canonicalize: fold QuantizeLinear/DequantizeLinear groups into integer ops (tinyc/passes/fold_qdq.py),
fold constants, and cancel data movement and sign flips that cancel."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir.graph import Graph
from ..ir.interpret import interpret
from ..ir.verify import verify
from .fold_qdq import dequantize_after_movement, fold_qdq


def fold_constants(g: Graph) -> Graph:
    for n in g.nodes():
        if n.inputs and all(not v or g.values[v].is_const for v in n.inputs) and \
                not any(o in g.outputs for o in n.outputs):
            sub = Graph()
            for v in n.inputs:
                if v:
                    sub.values[v] = g.values[v]
            sub.add_node(n.name, n.op, n.inputs, n.outputs, **n.attrs)
            sub.values.update({o: g.values[o] for o in n.outputs})
            sub.outputs = list(n.outputs)
            results = interpret(sub, {})
            g.remove_node(n.name)
            for o in n.outputs:
                g.values[o].data = np.array(results[o], order="C")
    return g.prune()


def cancel_movement(g: Graph) -> Graph:
    """transpose(transpose(x)) composes; a reshape of a reshape is one; identity moves disappear."""
    producer = {o: n for n in g.nodes() for o in n.outputs}
    for n in g.nodes():
        src = producer.get(n.inputs[0]) if n.inputs else None
        if n.op == "transpose" and src is not None and src.op == "transpose":
            perm = tuple(src.attrs["perm"][p] for p in n.attrs["perm"])
            g.set_node(n.name, inputs=[src.inputs[0]], attrs=dict(perm=perm))
        elif n.op == "reshape" and src is not None and src.op == "reshape":
            g.set_node(n.name, inputs=[src.inputs[0]])
        else:
            continue
        producer = {o: m for m in g.nodes() for o in m.outputs}
    for n in g.nodes():
        identity = (n.op == "transpose" and tuple(n.attrs["perm"]) == tuple(range(len(n.attrs["perm"])))) or \
                   (n.op == "reshape" and g.values[n.inputs[0]].shape == g.values[n.outputs[0]].shape)
        if n.op == "transpose" and identity:
            g.set_node(n.name, op="reshape", attrs=dict(shape=g.values[n.outputs[0]].shape))
        if identity and n.outputs[0] not in g.outputs and n.inputs[0] not in g.inputs:
            g.replace_uses(n.outputs[0], n.inputs[0])
            g.remove_node(n.name)
    _cancel_flips(g)
    return g.prune()


def _cancel_flips(g: Graph) -> None:
    """flip_sign(move(flip_sign(x))) is move(x) for a reshape or transpose (or none): a uint8 tensor between
    two integer ops (onnxruntime's default uint8 activations, also through its uint8 Reshape) is flipped to
    uint8 after one and back to int8 before the next; neither flip is needed."""
    for name in [n.name for n in g.nodes()]:
        n = g.node(name)
        if n.op != "flip_sign" or n.outputs[0] in g.outputs:
            continue
        moves, value = [], n.inputs[0]
        while (p := g.producers().get(value)) is not None and g.node(p).op in ("reshape", "transpose") and \
                len(g.consumers().get(value, [])) == 1 and value not in g.outputs:
            moves.insert(0, g.node(p))
            value = moves[0].inputs[0]
        inner = g.node(p) if p is not None else None
        if inner is None or inner.op != "flip_sign":
            continue
        result = g.values[n.outputs[0]]
        source = inner.inputs[0]
        for m in moves:
            g.set_node(m.name, inputs=[source])
            source = m.outputs[0]
            g.values[source] = replace(g.values[source], dtype=result.dtype, quant=result.quant)
        g.replace_uses(n.outputs[0], source)
        g.remove_node(n.name)
        _keep_model_name(g, inner)


def _keep_model_name(g: Graph, flip) -> None:
    """When nothing reads the uint8 tensor a cancelled flip made, its int8 source takes that tensor's
    (the model's) name, so that reports and validation still find it by name."""
    named, source = flip.outputs[0], flip.inputs[0]
    producer = g.producers().get(source)
    if named in g.consumers() or named in g.outputs or source in g.inputs or source in g.outputs or producer is None:
        return
    g.remove_node(flip.name)
    g.set_node(producer, outputs=[named if o == source else o for o in g.node(producer).outputs])
    g.replace_uses(source, named)
    g.values[named] = replace(g.values.pop(source), name=named)


def canonicalize(g: Graph) -> Graph:
    g = g.copy()
    for step in (dequantize_after_movement, fold_qdq, fold_constants, cancel_movement):
        g = verify(step(g.connect()), after=f"canonicalize.{step.__name__}")
    return g
