"""GAP9 as data: a RISC-V host and the NE16 neural engine, which takes 3x3, 1x1 and depthwise 3x3 convs
and requantizes per output channel by a multiplier and a shift (TFLite's arithmetic), unlike DIANA's
shift-only cores; a second SoC that needs no code of its own.

Sources: DORY (pulp-platform/dory) dory/Hardware_targets/PULP/GAP9/HW_description.json ("DORY GAP9"),
GAP9_NE16/Tiler/Ne16PerfModel.py ("Ne16PerfModel") and GAP9_NE16/Ne16_HW_node.py; MATCH (eml-eda/match)
GAP9 target. A number without one of them is marked an assumption.
"""
from __future__ import annotations

from . import constraints as c
from .base import Core, Memory, Param, Pattern, Target
from .diana import HOST as RV32_HOST
from .jobs import Cycles, JobKind, Requantizer

DORY_GAP9 = "DORY GAP9 HW_description.json"
PERF = "DORY GAP9_NE16 Ne16PerfModel.py"

L2 = Memory("L2", 1536000, DORY_GAP9 + " (MATCH's GAP9 target gives 1496 KB)")

HOST = Core(
    "host", "cpu",
    "GAP9's RISC-V core running the portable C kernels alone (the 8-core cluster's parallel kernels not modeled)",
    params={name: Param(p.value, "counted RV32 instructions: " + p.source + "; assumption: one cycle per "
                        "instruction on GAP9's RI5CY-class core too, the same C kernels")
            for name, p in RV32_HOST.params.items()})

# NE16's norm-quant: a 32-bit scale and a shift per output channel after the bias (Ne16PerfModel: nq_bits 32,
# a shift per channel); TFLite's Q31 multiplier and exponent map onto it
NORM_QUANT = Requantizer("multiplier", per_channel=True, shifts=(-1, 31), zero_points=True,
                         source=PERF + ": scale (nq_bits 32), bias and shift per channel; assumption: TFLite's "
                                "fixed-point arithmetic bit for bit, right shifts up to 31 (a left shift of 1 for a "
                                "scale of 1), and uint8 activations (an int8 zero point -128) with any other "
                                "zero point folded into the bias and the output offset")

# Ne16PerfModel's latency per 3x3-pixel x 32-channel output subtile with the norm-quant's shift, scale and
# bias: n_in * (load + weight offset + matrix-vector + index update) + norm-quant + stream-out, n_in the
# 16-channel input blocks; a partial subtile is priced as a full one (assumption)
_NORM_QUANT_CYCLES = 8 + (9 + 32) + (8 + 4)  # shift ceil(32/4), scale 9 + ceil(32*4/4), bias 8 + ceil(32/8)
_STREAM_OUT = 3 + 9 + 1
CONV3X3 = JobKind("conv3x3", "conv", NORM_QUANT,
                  Cycles(32, 3, 3, reduction="channels", reduction_lanes=16,
                         per_step=(6 + 25) + 6 + (6 + 32 * 8) + 2, per_pass=_NORM_QUANT_CYCLES + _STREAM_OUT,
                         source=PERF + " (3x3: load 6 + 5*5, weight offset 6, matrix-vector 6 + 32*8 bit-serial, "
                                       "update 2)"),
                  source="assumption: the weights as dense int8 w[co][ci][kh][kw]; NE16's bit-serial layout "
                         "(Ne16_HW_node.py: ko * ceil(ki/16) * 16 * kh*kw bytes at 8 bits) has as many bytes when "
                         "in_c is a multiple of 16")
CONV1X1 = JobKind("conv1x1", "conv", NORM_QUANT,
                  Cycles(32, 3, 3, reduction="channels", reduction_lanes=16,
                         per_step=(10 + 9) + 6 + (6 + 32) + 2, per_pass=_NORM_QUANT_CYCLES + _STREAM_OUT,
                         source=PERF + " (1x1: load 10 + 3*3, weight offset 6, matrix-vector 6 + 32, update 2)"),
                  source=CONV3X3.source)
DEPTHWISE3X3 = JobKind("depthwise3x3", "depthwise", NORM_QUANT,
                       Cycles(16, 3, 3, reduction="one",
                              per_step=(6 + 25) + (6 + 16) + (6 + 16 * 8) + 2 + (8 + (9 + 16) + (8 + 2)) + _STREAM_OUT,
                              source=PERF + " (depthwise: one 16-channel block per subtile)"),
                       source=CONV3X3.source)

_NUMERICS = (c.int8_operands(),) + c.requantization(NORM_QUANT)
_STRIDES = c.strides((1, 2))  # assumption: NE16's strided mode takes stride 2; DORY's GAP9_NE16 tiles strided convs

NE16 = Core(
    "ne16", "accelerator",
    "NE16 neural engine: 3x3, 1x1 and depthwise 3x3 int8 convs, per-channel multiplier+shift requantization",
    memories=(Memory("L1_activations", 40000, DORY_GAP9 + ": L1 60000 B (MATCH: 90 KB), shared; assumption: "
                     "40000 B of it for activations", role="activations"),
              Memory("L1_weights", 20000, "assumption: the other 20000 B of " + DORY_GAP9 + "'s 60000 B L1",
                     role="weights")),
    patterns=(Pattern("conv3x3", ("qconv",), (c.groups_one(),) + _NUMERICS
                      + (c.image_batch_one(), c.kernel_shapes(((3, 3),)), _STRIDES, c.dilation_one(),
                         c.pads_within_half_kernel()), job=CONV3X3),
              Pattern("conv1x1", ("qconv",), (c.groups_one(),) + _NUMERICS
                      + (c.image_batch_one(), c.kernel_shapes(((1, 1),)), _STRIDES, c.dilation_one(),
                         c.pads_within_half_kernel()), job=CONV1X1),
              Pattern("depthwise3x3", ("qconv",), (c.one_group_per_channel(),) + _NUMERICS
                      + (c.image_batch_one(), c.kernel_shapes(((3, 3),)), _STRIDES, c.dilation_one(),
                         c.pads_within_half_kernel()), job=DEPTHWISE3X3)),
    params={
        "pe_rows": Param(32, PERF + ": OUTPUT_BUFFER_SHAPE 3x3x32 (32 output channels)"),
        "pe_cols": Param(3, PERF + ": OUTPUT_BUFFER_SHAPE 3x3x32 (3 output columns)"),
        "channel_step": Param(16, PERF + ": INPUT_BUFFER_SHAPE 5x5x16 (channels in blocks of 16)"),
        "macs_per_cycle": Param(137, PERF + ": a full 3x3 subtile, 9*16*9*32 MACs in 6+25+6+262+2 = 301 cycles"),
        "job_setup_cycles": Param(60, "assumption: the core writes about 24 NE16 configuration registers and "
                                      "triggers the job, until measured"),
    })

GAP9 = Target(
    name="gap9",
    description="GAP9: RISC-V host + NE16 neural engine (3x3/1x1/depthwise convs, per-channel requantization)",
    clock_hz=370e6,  # DORY GAP9 HW_description.json: core, accelerator and peripheral frequency
    main_memory=L2,
    cores=(HOST, NE16),
    configs={"ne16": ("ne16",), "cpu": ()},
    params={
        "dma_setup_cycles": Param(30, "assumption: L2 latency 10 (" + DORY_GAP9 + ") plus about 20 cycles of "
                                      "cluster-DMA command set-up"),
        "dma_bytes_per_cycle": Param(8, DORY_GAP9 + ": L2 bandwidth 8 B/cycle"),
    },
)
