"""Calibration: the samples as feeds, and every activation's range over them, from onnxruntime."""
from collections import defaultdict
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from tinyc.errors import InputError, TinycError, note


def load_calibration(path):
    """Calibration data from a file: a .npy array, a .npz of input name -> array, or a folder of .npy files,
    each one sample (the input's shape, with or without the batch of 1) or a batch (N, ...), joined in name
    order."""
    path = Path(path)
    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        raise InputError("no .npy files in the calibration folder", file=str(path))
    arrays = []
    for f in files:
        try:
            data = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else "not a .npy or .npz array file"
            raise InputError(f"cannot read calibration data: {why}", file=str(f)) from None
        if isinstance(data, np.lib.npyio.NpzFile):
            if path.is_dir():
                raise InputError("a calibration folder holds .npy files only", file=str(f))
            return dict(data)
        arrays.append(data)
    if not path.is_dir():
        return arrays[0]
    deepest = max(a.ndim for a in arrays)  # a file one axis short is one sample, the others batches
    shapes = {(a[None] if a.ndim < deepest else a).shape[1:] for a in arrays}
    if len(shapes) != 1:
        raise InputError(f"the calibration files' sample shapes differ: {sorted(shapes)}", file=str(path))
    return np.concatenate([a[None] if a.ndim < deepest else a for a in arrays])


def samples(calibration, inputs):
    """The calibration data as a list of feeds, each a dict input name -> batch-1 array."""
    if not isinstance(calibration, dict):
        if len(inputs) != 1:
            raise TinycError(f"the model has {len(inputs)} inputs: pass calibration as a dict name -> array")
        calibration = {next(iter(inputs)): calibration}
    arrays = {}
    for name, dims in inputs.items():
        if name not in calibration:
            raise TinycError(f"no calibration data for input {name!r}")
        a, one = np.asarray(calibration[name], dtype=np.float32), tuple(dims[1:])
        if a.shape[1:] not in (one, (1, *one)):
            shape = ", ".join(map(str, one))
            raise TinycError(f"calibration data for input {name!r} has shape {a.shape}; expected "
                             f"(N, {shape}) or (N, 1, {shape})")
        _check_finite(a, name)
        arrays[name] = a.reshape(len(a), 1, *one)
    counts = {len(a) for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise TinycError(f"calibration arrays hold different or zero sample counts: {sorted(counts)}")
    return [{k: a[i] for k, a in arrays.items()} for i in range(counts.pop())]


def _check_finite(a: np.ndarray, name: str) -> None:
    """NaN or infinity has no int8 range; one constant value has a range of a single point."""
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise InputError(f"calibration data for input {name!r} holds {bad} NaN or infinite value(s) of {a.size}; "
                         "give finite samples")
    if a.size and a.min() == a.max():
        note(f"calibration data for input {name!r} is {float(a.flat[0]):g} everywhere: its range, and the ranges "
             "it leads to, come from that one value (give varied samples for useful scales)")


def _check_ranges(ranges: dict) -> None:
    """A tensor NaN or infinite on the calibration data cannot be quantized; one that is 0 on every sample
    gets scale 1 (any scale holds 0 exactly): say so, since a real input will not be 0 there."""
    broken = [t for t, (lo, hi) in ranges.items() if not (np.isfinite(lo) and np.isfinite(hi))]
    if broken:
        raise InputError(f"the float model computes NaN or infinity on the calibration data (first at "
                         f"{broken[0]!r}): that tensor has no int8 range", node=broken[0])
    zero = [t for t, (lo, hi) in ranges.items() if lo == hi == 0]
    if zero:
        note(f"{len(zero)} tensor(s) are 0 on every calibration sample (first {zero[0]!r}): quantized with scale 1.0, "
             "which holds only the 0 seen; give samples that exercise them")


def calibrate(model, tensors, samples, method, percentile):
    """(min, max) of every tensor over the samples, read from the float model run by onnxruntime."""
    import onnxruntime as ort

    if method == "percentile" and not 50 < percentile <= 100:
        raise InputError(f"percentile must be above 50 and at most 100 (ranges are cut at it and 100 minus it), "
                         f"not {percentile:g}")
    inputs = {i.name for i in model.graph.input}
    probe = [t for t in dict.fromkeys(tensors) if t not in inputs]
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in probe)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one thread: the same ranges, hence the same bytes, every run
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    keep = (lambda v: v.ravel()) if method == "percentile" else (lambda v: np.array([v.min(), v.max()]))
    values = defaultdict(list)
    for feed in samples:
        for name, v in [*zip(probe, sess.run(probe, feed)), *feed.items()]:
            values[name].append(keep(v))
    lo, hi = (0, 100) if method == "minmax" else (100 - percentile, percentile)
    ranges = {t: tuple(float(np.percentile(np.concatenate(vs), p)) for p in (lo, hi)) for t, vs in values.items()}
    _check_ranges(ranges)
    return ranges
