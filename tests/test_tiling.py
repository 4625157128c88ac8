"""The cost model against hand calculations, and the CP-SAT tiler against exhaustive enumeration of
every legal tiling of the same cost model (docs/accelerators.md, "Cost model" and "Tiling")."""
import functools
import math

import numpy as np
import pytest

import tinyc.zoo
from tinyc import targets
from tinyc.errors import DoesNotFitError
from tinyc.frontend.onnx import from_onnx
from tinyc.ir.graph import Graph, Value
from tinyc.passes.canonicalize import canonicalize
from tinyc.passes.dispatch import dispatch
from tinyc.passes.tiling import tile_layer, tiling
from tinyc.targets import cost, diana, host_cost
from tinyc.targets.base import Core, Memory, Param, Target
from tinyc.targets.cost import Layer, Machine, Tile

DIANA = targets.get("diana")
DIGITAL = cost.machine(DIANA, DIANA.core("digital"))


def test_machine_reads_the_targets_data():
    core = Core("npu", "accelerator", memories=(Memory("a", 1000, role="activations"), Memory("w", 500, role="weights")),
                params={"pe_rows": Param(8, "t"), "pe_cols": Param(4, "t"), "job_setup_cycles": Param(9, "t")})
    target = Target("t", "", 1e6, Memory("L2", 10 ** 6), (core,),
                    params={"dma_setup_cycles": Param(5, "t"), "dma_bytes_per_cycle": Param(2, "t")})
    assert cost.machine(target, core) == Machine(8, 4, 9, 5, 2, 1000, 500)


@functools.cache
def zoo_layers(net: str) -> list[tuple[str, Layer]]:
    g = dispatch(canonicalize(from_onnx(tinyc.zoo.build(net, "int8"))), DIANA, "digital")
    return [(n.name, cost.layer_geometry(g, n, DIANA.core("digital").job(n.placement.pattern))) for n in g.nodes()
            if n.placement.core == "digital" and n.placement.anchor == n.name]


def exhaustive_minimum(layer: Layer, m: Machine) -> int:
    """The least modeled latency over every legal tiling and buffering. Tilings are visited in the order
    of a bound no latency can be below (each box's job, and each box's transfers, at least their set-up
    and every output and weight byte moved once) and the walk stops when the bound reaches the best."""
    floor_bytes = layer.c_out * (layer.h_out * layer.w_out + layer.weight_bytes_per_channel
                                 + layer.bias_bytes_per_channel)
    candidates = []
    for buffers in (1, 2):
        for t in cost.legal_tiles(layer, m, buffers):
            n = math.ceil(layer.c_out / t.tc) * math.ceil(layer.h_out / t.th) * math.ceil(layer.w_out / t.tw)
            compute = n * m.job_setup_cycles + layer.macs / (m.pe_rows * m.pe_cols)
            dma = n * (layer.inputs + 1) * m.dma_setup_cycles + floor_bytes / m.dma_bytes_per_cycle
            candidates.append((max(compute, dma), t))
    best = None
    for bound, t in sorted(candidates, key=lambda c: c[0]):
        if best is not None and bound >= best:
            break
        if cost.fits(layer, t, m):
            cycles = cost.evaluate(layer, t, m).cycles
            best = cycles if best is None else min(best, cycles)
    return best


@pytest.mark.parametrize("net", ["kws", "vww", "ic", "ad"])
def test_cp_sat_finds_the_exhaustive_minimum_on_every_zoo_layer(net):
    layers = zoo_layers(net)
    assert layers
    for name, layer in layers:
        choice = tile_layer(layer, DIGITAL)
        assert choice.proven, name
        assert cost.fits(layer, choice.tile, DIGITAL), name
        assert choice.cost == cost.evaluate(layer, choice.tile, DIGITAL), name
        assert choice.cost.cycles == exhaustive_minimum(layer, DIGITAL), name


PAPER = {  # the HTVM paper's single-layer geometries
    "conv": Layer("conv", diana.CONV2D, 32, 32, 32, 32, 32, 32, 3, 3, 1, 1, (1, 1, 1, 1)),
    "depthwise": Layer("depthwise", diana.DEPTHWISE, 32, 32, 32, 32, 32, 32, 3, 3, 1, 1, (1, 1, 1, 1)),
    "dense": Layer("dense", diana.DENSE, 640, 1, 1, 128, 1, 1),
    "strided 5x5": Layer("strided", diana.CONV2D, 8, 20, 20, 24, 10, 10, 5, 5, 2, 2, (2, 2, 2, 2)),
}


@pytest.mark.parametrize("budget", [8000, 24000, 256000])
@pytest.mark.parametrize("name", sorted(PAPER))
def test_cp_sat_finds_the_exhaustive_minimum_under_small_budgets(name, budget):
    m = Machine(16, 16, 100, 70, 8, budget, 64000)
    choice = tile_layer(PAPER[name], m)
    assert choice.proven
    assert choice.cost.cycles == exhaustive_minimum(PAPER[name], m)


