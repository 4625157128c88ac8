"""The cost model of an accelerator layer (docs/accelerators.md, "Cost model"), one set of formulas.

The tiler minimizes it, the report prints it, and the emitted C and the emulator walk the same tile
boxes (`boxes`) and count the same cycles. Every number comes from the target's data: the job kind's
record (tinyc.targets.jobs: what it computes, its weight cells, its cycle formula), the core's params
(pe_rows, pe_cols, job_setup_cycles, max_channels, channel_step), the target's params
(dma_setup_cycles, dma_bytes_per_cycle) and the core's memories by role (activations, weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from .jobs import JobKind
# the tiling's records and the boxes it walks are part of the cost model's interface
from .tiles import (Box, Dim, Residency, Tile, boxes, col_profile, dim_profile, row_profile, spans,  # noqa: F401
                    tile_of, window)


@dataclass(frozen=True)
class Layer:
    name: str
    job: JobKind  # what the job computes, its weights' cells and its cycle formula (tinyc.targets.jobs)
    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    has_bias: bool = True

    @property
    def kind(self) -> str:
        """The job kind's name, as the report prints it."""
        return self.job.name

    @property
    def inputs(self) -> int:
        """Input tensors moved per box (add reads two)."""
        return self.job.inputs

    @property
    def rows(self) -> int:
        """Weights per output channel (an array's rows one load uses)."""
        return self.job.rows(self.c_in, self.kh, self.kw)

    @property
    def weight_bytes_per_channel(self) -> int:
        return self.job.weight_bytes(self.rows)

    @property
    def bias_bytes_per_channel(self) -> int:
        """The int32 bias, then the requantizer's own words per channel (a bias of 0 when they need one)."""
        words = self.job.requantizer.channel_words
        return 4 * (1 + words) if self.rows and (self.has_bias or words) else 0

    @property
    def whole_input(self) -> bool:
        """Every output channel reads every input channel (a box takes all of them)."""
        return self.job.whole_input

    @property
    def pointwise(self) -> bool:
        """Each output pixel reads its own input pixel (kernel 1x1, stride 1, no pads; add): a box, dense
        in the core's memory, is the same job over one row of its pixels, which fill the PE columns
        across the ends of its rows."""
        return self.job.computes != "dense" and (self.kh, self.kw, self.sh, self.sw) == (1, 1, 1, 1) \
            and not any(self.pads)

    @property
    def macs(self) -> int:
        """Multiply-accumulates (add: one operation per output element)."""
        return self.c_out * self.h_out * self.w_out * (self.rows or 1)


@dataclass(frozen=True)
class Machine:
    """The cost parameters of one accelerator of one target, read from the target's data."""
    pe_rows: int
    pe_cols: int
    job_setup_cycles: int
    dma_setup_cycles: int
    dma_bytes_per_cycle: int
    activation_bytes: int
    weight_bytes: int
    macs_per_cycle: int = 0  # the peak, for utilization (0: pe_rows x pe_cols)
    channel_step: int = 0  # legal channel tiles: multiples of this (0: pe_rows), or every output channel
    max_channels: int = 0  # output channels one job computes at most (0: no limit)
    array_rows: int = 0  # weights per output channel one job holds at most (0: no limit)
    input_bits: int = 8  # the jobs' inputs must fit this many bits, signed

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.macs_per_cycle or self.pe_rows * self.pe_cols


@dataclass(frozen=True)
class Cost:
    cycles: int
    compute_cycles: int
    dma_cycles: int
    dma_bytes: int
    tiles: int
    macs: int
    utilization: float  # MACs / (peak MACs per cycle x cycles)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def machine(target, core) -> Machine:
    def number(params, name):
        value = params[name].value
        if value != int(value) or value <= 0:
            raise ValueError(f"{core.name}: cost parameter {name} must be a positive integer, is {value}")
        return int(value)
    def optional(name, default):
        return number(core.params, name) if name in core.params else default
    pe_rows, pe_cols = number(core.params, "pe_rows"), number(core.params, "pe_cols")
    return Machine(pe_rows, pe_cols, int(core.params["job_setup_cycles"].value),
                   int(target.params["dma_setup_cycles"].value), number(target.params, "dma_bytes_per_cycle"),
                   core.memory("activations").size_bytes, core.memory("weights").size_bytes,
                   optional("macs_per_cycle", 0), optional("channel_step", 0),
                   optional("max_channels", 0), optional("array_rows", 0), optional("input_bits", 8))


