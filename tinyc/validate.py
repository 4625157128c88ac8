"""Validation: the emitted C against a reference runtime, layer by layer.

The C runs in its validation build (-DTINYC_DUMP: the harness writes every layer's output), the
reference with every intermediate tensor kept: onnxruntime on a copy of the compiled ONNX model with
those tensors made graph outputs, or the TFLite interpreter (ai-edge-litert, reference kernels, every
tensor preserved) on a .tflite twin.

Which tinyc tensor is which reference tensor (the mapping rule):
1. By name: tinyc keeps the ONNX names of the tensors it computes (an int8 layer's output is named
   after the QuantizeLinear it folds), and a .tflite twin converted with the .onnx (tf2onnx) names its
   tensors the same.
2. For a .tflite reference only, by order: between two tensors paired by name (and before the first,
   after the last), the remaining tinyc layer outputs and reference op outputs are paired in execution
   order where dtype and shape agree (a layer the other side lacks is skipped).
A layer output the L1 plan keeps in an accelerator's memory for the next layer never reaches main
memory, so it is not compared (listed as kept_in_l1; compile with l1_reuse=False to compare it).
Shapes agree when equal, when the reference is channels-last (NHWC) and tinyc channels-first (NCHW),
or when they differ only by dimensions of 1. Graph outputs must map (by name, else by position); a
reference whose inputs or outputs do not match the model's is refused with one line.

Against onnxruntime a layer is also measured alone, fed tinyc's values of its inputs (a uint8 tensor,
which tinyc holds as int8 codes 128 lower, flipped back to uint8); one whose inputs
stayed in L1 is measured together with the layers that made them (listed as `spans`), and is not
judged by that figure.

Per mapped tensor: the largest |difference| over every sample, in LSB for integer tensors (tinyc's
and the reference's integers) and absolute for float ones; the SNR of tinyc's values against the
reference's in dB (integers taken about the zero point); a layer "departs" when an integer tensor
differs by more than 1 LSB or a float one by more than FLOAT_TOLERANCE of the reference's range.
"""
from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np

from .backends.c.emit import dumped_values
from .errors import InputError
from .references import reference_for, same_codes
from .toolchain import run_executable

DEPARTS_LSB = 1
FLOAT_TOLERANCE = 1e-4  # of the reference tensor's largest magnitude


# ---- shapes and the mapping ----

