"""DIANA as data: a RISC-V host, a 16x16 int8 digital PE array and a 1152x512 analog in-memory-compute
array with ternary weights, each with its own L1 memories, and a shared L2 (the chip of HTVM, Van Delm
et al., DAC 2023; numbers and sources in ../shared/DESIGN.md and docs/accelerators.md).
"""
from __future__ import annotations

from . import constraints as c
from .base import Core, Memory, Param, Pattern, Target
from .jobs import Cycles, JobKind, Requantizer

DORY_DIANA = "DORY Diana_TVM HW_description.json"
HTVM_PATTERNS = "HTVM soma_dory pattern table, dory-hal"

L2 = Memory("L2", 512000, DORY_DIANA)

FIT = ("measured: least-squares fit (relative error) of RV32IMC instructions retired per layer on qemu, zoo int8 "
       "networks' host layers on configs cpu and digital and the float <-> int8 boundary on a 96x96x3 input, one "
       "cycle per instruction (benchmarks/host_kernels.py --fit)")


def _fitted(kind: str, **per_feature: float) -> dict[str, Param]:
    return {f"{kind}_cycles_per_{feature}": Param(value, FIT) for feature, value in per_feature.items()}


# per kernel kind (tinyc.targets.host_cost.host_work): what each MAC, output element, input element, output
# channel and layer costs; profile(on="qemu") gives any layer's exact count
HOST = Core(
    "host", "cpu", "RISC-V RV32IMC host (PULPissimo class)",
    params={
        # the kinds without their own fit (the float kernels, data movement, elementwise int8): the int8
        # kernels' fit before they were planned at compile time, off by 0.16x..1.3x on single layers
        "cycles_per_mac": Param(5, "measured: least-squares fit of RV32IMC instructions retired per conv/dense "
                                    "layer (the portable int8 C kernels before tinyc_kernels_plan.c, -Os) on "
                                    "qemu, zoo int8 networks, one cycle per instruction"),
        "cycles_per_element": Param(203, "measured: the same fit's cost per output element (requantization, "
                                         "window set-up and loop overhead)"),
        **_fitted("conv", mac=2.82, output=5.38),
        **_fitted("depthwise", mac=4.38, output=0.49, input=0.26, channel=136.08),
        **_fitted("dense", mac=3.15, output=25.51, input=8.76),
        **_fitted("pool", input=1.69, output=6.41),
        **_fitted("pool_nonnegative", input=0.99, output=12.58),
        **_fitted("quantize", output=34.01),
        **_fitted("dequantize", output=6.0),
        **_fitted("add", output=26.48),
        **_fitted("softmax", output=57.03, layer=105.93),
        **_fitted("pad", output=3.89),
        **_fitted("transpose", output=2.22),
        **_fitted("space_to_depth", output=2.64),
        **_fitted("view", layer=17.0),
    })

PE = 16  # the digital core's PE array: output channels across its rows, output columns across its columns
SHIFT = Requantizer("shift", shifts=(0, 31), source=HTVM_PATTERNS)
PE_ARRAY = "tinyc's model of the 16x16 PE array (" + HTVM_PATTERNS + "; docs/accelerators.md, \"Cost model\")"
CONV2D = JobKind("conv2d", "conv", SHIFT, Cycles(PE, PE, reduction="window", source=PE_ARRAY))
DEPTHWISE = JobKind("depthwise", "depthwise", SHIFT, Cycles(PE, PE, reduction="taps", source=PE_ARRAY))
DENSE = JobKind("dense", "dense", SHIFT, Cycles(PE, PE, reduction="channels", reduction_lanes=PE, source=PE_ARRAY),
                weights_by_input=True)
ADD = JobKind("add", "add", Requantizer("add", source=HTVM_PATTERNS), Cycles(PE, PE, source=PE_ARRAY))

# constraints every digital job shares, numerics first: a model quantized without power-of-two scales
# reports that (the fix is in the quantization) before any shape detail
_NUMERICS = (c.int8_operands(), c.power_of_two_scales())
_LAYER_NUMERICS = (c.int8_operands(),) + c.requantization(SHIFT)
_WINDOW = (c.image_batch_one(), c.kernel_sizes((1, 3, 5, 7)), c.strides((1, 2)), c.dilation_one(),
           c.pads_within_half_kernel())

DIGITAL = Core(
    "digital", "accelerator", "16x16 int8 PE array: conv2d, depthwise, dense, add; requantization by a shift",
    memories=(Memory("L1_activations", 256000, DORY_DIANA, role="activations"),
              Memory("L1_weights", 64000, DORY_DIANA, role="weights")),
    # the groups constraint comes first: it tells conv2d and depthwise apart, so the pattern a conv
    # fails furthest in is the one the report quotes
    patterns=(Pattern("conv2d", ("qconv",), (c.groups_one(),) + _LAYER_NUMERICS + _WINDOW, job=CONV2D),
              Pattern("depthwise", ("qconv",), (c.one_group_per_channel(),) + _LAYER_NUMERICS + _WINDOW,
                      job=DEPTHWISE),
              Pattern("dense", ("qmatmul",), _LAYER_NUMERICS + (c.vector_input(),), job=DENSE),
              Pattern("add", ("qadd",), _NUMERICS + (c.zero_points_zero(), c.image_batch_one(), c.same_shapes()),
                      job=ADD)),
    params={
        "pe_rows": Param(16, HTVM_PATTERNS),
        "pe_cols": Param(16, HTVM_PATTERNS),
        "macs_per_cycle": Param(256, HTVM_PATTERNS),
        "job_setup_cycles": Param(100, "assumption: the host writes a job descriptor of about 20 memory-mapped "
                                       "registers (addresses, sizes, strides, pads, shift) at a few cycles "
                                       "each, then starts and polls the core; the order of the 70-cycle DMA "
                                       "set-up, until measured"),
    })

