"""Driver code for a layer placed on an accelerator: a static table of its boxes and a tile loop of HAL
calls (docs/accelerators.md, "Backend and runtime"), generic over job kinds and cores.

The boxes are the cost model's (tinyc.targets.cost.boxes), so the emitted program moves and computes
exactly what the tiler priced. Core memories hold, from offset 0: `buffers` input buffers then
`buffers` output buffers (activations), and one or two weight+bias buffers (weights; two when double
buffering alternates channel blocks), each sized for the largest box.
"""
from __future__ import annotations

import numpy as np

from ....errors import VerifyError
from ....targets import cost
from ....ir.adc import ADC_ATTRS
from ..kernels import QADD_FIELDS, ROUNDINGS, int32s, need

NO_ADC = [0] * len(ADC_ATTRS)  # tinyc_adc's fields are the ADC ops' attributes, in order

TYPES_C = """/* One box of an accelerator layer: its job and the transfers that feed and drain it. */
typedef struct {
    tinyc_hal_job job;
    tinyc_hal_box in, out, weights, bias; /* weights and bias are empty unless the box starts a channel block */
    int32_t in_at, out_at, weights_at, bias_at; /* element offsets in the layer's L2 tensors */
} accel_tile;

/* The next layer's first weights and bias, brought in while this layer's last job runs. */
typedef struct {
    const int8_t *w;
    const int32_t *b;
    tinyc_hal_box weights, bias;
    int32_t weights_offset, bias_offset; /* in the core's weights memory */
} accel_prefetch;

typedef struct {
    int32_t core, activations, weights; /* the core and its memory ids */
    /* inputs and output in L2, NULL where the L1 plan keeps the tensor in the core's memory;
     * x2 is add's second operand */
    const int8_t *x, *x2;
    const int8_t *w;
    const int32_t *b;
    int8_t *y;
    int32_t tiles;
    const accel_tile *tile;
    int32_t prefetched; /* the first box's weights came in with the previous layer */
    const accel_prefetch *prefetch; /* the next layer's, or NULL */
} accel_layer;

static void accel_fetch(const accel_layer *l, int32_t i)
{
    const accel_tile *t = &l->tile[i];
    if (l->x)
        tinyc_hal_dma_in(i, l->activations, t->job.input, l->x + t->in_at, &t->in);
    if (l->x2)
        tinyc_hal_dma_in(i, l->activations, t->job.input2, l->x2 + t->in_at, &t->in);
    if (i == 0 && l->prefetched)
        return;
    if (l->w)
        tinyc_hal_dma_in(i, l->weights, t->job.weights, l->w + t->weights_at, &t->weights);
    if (l->b)
        tinyc_hal_dma_in(i, l->weights, t->job.bias, l->b + t->bias_at, &t->bias);
}

static void accel_drain(const accel_layer *l, int32_t i)
{
    const accel_tile *t = &l->tile[i];
    if (l->y)
        tinyc_hal_dma_out(i, l->y + t->out_at, l->activations, t->job.output, &t->out);
}

static void accel_prefetch_next(const accel_layer *l, int32_t i)
{
    const accel_prefetch *p = l->prefetch;
    if (!p || i + 1 < l->tiles)
        return;
    if (p->w)
        tinyc_hal_dma_in(i, l->weights, p->weights_offset, p->w, &p->weights);
    if (p->b)
        tinyc_hal_dma_in(i, l->weights, p->bias_offset, p->b, &p->bias);
}
"""

LOOPS_C = {
    2: """/* Box i computes while the DMA brings box i+1 in (after the last: the next layer's first
 * weights) and takes box i-1 out. */
static void accel_double_buffered(const accel_layer *l)
{
    int32_t i;
    accel_fetch(l, 0);
    tinyc_hal_dma_wait();
    for (i = 0; i < l->tiles; i++) {
        tinyc_hal_job_start(l->core, i, &l->tile[i].job);
        if (i + 1 < l->tiles)
            accel_fetch(l, i + 1);
        if (i > 0)
            accel_drain(l, i - 1);
        accel_prefetch_next(l, i);
        tinyc_hal_job_wait(l->core);
        tinyc_hal_dma_wait();
    }
    accel_drain(l, l->tiles - 1);
    tinyc_hal_dma_wait();
}
""",
    1: """/* Each box in, computed and out before the next: nothing overlaps (but the next layer's first
 * weights, with the last job). */
static void accel_single_buffered(const accel_layer *l)
{
    int32_t i;
    for (i = 0; i < l->tiles; i++) {
        accel_fetch(l, i);
        tinyc_hal_dma_wait();
        tinyc_hal_job_start(l->core, i, &l->tile[i].job);
        accel_prefetch_next(l, i);
        tinyc_hal_job_wait(l->core);
        accel_drain(l, i);
        tinyc_hal_dma_wait();
    }
}
""",
}
LOOP_NAMES = {2: "accel_double_buffered", 1: "accel_single_buffered"}
EMPTY_BOX = [[0, 0, 0], [0, 0]]


