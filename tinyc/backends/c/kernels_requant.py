"""The emitters of tinyc/ir/ops_requant.py's ops (kernels in tinyc_kernels_requant.c), registered into
kernels.EMITTERS."""
from __future__ import annotations

import numpy as np

from .kernels import EMITTERS, arg, bcast, dtypes, global_plane, int32s, out, requant, window


def qmul(e, node):
    dtypes(e, node, ("int8",), ("int8",))
    a, b = (e.g.values[v].shape for v in node.inputs)
    zps = int32s([node.attrs["a_zp"], node.attrs["b_zp"]], "qmul zero points", -255, 255)
    return [f"tinyc_qmul_s8({bcast(e, node, out(e, node).shape, a, b)}, {requant(e, node, 1)}, {zps[0]}, {zps[1]}, "
            f"{arg(e, node, 0)}, {arg(e, node, 1)}, {e.ptr(node.outputs[0])});"]


def qavgpool_requant(e, node):
    dtypes(e, node, ("int8",))
    a = node.attrs
    c = out(e, node).shape[1]
    counts = np.asarray(a["multiplier"]).size
    x_zp, count_min = int32s([a["x_zp"], a["count_min"]], "x_zp/count_min", -255, 2 ** 24)
    plane = global_plane(e, node)
    if plane is not None:
        planes = e.g.values[node.inputs[0]].shape[0] * c
        return [f"tinyc_global_avgpool_requant_s8({arg(e, node, 0)}, {e.ptr(node.outputs[0])}, {planes}, {plane}, "
                f"{x_zp}, {requant(e, node, counts)}, {count_min});"]
    return [f"tinyc_qavgpool_requant_s8({window(e, node, a['kernel'], c, c)}, {arg(e, node, 0)}, "
            f"{e.ptr(node.outputs[0])}, {int(bool(a['count_include_pad']))}, {x_zp}, {requant(e, node, counts)}, "
            f"{count_min});"]


EMITTERS.update(qmul=qmul, qavgpool_requant=qavgpool_requant)
