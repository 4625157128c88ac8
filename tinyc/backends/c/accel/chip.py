"""The chip as the emitted model declares it to the HAL: memories and accelerators numbered, with the
cost-model numbers the emulator's timeline uses, all read from the target's data."""
from __future__ import annotations

from dataclasses import dataclass

from ....targets import cost, host_cost
from ....targets.jobs import COMPUTES, REDUCTIONS, REQUANTIZERS, JobKind
from ..cdata import c_string

HOST_PARAMS = ("cycles_per_mac", "cycles_per_element")


@dataclass(frozen=True)
class CoreIds:
    index: int  # the core's number in the HAL descriptor
    activations: int  # memory ids
    weights: int


class Chip:
    """Numbers every accelerator of the target and every memory of theirs, in the target's order, and
    declares the `tinyc_hal_target` descriptor through the emitter."""

    def __init__(self, e, target=None):
        self.target = target
        self.accelerators = [c for c in target.cores if c.kind == "accelerator"] if target else []
        self.memories = [(core.name, m) for core in self.accelerators for m in core.memories]
        self.memory_ids = {(core, m.name): i for i, (core, m) in enumerate(self.memories)}
        # every accelerator's job kinds, numbered: a job's HAL id is its kind's index in this table
        self.job_kinds = [(i, k) for i, core in enumerate(self.accelerators) for k in core.job_kinds]
        self.name = self._declare(e)

    def job_kind(self, core_name: str, pattern: str) -> tuple[int, JobKind | None]:
        """(HAL id, record) of the job kind of the core's pattern; the record is None for a pattern without one."""
        core = self.ids(core_name).index
        job = self.accelerators[core].job(pattern)
        return (self.job_kinds.index((core, job)) if job is not None else -1), job

    def ids(self, core_name: str) -> CoreIds:
        index = next(i for i, c in enumerate(self.accelerators) if c.name == core_name)
        core = self.accelerators[index]
        return CoreIds(index, self.memory_ids[(core.name, core.memory("activations").name)],
                       self.memory_ids[(core.name, core.memory("weights").name)])

    def machine(self, core_name: str) -> cost.Machine:
        return cost.machine(self.target, self.target.core(core_name))

    def host_cycles(self, g, node) -> int:
        """The cost model's estimate for a host layer; a host without its parameters (the ONNX
        backend's `host` target) models no host time."""
        if self.target is None or not all(p in self.target.host.params for p in HOST_PARAMS):
            return 0
        return host_cost.host_cycles(g, node, self.target.host)

    def _declare(self, e) -> str:
        memories, cores = "NULL", "NULL"
        if self.memory_ids:
            rows = [f'{{"{c_string(core)}.{c_string(m.name)}", {m.size_bytes}}}' for core, m in self.memories]
            memories = _array(e, "chip_memories", "tinyc_hal_memory", rows)
        if self.accelerators:
            rows = []
            for core in self.accelerators:
                m, ids = self.machine(core.name), self.ids(core.name)
                rows.append(f'{{"{c_string(core.name)}", {ids.activations}, {ids.weights}, {m.job_setup_cycles}, '
                            f'{m.max_channels}, {m.array_rows}, {m.input_bits}}}')
            cores = _array(e, "chip_cores", "tinyc_hal_core", rows)
        kinds = "NULL"
        if self.job_kinds:
            kinds = _array(e, "chip_job_kinds", "tinyc_hal_job_kind", [_kind_row(i, k) for i, k in self.job_kinds])
        dma = (0, 0)
        if self.accelerators:
            m = self.machine(self.accelerators[0].name)
            dma = (m.dma_setup_cycles, m.dma_bytes_per_cycle)
        host = self.target.host.name if self.target else "host"
        return e.struct("chip", "tinyc_hal_target", [f'"{c_string(host)}"', len(self.memory_ids), memories,
                                                     len(self.accelerators), cores, *dma, len(self.job_kinds),
                                                     kinds])


def _kind_row(core: int, k: JobKind) -> str:
    """A tinyc_hal_job_kind initializer: the record, field by field (tinyc_hal.h's order)."""
    r, cy = k.requantizer, k.cycles
    fields = [core, COMPUTES.index(k.computes), REQUANTIZERS.index(r.kind), int(r.per_channel), *r.shifts,
              int(r.zero_points), k.weight_bits, int(k.weights_by_input), cy.channel_lanes, cy.row_lanes,
              cy.column_lanes, REDUCTIONS.index(cy.reduction), cy.reduction_lanes, cy.per_step, cy.per_pass,
              cy.write_cycles_per_row]
    return f'{{"{c_string(k.name)}", ' + ", ".join(str(int(f)) for f in fields) + "}"


def _array(e, base: str, ctype: str, rows: list[str]) -> str:
    name = e.ident(base)
    e.decls.append(f"static const {ctype} {name}[{len(rows)}] = {{\n" + ",\n".join("    " + r for r in rows) + "\n};\n")
    return name
