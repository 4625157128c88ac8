"""Driver emission for accelerators: the chip's HAL descriptor and each accelerator layer's tile loop."""
from .chip import Chip
from .driver import emit_layer, on_accelerator

__all__ = ["Chip", "emit_layer", "on_accelerator"]