# ---------------------------------------------------------------- geometry
def layer_geometry(g: Graph, node: str | Node, job: JobKind) -> Layer:
    """The geometry of the job of kind `job` whose chain ends at `node` (its anchor)."""
    anchor = node if isinstance(node, Node) else g.node(node)
    main = _job_node(g, anchor)
    x = g.values[main.inputs[0]]
    out = g.values[anchor.outputs[0]]
    has_bias = len(main.inputs) > 2 and bool(main.inputs[2])
    contraction = OPS[main.op].contraction
    if contraction == "dense":
        if int(np.prod(x.shape[:-1])) != 1:
            raise ValueError(f"{main.name}: a dense job takes one row, not {list(x.shape)}")
        w = g.values[main.inputs[1]]
        return Layer(anchor.name, job, x.shape[-1], 1, 1, w.shape[1], 1, 1, has_bias=has_bias)
    c_in, h_in, w_in = _chw(x.shape)
    c_out, h_out, w_out = _chw(out.shape)
    if not contraction:  # an element-wise job (add): no weights
        return Layer(anchor.name, job, c_in, h_in, w_in, c_out, h_out, w_out, has_bias=False)
    a = main.attrs
    kh, kw = g.values[main.inputs[1]].shape[2:]
    return Layer(anchor.name, job, c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, *a["strides"],
                 tuple(a["pads"]), has_bias)


def _job_node(g: Graph, anchor: Node) -> Node:
    """The node of the chain whose op has the job's geometry, its one op with operands (OpDef.operands;
    the chain's other nodes are element-wise)."""
    if OPS[anchor.op].operands:
        return anchor
    chain = [n for n in g.nodes() if n.placement is not None and n.placement.anchor == anchor.name]
    return next(n for n in chain if OPS[n.op].operands)


def _chw(shape) -> tuple[int, int, int]:
    """(1, C, H, W), or (1, C) as a 1x1 image."""
    spatial = tuple(shape[2:]) + (1,) * (4 - len(shape))
    return shape[1], spatial[0], spatial[1]


def channel_tiles(layer: Layer, m: Machine) -> list[int]:
    """Legal channel tiles: a multiple of the channel step, or every output channel; at most the core's
    max_channels (the analog array's columns: more output channels take more array loads)."""
    top = min(layer.c_out, m.max_channels) if m.max_channels else layer.c_out
    step = m.channel_step or m.pe_rows
    return sorted(set(range(step, top, step)) | {top})


def legal_tiles(layer: Layer, m: Machine, buffers: int):
    for tc in channel_tiles(layer, m):
        for th in range(1, layer.h_out + 1):
            for tw in range(1, layer.w_out + 1):
                yield Tile(tc, th, tw, buffers)


# ---------------------------------------------------------------- memory
def moved_inputs(layer: Layer, tile: Tile) -> int:
    """Input tensors each box brings in by DMA (the others are in L1 already)."""
    return sum(not tile.input_in_l1(i) for i in range(layer.inputs))


def footprint(layer: Layer, tile: Tile) -> tuple[int, int]:
    """(activation bytes, weight bytes) the tiling's buffers hold in the core's memories (tensors the
    L1 plan keeps there are its own, not the tiling's)."""
    rows, cols = row_profile(layer, tile.th), col_profile(layer, tile.tw)
    cin = layer.c_in if layer.job.whole_input else tile.tc
    activations = tile.buffers * (moved_inputs(layer, tile) * cin * rows.max_window * cols.max_window
                                  + (not tile.resident.output) * tile.tc * tile.th * tile.tw)
    blocks = math.ceil(layer.c_out / tile.tc)
    weight_buffers = 2 if tile.buffers == 2 and blocks > 1 else 1  # one block: its weights stay put
    weights = weight_buffers * tile.tc * (layer.weight_bytes_per_channel + layer.bias_bytes_per_channel)
    return activations, weights


def fits(layer: Layer, tile: Tile, m: Machine) -> bool:
    activations, weights = footprint(layer, tile)
    return activations <= m.activation_bytes and weights <= m.weight_bytes


