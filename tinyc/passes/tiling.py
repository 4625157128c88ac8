"""Tiling: per accelerator layer, the output tile and buffering that minimize the modeled latency.

"cp-sat" (the default) finds the exact minimum of the cost model (tinyc/targets/cost.py) over every
legal tiling. The contract's double-buffered latency sums a max per box over boxes whose sizes
differ at the edges, which a CP-SAT model over tile sizes cannot state compactly; so the model
states exactly a lower bound of it, a function of the tile sizes (see _model). A first solve minimizes
the bound, the cost model evaluates exactly every tiling it meets on its way; a second solve enumerates
every tiling whose bound is at most the best latency found, each evaluated exactly. A tiling as fast as
that or faster has a bound no higher, so the fastest is among them: the minimum, proven.
Single buffering is searched the same way (it lets a tile twice as large fit), and the faster wins.

"dory" is DORY/HTVM's heuristic: no tiling when the layer fits whole, else the tile that
maximizes a score rewarding widths and channel counts that are multiples of the PE array, then wide
tiles, then large tiles; single buffered.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from ..errors import DoesNotFitError, TinycError
from ..ir.graph import Graph
from ..targets import cost
from ..targets.cost import Cost, Layer, Machine, Tile

SOLVE_SECONDS = 20.0  # per CP-SAT call; the zoo's layers solve in milliseconds
SEED = 1


@dataclass
class Choice:
    tile: Tile
    cost: Cost
    proven: bool  # cp-sat: the minimum latency is proven over every legal tiling
    solves: int  # CP-SAT calls (per buffering: the bound's minimum, then the enumeration of the rest)
    seconds: float


def tiling(g: Graph, target, tiler: str = "cp-sat") -> Graph:
    """Set placement.tile and placement.cost on every accelerator anchor."""
    if tiler not in TILERS:
        raise ValueError(f"unknown tiler {tiler!r}: one of {', '.join(TILERS)}")
    g = g.copy()
    accelerators = {c.name: c for c in target.cores if c.kind == "accelerator"}
    for n in g.nodes():
        p = n.placement
        if p is None or p.core not in accelerators or p.anchor != n.name:
            continue
        layer = cost.layer_geometry(g, n, accelerators[p.core].job(p.pattern))
        choice = tile_layer(layer, cost.machine(target, accelerators[p.core]), tiler)
        t = choice.tile
        p.tile = {"c_out": t.tc, "h_out": t.th, "w_out": t.tw, "buffers": t.buffers}
        p.cost = choice.cost.as_dict()
    return g


def tile_layer(layer: Layer, m: Machine, tiler: str = "cp-sat") -> Choice:
    """The tiler's choice for the layer on the machine. Each (geometry, machine, tiler) is solved once per
    process (dispatch prices every candidate core, then the tiling pass reuses its figure; layers of one
    geometry share one solve): the tilers are deterministic, so a reused choice is the one a new solve gives."""
    check_fits(layer, m)
    try:
        return solved_tiling(replace(layer, name=""), m, tiler)
    except TinycError as e:
        raise e.located(node=layer.name) from None


@functools.lru_cache(maxsize=4096)
def solved_tiling(geometry: Layer, m: Machine, tiler: str) -> Choice:
    """The cache behind tile_layer (`solved_tiling.cache_clear()` forgets every solve, for a cold timing)."""
    start = time.perf_counter()
    choice = TILERS[tiler](geometry, m)
    choice.seconds = time.perf_counter() - start
    return choice


def check_fits(layer: Layer, m: Machine) -> None:
    """Raise DoesNotFitError with the least memory any tiling needs, when even that is too much: the
    smallest channel tile and one output pixel, single buffered (a larger tile's input window holds
    each of its pixels' windows, so no tiling needs less)."""
    tc = min(cost.channel_tiles(layer, m))
    activations, weights = cost.footprint(layer, Tile(tc, 1, 1, 1))
    if activations > m.activation_bytes or weights > m.weight_bytes:
        raise DoesNotFitError(
            f"{layer.kind} layer does not fit the accelerator's memories in any tiling: the smallest tiling "
            f"(c_out {tc}, 1x1 outputs, single buffered) needs {activations} B of activations memory "
            f"(has {m.activation_bytes} B) and {weights} B of weights memory (has {m.weight_bytes} B)",
            node=layer.name)


# ---------------------------------------------------------------- cp-sat
def cp_sat(layer: Layer, m: Machine) -> Choice:
    best, solves, proven = None, 0, True
    for buffers in (2, 1):
        # single buffering after double: only a tiling as fast matters (on a tie, the one holding fewer bytes)
        found, n, complete = _cp_sat_buffers(layer, m, buffers, best.cost.cycles if best else None)
        solves, proven = solves + n, proven and complete
        if found is not None and (best is None or _rank(layer, found) <= _rank(layer, best)):
            best = found
    if best is None:
        raise TinycError(f"CP-SAT found no tiling in {SOLVE_SECONDS} s, though one fits", node=layer.name)
    return Choice(best.tile, best.cost, proven, solves, 0.0)


def _cp_sat_buffers(layer: Layer, m: Machine, buffers: int, at_most: int | None):
    """(the fastest tiling with this buffering if one fits within `at_most` cycles, CP-SAT calls, whether
    every call finished, which proves it the fastest)."""
    model, tile_vars, bound = _model(layer, m, buffers)
    if at_most is not None:
        model.Add(bound <= at_most)
    solver = cp_model.CpSolver()
    solver.parameters.random_seed = SEED
    solver.parameters.num_workers = 1
    solver.parameters.cp_model_probing_level = 0  # probing costs more than it saves on these small models
    solver.parameters.linearization_level = 0  # no LP relaxation: the enumerating solve runs about 2x faster
    solver.parameters.max_time_in_seconds = SOLVE_SECONDS
    seen = _Tilings(tile_vars)
    status = solver.Solve(model, seen)
    if status == cp_model.INFEASIBLE:
        return None, 1, True
    if status != cp_model.OPTIMAL:  # out of time: keep the best latency found so far
        return (_fastest(layer, m, buffers, seen.found) if seen.found else None), 1, False
    best = _fastest(layer, m, buffers, seen.found)
    # then every other tiling whose bound is at most the best latency found, in one enumerating solve: the
    # bound is a function of the tile sizes (_model), so each tiling comes once; a tiling as fast as the
    # best or faster has a bound no higher, so the fastest (ties: fewest bytes) is among them
    model.ClearObjective()
    model.Add(bound <= best.cost.cycles)
    model.AddForbiddenAssignments(list(tile_vars), seen.found)
    solver.parameters.enumerate_all_solutions = True
    rest = _Tilings(tile_vars)
    status = solver.Solve(model, rest)
    return _fastest(layer, m, buffers, seen.found + rest.found), 2, status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)


