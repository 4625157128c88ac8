"""Targets as data: a chip is memories and cores with numbers and their sources; passes read these
fields and never branch on a target's name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .jobs import JobKind


@dataclass(frozen=True)
class Param:
    """A number of the cost model, with where it comes from (a source or "assumption: why")."""
    value: float
    source: str


@dataclass(frozen=True)
class Memory:
    name: str
    size_bytes: int
    source: str = ""
    role: str = ""  # on an accelerator: "activations" or "weights", the budget the tiler checks


@dataclass(frozen=True)
class Constraint:
    """One condition a pattern puts on the nodes it matches. `text` says what must hold, as the report
    prints it when it fails; `holds(graph, nodes)` gets the matched nodes, producer first, and returns
    True, or what it found instead (e.g. "is 10x4"), which the report adds in parentheses."""
    text: str
    holds: Callable
    numeric: bool = False  # on the numbers (dtypes, scales, zero points, values), which no rewrite of shapes changes

    def failure(self, graph, nodes) -> str:
        """"" when the constraint holds, else its text and what was found."""
        found = self.holds(graph, nodes)
        if found is True:
            return ""
        return f"{self.text} ({found})" if found else self.text


@dataclass(frozen=True)
class Pattern:
    """A chain of IR ops (producer first) an accelerator runs as one job of kind `name`. `lowering`, when
    set, names the rewrite dispatch applies to the chain to make it the ops the job computes exactly
    (tinyc.passes.dispatch.LOWERINGS; "adc": the analog core's ADC makes its job an aconv, not the
    qconv it matched). `job`: the job kind the core runs the chain as (tinyc.targets.jobs), None for a
    pattern no job kind prices."""
    name: str
    ops: tuple[str, ...]
    constraints: tuple[Constraint, ...] = ()
    lowering: str | None = None
    job: JobKind | None = None


@dataclass(frozen=True)
class Core:
    name: str
    kind: str  # "cpu" runs every op with the portable C kernels; "accelerator" takes dispatched layers
    description: str = ""
    memories: tuple[Memory, ...] = ()  # an accelerator's own memories, filled by DMA
    patterns: tuple[Pattern, ...] = ()
    params: dict = field(default_factory=dict, hash=False)  # name -> Param, read by the cost model

    def memory(self, role: str) -> Memory:
        return next(m for m in self.memories if m.role == role)

    def job(self, pattern: str) -> JobKind:
        """The job kind of the core's pattern `pattern` (a placement's pattern name)."""
        return next(p.job for p in self.patterns if p.name == pattern)

    @property
    def job_kinds(self) -> tuple[JobKind, ...]:
        return tuple(dict.fromkeys(p.job for p in self.patterns if p.job is not None))


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    clock_hz: float
    main_memory: Memory  # where weights, the arena and the code live (L2 on DIANA)
    cores: tuple[Core, ...]
    # configuration name -> the accelerators it may use (the host is always there); the first is the default
    configs: dict = field(default_factory=lambda: {"cpu": ()}, hash=False)
    params: dict = field(default_factory=dict, hash=False)  # target-wide cost parameters (DMA), name -> Param

    @property
    def host(self) -> Core:
        return next(c for c in self.cores if c.kind == "cpu")

    @property
    def default_config(self) -> str:
        return next(iter(self.configs))

    def core(self, name: str) -> Core:
        return next(c for c in self.cores if c.name == name)

    def accelerators(self, config: str) -> tuple[Core, ...]:
        return tuple(self.core(name) for name in self.configs[config])
