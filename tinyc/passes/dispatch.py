"""dispatch: place every node on a core (docs/accelerators.md, "Dispatch").

Every accelerator of the configuration offers patterns: chains of IR ops (producer first) whose inner
values have exactly one reader and are not graph outputs, each with constraints. Matches that satisfy
every constraint are taken longest first, no node in two; among matches of one length, the earlier in
the graph first. The same chain valid on several cores goes to the one the cost model says is fastest
(its tiler's minimum latency, weight loads included; every core reads and writes L2 in the same layout,
so moving data between cores costs what each layer's own DMA costs, already in its figure); on a tie,
the first core in the configuration's order. Every other node runs on the host, with the reason each
accelerator declined it. A pattern with a `lowering` then rewrites its chain into the ops the core
computes exactly (an array read out by an ADC: qconv -> aconv).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DoesNotFitError
from ..ir.graph import Graph, Node, Placement
from ..ir.verify import verify
from ..targets import cost
from ..targets.base import Core, Pattern, Target
from .lower_adc import lower_adc
from .tiling import check_fits, tile_layer

# the rewrites a target's pattern names (Pattern.lowering): (graph, the chain's node names, the core)
LOWERINGS = {"adc": lower_adc}


@dataclass(frozen=True)
class Match:
    core: Core
    pattern: Pattern
    nodes: tuple[Node, ...]  # producer first; the last (the anchor) produces the job's output
    passed: int  # how many constraints held before the first that failed (all of them: a valid match)
    failure: str  # the first failed constraint with what was found; "" when every one held

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def numeric(self) -> bool:
        """Whether the failure is a numeric constraint's (not the job's shape, nor the core's memories)."""
        return bool(self.failure) and self.passed < len(self.pattern.constraints) and \
            self.pattern.constraints[self.passed].numeric


def chain(g: Graph, start: Node, ops: tuple[str, ...], readers: dict[str, list[str]]) -> tuple[Node, ...] | None:
    """The nodes `ops` names from `start` on, each the only reader of the previous one's one output."""
    if start.op != ops[0]:
        return None
    nodes = [start]
    for op in ops[1:]:
        outs = nodes[-1].outputs
        if len(outs) != 1 or outs[0] in g.outputs or len(readers.get(outs[0], ())) != 1:
            return None
        nxt = g.node(readers[outs[0]][0])
        if nxt.op != op:
            return None
        nodes.append(nxt)
    return tuple(nodes)


def check(g: Graph, core: Core, pattern: Pattern, nodes: tuple[Node, ...]) -> Match:
    for i, constraint in enumerate(pattern.constraints):
        failure = constraint.failure(g, nodes)
        if failure:
            return Match(core, pattern, nodes, i, failure)
    return Match(core, pattern, nodes, len(pattern.constraints), "")


def placeable(g: Graph, target: Target, core: Core, pattern: Pattern, nodes: tuple[Node, ...]) -> Match:
    """The chain checked against the pattern's constraints, then against the core's memories: a job no
    tiling fits fails last, with the least memory any tiling needs (a kind the cost model does not price
    is not tiled, so there is nothing to fit)."""
    m = check(g, core, pattern, nodes)
    if m.failure or pattern.job is None:
        return m
    try:
        check_fits(cost.layer_geometry(g, nodes[-1], pattern.job), cost.machine(target, core))
    except DoesNotFitError as e:
        return Match(core, pattern, nodes, m.passed, e.reason)
    return m


@dataclass(frozen=True)
class Verdict:
    """Whether any of the cores takes the job that starts at a node, and if not each core's failure that got
    furthest ("" for a core with no pattern starting with the node's op); whether every core declines it
    for its numbers (then no rewrite of its shape brings it to a core), and whether some core would take it
    but for its memories."""
    taken: bool
    failures: tuple[str, ...]
    why: str
    numeric: bool = False
    memory: bool = False


def verdict(g: Graph, target: Target, cores: tuple[Core, ...], name: str, readers: dict | None = None) -> Verdict:
    """readers: g.consumers(), when the caller has it."""
    readers, start = readers if readers is not None else g.consumers(), g.node(name)
    failures, why, numeric, memory = [], [], [], []
    for core in cores:
        found = [placeable(g, target, core, p, nodes) for p in core.patterns
                 if (nodes := chain(g, start, p.ops, readers)) is not None]
        if any(not m.failure for m in found):
            return Verdict(True, (), "")
        furthest = max(found, key=lambda m: m.passed) if found else None
        failures.append(furthest.failure if furthest else "")
        numeric.append(furthest is not None and furthest.numeric)
        memory.append(furthest is not None and furthest.passed == len(furthest.pattern.constraints))
        why.append(f"{core.name}: {failures[-1] or f'no pattern for op {start.op}'}")
    return Verdict(False, tuple(failures), "; ".join(why), all(numeric), any(memory))