# ---------------------------------------------------------------- the cost model by hand
HAND = Machine(pe_rows=16, pe_cols=16, job_setup_cycles=100, dma_setup_cycles=70, dma_bytes_per_cycle=8,
               activation_bytes=1000, weight_bytes=1000)
SMALL = Layer("small", diana.CONV2D, c_in=2, h_in=4, w_in=4, c_out=16, h_out=4, w_out=4, kh=3, kw=3, sh=1, sw=1,
              pads=(1, 1, 1, 1))


def test_boxes_of_a_small_conv_by_hand():
    first, second = cost.boxes(SMALL, Tile(16, 2, 4, 2))
    # output rows 0..1 read input rows -1..2: row -1 is padding; rows 2..3 read 1..4: row 4 is padding
    assert (first.h0, first.hn, first.r0, first.rows, first.pads) == (0, 2, 0, 3, (1, 1, 0, 1))
    assert (second.h0, second.hn, second.r0, second.rows, second.pads) == (2, 2, 1, 3, (0, 1, 1, 1))
    assert (first.cin, first.cols, first.starts_block, second.starts_block) == (2, 4, True, False)


def test_cycles_of_a_small_conv_by_hand():
    # box bytes: input 2*3*4 = 24, output 16*2*4 = 128, weights 16*2*3*3 = 288, bias 4*16 = 64
    dma = {24: 70 + 3, 128: 70 + 16, 288: 70 + 36, 64: 70 + 8}
    in_0, in_1 = dma[24] + dma[288] + dma[64], dma[24]  # the first box brings the block's weights and bias
    job = 1 * 2 * 1 * (2 * 9) + 100  # ceil(16/16) * rows * ceil(4/16) * c_in*kh*kw + set-up
    out = dma[128]
    double = in_0 + max(job, in_1 + 0) + max(job, 0 + out) + out
    single = (in_0 + job + out) + (in_1 + job + out)
    assert (double, single) == (615, 774)
    got = cost.evaluate(SMALL, Tile(16, 2, 4, 2), HAND)
    assert got == cost.Cost(cycles=615, compute_cycles=2 * job, dma_cycles=in_0 + in_1 + 2 * out,
                            dma_bytes=2 * 24 + 288 + 64 + 2 * 128, tiles=2, macs=16 * 4 * 4 * 18,
                            utilization=16 * 4 * 4 * 18 / (256 * 615))
    assert cost.evaluate(SMALL, Tile(16, 2, 4, 1), HAND).cycles == 774
    # double buffered: two input and two output boxes; one channel block keeps one set of weights
    assert cost.footprint(SMALL, Tile(16, 2, 4, 2)) == (2 * (24 + 128), 16 * (18 + 4))
    assert cost.footprint(SMALL, Tile(16, 2, 4, 1)) == (24 + 128, 16 * (18 + 4))