def _fastest(layer: Layer, m: Machine, buffers: int, tilings: list[tuple[int, int, int]]) -> Choice:
    """The tiling of least exact latency, then of fewest bytes held, then smallest sizes: a choice that does
    not depend on the order the solver met them."""
    choices = [Choice(Tile(*sizes, buffers), cost.evaluate(layer, Tile(*sizes, buffers), m), True, 0, 0.0)
               for sizes in tilings]
    return min(choices, key=lambda c: (*_rank(layer, c), c.tile.tc, c.tile.th, c.tile.tw))


def _rank(layer: Layer, choice: Choice) -> tuple[int, int]:
    """What the tiler minimizes: the modeled latency, then the bytes the tiling holds in the core's memories."""
    return choice.cost.cycles, sum(cost.footprint(layer, choice.tile))


class _Tilings(cp_model.CpSolverSolutionCallback):
    """The distinct tilings a solve meets (on its way to the optimum, or enumerating): each is evaluated
    exactly afterwards (a solve costs tens of milliseconds, an evaluation far less)."""

    def __init__(self, tile_vars):
        super().__init__()
        self.tile_vars = tile_vars
        self.found: list[tuple[int, int, int]] = []

    def on_solution_callback(self):
        sizes = tuple(self.Value(v) for v in self.tile_vars)
        if sizes not in self.found:
            self.found.append(sizes)


