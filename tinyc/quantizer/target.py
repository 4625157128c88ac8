"""Quantizing for a target: which weights and scales each conv/dense layer gets, read off what the
configuration's cores accept rather than off the target's name.

The model is quantized once per candidate scheme (power-of-two scales or not; weights per channel or per
tensor; int8 or ternary), with the float model's calibrated ranges, compiled to the IR and every layer
checked against each core's patterns and constraints as dispatch checks them. Per layer the choice is:
- ternary weights where a core takes the layer only with ternary weights (the analog array), except the
  first and the last layer when another core takes them in int8 (the layers ternary weights hurt most,
  as ternary="auto" keeps them int8);
- else int8, per channel where a core still takes that, else per tensor where that is what a core takes;
- power-of-two scales (symmetric, zero point 0) for the whole model when they bring any layer to a core.
A layer no scheme brings to a core stays on the host, in the most accurate form, and the plan says why.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from tinyc import targets
from tinyc.compiler import lowering_passes
from tinyc.errors import InputError, TinycNote
from tinyc.frontend.onnx import from_onnx
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import chain, placeable

from .graph import QuantGraph
from .qdq import emit


@dataclass(frozen=True)
class Scheme:
    power_of_two: bool
    per_channel: bool
    ternary: bool


SCHEMES = [Scheme(pow2, per_channel, ternary) for pow2, per_channel, ternary in
           ((False, True, False), (True, True, False), (True, False, False), (True, True, True), (True, False, True))]


@dataclass
class Plan:
    """The chosen quantization (quantize's arguments) and, per layer, the cores that take it or why none."""
    power_of_two: bool
    per_channel: set = field(default_factory=set)
    ternary: list = field(default_factory=list)
    layers: dict = field(default_factory=dict)  # layer -> {"weights": ..., "cores": [...], "why": "..."}
    host_only: dict = field(default_factory=dict)  # layer no scheme brings to a core -> why, per core


def configured(target, config):
    """(the target, its configuration `config`, default its first)."""
    tgt = targets.get(target)
    config = config or tgt.default_config
    if config not in tgt.configs:
        raise InputError(f"target {tgt.name} has configurations {', '.join(tgt.configs)}, not {config!r}")
    return tgt, config


def accepted(model, target, config) -> dict[str, dict[str, tuple[int, str]]]:
    """Per conv/dense layer of a QDQ model written by qdq.emit: core -> (how many constraints held, "" if
    the core takes the layer, else the first constraint its furthest pattern fails), after the compiler's
    lowerings (which keep a lowered layer's node name)."""
    with warnings.catch_warnings():  # an internal trial: its notes (a batch bound to 1) are not the user's
        warnings.simplefilter("ignore", TinycNote)
        g = canonicalize(from_onnx(model))
    layers = {n.inputs[1][:-len(".weight_q")]: n.name for n in g.nodes()
              if len(n.inputs) > 1 and n.inputs[1].endswith(".weight_q")}
    for _, lowering in lowering_passes(target, config):
        g = lowering(g)
    readers, cores = g.consumers(), target.accelerators(config)
    found = {}
    for layer, name in layers.items():
        node = g.node(name)
        per_core = {}
        for core in cores:  # dispatch's check, patterns then memories; a core's best match
            ms = [placeable(g, target, core, p, nodes) for p in core.patterns
                  if (nodes := chain(g, node, p.ops, readers)) is not None]
            best = max(ms, key=lambda m: (not m.failure, m.passed), default=None)
            per_core[core.name] = (best.passed, best.failure) if best else (0, f"no pattern for op {node.op}")
        found[layer] = per_core
    return found


def _trial(proto, ranges, scheme, layers, target, config):
    g = QuantGraph(_copy(proto), scheme.per_channel, scheme.power_of_two, layers if scheme.ternary else None)
    return accepted(emit(g, g.qparams(ranges)), target, config)


def _copy(proto):
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    return m


def plan(proto, ranges, layers: list[str], target, config) -> Plan:
    """Choose per layer as the module says; `ranges` from calibrating the float model."""
    tgt, config = configured(target, config)
    cores = tgt.accelerators(config)
    trials = {s: _trial(proto, ranges, s, layers, tgt, config) for s in SCHEMES} if cores else {}
    taken = {s: {layer: {c for c, (_, why) in t.get(layer, {}).items() if not why} for layer in layers}
             for s, t in trials.items()}
    exact_scales = sum(bool(c) for c in taken.get(SCHEMES[0], {}).values())
    pow2 = bool(cores) and max((sum(bool(c) for c in taken[s].values()) for s in SCHEMES[1:]), default=0) > exact_scales
    result = Plan(power_of_two=pow2)
    if not pow2:
        result.per_channel = set(layers)
        return result
    int8_schemes = [s for s in SCHEMES[1:] if not s.ternary]  # per channel first: the more accurate
    ternary_schemes = [s for s in SCHEMES[1:] if s.ternary]
    for i, layer in enumerate(layers):
        int8 = next((s for s in int8_schemes if taken[s][layer]), None)
        int8_cores = taken[int8][layer] if int8 else set()
        ternary = next((s for s in ternary_schemes if taken[s][layer] - int8_cores), None)
        if int8 is None and ternary is None:  # why, per core: its furthest failure over the schemes
            result.host_only[layer] = "; ".join(
                f"{c.name}: {max((trials[s][layer][c.name] for s in SCHEMES[1:]), key=lambda r: r[0])[1]}"
                for c in cores if layer in trials[SCHEMES[1]])
        edge = i in (0, len(layers) - 1) and int8 is not None
        chosen = ternary if ternary is not None and not edge else int8 or int8_schemes[0]
        if chosen.ternary:
            result.ternary.append(layer)
        if chosen.per_channel:
            result.per_channel.add(layer)
    return result