def test_dense_add_and_depthwise_by_hand():
    dense = Layer("fc", diana.DENSE, 40, 1, 1, 32, 1, 1)
    (job,) = {cost.box_cycles(dense, b, HAND)[1] for b in cost.boxes(dense, Tile(16, 1, 1, 2))}
    assert job == 1 * math.ceil(40 / 16) + 100
    assert cost.footprint(dense, Tile(16, 1, 1, 2)) == (2 * (40 + 16), 2 * 16 * (40 + 4))  # two blocks
    add = Layer("add", diana.ADD, 16, 8, 8, 16, 8, 8, has_bias=False)
    (box,) = cost.boxes(add, Tile(16, 8, 8, 1))
    # two inputs in; the 8x8 pixels (element-wise) go through the PE columns as one row: ceil(64 / 16) passes
    assert cost.box_cycles(add, box, HAND) == (2 * (70 + 128), 64 // 16 + 100, 70 + 128)
    assert cost.footprint(add, Tile(16, 8, 8, 1)) == (3 * 1024, 0)
    dw = Layer("dw", diana.DEPTHWISE, 32, 6, 6, 32, 3, 3, 3, 3, 2, 2, (0, 0, 1, 1))
    boxes = cost.boxes(dw, Tile(16, 3, 3, 1))
    assert [(b.ci0, b.cin, b.rows, b.pads) for b in boxes] == [(0, 16, 6, (0, 0, 1, 1)), (16, 16, 6, (0, 0, 1, 1))]
    assert cost.box_cycles(dw, boxes[1], HAND)[1] == 1 * 3 * 1 * 9 + 100


@pytest.mark.parametrize("layer", list(PAPER.values()) + [Layer("odd", diana.DEPTHWISE, 24, 7, 9, 24, 7, 9, 7, 5, 1, 1, (3, 2, 3, 2))])
def test_boxes_cover_every_output_once_and_read_the_window(layer):
    for tile in (Tile(16, 3, 5), Tile(layer.c_out, 1, 2), Tile(16, layer.h_out, layer.w_out)):
        hits = np.zeros((layer.c_out, layer.h_out, layer.w_out), int)
        for b in cost.boxes(layer, tile):
            hits[b.c0:b.c0 + b.cn, b.h0:b.h0 + b.hn, b.w0:b.w0 + b.wn] += 1
            top, left, bottom, right = b.pads
            assert top + b.rows + bottom == (b.hn - 1) * layer.sh + layer.kh
            assert left + b.cols + right == (b.wn - 1) * layer.sw + layer.kw
            assert 0 <= b.r0 and b.r0 + b.rows <= layer.h_in and 0 <= b.q0 and b.q0 + b.cols <= layer.w_in
            assert b.r0 == max(0, b.h0 * layer.sh - layer.pads[0])
        assert (hits == 1).all()


def test_host_estimate_by_hand():
    g = Graph()
    g.add_value(Value("x", (1, 2, 5, 5), "int8"))
    g.add_const("w", np.zeros((4, 2, 3, 3), np.int8))
    g.add_value(Value("y", (1, 4, 3, 3), "int8"))
    g.add_node("conv", "qconv", ["x", "w"], ["y"])
    host = Core("cpu", "cpu", params={"cycles_per_mac": Param(6, "t"), "cycles_per_element": Param(12, "t")})
    assert host_cost.host_cycles(g, "conv", host) == 36 * 18 * 6 + 36 * 12


# ---------------------------------------------------------------- budgets
def test_a_layer_too_big_names_the_node_and_the_least_memory():
    huge = Layer("huge_conv", diana.CONV2D, 4096, 8, 8, 32, 8, 8, 3, 3, 1, 1, (1, 1, 1, 1))
    least = 4096 * 3 * 3 + 16  # one channel block of 16, one output pixel: a 3x3 window of every input channel
    tight = Machine(16, 16, 100, 70, 8, least - 1, 64000 * 100)
    with pytest.raises(DoesNotFitError, match=f"huge_conv: .*needs {least} B of activations") as err:
        tile_layer(huge, tight)
    assert str(16 * (4096 * 9 + 4)) in str(err.value)  # and the weights of one channel block
    assert tile_layer(huge, Machine(16, 16, 100, 70, 8, least, 64000 * 100)).tile == Tile(16, 1, 1, 1)
    dense = Layer("fc", diana.DENSE, 640, 1, 1, 128, 1, 1)
    with pytest.raises(DoesNotFitError, match=f"needs .* and {16 * 644} B of weights memory"):
        tile_layer(dense, Machine(16, 16, 100, 70, 8, 256000, 16 * 644 - 1))


def test_a_smaller_activation_budget_changes_the_tile():
    conv = PAPER["conv"]
    roomy = tile_layer(conv, DIGITAL)
    tight = tile_layer(conv, Machine(16, 16, 100, 70, 8, 4000, 64000))
    assert roomy.tile != tight.tile
    assert sum(cost.footprint(conv, tight.tile)[:1]) <= 4000 < cost.footprint(conv, roomy.tile)[0]
    assert tight.cost.cycles >= roomy.cost.cycles


@pytest.mark.parametrize("budget", [8000, 64000, 256000])
def test_dory_is_valid_and_never_faster_than_cp_sat(budget):
    m = Machine(16, 16, 100, 70, 8, budget, 64000)
    layers = list(PAPER.values()) + [layer for net in ("kws", "ic") for _, layer in zoo_layers(net)]
    for layer in layers:
        d = tile_layer(layer, m, "dory")
        assert d.tile.buffers == 1 and cost.fits(layer, d.tile, m), layer.name
        assert d.tile.tc in cost.channel_tiles(layer, m), layer.name
        assert d.cost == cost.evaluate(layer, d.tile, m), layer.name
        assert tile_layer(layer, m).cost.cycles <= d.cost.cycles, layer.name


# ---------------------------------------------------------------- the pass
def test_tiling_pass_sets_tile_and_cost_on_anchors_deterministically():
    g = dispatch(canonicalize(from_onnx(tinyc.zoo.build("ic", "int8"))), DIANA, "digital")
    first, second = tiling(g.copy(), DIANA), tiling(g.copy(), DIANA)
    tiled = [n for n in first.nodes() if n.placement.tile is not None]
    assert len(tiled) == len(zoo_layers("ic"))
    for n in first.nodes():
        p = n.placement
        assert (p.tile is not None) == (p.core == "digital" and p.anchor == n.name)
        if p.tile is None:
            continue
        assert set(p.tile) == {"c_out", "h_out", "w_out", "buffers"}
        assert set(p.cost) == {"cycles", "compute_cycles", "dma_cycles", "dma_bytes", "tiles", "macs",
                               "utilization"}
        assert all(type(v) in (int, float) for v in list(p.tile.values()) + list(p.cost.values()))
        assert p.tile == second.node(n.name).placement.tile
