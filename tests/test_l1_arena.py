"""A tensor the L1 plan keeps in an accelerator's memory never reaches main memory, so the L2 arena
(tinyc/passes/memory.py) gives it no bytes: the arena shrinks against l1_reuse=False, no two tensors live
at once share a byte (checked from the graph's own execution order, not the planner's buffers), the
report marks the kept tensors, and the outputs are the reference interpreter's bit for bit, under
ASan/UBSan too."""
from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.report import build_report


@pytest.fixture(scope="module")
def kws():
    model = tinyc.zoo.build("kws", "int8")
    return (tinyc.compile(model, target="diana", config="digital"),
            tinyc.compile(model, target="diana", config="digital", l1_reuse=False))


def kept(cm) -> set[str]:
    return {n.outputs[0] for n in cm.graph.nodes() if n.placement is not None and n.placement.tile
            and n.placement.tile.get("l1", {}).get("output", -1) >= 0}


def live_ranges(g) -> dict[str, tuple[int, int]]:
    """Each activation's (producing step, last reading step); graph inputs from -1, outputs to the end."""
    nodes = g.nodes()
    first = {v: -1 for v in g.inputs}
    last = dict(first)
    for step, n in enumerate(nodes):
        for v in n.inputs:
            if v in first:
                last[v] = step
        for v in n.outputs:
            if not g.values[v].is_const:
                first[v] = last[v] = step
    for v in g.outputs:
        last[v] = len(nodes)
    return {v: (first[v], last[v]) for v in first}


def groups(g, ranges: dict) -> dict[str, tuple[int, int]]:
    """Tensors that are one buffer (a reshape's output and its input, unless that is a graph output), named
    by the first, with the steps the buffer is live."""
    head = {v: v for v in ranges}
    for n in g.nodes():
        if n.op == "reshape" and n.inputs[0] in head and n.inputs[0] not in g.outputs:
            head[n.outputs[0]] = head[n.inputs[0]]
    spans: dict[str, tuple[int, int]] = {}
    for v, h in head.items():
        first, last = ranges[v]
        spans[h] = (min(first, spans.get(h, (first, last))[0]), max(last, spans.get(h, (first, last))[1]))
    return spans


@pytest.mark.parametrize("net", ["ic", "kws"])
def test_kept_tensors_take_no_arena_bytes(net, kws):
    reuse, flow = kws if net == "kws" else (
        tinyc.compile(tinyc.zoo.build(net, "int8"), target="diana", config="digital", l1_reuse=l1)
        for l1 in (True, False))
    g, in_l1 = reuse.graph, kept(reuse)
    assert in_l1 and all(g.values[v].offset is None for v in in_l1)
    assert reuse.graph.arena_bytes < flow.graph.arena_bytes  # ic: 8192 vs 49152 B, kws: 8064 vs 16000 B
    assert g.arena_lower_bound <= g.arena_bytes
    ranges = live_ranges(g)
    placed = [v for v in ranges if v not in in_l1]
    for v in placed:
        assert 0 <= g.values[v].offset and g.values[v].offset + g.values[v].nbytes <= g.arena_bytes
    spans = groups(g, {v: ranges[v] for v in placed})
    # the liveness lower bound counts only what is in main memory: the largest sum of bytes live at one step
    widest = max(sum(g.values[v].nbytes for v, (f, last) in spans.items() if f <= t <= last)
                 for t in {f for f, _ in spans.values()})
    assert g.arena_lower_bound == widest
    for i, a in enumerate(spans):
        for b in list(spans)[i + 1:]:
            (fa, la), (fb, lb) = spans[a], spans[b]
            if fa <= lb and fb <= la:
                va, vb = g.values[a], g.values[b]
                assert va.offset + va.nbytes <= vb.offset or vb.offset + vb.nbytes <= va.offset, (a, b)
    report = build_report(g, reuse.target, reuse.config)
    marked = {b["name"] for layer in report["layers"] for b in layer["buffers"]["outputs"] if b.get("kept_in_l1")}
    assert marked == in_l1 and report["totals"]["arena_bytes"] == g.arena_bytes


def test_kws_shrunk_arena_bit_exact_under_sanitizers(kws):
    reuse, flow = kws
    for seed in (0, 1):
        x = reuse.random_inputs(seed)
        got = reuse.run(x, sanitize=True)
        want = reuse.interpret(x)
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
        flat = flow.run(x)
        assert all(np.array_equal(got[k], flat[k]) for k in got)