def align(ours: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Our tensor laid out as the reference's `shape`: equal, NCHW -> NHWC, or unit dimensions apart."""
    shape = tuple(int(d) for d in shape)
    if ours.shape == shape:
        return ours
    if ours.ndim == 4 and len(shape) == 4 and ours.transpose(0, 2, 3, 1).shape == shape:
        return ours.transpose(0, 2, 3, 1)
    if [d for d in ours.shape if d != 1] == [d for d in shape if d != 1]:
        return ours.reshape(shape)
    return None


def _shape_fits(shape: tuple[int, ...], ref_shape: tuple[int, ...]) -> bool:
    return align(np.empty(shape, np.int8), ref_shape) is not None


def model_tensors(g, dumped: list[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each layer output a validation build dumps (and each graph output), in execution order: its name
    in the model and its shape there. A tensor held with its planes swapped (passes/transpose_planes) is
    its model tensor's, unless that one is dumped or is an input itself. `dumped`: dumped_values(g)."""
    listed = dumped + [v for v in g.outputs if v not in dumped]
    own = set(listed) | set(g.inputs)
    found = {}
    for v in listed:
        shape = g.values[v].shape
        if v in g.planes_swapped:
            if g.planes_swapped[v] in own:
                continue
            found[v] = (g.planes_swapped[v], shape[:-2] + shape[:-3:-1])
        else:
            found[v] = (v, shape)
    return found


def as_model(g, run: dict[str, np.ndarray], tensors: dict) -> dict[str, np.ndarray]:
    """A validation run's tensors under their model names, laid out as the model's."""
    return {name: np.swapaxes(run[v], -1, -2) if v in g.planes_swapped else run[v]
            for v, (name, _) in tensors.items()}


def mapping(cm, ref, ref_shapes: dict[str, tuple], ref_dtypes: dict[str, str],
            tensors: dict[str, tuple[str, tuple[int, ...]]]) -> list[tuple[str, str, str]]:
    """(tinyc tensor, reference tensor, how) for every tinyc layer output that maps (the module's rule),
    tinyc's by its name in the model (model_tensors)."""
    g = cm.graph
    shape_of = {name: shape for name, shape in tensors.values()}
    dtype_of = {name: g.values[v].dtype for v, (name, _) in tensors.items()}
    ours = list(shape_of)
    by_name = [(v, v, "name") for v in ours if v in ref_shapes]
    for v, r, _ in by_name:
        if not _shape_fits(shape_of[v], ref_shapes[r]) or not same_codes(dtype_of[v], ref_dtypes[r]):
            raise InputError(f"reference tensor {r!r} is {ref_dtypes[r]}{list(ref_shapes[r])}, tinyc's is "
                             f"{dtype_of[v]}{list(shape_of[v])}: the reference is not this model's",
                             file=ref.name)
    if not ref.order:
        return by_name
    pairs, named = [], {v for v, _, _ in by_name}
    anchors = sorted((ours.index(v), ref.order.index(v)) for v in named if v in ref.order)
    bounds = [(-1, -1)] + anchors + [(len(ours), len(ref.order))]
    for (ours_from, ref_from), (ours_to, ref_to) in zip(bounds, bounds[1:]):
        window = [r for r in ref.order[ref_from + 1:ref_to] if r not in named]
        for v in (v for v in ours[ours_from + 1:ours_to] if v not in named):
            hit = next((i for i, r in enumerate(window)
                        if same_codes(dtype_of[v], ref_dtypes[r]) and _shape_fits(shape_of[v], ref_shapes[r])), None)
            if hit is not None:
                pairs.append((v, window[hit], "order"))
                window = window[hit + 1:]
    found = by_name + pairs
    order = {v: i for i, v in enumerate(ours)}
    return sorted(found, key=lambda p: order[p[0]])


# ---- running ----

def read_dump(path: Path, g) -> dict[str, np.ndarray]:
    """The validation build's dump file: records of (name, bytes), as tinyc_dump_tensor wrote them."""
    data, at, tensors = path.read_bytes(), 0, {}
    while at < len(data):
        (n,) = struct.unpack_from("<I", data, at)
        name = data[at + 4:at + 4 + n].decode()
        (size,) = struct.unpack_from("<I", data, at + 4 + n)
        start = at + 8 + n
        v = g.values[name]
        tensors[name] = np.frombuffer(data[start:start + size], np.dtype(v.dtype).newbyteorder("<")) \
            .astype(v.dtype).reshape(v.shape)
        at = start + size
    return tensors


def run_dumped(cm, inputs: dict) -> dict[str, np.ndarray]:
    """Every layer's output of one run of the emitted C (the validation build)."""
    arrays = [cm.input_array(name, inputs) for name in cm.graph.inputs]
    outs = [(cm.graph.values[o].shape, cm.graph.values[o].dtype) for o in cm.graph.outputs]
    with tempfile.TemporaryDirectory(prefix="tinyc-validate-") as tmp:
        dump = Path(tmp) / "dump.bin"
        results = run_executable(cm.executable(dump=True), arrays, outs, env={"TINYC_DUMP": str(dump)})
        tensors = read_dump(dump, cm.graph)
    tensors.update(zip(cm.graph.outputs, results))
    return tensors


def _feeds(cm, ref, inputs: dict) -> list[np.ndarray]:
    """tinyc's inputs as the reference takes them (by name, else by position), checked against its inputs."""
    if len(ref.inputs) != len(cm.graph.inputs):
        raise InputError(f"the reference has {len(ref.inputs)} inputs, the model {len(cm.graph.inputs)}: "
                         "the reference is not this model's", file=ref.name)
    feeds = []
    names = [n for n, _, _ in ref.inputs]
    for position, ours in enumerate(cm.graph.inputs):
        name, shape, dtype = ref.inputs[names.index(ours)] if ours in names else ref.inputs[position]
        x = cm.input_array(ours, inputs)
        if len(shape) == x.ndim:  # a dynamic dimension (-1) takes the size tinyc bound it to
            shape = tuple(d if d >= 0 else n for d, n in zip(shape, x.shape))
        fed = align(x, shape)
        if fed is None or (dtype and dtype != x.dtype.name):
            raise InputError(f"reference input {name!r} is {dtype}{list(shape)}, the model's {ours!r} is "
                             f"{x.dtype.name}{list(x.shape)}: the reference is not this model's", file=ref.name)
        feeds.append(np.ascontiguousarray(fed))
    return feeds


def _output_pairs(cm, ref) -> list[tuple[str, str]]:
    names = [n for n, _, _ in ref.outputs]
    if len(names) != len(cm.graph.outputs):
        raise InputError(f"the reference has {len(names)} outputs, the model {len(cm.graph.outputs)}: "
                         "the reference is not this model's", file=ref.name)
    return [(ours, ours if ours in names else names[i]) for i, ours in enumerate(cm.graph.outputs)]


def _samples(inputs) -> list[dict]:
    samples = [inputs] if isinstance(inputs, dict) else list(inputs)
    if not samples or not all(isinstance(s, dict) for s in samples):
        raise InputError("inputs must be a dict input name -> array, or a non-empty list of such dicts")
    return samples


def validate(cm, inputs, reference="onnxruntime") -> dict:
    """The emitted C against `reference` on every sample of `inputs` (the module's rule and measures):
    {"reference", "samples", "layers": [...], "output": [...], "first_departure": tensor or None}. Each
    layer: max_diff and snr_db end to end (the reference fed its own earlier layers); against onnxruntime
    also layer_max_diff and layer_snr_db, the layer alone on tinyc's inputs to it, which decide whether
    it departs (else the end-to-end figures do)."""
    samples = _samples(inputs)
    g = cm.graph
    dumped = dumped_values(g)
    tensors = model_tensors(g, dumped)
    graph_name = {name: v for v, (name, _) in tensors.items()}
    wanted = {name: (shape, g.values[v].dtype) for v, (name, shape) in tensors.items()}
    ref = reference_for(cm, reference, wanted)
    ours_runs, ref_runs, alone_runs = [], [], []
    outputs = _output_pairs(cm, ref)
    for x in samples:
        feeds = _feeds(cm, ref, x)
        ours_runs.append(as_model(g, run_dumped(cm, x), tensors))
        try:
            chained, alone = ref.run(feeds, ours_runs[-1])
            ref_runs.append(chained)
            alone_runs.append(alone)
        except Exception as e:
            raise InputError(f"the reference fails on the inputs: {' '.join(str(e).split())[:200]}",
                             file=ref.name) from None
    ref_shapes = {k: tuple(v.shape) for k, v in ref_runs[0].items()}
    ref_dtypes = {k: v.dtype.name for k, v in ref_runs[0].items()}
    pairs = mapping(cm, ref, ref_shapes, ref_dtypes, tensors)
    output_of = dict(outputs)
    paired = {v for v, _, _ in pairs}
    pairs += [(ours, r, "output") for ours, r in outputs if ours not in paired]
    producer = g.producers()
    shape_of = dict(tensors.values())
    fed = set(dumped) | set(g.inputs)  # what tinyc's run gives the reference
    layers = []
    for v, r, how in pairs:
        if r not in ref_shapes:
            raise InputError(f"the reference computes no tensor {r!r} for the model's output {v!r}", file=ref.name)
        value = g.values[graph_name[v]]
        if not _shape_fits(shape_of[v], ref_shapes[r]) or not same_codes(value.dtype, ref_dtypes[r]):
            raise InputError(f"reference output {r!r} is {ref_dtypes[r]}{list(ref_shapes[r])}, the model's {v!r} is "
                             f"{value.dtype}{list(shape_of[v])}: the reference is not this model's",
                             file=ref.name)
        node = g.node(producer[graph_name[v]])
        entry = {"tensor": v, "reference_tensor": r, "mapped_by": how, "layer": node.name, "op": node.op,
                 "core": node.placement.core if node.placement else cm.target.host.name,
                 "dtype": value.dtype, "shape": list(shape_of[v]), "output": v in output_of}
        ours = [run[v] for run in ours_runs]
        entry.update(_compare(value, ours, [run[r] for run in ref_runs], ref_shapes[r]))
        if alone_runs[0] is not None:
            alone = _compare(value, ours, [run[r] for run in alone_runs], ref_shapes[r])
            spans = _kept_before(g, node, fed)
            # a layer fed by layers kept in L1 is measured with them: not alone, so not judged
            entry.update(layer_max_diff=alone["max_diff"], layer_snr_db=alone["snr_db"], spans=spans,
                         departs=alone["departs"] and not spans)
        layers.append(entry)
    first = next((layer for layer in layers if layer["departs"]), None)
    in_l1 = [g.planes_swapped.get(v, v) for n in g.nodes() for v in n.outputs
             if not g.values[v].is_const and v not in fed]
    return {"reference": ref.name, "samples": len(samples), "layers": layers,
            "output": [layer for layer in layers if layer["output"]],
            "first_departure": first["tensor"] if first else None,
            "first_departure_layer": first["layer"] if first else None, "kept_in_l1": in_l1}


def _kept_before(g, node, fed: set) -> list[str]:
    """The layers between `node` and the tensors tinyc's run gave the reference: those whose outputs stayed
    in an accelerator's L1, which the reference computed itself on the way to `node`."""
    producer, spans, todo = g.producers(), [], [v for v in node.inputs if v and not g.values[v].is_const]
    while todo:
        v = todo.pop()
        if v in fed or v not in producer or producer[v] in spans:
            continue
        spans.append(producer[v])
        todo += [u for u in g.node(producer[v]).inputs if u and not g.values[u].is_const]
    return sorted(spans, key=[n.name for n in g.nodes()].index)


def _compare(v, ours: list[np.ndarray], refs: list[np.ndarray], ref_shape) -> dict:
    got = np.concatenate([align(o, ref_shape).astype(np.float64).ravel() for o in ours])
    want = np.concatenate([r.astype(np.float64).ravel() for r in refs])
    integer = v.dtype != "float32"
    if integer and {v.dtype, refs[0].dtype.name} == {"int8", "uint8"}:
        want = want + (128 if v.dtype == "uint8" else -128)  # the same number as tinyc's dtype holds it
    centre = 0.0
    if integer and v.quant is not None and np.size(v.quant.zero_point) == 1:
        centre = float(np.asarray(v.quant.zero_point).reshape(-1)[0])
    diff = np.abs(got - want)
    worst = float(diff.max()) if diff.size else 0.0
    noise = float(np.sum(diff ** 2))
    signal = float(np.sum((want - centre) ** 2))
    snr = None if noise == 0 else (float(10 * np.log10(signal / noise)) if signal > 0 else float("-inf"))
    limit = DEPARTS_LSB if integer else FLOAT_TOLERANCE * max(float(np.abs(want).max()) if want.size else 0.0, 1e-30)
    return {"max_diff": int(worst) if integer else worst, "unit": "LSB" if integer else "abs",
            "snr_db": snr, "departs": bool(worst > limit)}


def format_validation(result: dict) -> str:
    """The validation as a table: one row per mapped tensor, then the first departure and the output."""
    rows = [f"validation against {result['reference']} on {result['samples']} input(s); rows: tinyc tensors "
            f"that map to a reference tensor (by name, else by order)",
            f"{'layer':<40} {'op':<10} {'core':<8} {'tensor':<16} {'max |diff|':>10} {'SNR dB':>7} "
            f"{'alone':>10} {'SNR dB':>7} map"]
    for layer in result["layers"]:
        shape = f"{layer['dtype']}[{'x'.join(map(str, layer['shape']))}]"
        alone = (_diff_text(layer["layer_max_diff"], layer["unit"]), _snr_text(layer["layer_snr_db"])) \
            if "layer_max_diff" in layer else ("", "")
        mark = " <- departs" if layer["tensor"] == result["first_departure"] else \
            f" (alone with {len(layer['spans'])} L1-kept layer(s) before it: not judged)" if layer.get("spans") else ""
        rows.append(f"{layer['layer'][-40:]:<40} {layer['op']:<10} {layer['core']:<8} {shape:<16} "
                    f"{_diff_text(layer['max_diff'], layer['unit']):>10} {_snr_text(layer['snr_db']):>7} "
                    f"{alone[0]:>10} {alone[1]:>7} {layer['mapped_by']}{mark}")
    if any("layer_max_diff" in layer for layer in result["layers"]):
        rows.append("max |diff| and SNR end to end; alone: the layer fed tinyc's inputs to it (which decides departing)")
    first = result["first_departure"]
    if result["kept_in_l1"]:
        rows.append(f"not compared: {len(result['kept_in_l1'])} layer output(s) that stay in an accelerator's L1 "
                    "for the next layer and never reach main memory (l1_reuse=False, `--no-l1-reuse`, to see them)")
    rows.append(f"first layer beyond {DEPARTS_LSB} LSB: {result['first_departure_layer']} (tensor {first})" if first else
                f"no layer departs by more than {DEPARTS_LSB} LSB (float: {FLOAT_TOLERANCE:g} of the range)")
    for out in result["output"]:
        rows.append(f"output {out['tensor']}: max |diff| {_diff_text(out['max_diff'], out['unit'])}, "
                    f"SNR {_snr_text(out['snr_db'])} dB")
    return "\n".join(rows)


def _diff_text(diff, unit: str) -> str:
    return f"{diff} LSB" if unit == "LSB" else f"{diff:.3g}"


def _snr_text(snr: float | None) -> str:
    return "inf" if snr is None else f"{snr:.1f}"