def on_accelerator(chip, node) -> bool:
    p = node.placement
    return p is not None and any(c.name == p.core for c in chip.accelerators)


def emit_layer(e, chip, node) -> list[str]:
    """Declares the layer's tables (and the driver code the first time) and returns the calls: the tile
    loop, then what the layer leaves in L1 for later layers (hold) and what it read there last (release)."""
    g, p = e.g, node.placement
    need(p.anchor in ("", node.name), f"{node.name} is part of {p.anchor}'s job; the backend runs one-node jobs")
    kind, job = chip.job_kind(p.core, p.pattern)
    need(job is not None, f"pattern {p.pattern!r} of {p.core} declares no job kind")
    if not p.tile:
        raise VerifyError(f"placed on {p.core} without a tiling (run the tiling pass first)", node=node.name)
    layer = cost.layer_geometry(g, node, job)
    tile, l1 = cost.tile_of(p.tile), p.tile.get("l1", {})
    need(tile.buffers in LOOPS_C, f"buffers must be 1 or 2, not {tile.buffers}")
    _declare_driver(e, tile.buffers)
    ids = chip.ids(p.core)
    rows = _tile_rows(layer, tile, l1, kind, _job_constants(e, node, layer))
    table = e.ident(node.name + "_tiles")
    e.decls.append(f"static const accel_tile {table}[{len(rows)}] = {{\n" + ",\n".join(rows) + "\n};\n")
    x = "NULL" if tile.input_in_l1(0) else e.ptr(node.inputs[0])
    x2 = e.ptr(node.inputs[1]) if layer.inputs == 2 and not tile.input_in_l1(1) else "NULL"
    w, b = _l2_weights(e, node, layer)
    y = "NULL" if tile.resident.output else e.ptr(node.outputs[0])
    prefetch = "NULL"
    if tile.resident.prefetch:
        prefetch = "&" + e.struct(node.name + "_prefetch", "accel_prefetch", _prefetch_fields(e, chip, node))
    desc = e.struct(node.name + "_layer", "accel_layer", [ids.index, ids.activations, ids.weights, x, x2, w, b, y,
                                                          len(rows), table, int(tile.resident.prefetched), prefetch])
    boxes = f"{len(rows)} box{'es' if len(rows) > 1 else ''}"
    lines = [f"{LOOP_NAMES[tile.buffers]}(&{desc}); /* {p.core}: {layer.kind}, {boxes} of at most "
             f"{tile.tc}x{tile.th}x{tile.tw} */"]
    if l1.get("hold"):
        lines.append(f"tinyc_hal_l1_hold({ids.activations}, {l1['output']}, {_plane_bytes(layer)}); "
                     "/* the output stays for the next layers */")
    lines += [f"tinyc_hal_l1_release({ids.activations}, {at}, {nbytes});" for at, nbytes in l1.get("release", ())]
    return lines


def _plane_bytes(layer) -> int:
    return layer.c_out * layer.h_out * layer.w_out


def _l2_weights(e, node, layer) -> tuple[str, str]:
    """The C expressions of the layer's weights and channel words in L2: the weights in the job kind's
    layout (the IR's own where it is the same), packed cells as the job reads them; the bias alone, or
    with a multiplier and shift per channel."""
    w, by_input = "NULL", layer.job.weights_by_input
    if layer.rows and layer.job.weight_bits == 8:
        ir_by_input = e.g.values[node.inputs[1]].data.ndim == 2  # the IR's dense w[K][N]; a conv's w[co][...]
        w = e.ptr(node.inputs[1]) if by_input == ir_by_input else \
            e.array(node.name + "_weights", "int8_t", (_by_channel(e.g, node).T if by_input else
                                                       _by_channel(e.g, node)).ravel())
    elif layer.rows:
        w = "(const int8_t *)" + e.array(node.name + "_cells", "uint8_t", pack_cells(_by_channel(e.g, node)))
    words = layer.job.requantizer.channel_words
    if not layer.bias_bytes_per_channel:
        return w, "NULL"
    if not words:
        return w, e.ptr(node.inputs[2])
    a, channels = node.attrs, layer.c_out
    bias = e.g.values[node.inputs[2]].data if layer.has_bias else np.zeros(channels, np.int64)
    table = np.stack([np.broadcast_to(np.asarray(v, np.int64).ravel(), (channels,))
                      for v in (bias, a["multiplier"], a["shift"])], axis=1)
    return w, e.array(node.name + "_channels", "int32_t", int32s(table.ravel(), "channel words"))


