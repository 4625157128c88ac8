"""The IR: a networkx.DiGraph of op nodes plus a table of typed values.

A node is keyed by its unique name and carries `op` (a name in tinyc.ir.ops.OPS), `inputs` and
`outputs` (value names, "" for an omitted optional input) and `attrs` (a dict). An edge u -> v means v
reads a value u writes; edges are derived from inputs/outputs by `connect()`, so passes edit nodes and
reconnect instead of bookkeeping edges by hand.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

DTYPES = ("float32", "int8", "uint8", "int32", "int64")
# Ops that move a quantized tensor's data without changing what it means: a tensor they join has the
# quantization of its neighbour (flip_sign shifts the zero point by 128 between int8 and uint8).
QUANT_KEEPING = ("reshape", "transpose", "flip_sign")


@dataclass
class Quant:
    """Affine quantization of a tensor: real = (q - zero_point) * scale, per tensor or per `axis`."""
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @property
    def per_tensor(self) -> tuple[float, int]:
        """(scale, zero point) of a per-tensor quantization."""
        return float(np.asarray(self.scale).reshape(-1)[0]), int(np.asarray(self.zero_point).reshape(-1)[0])

    def text(self) -> str:
        """How a per-tensor quantized value reads as a real number, for people: `(q + 128) * 0.00390625`."""
        scale, zp = self.per_tensor
        return f"(q {'-' if zp >= 0 else '+'} {abs(zp)}) * {scale:.9g}"


@dataclass
class Value:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None  # set for constants
    offset: int | None = None  # byte offset in the arena, set by the memory planner

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Placement:
    """Where a node runs and, on an accelerator, how: set by dispatch, completed by tiling.

    Op semantics stay in `attrs`; a placement never changes what a node computes (a core that computes
    something else, like the analog core's ADC, gets its node rewritten into that op at dispatch)."""
    core: str  # the core that runs the node (the target's host when no accelerator takes it)
    pattern: str = ""  # the accelerator pattern (job kind) that matched; "" on the host
    anchor: str = ""  # the node whose job this node is part of, when a pattern spans several nodes
    reason: str = ""  # on the host: why each accelerator of the configuration declined it
    tile: dict | None = None  # set by tiling: the output tile sizes and the buffering
    cost: dict | None = None  # modeled by the cost model: cycles, DMA bytes, tiles
    candidates: dict | None = None  # set by dispatch when several cores take the job: core -> modeled cycles


@dataclass
class Node:
    """A read-only view of one op node, for passes that only look."""
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    placement: Placement | None = None


class Graph:
    def __init__(self, name: str = "model"):
        self.name = name
        self.nx = nx.DiGraph()
        self.values: dict[str, Value] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.source = ""  # the file the graph came from, for error messages
        self.arena_bytes = 0  # set by the memory planner
        self.arena_lower_bound = 0
        self.notes: dict[str, str] = {}  # node name -> why a lowering pass left it as it is (the report says)
        # a value -> the model's value it holds with its planes (the last two axes) swapped
        # (passes/transpose_planes), for what compares tensors with the model's (tinyc.validate)
        self.planes_swapped: dict[str, str] = {}
        # node name -> the MACs of the model's layer a lowering pass rewrote into it, which may compute more
        # (taps of weight zero): the report counts the model's, the cost model the node's
        self.model_macs: dict[str, int] = {}
        self._order = itertools.count()
        self._topo: list[str] | None = None  # nodes()'s order, kept until a node or an edge changes

    # ---- building ----
    def add_value(self, value: Value) -> Value:
        self.values[value.name] = value
        return value

    def add_const(self, name: str, data: np.ndarray, quant: Quant | None = None) -> Value:
        data = np.array(data, order="C")  # ascontiguousarray would make a 0-d array 1-d
        return self.add_value(Value(self.unique_value_name(name), tuple(data.shape), str(data.dtype),
                                    quant=quant, data=data))

    def add_node(self, name: str, op: str, inputs: list[str], outputs: list[str], **attrs) -> str:
        name = self.unique_node_name(name)
        self.nx.add_node(name, op=op, inputs=list(inputs), outputs=list(outputs), attrs=attrs,
                         order=next(self._order))
        self._topo = None
        return name

    def unique_node_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.nx:
            name, i = f"{base}_{i}", i + 1
        return name

    def unique_value_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.values:
            name, i = f"{base}_{i}", i + 1
        return name

    def remove_node(self, name: str) -> None:
        self.nx.remove_node(name)
        self._topo = None

    def connect(self) -> "Graph":
        """Rebuild every edge from the nodes' inputs and outputs (the order nodes() found stays when they
        are the edges the graph had)."""
        producer = self.producers()
        edges = {(producer[v], n) for n, data in self.nx.nodes(data=True) for v in data["inputs"] if v in producer}
        if edges == set(self.nx.edges):
            return self
        self.nx.remove_edges_from(list(self.nx.edges))
        self.nx.add_edges_from(sorted(edges, key=lambda e: (self.nx.nodes[e[1]]["order"], e)))
        self._topo = None
        return self

    # ---- looking ----
    def node(self, name: str) -> Node:
        d = self.nx.nodes[name]
        return Node(name, d["op"], d["inputs"], d["outputs"], d["attrs"], d.get("placement"))

    def nodes(self) -> list[Node]:
        """All nodes in a deterministic topological order (ties by creation order)."""
        if self._topo is None:
            order = nx.get_node_attributes(self.nx, "order")
            self._topo = list(nx.lexicographical_topological_sort(self.nx, key=order.get))
        return [self.node(n) for n in self._topo]

    def io_quant(self, name: str) -> Quant | None:
        """The per-tensor quantization of an int8/uint8 value (what firmware needs to quantize a graph
        input and read an output); when the canonicalizer left it unset (a graph input read through a
        reshape, a uint8 input through a flip to int8), that of the nearest value joined to it by
        QUANT_KEEPING ops."""
        if self.values[name].dtype not in ("int8", "uint8"):
            return None
        producers, consumers = self.producers(), self.consumers()
        seen, todo = {name}, [name]
        while todo:
            v = self.values[todo.pop(0)]
            if v.quant is not None and np.size(v.quant.scale) == 1:
                shift = {("uint8", "int8"): 128, ("int8", "uint8"): -128}.get((self.values[name].dtype, v.dtype), 0)
                return Quant(v.quant.scale, v.quant.zero_point + shift, v.quant.axis)
            nodes = [producers[v.name]] if v.name in producers else []
            for n in nodes + consumers.get(v.name, []):
                d = self.nx.nodes[n]
                if d["op"] in QUANT_KEEPING:
                    for other in d["inputs"][:1] + d["outputs"]:
                        if other not in seen:
                            seen.add(other)
                            todo.append(other)
        return None

    def producers(self) -> dict[str, str]:
        return {v: n for n, d in self.nx.nodes(data=True) for v in d["outputs"]}

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for n in self.nodes():
            for v in n.inputs:
                if v:
                    users.setdefault(v, []).append(n.name)
        return users

    def set_node(self, name: str, **fields) -> None:
        """Change a node's op, inputs, outputs, attrs or placement (call connect() after rewiring)."""
        self.nx.nodes[name].update(fields)

    def replace_uses(self, old: str, new: str) -> None:
        for _, d in self.nx.nodes(data=True):
            d["inputs"] = [new if v == old else v for v in d["inputs"]]
        self.outputs = [new if v == old else v for v in self.outputs]

    def prune(self) -> "Graph":
        """Drop nodes whose outputs nobody reads, and values nothing refers to."""
        self.connect()
        while True:
            users = self.consumers()
            dead = [n.name for n in self.nodes()
                    if not any(v in users or v in self.outputs for v in n.outputs)]
            if not dead:
                break
            self.nx.remove_nodes_from(dead)
            self._topo = None
        referenced = set(self.inputs) | set(self.outputs)
        for _, d in self.nx.nodes(data=True):
            referenced.update(d["inputs"])
            referenced.update(d["outputs"])
        self.values = {k: v for k, v in self.values.items() if k in referenced}
        return self.connect()

    def copy(self) -> "Graph":
        g = Graph(self.name)
        g.source = self.source
        g.arena_bytes, g.arena_lower_bound = self.arena_bytes, self.arena_lower_bound
        g.notes = dict(self.notes)
        g.planes_swapped = dict(self.planes_swapped)
        g.model_macs = dict(self.model_macs)
        g.nx = self.nx.copy()
        for n, d in g.nx.nodes(data=True):
            d["inputs"], d["outputs"], d["attrs"] = list(d["inputs"]), list(d["outputs"]), dict(d["attrs"])
            if d.get("placement") is not None:
                d["placement"] = replace(d["placement"])
        g.values = {k: replace(v) for k, v in self.values.items()}
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g._order = itertools.count(max(nx.get_node_attributes(self.nx, "order").values(), default=0) + 1)
        g._topo = None if self._topo is None else list(self._topo)
        return g
