"""Targets as data: a chip is memories and cores with numbers and their sources; passes read these
fields and never branch on a target's name."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Memory:
    name: str
    size_bytes: int
    source: str = ""


@dataclass(frozen=True)
class Core:
    name: str
    kind: str  # "cpu" runs every op with the portable C kernels; accelerators take dispatched layers
    description: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    clock_hz: float
    main_memory: Memory  # where weights, the arena and the code live (L2 on DIANA)
    cores: tuple[Core, ...]
    configs: tuple[str, ...] = ("cpu",)
    notes: dict = field(default_factory=dict)

    @property
    def host(self) -> Core:
        return next(c for c in self.cores if c.kind == "cpu")
