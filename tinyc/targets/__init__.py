"""The targets tinyc compiles for: `get(name)` and `names()`."""
from __future__ import annotations

from ..errors import UnsupportedError
from .base import Core, Memory, Target

DIANA_L2 = Memory("L2", 512000, "DORY Diana_TVM HW_description.json")
DIANA_HOST = Core("host", "cpu", "RISC-V RV32IMC host (PULPissimo class)")

CPU = Target(
    name="cpu",
    description="DIANA's RISC-V host alone: the plain-deployment baseline every accelerator is compared with",
    clock_hz=260e6,
    main_memory=DIANA_L2,
    cores=(DIANA_HOST,),
)

_TARGETS = {t.name: t for t in (CPU,)}


def names() -> list[str]:
    return sorted(_TARGETS)


def get(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    if name not in _TARGETS:
        raise UnsupportedError(f"unknown target {name!r}; known targets: {', '.join(names())}")
    return _TARGETS[name]


__all__ = ["Core", "Memory", "Target", "get", "names"]
