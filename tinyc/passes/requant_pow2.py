"""requant_pow2 (opt-in, `requant="pow2"`): re-express a layer's requantization as the shift a shift-only
core applies, where that alone keeps the layer off every accelerator of the configuration.

A qconv/qmatmul computes y = clip(round(M_c * (sum_k (w_ck - w_zp_c)(x_k - x_zp) + b_c)) + y_zp) with a
real multiplier M_c per output channel. A core that requantizes by one right shift s computes
clip(round(2^-s * (sum_k w'_ck x_k + b'_c))). The layer is re-expressed as
    w'_ck = clip(round((w_ck - w_zp_c) * M_c * 2^s), -127, 127)   (int8; s: the nearest in squared error)
    b'_c  = round(b_c * M_c * 2^s - E_c) - x_zp * sum_k w'_ck + y_zp * 2^s
which is the original layer up to the rounding of w' and b': M_c moves into the weights (what a per-tensor
weight scale would have been), the zero points into the bias. E_c re-fits the bias (bias correction, Nagel
et al. 2019): what the weights' rounding errors add on average, sum_k e_ck * mean(x_k - x_zp), the mean of
the layer's input in the exact model over the seeded inputs the compiler gives (16, apart from those it
measures on; a ReLU's output has a large mean, which would otherwise multiply the errors' sum into a
steady offset). A padded conv whose input zero point is not 0 reads its padding as x_zp, so the padding
becomes an explicit pad with x_zp before the conv (exact). The rewrite is kept only where the cores' own
checks (dispatch's verdict: patterns, constraints, memories) then take the layer, as it is or after the
lowerings; every other layer stays exact. `measure` gives the cost in accuracy: per
approximated layer, fed the exact model's own tensors, and for the whole model's outputs.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops as irops
from ..ir.graph import Graph
from ..ir.interpret import interpret
from ..ir.ops import OPS
from ..ir.quant_math import INT32_MAX, INT32_MIN
from ..targets.base import Target
from .dispatch import verdict

WEIGHTED = {"qconv": 0, "qmatmul": 1}  # op -> the weight axis of its output channels
SHIFT_MULTIPLIER = 1 << 30  # with rounding "single", multiplier 2^30 and shift 1 - s is a plain shift by s


def requant_pow2(g: Graph, target: Target, config: str, inputs: list[dict], lowerings=()) -> Graph:
    """`inputs`: feeds of the graph inputs on which the exact model's layer inputs are averaged;
    `lowerings`: the passes (Graph -> Graph) that run before dispatch, which may bring a rewritten layer
    to a core that does not take it as it is (a 10x4 kernel): a rewrite is kept when the layer is taken
    as it is or after them (they keep a lowered layer's name)."""
    g = g.copy()
    cores = target.accelerators(config)
    pending = [n for n in g.nodes() if n.op in WEIGHTED and cores and not verdict(g, target, cores, n.name).taken]
    runs = [interpret(g, x, keep_all=True) for x in inputs] if pending else []
    for n in pending:
        trial = g.copy()
        if _rewrite(trial, n.name, _input_mean(n, runs)) and _taken(trial, target, cores, n.name, lowerings):
            g = trial
    return g.prune()


def _taken(g: Graph, target: Target, cores, name: str, lowerings) -> bool:
    if verdict(g, target, cores, name).taken:
        return True
    lowered = g
    for lowering in lowerings:
        lowered = lowering(lowered)
    return name in lowered.nx and verdict(lowered, target, cores, name).taken


def _shift(scaled: np.ndarray) -> int | None:
    """The s whose int8 weights clip(round(scaled * 2^s), -127, 127) are nearest scaled in squared error
    (in output units: 2^-s steps): from the largest s that clips nothing, one or two more halve the steps
    of every weight at the cost of clipping the few largest (None when the weights are all zero)."""
    top = float(np.abs(scaled).max())
    if top == 0.0:
        return None
    s = int(np.floor(np.log2(127.5 / top)))
    while np.abs(np.rint(scaled * 2.0 ** s)).max() > 127:
        s -= 1

    def error(shift):
        return float(np.sum((np.clip(np.rint(scaled * 2.0 ** shift), -127, 127) * 2.0 ** -shift - scaled) ** 2))
    return min((s, s + 1, s + 2), key=error)


def _mean_error(n, error: np.ndarray, input_mean: np.ndarray) -> np.ndarray:
    """Per output channel, what the weights' rounding errors add on average: sum_k e_ck * mean(x_k - x_zp)
    (a conv's input mean taken per input channel, the border's padding aside)."""
    if n.op == "qmatmul":
        return input_mean @ error
    out_ch, in_per_group = error.shape[:2]
    groups = n.attrs["group"]
    means = input_mean.reshape(groups, in_per_group)[np.arange(out_ch) // (out_ch // groups)]
    return (error.reshape(out_ch, in_per_group, -1).sum(axis=2) * means).sum(axis=1)


def _input_mean(n, runs: list[dict]) -> np.ndarray:
    """mean(x - x_zp) of layer n's input over the runs: per input channel (conv) or per row entry (dense)."""
    xs = np.stack([env[n.inputs[0]] for env in runs]).astype(np.float64) - int(n.attrs["x_zp"])
    if n.op == "qmatmul":
        return xs.reshape(-1, xs.shape[-1]).mean(axis=0)
    return np.moveaxis(xs, 2, 0).reshape(xs.shape[2], -1).mean(axis=1)  # [runs, N, C, ...] -> per C


def _rewrite(g: Graph, name: str, input_mean: np.ndarray) -> bool:
    """Rewrite node `name` in place as described above, the bias re-fit so that the weights' rounding adds
    nothing on average over the inputs seen (`input_mean`); False when it cannot be (left untouched)."""
    n = g.node(name)
    a, axis = dict(n.attrs), WEIGHTED[n.op]
    w_value = g.values[n.inputs[1]]
    if not w_value.is_const or a.get("multiplier") is None:
        return False
    w = w_value.data.astype(np.float64)
    channels = w.shape[axis]
    shape = [1] * w.ndim
    shape[axis] = channels
    per_channel = lambda v: np.broadcast_to(np.asarray(v, np.float64).reshape(-1), (channels,))  # noqa: E731
    real = per_channel(a["multiplier"]) * 2.0 ** (per_channel(a["shift"]) - 31)
    scaled = (w - per_channel(a["w_zp"]).reshape(shape)) * real.reshape(shape)
    s = _shift(scaled)
    if s is None:
        return False
    w_new = np.clip(np.rint(scaled * 2.0 ** s), -127, 127)
    bias = g.values[n.inputs[2]].data.astype(np.float64) if len(n.inputs) > 2 and n.inputs[2] else np.zeros(channels)
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    b_new = np.rint(bias * real * 2.0 ** s - _mean_error(n, w_new - scaled * 2.0 ** s, input_mean)) \
        - int(a["x_zp"]) * w_new.sum(axis=reduce) + int(a["out_zp"]) * 2.0 ** s
    w_new = w_new.astype(np.int8)
    if np.any(b_new > INT32_MAX) or np.any(b_new < INT32_MIN):
        return False
    x = n.inputs[0]
    if n.op == "qconv" and int(a["x_zp"]) and any(a["pads"]):
        x = _explicit_pad(g, x, a["pads"], int(a["x_zp"]), name)
        a["pads"] = tuple(0 for _ in a["pads"])
    a.update(x_zp=0, w_zp=np.zeros(channels, np.int32), out_zp=0, rounding="single",
             multiplier=np.full(channels, SHIFT_MULTIPLIER, np.int32), shift=np.full(channels, 1 - s, np.int32))
    weights = g.add_const(name + "_pow2_weights", w_new).name
    b = g.add_const(name + "_pow2_bias", b_new.astype(np.int32)).name
    g.set_node(name, inputs=[x, weights, b], attrs=a)
    g.connect()
    return True


def _explicit_pad(g: Graph, x: str, conv_pads, value: int, name: str) -> str:
    """x padded as the conv padded it, with the zero point: [0, 0, begins..., 0, 0, ends...] (NCHW)."""
    half = len(conv_pads) // 2
    pads = (0, 0, *conv_pads[:half], 0, 0, *conv_pads[half:])
    return irops.add(g, "pad", [x], name + "_pad", pads=pads, mode="constant", value=value)


def approximated(exact: Graph, approx: Graph) -> list[str]:
    """The layers requant_pow2 rewrote: their weights are new constants."""
    names = {n.name: n for n in exact.nodes() if n.op in WEIGHTED}
    return [n.name for n in approx.nodes() if n.name in names and n.inputs[1] != names[n.name].inputs[1]]


def measure(exact: Graph, approx: Graph, inputs: list[dict]) -> dict:
    """The approximation's measured error on `inputs` (feeds of the graph inputs): per approximated layer
    (fed the exact model's own input to it) the SNR in dB and max |difference| in LSB against the exact
    layer; for each graph output the SNR against the exact model, and the top-1 agreement."""
    layers = approximated(exact, approx)
    runs = [(interpret(exact, x, keep_all=True), interpret(approx, x)) for x in inputs]
    per_layer = []
    for name in layers:
        ref_node, new_node = exact.node(name), approx.node(name)
        producer = approx.producers().get(new_node.inputs[0])
        pad = approx.node(producer) if producer and producer not in exact.nx else None  # the explicit pad
        refs, gots = [], []
        for env, _ in runs:
            x = env[ref_node.inputs[0]]
            if pad is not None:
                x, = OPS["pad"].compute([x], pad.attrs)
            args = [x] + [approx.values[v].data for v in new_node.inputs[1:]]
            gots.append(OPS[new_node.op].compute(args, new_node.attrs)[0])
            refs.append(env[ref_node.outputs[0]])
        ref, got = np.stack(refs).astype(np.int64), np.stack(gots).astype(np.int64)
        zp = int(ref_node.attrs["out_zp"])
        per_layer.append({"name": name, "shift": 1 - int(np.ravel(new_node.attrs["shift"])[0]),
                          "snr_db": _snr_db(ref - zp, got - zp), "max_lsb": int(np.abs(ref - got).max())})
    outputs = []
    for o in exact.outputs:
        zp = exact.values[o].quant.zero_point if exact.values[o].quant is not None else 0
        ref = np.stack([env[o] for env, _ in runs]).astype(np.float64) - np.ravel(zp)[0]
        got = np.stack([out[o] for _, out in runs]).astype(np.float64) - np.ravel(zp)[0]
        top1 = sum(int(r.argmax() == a.argmax()) for r, a in zip(ref, got))
        worst = np.abs(ref - got).max()  # in LSB for an integer output, else in its own units
        outputs.append({"name": o, "snr_db": _snr_db(ref, got), "top1_agreement": top1,
                        "max_lsb": int(worst) if np.issubdtype(np.dtype(exact.values[o].dtype), np.integer)
                        else float(worst)})
    return {"requant": "pow2", "inputs": len(inputs), "layers": per_layer, "outputs": outputs}


def _snr_db(ref: np.ndarray, got: np.ndarray) -> float | None:
    """10 log10(signal / noise) in dB; None (JSON null) when the two are equal."""
    noise = float(np.sum((got.astype(np.float64) - ref) ** 2))
    signal = max(float(np.sum(ref.astype(np.float64) ** 2)), 1e-30)
    return None if noise == 0 else round(10 * np.log10(signal / noise), 2)

