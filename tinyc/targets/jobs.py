"""Job kinds as data: what one accelerator job computes, how it requantizes, how its weights are laid out
and what its cycles are. A core declares its job kinds through its patterns (`Pattern.job`); the cost
model, the tiler, the driver and the emulator read these records and never a job kind's name.

The emulator has one generic engine per entry of COMPUTES and one read-out per entry of REQUANTIZERS
(tinyc/runtime/tinyc_hal_emu_engine.c); the emitted model declares its target's job kinds to it as a
table (tinyc_hal_job_kind, in tinyc_hal.h), a job's HAL id being its kind's index in that table. The
three tuples below are the C enums' order (a test checks them against tinyc_hal.h).
"""
from __future__ import annotations

from dataclasses import dataclass

# what a job computes: a conv whose every output channel reads every input channel; a depthwise conv (one
# input channel per output channel); x[1, K] @ w; the IR's qadd of two boxes
COMPUTES = ("conv", "depthwise", "dense", "add")
# how the int32 accumulation becomes int8: one rounding right shift; TFLite's fixed-point multiplier and
# shift (the IR's qconv/qmatmul arithmetic, rounding single or double); an ADC read-out (tinyc_adc: the
# ADC's shift and clip, then a multiply-add of the bias and a shift); qadd's own rescaling of both inputs
REQUANTIZERS = ("shift", "multiplier", "adc", "add")
# what one pass of the PE array steps over: nothing (one step), the window (in_c * kh * kw), the kernel
# taps (kh * kw) or the input channels
REDUCTIONS = ("one", "window", "taps", "channels")


@dataclass(frozen=True)
class Requantizer:
    kind: str  # one of REQUANTIZERS
    per_channel: bool = False  # multiplier: a multiplier and a shift per output channel (else one per layer)
    shifts: tuple[int, int] = (0, 31)  # the right shifts s it applies (shift: s; multiplier: s = -shift)
    zero_points: bool = False  # takes the input's and output's zero points (the weights' stay 0)
    source: str = ""

    def __post_init__(self):
        if self.kind not in REQUANTIZERS:
            raise ValueError(f"requantizer {self.kind!r} is not one of {', '.join(REQUANTIZERS)}")

    @property
    def channel_words(self) -> int:
        """int32 words per output channel it reads beside the bias (a per-channel multiplier and shift)."""
        return 2 if self.kind == "multiplier" and self.per_channel else 0


@dataclass(frozen=True)
class Cycles:
    """The compute cycles of one job on an output box of cn x hn x wn:
        ceil(cn / channel_lanes) * ceil(hn / row_lanes) * ceil(wn / column_lanes)
          * (per_pass + ceil(reduction / reduction_lanes) * per_step)
        + the core's job_setup_cycles + write_cycles_per_row * weight rows (a channel block's first job)
    with `reduction` the size of what each pass steps over (REDUCTIONS)."""
    channel_lanes: int
    column_lanes: int = 1
    row_lanes: int = 1
    reduction: str = "one"
    reduction_lanes: int = 1
    per_step: int = 1
    per_pass: int = 0
    write_cycles_per_row: int = 0  # an array that must be written before it computes
    source: str = ""

    def __post_init__(self):
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction {self.reduction!r} is not one of {', '.join(REDUCTIONS)}")


@dataclass(frozen=True)
class JobKind:
    name: str  # the pattern's name, as the report prints it
    computes: str  # one of COMPUTES
    requantizer: Requantizer
    cycles: Cycles
    weight_bits: int = 8  # the width of one weight cell: 8 (int8) or 2 (ternary cells, four to a byte)
    weights_by_input: bool = False  # weights as w[rows][out_c] (the IR's dense w[K][N]), else w[out_c][rows]
    source: str = ""

    def __post_init__(self):
        if self.computes not in COMPUTES:
            raise ValueError(f"{self.name}: computes {self.computes!r}, not one of {', '.join(COMPUTES)}")
        if self.weight_bits not in (2, 8):
            raise ValueError(f"{self.name}: weight cells of {self.weight_bits} bits; the engine takes 2 or 8")
        if self.weight_bits != 8 and self.weights_by_input:
            raise ValueError(f"{self.name}: packed cells lie output channel by output channel")

    @property
    def whole_input(self) -> bool:
        """Every output channel reads every input channel (a channel block reads the whole input box)."""
        return self.computes in ("conv", "dense")

    @property
    def inputs(self) -> int:
        """Input tensors a job reads (add: two)."""
        return 2 if self.computes == "add" else 1

    def rows(self, c_in: int, kh: int, kw: int) -> int:
        """Weights per output channel."""
        return {"conv": c_in * kh * kw, "depthwise": kh * kw, "dense": c_in, "add": 0}[self.computes]

    def reduction(self, c_in: int, kh: int, kw: int) -> int:
        return {"one": 1, "window": c_in * kh * kw, "taps": kh * kw, "channels": c_in}[self.cycles.reduction]

    def weight_bytes(self, rows: int) -> int:
        """Bytes of one output channel's weights, packed cells whole."""
        return -(-rows * self.weight_bits // 8)


__all__ = ["COMPUTES", "Cycles", "JobKind", "REDUCTIONS", "REQUANTIZERS", "Requantizer"]