class _Model:
    """CP-SAT integer variables with known upper bounds (CP-SAT needs every product to fit in int64)."""

    def __init__(self):
        self.md = cp_model.CpModel()
        self.top = {}

    def var(self, name, lo, hi):
        v = self.md.NewIntVar(lo, hi, name)
        self.top[v.Index()] = hi
        return v

    def upper(self, x):
        return x if isinstance(x, int) else self.top[x.Index()]

    def product(self, name, *factors):
        result = factors[0]
        for i, f in enumerate(factors[1:]):
            nxt = self.var(f"{name}{i}", 0, self.upper(result) * self.upper(f))
            self.md.AddMultiplicationEquality(nxt, [result, f])
            result = nxt
        return result

    def ceil_div(self, name, numerator, numerator_top, denominator):  # denominator: a positive int or variable
        q = self.var(name, 0, numerator_top)
        self.md.AddDivisionEquality(q, numerator + denominator - 1, denominator)
        return q


def _model(layer: Layer, m: Machine, buffers: int):
    """The CP-SAT model of one buffering: tile sizes, what follows from them, budgets, a latency bound."""
    x = _Model()
    md = x.md

    def dma(name, nbytes, nbytes_top):  # one transfer of a positive byte count
        return m.dma_setup_cycles + x.ceil_div(name, nbytes, nbytes_top, m.dma_bytes_per_cycle)

    def lanes(name, size, size_top, width):  # passes of the PE array over `size` outputs: ceil(size / width)
        return x.ceil_div(name, size, size_top, width)

    tc = md.NewIntVarFromDomain(cp_model.Domain.FromValues(cost.channel_tiles(layer, m)), "tc")
    x.top[tc.Index()] = layer.c_out
    th, tw = x.var("th", 1, layer.h_out), x.var("tw", 1, layer.w_out)
    n_c = x.ceil_div("n_c", layer.c_out, layer.c_out, tc)
    last_c = x.var("last_c", 1, layer.c_out)
    md.Add(last_c == layer.c_out + tc - x.product("n_c_tc", n_c, tc))
    # per spatial dimension, what a tile size implies comes from the cost model's own window arithmetic
    dims = {}
    for axis, size, t, profile in (("h", layer.h_out, th, cost.row_profile), ("w", layer.w_out, tw, cost.col_profile)):
        table = [profile(layer, s) for s in range(1, size + 1)]
        dims[axis] = {}
        for field in ("count", "last", "first_window", "max_window", "sum_window"):
            values = [getattr(d, field) for d in table]
            v = dims[axis][field] = x.var(f"{axis}_{field}", min(values), max(values))
            md.AddElement(t - 1, values, v)
    h, w = dims["h"], dims["w"]
    boxes_per_block = x.product("boxes_per_block", h["count"], w["count"])
    tiles = x.product("tiles", n_c, boxes_per_block)

    # budgets (cost.footprint)
    whole_input = layer.job.whole_input
    cin_max = layer.c_in if whole_input else tc
    in_box = x.product("in_box", cin_max, h["max_window"], w["max_window"])
    out_box = x.product("out_box", tc, th, tw)
    md.Add(buffers * (layer.inputs * in_box + out_box) <= m.activation_bytes)
    per_channel = layer.weight_bytes_per_channel + layer.bias_bytes_per_channel
    md.Add(tc * per_channel <= m.weight_bytes)
    if buffers == 2:  # several channel blocks: the next block's weights come in while this one computes
        several_blocks = md.NewBoolVar("several_blocks")
        md.Add(n_c >= 2).OnlyEnforceIf(several_blocks)
        md.Add(n_c <= 1).OnlyEnforceIf(several_blocks.Not())
        md.Add(2 * tc * per_channel <= m.weight_bytes).OnlyEnforceIf(several_blocks)

    # compute of every box (exact): per dimension, the sum over tiles of the PE array's passes, multiplied
    per_pass, lane = cost.pass_cycles(layer), layer.job.cycles
    c_full = lanes("c_full", tc, layer.c_out, lane.channel_lanes)
    c_last = lanes("c_last", last_c, layer.c_out, lane.channel_lanes)
    w_full, w_last = (lanes("w_full", tw, layer.w_out, lane.column_lanes),
                      lanes("w_last", w["last"], layer.w_out, lane.column_lanes))
    channel_passes = x.var("channel_passes", 0, layer.c_out)
    md.Add(channel_passes == x.product("c_sum", n_c, c_full) - c_full + c_last)
    if layer.pointwise and lane.column_lanes > 1:  # a box's pixels in one row: ceil(hn * wn / P) per box,
        # four kinds of box (with one PE column hn * wn counts either way: the model below)
        def area(name, rows, columns):
            return lanes(name, x.product(name + "_pixels", rows, columns), layer.h_out * layer.w_out,
                         lane.column_lanes)
        first_pixels, last_pixels = area("first", th, tw), area("last", h["last"], w["last"])
        inner_h, inner_w = x.var("inner_h", 0, layer.h_out), x.var("inner_w", 0, layer.w_out)
        md.Add(inner_h == h["count"] - 1)
        md.Add(inner_w == w["count"] - 1)
        pixel_passes = x.var("pixel_passes", 0, layer.h_out * layer.w_out)
        md.Add(pixel_passes == x.product("inner", inner_h, inner_w, first_pixels)
               + x.product("edge_w", inner_h, area("rows_last_w", th, w["last"]))
               + x.product("edge_h", inner_w, area("last_h_cols", h["last"], tw)) + last_pixels)
        spatial = x.product("passes", channel_passes, pixel_passes)
        first_box, last_box = (c_full, first_pixels), (c_last, last_pixels)
    else:
        column_passes = x.var("column_passes", 0, layer.w_out)
        md.Add(column_passes == x.product("w_sum", w["count"], w_full) - w_full + w_last)
        if lane.row_lanes == 1:  # a pass per output row: the rows' passes are the layer's rows
            h_full, h_last = th, h["last"]
            spatial = layer.h_out * x.product("passes", channel_passes, column_passes)
        else:
            h_full, h_last = (lanes("h_full", th, layer.h_out, lane.row_lanes),
                              lanes("h_last", h["last"], layer.h_out, lane.row_lanes))
            row_passes = x.var("row_passes", 0, layer.h_out)
            md.Add(row_passes == x.product("h_sum", h["count"], h_full) - h_full + h_last)
            spatial = x.product("passes", channel_passes, column_passes, row_passes)
        first_box, last_box = (c_full, h_full, w_full), (c_last, h_last, w_last)
    compute = per_pass * spatial + m.job_setup_cycles * tiles + cost.load_cycles(layer) * n_c

    # every DMA transfer: their count is exact, their bytes are summed before rounding (a lower bound)
    cin_sum = x.product("cin_sum", n_c, layer.c_in) if whole_input else layer.c_out
    in_bytes = x.product("in_bytes", cin_sum, h["sum_window"], w["sum_window"])
    fixed_bytes = layer.c_out * (layer.h_out * layer.w_out + per_channel)  # every output, every weight once
    weight_transfers = (layer.weight_bytes_per_channel > 0) + (layer.bias_bytes_per_channel > 0)
    transfers = (layer.inputs + 1) * tiles + weight_transfers * n_c
    all_dma = m.dma_setup_cycles * transfers + x.ceil_div(
        "dma", layer.inputs * in_bytes + fixed_bytes, layer.inputs * x.upper(in_bytes) + fixed_bytes,
        m.dma_bytes_per_cycle)
    bound = x.var("bound", 0, 1 << 50)
    md.Minimize(bound)
    if buffers == 1:
        md.Add(bound == all_dma + compute)
        return md, (tc, th, tw), bound

    # double buffered, L = in_0 + sum_i max(c_i, in_i+1 + out_i-1) + out_N-1 is at least each of:
    # (a) in_0 + every c_i + out_N-1; (b) every DMA; (c) with two boxes or more, every DMA plus what the
    # first and last jobs compute beyond the one transfer they overlap (in_1 and out_N-2, bounded above)
    def job(name, lanes_and_rows):  # one box's job from its passes: channel lanes x (rows x) column lanes
        return per_pass * x.product(name, *lanes_and_rows) + m.job_setup_cycles

    block_weights = sum(dma(f"{name}_0", tc * per, layer.c_out * per)
                        for name, per in (("weights", layer.weight_bytes_per_channel),
                                          ("bias", layer.bias_bytes_per_channel)) if per)
    first_bytes = x.product("in_0_bytes", cin_max, h["first_window"], w["first_window"])
    first_in = layer.inputs * dma("in_0", first_bytes, x.upper(first_bytes)) + block_weights
    last_bytes = x.product("out_last_bytes", last_c, h["last"], w["last"])
    overlapped_compute = first_in + compute + dma("out_last", last_bytes, x.upper(last_bytes))

    one_box_per_block = md.NewBoolVar("one_box_per_block")
    md.Add(boxes_per_block == 1).OnlyEnforceIf(one_box_per_block)
    md.Add(boxes_per_block >= 2).OnlyEnforceIf(one_box_per_block.Not())
    starts_next = x.var("starts_next", 0, cost.dma_cycles(layer.c_out * per_channel, m) * weight_transfers)
    md.Add(starts_next == block_weights).OnlyEnforceIf(one_box_per_block)
    md.Add(starts_next == 0).OnlyEnforceIf(one_box_per_block.Not())
    most_in = layer.inputs * dma("in_most", in_box, x.upper(in_box)) + starts_next
    most_out = dma("out_most", out_box, x.upper(out_box))
    first_extra, last_extra = x.var("first_extra", 0, 1 << 40), x.var("last_extra", 0, 1 << 40)
    md.AddMaxEquality(first_extra, [job("c_0", first_box) + cost.load_cycles(layer) - most_in, 0])
    md.AddMaxEquality(last_extra, [job("c_n", last_box) - most_out, 0])
    several_boxes = md.NewBoolVar("several_boxes")
    md.Add(tiles >= 2).OnlyEnforceIf(several_boxes)
    md.Add(tiles <= 1).OnlyEnforceIf(several_boxes.Not())
    ends = x.var("ends", 0, 1 << 41)  # (c) beyond (b), with two boxes or more
    md.Add(ends == first_extra + last_extra).OnlyEnforceIf(several_boxes)
    md.Add(ends == 0).OnlyEnforceIf(several_boxes.Not())
    md.AddMaxEquality(bound, [overlapped_compute, all_dma + ends])
    return md, (tc, th, tw), bound