def matches(g: Graph, target: Target, cores: tuple[Core, ...]) -> list[Match]:
    """Every chain each core's patterns find, checked; in the cores' order, then patterns', then nodes'."""
    readers, nodes_in_order = g.consumers(), g.nodes()
    found = []
    for core in cores:
        for pattern in core.patterns:
            for start in nodes_in_order:
                nodes = chain(g, start, pattern.ops, readers)
                if nodes is not None:
                    found.append(placeable(g, target, core, pattern, nodes))
    return found


def declined(node: Node, core: Core, found: list[Match], taken: dict[str, Match]) -> str:
    """Why `core` does not run `node`: the failure of its match that got furthest (the first such on a tie)."""
    mine = [m for m in found if m.core is core and node.name in m.names]
    valid = [m for m in mine if not m.failure]
    if valid:
        other = next(taken[n] for n in valid[0].names if n in taken)
        return f"{core.name}: its {valid[0].pattern.name} job would overlap the {other.pattern.name} job of " \
               f"{other.names[-1]}"
    if mine:
        return f"{core.name}: {max(mine, key=lambda m: m.passed).failure}"
    chains = [p.name for p in core.patterns if node.op in p.ops]
    if chains:
        return f"{core.name}: {node.op} only inside a {' or '.join(chains)} chain whose inner values have one reader"
    return f"{core.name}: no pattern for op {node.op}"


def modeled_cycles(g: Graph, target: Target, m: Match, tiler: str) -> int:
    """The latency of the match's job on its core, tiled as the tiling pass will (which reuses the solve)."""
    layer = cost.layer_geometry(g, m.nodes[-1], m.pattern.job)
    return tile_layer(layer, cost.machine(target, m.core), tiler).cost.cycles


def cheapest(g: Graph, target: Target, valid: list[Match], rank: dict, tiler: str) -> tuple[list[Match], dict]:
    """Per chain, the match on the core with the fewest modeled cycles, and for chains more than one core
    takes, every core's figure."""
    by_chain: dict[tuple, list[Match]] = {}
    for m in valid:
        by_chain.setdefault(m.names, []).append(m)
    chosen, figures = [], {}
    for names, ms in by_chain.items():
        if len(ms) == 1:
            chosen.append(ms[0])
            continue
        cycles = {m.core.name: modeled_cycles(g, target, m, tiler) for m in ms}
        chosen.append(min(ms, key=lambda m: (cycles[m.core.name], rank[m.core.name])))
        figures[names] = cycles
    return chosen, figures


def dispatch(g: Graph, target: Target, config: str, tiler: str = "cp-sat") -> Graph:
    g = g.copy()
    cores = target.accelerators(config)
    found = matches(g, target, cores)
    position = {n.name: i for i, n in enumerate(g.nodes())}
    rank = {core.name: i for i, core in enumerate(cores)}
    chosen, figures = cheapest(g, target, [m for m in found if not m.failure], rank, tiler)
    taken: dict[str, Match] = {}
    for m in sorted(chosen, key=lambda m: (-len(m.nodes), position[m.names[0]], rank[m.core.name])):
        if not any(name in taken for name in m.names):
            taken.update((name, m) for name in m.names)
    for n in g.nodes():
        if n.name in taken:
            m = taken[n.name]
            placement = Placement(m.core.name, pattern=m.pattern.name, anchor=m.names[-1],
                                  candidates=figures.get(m.names))
        elif cores:
            reasons = [declined(n, c, found, taken) for c in cores] + ([g.notes[n.name]] if n.name in g.notes else [])
            placement = Placement(target.host.name, reason="; ".join(reasons))
        else:
            placement = Placement(target.host.name, reason=f"configuration {config} uses no accelerator")
        g.set_node(n.name, placement=placement)
    for m in {id(m): m for m in taken.values()}.values():
        if m.pattern.lowering is not None:
            LOWERINGS[m.pattern.lowering](g, m.names, m.core)
    return verify(g, after="dispatch")
