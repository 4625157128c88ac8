"""L1 reuse (tinyc/passes/l1_plan.py): tensors kept in an accelerator's L1 between its layers give the
reference interpreter's outputs bit for bit, the same as the per-layer flow (l1_reuse=False); the HAL's
call trace shows the DMA they skip; the emulator refuses a plan that puts a tensor over a live one; the
cost model's figures with residency by hand."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import tinyc
from tinyc.compiler import CompiledModel
from tinyc.errors import ToolchainError
from tinyc.passes.l1_plan import _with as with_residency
from tinyc.targets import cost, diana
from tinyc.targets.cost import Layer, Machine
from tinyc.targets.tiles import Residency, Tile

HAND = Machine(pe_rows=16, pe_cols=16, job_setup_cycles=100, dma_setup_cycles=70, dma_bytes_per_cycle=8,
               activation_bytes=1000, weight_bytes=1000)
SMALL = Layer("small", diana.CONV2D, c_in=2, h_in=4, w_in=4, c_out=16, h_out=4, w_out=4, kh=3, kw=3, sh=1, sw=1,
              pads=(1, 1, 1, 1))


def test_resident_conv_by_hand():
    """Input and output in L1: one whole-plane box, only the weights and bias move; prefetched, nothing."""
    job = 1 * 4 * 1 * (2 * 9) + 100  # ceil(16/16) * rows * ceil(4/16) * c_in*kh*kw + set-up
    weights, bias = 70 + 288 // 8, 70 + 64 // 8
    resident = Tile(16, 4, 4, 1, Residency((True,), True))
    (box,) = cost.boxes(SMALL, resident)
    assert (box.r0, box.rows, box.q0, box.cols, box.pads) == (0, 4, 0, 4, (1, 1, 1, 1))  # the whole plane
    assert cost.evaluate(SMALL, resident, HAND).cycles == weights + bias + job
    assert cost.footprint(SMALL, resident) == (0, 16 * (18 + 4))  # the plan holds the tensors, not the tile
    prefetched = Tile(16, 4, 4, 1, Residency((True,), True, prefetched=True))
    assert cost.evaluate(SMALL, prefetched, HAND).cycles == job
    # the layer before brings them in with its last job: max(its job, the two transfers)
    carrier = Tile(16, 4, 4, 1, Residency((True,), True, prefetch=(288, 64)))
    assert cost.evaluate(SMALL, carrier, HAND).cycles == weights + bias + max(job, weights + bias)
    with pytest.raises(ValueError, match="whole planes"):
        cost.boxes(SMALL, Tile(16, 2, 4, 1, Residency((True,), False)))


@pytest.fixture(scope="module")
def ic():
    model = tinyc.zoo.build("ic", "int8")
    reuse = tinyc.compile(model, target="diana", config="digital")
    flow = tinyc.compile(model, target="diana", config="digital", l1_reuse=False)
    return reuse, flow, reuse.random_inputs(0)


def outputs_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("net, config", [("kws", "digital"), ("vww", "digital"), ("ad", "digital"),
                                         ("ad", "mixed"), ("ic", "mixed")])
def test_l1_reuse_bit_exact_with_the_per_layer_flow(net, config):
    model = tinyc.zoo.build(net, "int8" if config == "digital" else "ternary")
    reuse = tinyc.compile(model, target="diana", config=config)
    flow = tinyc.compile(model, target="diana", config=config, l1_reuse=False)
    kept = [n.name for n in reuse.graph.nodes() if n.placement.tile and n.placement.tile["l1"]["output"] >= 0]
    assert kept, "no tensor stayed in L1"
    for seed in (0, 1):
        x = reuse.random_inputs(seed)
        got = reuse.run(x)
        assert outputs_equal(got, reuse.interpret(x))
        assert outputs_equal(got, flow.run(x))


def test_ic_l1_reuse_bit_exact_under_sanitizers(ic):
    reuse, flow, x = ic
    got = reuse.run(x, sanitize=True)
    assert outputs_equal(got, reuse.interpret(x)) and outputs_equal(got, flow.run(x))


def trace_calls(cm, x, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / f"trace_{id(cm)}.txt"
    cm.run(x, env={"TINYC_TRACE": str(path)})
    return [line.split() for line in path.read_text().splitlines()[1:] if not line[0].isdigit()]


def test_trace_shows_the_skipped_dma(ic, tmp_path):
    """conv2 reads conv1's output where conv1 left it and leaves its own for conv3: in the per-layer
    flow it brings its input in and takes its output out by DMA; with L1 reuse it moves neither."""
    reuse, flow, x = ic
    names = [n.name for n in reuse.graph.nodes()]
    conv2 = str(names.index("conv2_q"))
    activations = "0"  # digital.L1_activations: the first memory of the chip
    calls = {name: [c for c in trace_calls(cm, x, tmp_path) if c[1] == conv2] for name, cm in (("reuse", reuse),
                                                                                             ("flow", flow))}
    moved = {k: {c[0] for c in v if c[0].startswith("dma") and c[3] == activations} for k, v in calls.items()}
    assert moved == {"flow": {"dma_in", "dma_out"}, "reuse": set()}
    # its own weights came with conv1's last job; it brings in conv3's (2304 B, then the 64 B bias)
    weights = "1"  # digital.L1_weights
    base = reuse.graph.node("conv3_q").placement.tile["l1"]["weights"]
    assert [c for c in calls["reuse"] if c[0] == "dma_in"] == [
        ["dma_in", conv2, "0", weights, str(base), "2304"], ["dma_in", conv2, "0", weights, str(base + 2304), "64"]]
    held = reuse.graph.node("conv2_q").placement.tile["l1"]["output"]
    plane = 16 * 32 * 32
    assert ["l1_hold", conv2, "-1", activations, str(held), str(plane)] in calls["reuse"]
    jobs = [c for c in calls["reuse"] if c[0] == "job"]
    assert [(int(c[4]), int(c[5])) for c in jobs] == [(held, plane)]  # the job writes the held tensor in place


def test_emulator_rejects_a_plan_over_a_live_tensor(ic):
    """Broken on purpose: conv3's output placed on conv1's, which add1 still needs (the residual)."""
    reuse, _, x = ic
    g = reuse.graph.copy()
    conv1 = g.node("conv1_q").placement.tile["l1"]["output"]
    conv3 = g.node("conv3_q").placement.tile["l1"]["output"]
    assert conv1 != conv3
    for name in ("conv3_q", "add1_q"):
        p = g.node(name).placement
        l1 = copy.deepcopy(p.tile["l1"])
        l1["output"] = conv1 if l1["output"] == conv3 else l1["output"]
        l1["inputs"] = [conv1 if at == conv3 else at for at in l1["inputs"]]
        l1["release"] = [[conv1 if at == conv3 else at, n] for at, n in l1["release"]]
        p.tile = {**p.tile, "l1": l1}
    broken = CompiledModel(g, reuse.target, reuse.config, "broken")
    with pytest.raises(ToolchainError, match=r"exit 3\): tinyc-emu: layer conv3_q tile 0: job output "
                                             rf"writes \[{conv1}, {conv1 + 16 * 32 * 32}\) of memory "
                                             r"digital\.L1_activations over the live tensor"):
        broken.run(x)


def test_l1_reuse_is_faster_and_within_the_l1_budget(ic):
    reuse, flow, _ = ic
    m = cost.machine(reuse.target, reuse.target.core("digital"))
    per_layer = [n.placement for n in reuse.graph.nodes() if n.placement.core == "digital"]
    for p in per_layer:
        l1 = p.tile["l1"]
        job = reuse.target.core(p.core).job(p.pattern)
        assert l1["scratch"] + cost.footprint(cost.layer_geometry(reuse.graph, p.anchor, job),
                                              cost.tile_of(p.tile))[0] <= m.activation_bytes
        assert 0 <= l1["weights"] <= m.weight_bytes
    cycles = [sum(n.placement.cost["cycles"] for n in cm.graph.nodes() if n.placement.core == "digital")
              for cm in (reuse, flow)]
    assert cycles[0] < 0.8 * cycles[1]


def test_cli_l1_reuse_flag(capsys):
    from tinyc.cli import main
    kept = {}
    for flag in ("--l1-reuse", "--no-l1-reuse"):
        assert main(["report", "zoo:ic", "--target", "diana", "--config", "digital", flag, "--json"]) == 0
        layers = json.loads(capsys.readouterr().out)["layers"]
        kept[flag] = [layer["name"] for layer in layers if layer.get("tile", {}).get("l1", {}).get("output", -1) >= 0]
    assert kept["--l1-reuse"] and kept["--no-l1-reuse"] == []


def test_prefetched_layers_take_the_pairs_fastest_channel_tile():
    """A layer of whole planes whose first weights come in during the previous layer's last job takes the
    channel tile that makes the pair fastest, found here by exhaustive search over every whole-plane tile
    that fits beside the previous layer's weights (the cost model the objective): on MobileNet, depthwise
    layers after a pointwise one and pointwise layers after a one-job depthwise one."""
    cm = tinyc.compile(tinyc.zoo.build("vww", "int8"), target="diana", config="digital")
    core = cm.target.core("digital")
    m = cost.machine(cm.target, core)
    layers = [n for n in cm.graph.nodes() if n.placement is not None and n.placement.core == "digital"
              and n.placement.anchor == n.name]

    def strip(tile, **changes):  # the tile without its own prefetch of the layer after
        return with_residency(tile, **{"prefetch": (), **changes})

    checked = 0
    for prev, n in zip(layers, layers[1:]):
        tile = cost.tile_of(n.placement.tile)
        if not (tile.resident.prefetched and tile.resident.any_tensor):
            continue
        p_layer = cost.layer_geometry(cm.graph, prev, core.job(prev.placement.pattern))
        layer = cost.layer_geometry(cm.graph, n, core.job(n.placement.pattern))
        p_tile = cost.tile_of(prev.placement.tile)

        def pair(t):
            moved = tuple(b for b in (t.tc * layer.weight_bytes_per_channel, t.tc * layer.bias_bytes_per_channel) if b)
            carrier = strip(p_tile, prefetch=moved)
            return cost.evaluate(p_layer, carrier, m).cycles + cost.evaluate(layer, strip(t, prefetched=True), m).cycles

        held = cost.footprint(p_layer, p_tile)[1]
        every = [Tile(tc, layer.h_out, layer.w_out, buffers, tile.resident) for tc in cost.channel_tiles(layer, m)
                 for buffers in (2, 1)]
        fitting = [t for t in every if cost.fits(layer, t, m) and cost.footprint(layer, t)[1] + held <= m.weight_bytes]
        assert pair(tile) == min(pair(t) for t in fitting), n.name
        checked += 1
    assert checked >= 20  # every depthwise and pointwise pair of MobileNet's 13 blocks but the first