def _by_channel(g, node) -> np.ndarray:
    """The weights as [out_c][rows] (a dense's w[K][N] transposed)."""
    w = g.values[node.inputs[1]].data.astype(np.int64)
    return w.reshape(w.shape[0], -1) if w.ndim > 2 else w.T


def _prefetch_fields(e, chip, node) -> list:
    """The next layer of the core's first weights and bias: L2 pointers, boxes, offsets in its memory."""
    nodes = e.g.nodes()
    core = node.placement.core
    later = nodes[[n.name for n in nodes].index(node.name) + 1:]
    nxt = next(n for n in later if n.placement is not None and n.placement.core == core
               and n.placement.anchor == n.name)
    layer = cost.layer_geometry(e.g, nxt, chip.target.core(core).job(nxt.placement.pattern))
    tile = cost.tile_of(nxt.placement.tile)
    need(on_accelerator(chip, nxt) and tile.resident.prefetched, f"{nxt.name} does not expect its weights early")
    first = cost.boxes(layer, tile)[0]
    w, b = _l2_weights(e, nxt, layer)
    max_w, max_b, _ = _weight_slots(layer, tile)
    base = nxt.placement.tile["l1"]["weights"]
    return [w, b, _weights_box(layer, first), _words_box(layer, first) if max_b else EMPTY_BOX,
            base, base + max_w if max_b else 0]


def _weight_slots(layer, tile) -> tuple[int, int, int]:
    """(largest weights, largest bias, slots): the weights memory holds `slots` of weights + bias."""
    boxes = cost.boxes(layer, tile)
    blocks = sum(b.starts_block for b in boxes)
    return (max(b.cn * layer.weight_bytes_per_channel for b in boxes),
            max(b.cn * layer.bias_bytes_per_channel for b in boxes), 2 if tile.buffers == 2 and blocks > 1 else 1)


def _declare_driver(e, buffers: int) -> None:
    """The driver's types and helpers once, and each tile loop once it is used (C warns of unused ones)."""
    for text in (TYPES_C, LOOPS_C[buffers]):
        if text not in e.decls:
            e.decls.append(text)


def _job_constants(e, node, layer) -> dict:
    """The job fields every box of the layer shares, by the kind's requantizer; what it takes is the
    pattern's constraints' to check, not the driver's."""
    a, r = node.attrs, layer.job.requantizer
    for v in node.inputs[:2] + node.outputs:
        need(e.g.values[v].dtype == "int8", f"{v} is {e.g.values[v].dtype}; accelerator jobs move int8")
    const = dict(shift=0, out_min=a["out_min"], out_max=a["out_max"], multiplier=0, rounding=0, x_zp=0, out_zp=0,
                 add="NULL", adc=NO_ADC, write_rows=layer.rows if layer.job.cycles.write_cycles_per_row else 0)
    if r.kind == "adc":
        return {**const, "shift": a["post_shift"], "adc": int32s([a[f] for f in ADC_ATTRS], "ADC read-out").tolist()}
    if r.kind == "add":
        params = e.struct(node.name + "_params", "tinyc_qadd_params",
                          int32s([a[f] for f in QADD_FIELDS], "qadd parameters").tolist() + [ROUNDINGS[a["rounding"]]])
        return {**const, "add": "&" + params}
    need(a.get("multiplier") is not None, "an accelerator job requantizes to int8")
    zero_points = dict(x_zp=int(a["x_zp"]), out_zp=int(a["out_zp"]))
    if r.kind == "shift":  # real = 2**30 * 2**(shift - 31): a right shift by 1 - shift
        return {**const, **zero_points, "shift": 1 - int(np.ravel(a["shift"])[0])}
    per_layer = {} if r.per_channel else dict(multiplier=int(np.ravel(a["multiplier"])[0]),
                                             shift=int(np.ravel(a["shift"])[0]))
    return {**const, **zero_points, **per_layer, "rounding": ROUNDINGS[a["rounding"]]}


