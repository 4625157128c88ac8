"""DIANA as data: a RISC-V host, a 16x16 int8 digital PE array with its own L1 memories, and a shared L2
(the chip of HTVM, Van Delm et al., DAC 2023; numbers and sources in ../shared/DESIGN.md).

The analog in-memory core (1152x512 ternary array) is not described yet; a later issue adds it with its
patterns, memory and the "analog" configuration. Until then "mixed" (every accelerator) uses the digital
core alone.
"""
from __future__ import annotations

from . import constraints as c
from .base import Core, Memory, Param, Pattern, Target

DORY_DIANA = "DORY Diana_TVM HW_description.json"
HTVM_PATTERNS = "HTVM soma_dory pattern table, dory-hal"

L2 = Memory("L2", 512000, DORY_DIANA)

HOST = Core(
    "host", "cpu", "RISC-V RV32IMC host (PULPissimo class)",
    params={
        "cycles_per_mac": Param(6, "assumption: portable C int8 MAC on RV32IMC without SIMD: two byte loads, "
                                   "a multiply, an add, and the loop's pointer updates and branch"),
        "cycles_per_element": Param(12, "assumption: per output element of a requantize, pool, table or move: "
                                        "a 32x32->64-bit multiply, shift, clip, store and loop overhead"),
    })

# constraints every digital job shares, numerics first: a model quantized without power-of-two scales
# reports that (the fix is in the quantization) before any shape detail
_NUMERICS = (c.int8_operands(), c.power_of_two_scales())
_LAYER_NUMERICS = _NUMERICS + (c.one_shift(0, 31), c.zero_points_zero())
_WINDOW = (c.image_batch_one(), c.kernel_sizes((1, 3, 5, 7)), c.strides((1, 2)), c.dilation_one(),
           c.pads_within_half_kernel())

DIGITAL = Core(
    "digital", "accelerator", "16x16 int8 PE array: conv2d, depthwise, dense, add; requantization by a shift",
    memories=(Memory("L1_activations", 256000, DORY_DIANA, role="activations"),
              Memory("L1_weights", 64000, DORY_DIANA, role="weights")),
    # the groups constraint comes first: it tells conv2d and depthwise apart, so the pattern a conv
    # fails furthest in is the one the report quotes
    patterns=(Pattern("conv2d", ("qconv",), (c.groups_one(),) + _LAYER_NUMERICS + _WINDOW),
              Pattern("depthwise", ("qconv",), (c.one_group_per_channel(),) + _LAYER_NUMERICS + _WINDOW),
              Pattern("dense", ("qmatmul",), _LAYER_NUMERICS + (c.vector_input(),)),
              Pattern("add", ("qadd",), _NUMERICS + (c.zero_points_zero(), c.image_batch_one(), c.same_shapes()))),
    params={
        "pe_rows": Param(16, HTVM_PATTERNS),
        "pe_cols": Param(16, HTVM_PATTERNS),
        "macs_per_cycle": Param(256, HTVM_PATTERNS),
        "job_setup_cycles": Param(100, "assumption: the host writes a job descriptor of about 20 memory-mapped "
                                       "registers (addresses, sizes, strides, pads, shift) at a few cycles "
                                       "each, then starts and polls the core; the order of the 70-cycle DMA "
                                       "set-up, until measured"),
    })

DIANA = Target(
    name="diana",
    description="DIANA: RISC-V host + 16x16 int8 digital accelerator (the analog core comes later)",
    clock_hz=260e6,  # HTVM profiler (diana/byoc)
    main_memory=L2,
    cores=(HOST, DIGITAL),
    configs={"mixed": ("digital",), "cpu": (), "digital": ("digital",)},
    params={
        "dma_setup_cycles": Param(70, "MATCH's DIANA model"),
        "dma_bytes_per_cycle": Param(8, "assumption: a 64-bit bus between L2 and the L1 memories"),
    },
)