# ---------------------------------------------------------------- cycles
def dma_cycles(nbytes: int, m: Machine) -> int:
    """One transfer (a strided box is one transfer); nothing to move costs nothing."""
    return m.dma_setup_cycles + -(-nbytes // m.dma_bytes_per_cycle) if nbytes > 0 else 0


def compute_cycles(layer: Layer, cn: int, hn: int, wn: int, m: Machine) -> int:
    """One job, by its kind's formula (tinyc.targets.jobs.Cycles): passes of the PE array over the output
    box's channels, rows and columns, each stepping over its share of the reduction; a pointwise box's
    pixels pass as one row."""
    rows, columns = (1, hn * wn) if layer.pointwise else (hn, wn)
    return passes(layer, cn, rows, columns) * pass_cycles(layer) + m.job_setup_cycles


def passes(layer: Layer, cn: int, hn: int, wn: int) -> int:
    cy = layer.job.cycles
    return -(-cn // cy.channel_lanes) * -(-hn // cy.row_lanes) * -(-wn // cy.column_lanes)


def pass_cycles(layer: Layer) -> int:
    cy = layer.job.cycles
    return cy.per_pass + -(-layer.job.reduction(layer.c_in, layer.kh, layer.kw) // cy.reduction_lanes) * cy.per_step


def ideal_cycles(layer: Layer, m: Machine) -> int:
    """The core's time for the layer's geometry alone: every output through the PE array in one job, no
    set-up, DMA or array load (the peak for that geometry, HTVM's Fig. 5)."""
    return compute_cycles(layer, layer.c_out, layer.h_out, layer.w_out, m) - m.job_setup_cycles


def load_cycles(layer: Layer) -> int:
    """Writing a channel block's weights into an array, per row (0 for a job kind without one)."""
    return layer.rows * layer.job.cycles.write_cycles_per_row


def _moved_weights(box: Box, tile: Tile) -> bool:
    """Whether the box's DMA in carries its block's weights (a block's first box, unless prefetched)."""
    return box.starts_block and not (tile.resident.prefetched and box.c0 == 0)


def box_cycles(layer: Layer, box: Box, m: Machine, tile: Tile = Tile(1, 1, 1)) -> tuple[int, int, int]:
    """(DMA in, compute, DMA out) of one box; DMA in carries the block's weights and bias at its start,
    and the job of that box first writes them into the array (load_cycles)."""
    dma_in = moved_inputs(layer, tile) * dma_cycles(box.cin * box.rows * box.cols, m)
    compute = compute_cycles(layer, box.cn, box.hn, box.wn, m)
    if _moved_weights(box, tile):
        dma_in += dma_cycles(box.cn * layer.weight_bytes_per_channel, m)
        dma_in += dma_cycles(box.cn * layer.bias_bytes_per_channel, m)
    if box.starts_block:
        compute += load_cycles(layer)
    dma_out = 0 if tile.resident.output else dma_cycles(box.cn * box.hn * box.wn, m)
    return dma_in, compute, dma_out


def box_dma_bytes(layer: Layer, box: Box, tile: Tile = Tile(1, 1, 1)) -> int:
    moved = moved_inputs(layer, tile) * box.cin * box.rows * box.cols
    moved += 0 if tile.resident.output else box.cn * box.hn * box.wn
    if _moved_weights(box, tile):
        moved += box.cn * (layer.weight_bytes_per_channel + layer.bias_bytes_per_channel)
    return moved


def latency(dma_in: list[int], compute: list[int], dma_out: list[int], buffers: int, prefetch: int = 0) -> int:
    """Layer cycles from per-box cycles. Double buffered, box i computes while the one DMA engine brings
    box i+1 in and takes box i-1 out; single buffered, nothing overlaps. `prefetch`: DMA cycles of the
    next layer's first weights, started with the last job."""
    n = len(compute)
    if buffers == 1:
        return sum(dma_in) + sum(compute[:-1]) + max(compute[-1], prefetch) + sum(dma_out)
    total = dma_in[0] + dma_out[-1]
    for i in range(n):
        moving = (dma_in[i + 1] if i + 1 < n else prefetch) + (dma_out[i - 1] if i > 0 else 0)
        total += max(compute[i], moving)
    return total


def evaluate(layer: Layer, tile: Tile, m: Machine) -> Cost:
    jobs = boxes(layer, tile)
    dma_in, compute, dma_out = zip(*(box_cycles(layer, b, m, tile) for b in jobs))
    prefetch = sum(dma_cycles(b, m) for b in tile.resident.prefetch)
    cycles = latency(list(dma_in), list(compute), list(dma_out), tile.buffers, prefetch)
    moved = sum(box_dma_bytes(layer, b, tile) for b in jobs) + sum(tile.resident.prefetch)
    return Cost(cycles, sum(compute), sum(dma_in) + sum(dma_out) + prefetch, moved,
                len(jobs), layer.macs, layer.macs / (m.peak_macs_per_cycle * cycles))
