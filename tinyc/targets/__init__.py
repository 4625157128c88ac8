"""The targets tinyc compiles for: `get(name)` and `names()`."""
from __future__ import annotations

from ..errors import InputError
from .base import Core, Memory, Target
from .diana import DIANA
from .diana import HOST as DIANA_HOST
from .diana import L2 as DIANA_L2
from .gap9 import GAP9

CPU = Target(
    name="cpu",
    description="DIANA's RISC-V host alone: the plain-deployment baseline every accelerator is compared with",
    clock_hz=260e6,
    main_memory=DIANA_L2,
    cores=(DIANA_HOST,),
)

HOST = Target(
    name="host",
    description="the machine tinyc runs on, with the portable C kernels and no memory limit of a chip "
                "(what the ONNX backend compiles for)",
    clock_hz=260e6,
    main_memory=Memory("RAM", 2 ** 31 - 1, "int32 byte offsets of the arena"),
    cores=(Core("host", "cpu", "the host compiler's machine"),),
)

_TARGETS = {t.name: t for t in (CPU, DIANA, GAP9, HOST)}


def names() -> list[str]:
    return sorted(_TARGETS)


def get(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    if name not in _TARGETS:
        raise InputError(f"unknown target {name!r}; known targets: {', '.join(names())}")
    return _TARGETS[name]


__all__ = ["Core", "Memory", "Target", "get", "names"]
