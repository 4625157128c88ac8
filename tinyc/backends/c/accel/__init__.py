"""Driver emission for accelerators: the chip's HAL descriptor and each accelerator layer's tile loop.

It builds on the host C backend's kernels and C literals (its parent package); emit.py, which writes
model.c, builds on it: the one direction, emit -> accel -> kernels, cdata."""
from .chip import Chip
from .driver import emit_layer, on_accelerator

__all__ = ["Chip", "emit_layer", "on_accelerator"]
