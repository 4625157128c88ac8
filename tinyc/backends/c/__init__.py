"""The C backend: a memory-planned Graph -> a C99 project for the host CPU."""
from .emit import emit_c, runtime_sources

__all__ = ["emit_c", "runtime_sources"]