def _tile_rows(layer, tile, l1: dict, kind: int, const: dict) -> list[str]:
    """Each box's job and transfers. The activations memory holds, from the layer's scratch offset,
    `buffers` slots of the inputs moved by DMA, then `buffers` output slots unless the output stays in
    L1; a tensor the L1 plan keeps is read or written in place, a box being a run of its channels."""
    boxes = cost.boxes(layer, tile)
    per_input = [b.cin * b.rows * b.cols for b in boxes]
    max_in = cost.moved_inputs(layer, tile) * max(per_input)
    max_out = 0 if tile.resident.output else max(b.cn * b.hn * b.wn for b in boxes)
    max_w, max_b, weight_buffers = _weight_slots(layer, tile)
    scratch, weights_base = l1.get("scratch", 0), l1.get("weights", 0)
    in_plane, out_plane = layer.h_in * layer.w_in, layer.h_out * layer.w_out
    rows, block = [], -1
    for i, (b, in_bytes) in enumerate(zip(boxes, per_input)):
        block += b.starts_block
        buf = i % tile.buffers
        slot = scratch + buf * max_in
        input_at = l1["inputs"][0] + b.ci0 * in_plane if tile.input_in_l1(0) else slot
        input2_at = 0
        if layer.inputs == 2:
            input2_at = l1["inputs"][1] + b.ci0 * in_plane if tile.input_in_l1(1) else \
                slot + (0 if tile.input_in_l1(0) else in_bytes)
        output_at = l1["output"] + b.c0 * out_plane if tile.resident.output else \
            scratch + tile.buffers * max_in + buf * max_out
        weights_at = weights_base + (block % weight_buffers) * (max_w + max_b)
        box_in, box_out = ((1, b.rows * b.cols), (1, b.hn * b.wn)) if layer.pointwise else \
            ((b.rows, b.cols), (b.hn, b.wn))  # the cost model's mapping of pixels to the PE columns
        job = [kind, b.cin, *box_in, b.cn, *box_out, layer.kh, layer.kw, layer.sh, layer.sw, *b.pads,
               const["shift"], const["out_min"], const["out_max"], const["multiplier"], const["rounding"],
               const["x_zp"], const["out_zp"], input_at, input2_at, output_at, weights_at,
               weights_at + max_w if max_b else -1, const["add"],
               const["adc"], const["write_rows"] if b.starts_block else 0]
        transfers = [_box([b.cin, b.rows, b.cols], [in_plane, layer.w_in]),
                     _box([b.cn, b.hn, b.wn], [out_plane, layer.w_out]),
                     _weights_box(layer, b),
                     _words_box(layer, b) if b.starts_block and max_b else EMPTY_BOX]
        offsets = [(b.ci0 * layer.h_in + b.r0) * layer.w_in + b.q0, (b.c0 * layer.h_out + b.h0) * layer.w_out + b.w0,
                   b.c0 * (1 if layer.job.weights_by_input else layer.weight_bytes_per_channel),
                   b.c0 * layer.bias_bytes_per_channel // 4]
        rows.append(f"    /* box {i}: channels {b.c0}+{b.cn}, rows {b.h0}+{b.hn}, columns {b.w0}+{b.wn} */\n    "
                    + _braces([job, *transfers, *offsets]))
    return rows


def pack_cells(columns: np.ndarray) -> np.ndarray:
    """[co][rows] ternary weights as the array's 2-bit cells: [co][ceil(rows / 4)] bytes, row r in bits
    2 * (r % 4), -1 as 3 (two's complement)."""
    co, rows = columns.shape
    cells = np.zeros((co, -(-rows // 4) * 4), np.uint8)
    cells[:, :rows] = columns.astype(np.int64) & 3
    cells = cells.reshape(co, -1, 4)
    return (cells[..., 0] | cells[..., 1] << 2 | cells[..., 2] << 4 | cells[..., 3] << 6).reshape(-1)


def _box(count: list[int], stride: list[int]) -> list:
    """A [planes][rows][bytes] box of an L2 tensor, with the dims L2 holds contiguously merged."""
    planes, rows, width = count
    if rows == 1 or width == stride[1]:
        rows, width = 1, rows * width
        if planes == 1 or width == stride[0]:
            planes, width = 1, planes * width
    return [[planes, rows, width], [stride[0] if planes > 1 else 0, stride[1] if rows > 1 else 0]]


def _weights_box(layer, b) -> list:
    """A channel block's weights: contiguous rows of [co][rows], or the columns of w[rows][co]."""
    if not b.starts_block or not layer.weight_bytes_per_channel:
        return EMPTY_BOX
    if layer.job.weights_by_input:
        return [[1, layer.rows, b.cn], [0, layer.c_out]]
    return [[1, 1, b.cn * layer.weight_bytes_per_channel], [0, 0]]


def _words_box(layer, b) -> list:
    """A channel block's channel words: contiguous int32 runs of each channel's bias (and requantizer)."""
    return [[1, 1, b.cn * layer.bias_bytes_per_channel], [0, 0]]


def _braces(fields) -> str:
    if isinstance(fields, (list, tuple)):
        return "{" + ", ".join(_braces(f) for f in fields) + "}"
    return str(fields)