# ---------------------------------------------------------------- dory
def dory(layer: Layer, m: Machine) -> Choice:
    whole = Tile(layer.c_out, layer.h_out, layer.w_out, 1)
    if cost.fits(layer, whole, m):
        return Choice(whole, cost.evaluate(layer, whole, m), False, 0, 0.0)
    # DORY tries tiling channels only, then channels and rows, then everything
    stages = (lambda t: t.th == layer.h_out and t.tw == layer.w_out, lambda t: t.tw == layer.w_out, lambda t: True)
    for allowed in stages:
        fitting = [t for t in cost.legal_tiles(layer, m, 1) if allowed(t) and cost.fits(layer, t, m)]
        if fitting:
            tile = max(fitting, key=lambda t: _dory_score(layer, t, m))
            return Choice(tile, cost.evaluate(layer, tile, m), False, 0, 0.0)
    raise AssertionError("unreachable: _check_fits found a fitting tiling")


def _dory_score(layer: Layer, t: Tile, m: Machine) -> int:
    """DORY's objective for a PE array (maximized): tile widths, and for groups 1 channel
    counts, that fill the PE array ((x - 1) % 16 is largest at a multiple of 16), at least 16 outputs
    per channel, wide tiles, many channels, then the bytes the tile holds."""
    score = 1_000_000 * ((t.tw - 1) % m.pe_cols) + 1_000_000 * (t.tw * t.th >= m.pe_cols)
    if layer.job.whole_input:
        score += 1_000_000 * ((t.tc - 1) % m.pe_rows)
    return score + 1_000_000 * t.tw + 100_000 * t.tc + sum(cost.footprint(layer, t))


TILERS = {"cp-sat": cp_sat, "dory": dory}
