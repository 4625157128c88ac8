"""A tiling of an accelerator layer, as the cost model (cost.py) prices it: the output tile, the
buffering, and what the L1 plan keeps in the core's memories across layers."""
from __future__ import annotations

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