ARRAY_ROWS, ARRAY_COLUMNS, ADC_BITS, INPUT_BITS = 1152, 512, 6, 7
CYCLES_PER_EVALUATION = 8
DORY_ANALOG = "DORY Diana_TVM analog conv template (memcpy_analog, l1_y = 16*512*4)"


# a post-ADC multiply takes the left shifts (s < 0) a shift-only requantizer cannot
ADC = Requantizer("adc", shifts=(-8, 31), source="JSSC 2023 (DIANA): 6-bit ADC, then a digital multiply-add and shift")
ARRAY = Cycles(ARRAY_COLUMNS, reduction="one", per_step=CYCLES_PER_EVALUATION, write_cycles_per_row=4,
               source="assumption: one evaluation of every column per output pixel, about 30 ns at 260 MHz (input "
                      "DACs settle, bitlines integrate, 512 6-bit ADCs convert); a 1024-bit array row written "
                      "through a 256-bit port in 4 cycles; until measured")
ANALOG_CONV2D = JobKind("analog_conv2d", "conv", ADC, ARRAY, weight_bits=2,
                        source="DORY Diana_TVM: weight_bits == 2 for the analog array (ternary cells)")
ANALOG_DENSE = JobKind("analog_dense", "dense", ADC, ARRAY, weight_bits=2, source=ANALOG_CONV2D.source)

# numerics first, as on the digital core
_ANALOG_NUMERICS = (c.int8_operands(),) + c.requantization(ADC) + (c.ternary_weights(), c.input_bits(INPUT_BITS))

ANALOG = Core(
    "analog", "accelerator",
    "1152x512 analog in-memory array: ternary weights, 7-bit inputs, 6-bit ADC, then a digital multiply-add "
    "and shift; conv2d (groups 1) and dense",
    memories=(Memory("L1_activations", 65536, "assumption: DORY's analog template reads the input at L1 byte 0 "
                     "and writes the output at 16*512*4 = 32768 (" + DORY_ANALOG + "); 32768 B each way",
                     role="activations"),
              Memory("array", ARRAY_ROWS * ARRAY_COLUMNS // 4 + 4 * ARRAY_COLUMNS,
                     "DORY Diana_TVM L1_Weights_analog: 147456 B, the array's 1152x512 2-bit cells; plus "
                     "assumption: 512 int32 bias registers (2048 B) of the post-ADC unit", role="weights")),
    patterns=(Pattern("analog_conv2d", ("qconv",),
                      (c.groups_one(),) + _ANALOG_NUMERICS
                      + (c.image_batch_one(), c.rows_at_most(ARRAY_ROWS), c.strides((1, 2)), c.dilation_one(),
                         c.pads_within_half_kernel(), c.pads_at_most(3)), lowering="adc", job=ANALOG_CONV2D),
              Pattern("analog_dense", ("qmatmul",),
                      _ANALOG_NUMERICS + (c.vector_input(), c.rows_at_most(ARRAY_ROWS)), lowering="adc",
                      job=ANALOG_DENSE)),
    params={
        # the cost model's PE array: every column of a load evaluates at once, one output pixel at a time
        "pe_rows": Param(ARRAY_COLUMNS, "array columns, one output channel each (JSSC 2023)"),
        "pe_cols": Param(1, "assumption: one output pixel per evaluation (DORY's ox_unroll of up to 4 pixels "
                            "when the rows allow is not modeled)"),
        "max_channels": Param(ARRAY_COLUMNS, "array columns: output channels beyond them take another array load"),
        "channel_step": Param(64, "assumption: output channels move in 64-channel lines (" + DORY_ANALOG
                                  + ": channel_number = (n + 63) / 64)"),
        "array_rows": Param(ARRAY_ROWS, "JSSC 2023 (DIANA); DORY Diana tiler: in_ch * kh * kw per load"),
        "adc_bits": Param(ADC_BITS, "JSSC 2023: AIMC I/W/O 7/1.5/6 bit"),
        "input_bits": Param(INPUT_BITS, "JSSC 2023: AIMC I/W/O 7/1.5/6 bit"),
        "macs_per_cycle": Param(ARRAY_ROWS * ARRAY_COLUMNS // CYCLES_PER_EVALUATION,
                                "array rows x columns per evaluation"),
        "job_setup_cycles": Param(100, "assumption: as the digital core's (a descriptor of about 20 registers)"),
    })

DIANA = Target(
    name="diana",
    description="DIANA: RISC-V host + 16x16 int8 digital accelerator + 1152x512 analog in-memory array",
    clock_hz=260e6,  # HTVM profiler (diana/byoc)
    main_memory=L2,
    cores=(HOST, DIGITAL, ANALOG),
    configs={"mixed": ("digital", "analog"), "cpu": (), "digital": ("digital",), "analog": ("analog",)},
    params={
        "dma_setup_cycles": Param(70, "MATCH's DIANA model"),
        "dma_bytes_per_cycle": Param(8, "assumption: a 64-bit bus between L2 and the L1 memories"),
    },
)
