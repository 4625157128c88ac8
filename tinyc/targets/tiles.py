"""A tiling of an accelerator layer, as the cost model (cost.py) prices it: the output tile, the
buffering, what the L1 plan keeps in the core's memories across layers, and the boxes (jobs) the
emitted C, the emulator and the cost model walk. `layer` is a cost.Layer."""
from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Residency:
    """What the L1 plan (tinyc/passes/l1_plan.py) keeps in the core's memories across layers: inputs
    read where their producer on the same core left them, an output left for its consumers there (no
    DMA either way; such a layer's boxes span whole planes, so each box is a dense run of the tensor),
    the first channel block's weights brought in during the previous layer (`prefetched`), and the
    bytes of the next layer's first weights and bias this layer brings in with its last job."""
    inputs: tuple[bool, ...] = ()
    output: bool = False
    prefetched: bool = False
    prefetch: tuple[int, ...] = ()

    @property
    def any_tensor(self) -> bool:
        return any(self.inputs) or self.output


@dataclass(frozen=True)
class Tile:
    tc: int
    th: int
    tw: int
    buffers: int = 2  # 2: the DMA of the next and previous boxes overlaps this box's job; 1: no overlap
    resident: Residency = Residency()

    def input_in_l1(self, i: int) -> bool:
        return i < len(self.resident.inputs) and self.resident.inputs[i]


def tile_of(record: dict) -> Tile:
    """The Tile of a placement's `tile` record (tiling's sizes, the L1 plan's residency when it ran)."""
    l1 = record.get("l1", {})
    resident = Residency(tuple(at >= 0 for at in l1.get("inputs", ())), l1.get("output", -1) >= 0,
                         bool(l1.get("prefetched", False)), tuple(l1.get("prefetch", ())))
    return Tile(record["c_out"], record["h_out"], record["w_out"], record["buffers"], resident)


@dataclass(frozen=True)
class Box:
    """One job: an output box, the input box it reads and the padding the core fills in as zeros."""
    c0: int
    cn: int
    h0: int
    hn: int
    w0: int
    wn: int
    ci0: int
    cin: int
    r0: int
    rows: int
    q0: int
    cols: int
    pads: tuple[int, int, int, int]  # top, left, bottom, right of this box's input
    starts_block: bool  # the first box of a channel block: its weights and bias come in with it



def spans(size: int, tile: int) -> list[tuple[int, int]]:
    """(start, length) of each tile of one dimension, the last clipped at the edge."""
    return [(s, min(tile, size - s)) for s in range(0, size, tile)]


def window(o0: int, n: int, stride: int, pad: int, kernel: int, size: int) -> tuple[int, int, int, int]:
    """The input rows [start, start + length) that output rows [o0, o0 + n) read, with the rows of
    padding before and after (the part of the window outside [0, size))."""
    lo = o0 * stride - pad
    hi = (o0 + n - 1) * stride - pad + kernel  # exclusive
    start, end = max(lo, 0), min(hi, size)
    return start, end - start, start - lo, hi - end


def boxes(layer, tile: Tile) -> list[Box]:
    """Every job of the layer in loop order: channel blocks, then rows, then columns."""
    t, pt, pl = layer, layer.pads[0], layer.pads[1]
    if tile.resident.any_tensor and (tile.th, tile.tw) != (t.h_out, t.w_out):
        raise ValueError(f"{t.name}: a layer with a tensor in L1 takes whole planes, not {tile.th}x{tile.tw}")
    rows = [(h0, hn) + window(h0, hn, t.sh, pt, t.kh, t.h_in) for h0, hn in spans(t.h_out, tile.th)]
    cols = [(w0, wn) + window(w0, wn, t.sw, pl, t.kw, t.w_in) for w0, wn in spans(t.w_out, tile.tw)]
    if tile.input_in_l1(0):  # the job reads the whole resident plane; what its window leaves out is unread
        rows = [(0, t.h_out, 0, t.h_in, pt, max(0, (t.h_out - 1) * t.sh - pt + t.kh - t.h_in))]
        cols = [(0, t.w_out, 0, t.w_in, pl, max(0, (t.w_out - 1) * t.sw - pl + t.kw - t.w_in))]
    result = []
    for c0, cn in spans(t.c_out, tile.tc):
        ci0, cin = (0, t.c_in) if t.whole_input else (c0, cn)
        for h0, hn, r0, nr, top, bottom in rows:
            for w0, wn, q0, nq, left, right in cols:
                result.append(Box(c0, cn, h0, hn, w0, wn, ci0, cin, r0, nr, q0, nq, (top, left, bottom, right),
                                  h0 == 0 and w0 == 0))
    return result


@dataclass(frozen=True)
class Dim:
    """What a tile size implies along one spatial dimension: tile count, last tile, input windows."""
    count: int
    last: int
    first_window: int
    max_window: int
    sum_window: int


@functools.lru_cache(maxsize=65536)  # tilers ask for the same few dimensions over and over
def dim_profile(out_size: int, tile: int, stride: int, pad: int, kernel: int, in_size: int) -> Dim:
    lengths = [window(o0, n, stride, pad, kernel, in_size)[1] for o0, n in spans(out_size, tile)]
    return Dim(len(lengths), out_size - (len(lengths) - 1) * tile, lengths[0], max(lengths), sum(lengths))


def row_profile(layer, th: int) -> Dim:
    return dim_profile(layer.h_out, th, layer.sh, layer.pads[0], layer.kh, layer.h_in)


def col_profile(layer, tw: int) -> Dim:
    return dim_profile(layer.w_out, tw, layer.sw, layer.pads[1], layer.kw, layer.w_in)


