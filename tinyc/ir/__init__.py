"""tinyc's IR: Graph and Value, the op definitions, the verifier and the reference interpreter."""
from .graph import Graph, Node, Placement, Quant, Value
from .interpret import interpret
from .ops import OPS
from . import ops_int  # registers the integer ops (qconv, qmatmul, qadd, qavgpool, lut, qsoftmax)
from . import adc  # registers the ops read out by an ADC (aconv, amatmul, the analog array's job) in OPS
from . import ops_requant  # registers qmul and qavgpool_requant
from . import ops_math, ops_tensor  # register the float math and the data movement ops beyond ops.py
from .printer import dump, to_dot
from .verify import verify

__all__ = ["Graph", "Node", "Placement", "Quant", "Value", "OPS", "interpret", "verify", "dump", "to_dot"]
