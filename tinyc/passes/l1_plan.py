"""L1 reuse: which tensors stay in an accelerator's memories between layers, and where everything lives
there (docs/accelerators.md, "L1 reuse"). Runs after tiling.

A tensor is a candidate when its producer and every consumer are jobs of one accelerator core and it is
no graph output: the producer leaves it in the core's activations memory, the consumers read it there,
and neither moves it by DMA. A layer with a tensor in L1 computes whole planes (each box a dense run of
channels of the tensor), so its tiling is re-chosen: the fastest channel tile and buffering by exhaustive
search (a handful of choices). Candidates are taken in execution order, each kept when the layers it
touches are faster in total and the core's static L1 plan still fits: every kept tensor from its
producer to its last consumer and every layer's own tile buffers during that layer, placed by liveness
(passes/memory.place, as the L2 arena).

Then weights: consecutive layers of a core place their weight buffers at the two ends of its weights
memory in turn, so where both fit, a layer's last job runs while the DMA brings in the next layer's
first weights and bias (kept where that makes the pair faster; a next layer of whole planes takes
the channel tile that makes the pair fastest).

Each anchor's placement.tile gets "l1": offsets of its inputs and output in the activations memory (-1:
moved by DMA from and to L2), of its tile buffers ("scratch") and its weight buffers ("weights"),
whether its first weights arrive with the previous layer ("prefetched"), the bytes it prefetches for the
next ("prefetch"), what it holds and releases in L1; placement.cost is the cost model's for that.
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..targets import cost
from ..targets.cost import Layer, Machine
from ..targets.tiles import Residency, Tile
from .memory import Buffer, place


def l1_plan(g: Graph, target) -> Graph:
    g = g.copy()
    steps = {n.name: i for i, n in enumerate(g.nodes())}
    for core in (c for c in target.cores if c.kind == "accelerator"):
        layers = [n for n in g.nodes() if n.placement is not None and n.placement.core == core.name
                  and n.placement.anchor == n.name and n.placement.tile]
        if layers:
            _plan_core(g, layers, steps, cost.machine(target, core), core)
    return g


class _Core:
    """The layers of one core, their geometry and the tensors they could keep in L1."""

    def __init__(self, g: Graph, layers, steps: dict, m: Machine, accelerator):
        self.m, self.steps = m, steps
        self.nodes = layers
        self.layer = {n.name: cost.layer_geometry(g, n, accelerator.job(n.placement.pattern)) for n in layers}
        self.tiled = {n.name: cost.tile_of(n.placement.tile) for n in layers}
        self.producer = {n.outputs[0]: n for n in layers}
        self.readers: dict[str, list] = {}
        for n in layers:
            for v in self.activations(n):
                self.readers.setdefault(v, []).append(n)
        consumers = {v: [c for c in g.nodes() if v in c.inputs] for v in self.producer}
        self.candidates = [v for v, n in self.producer.items()
                           if v not in g.outputs and consumers[v]
                           and all(c in self.readers.get(v, []) and c.inputs.count(v) == self.activations(c).count(v)
                                   for c in consumers[v])]

    def activations(self, n) -> list[str]:
        return n.inputs[:self.layer[n.name].inputs]

    def residency(self, n, kept: set) -> Residency:
        return Residency(tuple(v in kept for v in self.activations(n)), n.outputs[0] in kept)

    def tile(self, n, kept: set) -> Tile | None:
        """The tiler's tile when nothing of the layer is in L1, else the fastest tile of whole planes."""
        resident = self.residency(n, kept)
        if not resident.any_tensor:
            return self.tiled[n.name]
        layer = self.layer[n.name]
        ranked = sorted(self.whole_plane_tiles(n, resident),
                        key=lambda t: (cost.evaluate(layer, t, self.m).cycles, sum(cost.footprint(layer, t))))
        return ranked[0] if ranked else None

    def whole_plane_tiles(self, n, resident: Residency) -> list[Tile]:
        """Every tile of whole planes (a channel tile, double or single buffered) that fits the core."""
        layer = self.layer[n.name]
        return [t for tc in cost.channel_tiles(layer, self.m) for buffers in (2, 1)
                for t in [Tile(tc, layer.h_out, layer.w_out, buffers, resident)] if cost.fits(layer, t, self.m)]

    def span(self, v: str) -> tuple[int, int]:
        return self.steps[self.producer[v].name], max(self.steps[c.name] for c in self.readers[v])

    def plan(self, tiles: dict, kept: set) -> dict | None:
        """Offsets of the kept tensors and of each layer's tile buffers, or None when they overflow."""
        bufs = {("tensor", v): Buffer(["tensor " + v], _nbytes(self.layer[self.producer[v].name]), *self.span(v))
                for v in kept}
        for n in self.nodes:
            scratch = cost.footprint(self.layer[n.name], tiles[n.name])[0]
            step = self.steps[n.name]
            bufs[("layer", n.name)] = Buffer(["layer " + n.name], scratch, step, step)
        if place(list(bufs.values())) > self.m.activation_bytes:
            return None
        return {k: b.offset for k, b in bufs.items()}


