"""The emitter of qmul (tinyc/ir/ops_qmul.py; kernel in tinyc_kernels_qmul.c), registered into
kernels.EMITTERS."""
from __future__ import annotations

from .kernels import EMITTERS, arg, bcast, dtypes, int32s, out, requant


def qmul(e, node):
    dtypes(e, node, ("int8",), ("int8",))
    a, b = (e.g.values[v].shape for v in node.inputs)
    zps = int32s([node.attrs["a_zp"], node.attrs["b_zp"]], "qmul zero points", -255, 255)
    return [f"tinyc_qmul_s8({bcast(e, node, out(e, node).shape, a, b)}, {requant(e, node, 1)}, {zps[0]}, {zps[1]}, "
            f"{arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])});"]


EMITTERS["qmul"] = qmul
