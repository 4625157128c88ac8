"""The CP-SAT tiler on DIANA's analog array against an exhaustive walk over every legal tiling and
buffering of the same cost model: the vww ternary 1x1 layers whose double-buffered bound is weak (an
array load makes the first box compute-bound while the rest wait on DMA), and layers under small
activation budgets. The tiler's pick is the fastest tiling, then the one holding fewest bytes."""
from dataclasses import replace

import pytest

from tinyc import targets
from tinyc.targets.diana import ANALOG_CONV2D
from tinyc.passes.tiling import solved_tiling, tile_layer
from tinyc.targets import cost
from tinyc.targets.cost import Layer

DIANA = targets.get("diana")
ANALOG = cost.machine(DIANA, DIANA.core("analog"))


def pointwise(c_in: int, c_out: int, size: int) -> Layer:
    return Layer("pw", ANALOG_CONV2D, c_in, size, size, c_out, size, size, 1, 1, 1, 1, (0, 0, 0, 0), True)


def exhaustive(layer: Layer, m) -> tuple[int, int]:
    """(least latency, fewest bytes held at that latency) over every legal tiling that fits."""
    return min((cost.evaluate(layer, t, m).cycles, sum(cost.footprint(layer, t)))
               for buffers in (1, 2) for t in cost.legal_tiles(layer, m, buffers) if cost.fits(layer, t, m))


@pytest.mark.parametrize("layer, budget", [
    (pointwise(16, 32, 24), None), (pointwise(32, 32, 24), None),  # vww ternary's slowest solves
    (pointwise(32, 64, 12), 4000), (pointwise(64, 64, 12), 2000),
    (Layer("conv", ANALOG_CONV2D, 8, 12, 12, 16, 12, 12, 3, 3, 1, 1, (1, 1, 1, 1), True), 3000)])
def test_cp_sat_finds_the_exhaustive_minimum_on_the_analog_array(layer, budget):
    m = ANALOG if budget is None else replace(ANALOG, activation_bytes=budget)
    solved_tiling.cache_clear()
    choice = tile_layer(layer, m)
    assert choice.proven and cost.fits(layer, choice.tile, m)
    assert choice.cost == cost.evaluate(layer, choice.tile, m)
    assert (choice.cost.cycles, sum(cost.footprint(layer, choice.tile))) == exhaustive(layer, m)