def _nbytes(layer: Layer) -> int:
    return layer.c_out * layer.h_out * layer.w_out


def _plan_core(g: Graph, layers, steps: dict, m: Machine, accelerator) -> None:
    core = _Core(g, layers, steps, m, accelerator)
    kept: set = set()
    tiles = dict(core.tiled)
    for v in core.candidates:
        trial = kept | {v}
        touched = [core.producer[v]] + core.readers[v]
        new = {n.name: core.tile(n, trial) for n in touched}
        if any(t is None for t in new.values()):
            continue
        before = sum(cost.evaluate(core.layer[n.name], tiles[n.name], m).cycles for n in touched)
        after = sum(cost.evaluate(core.layer[n.name], new[n.name], m).cycles for n in touched)
        if after < before and core.plan({**tiles, **new}, trial) is not None:
            kept, tiles = trial, {**tiles, **new}
    weights = _prefetch(core, tiles, kept)
    offsets = core.plan(tiles, kept)
    for n in layers:
        layer, tile = core.layer[n.name], tiles[n.name]
        last_reads = {v for v in core.activations(n) if v in kept and core.span(v)[1] == steps[n.name]}
        n.placement.tile = {"c_out": tile.tc, "h_out": tile.th, "w_out": tile.tw, "buffers": tile.buffers,
                            "l1": {"inputs": [offsets["tensor", v] if v in kept else -1 for v in core.activations(n)],
                                   "output": offsets["tensor", n.outputs[0]] if n.outputs[0] in kept else -1,
                                   "scratch": offsets["layer", n.name], "weights": weights[n.name],
                                   "prefetched": tile.resident.prefetched, "prefetch": list(tile.resident.prefetch),
                                   "hold": n.outputs[0] in kept,
                                   "release": [list(r) for r in sorted({(offsets["tensor", v], _nbytes(core.layer[core.producer[v].name]))
                                                                      for v in last_reads})]}}
        n.placement.cost = cost.evaluate(layer, tile, m).as_dict()


def _prefetch(core: _Core, tiles: dict, kept: set) -> dict[str, int]:
    """Weight buffer offsets per layer, alternating ends of the weights memory; sets the prefetches kept
    in `tiles`. A layer of whole planes may take another channel tile for it: a smaller first block
    prefetched during a short previous job can make the pair faster than the layer's own fastest tile.
    A core whose jobs write weights into an array (load cycles) loads them itself: none."""
    m, base = core.m, {}
    previous = None
    for n in core.nodes:
        layer = core.layer[n.name]
        base[n.name] = 0
        if previous is None:
            previous = n
            continue
        p_layer, p_tile, tile = core.layer[previous.name], tiles[previous.name], tiles[n.name]
        held = cost.footprint(p_layer, p_tile)[1]
        best = (cost.evaluate(p_layer, p_tile, m).cycles + cost.evaluate(layer, tile, m).cycles, None)
        if not layer.weight_bytes_per_channel or cost.load_cycles(layer):
            candidates = []
        else:
            candidates = core.whole_plane_tiles(n, tile.resident) if tile.resident.any_tensor else [tile]
        for cand in candidates:
            if cost.footprint(layer, cand)[1] + held > m.weight_bytes:
                continue
            moved = tuple(b for b in (cand.tc * layer.weight_bytes_per_channel, cand.tc * layer.bias_bytes_per_channel)
                          if b)
            pre, nxt = _with(p_tile, prefetch=moved), _with(cand, prefetched=True)
            cycles = cost.evaluate(p_layer, pre, m).cycles + cost.evaluate(layer, nxt, m).cycles
            if cycles < best[0] and (cand == tile or core.plan({**tiles, n.name: nxt}, kept) is not None):
                best = (cycles, (pre, nxt))
        if best[1] is not None:
            tiles[previous.name], tiles[n.name] = best[1]
            base[n.name] = m.weight_bytes - cost.footprint(layer, best[1][1])[1] if base[previous.name] == 0 else 0
        previous = n
    return base


def _with(tile: Tile, **changes) -> Tile:
    r = tile.resident
    fields = {"inputs": r.inputs, "output": r.output, "prefetched": r.prefetched, "prefetch": r.prefetch, **changes}
    return Tile(tile.tc, tile.th, tile.tw, tile.buffers, Residency(**fields))
