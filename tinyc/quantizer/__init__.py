"""Post-training static quantization of a float ONNX model to int8 QDQ, written by tinyc itself:
graph.py reads the float model as layers, calibrate.py measures ranges with onnxruntime,
weights.py quantizes weights, qdq.py writes the QDQ graph.

The output follows the tf2onnx style of the official MLPerf Tiny models, which canonicalize reads:
- weight: int8 initializer -> DequantizeLinear, zero point 0; conv [O, I/g, kh, kw] per-channel on
  axis 0, dense [K, N] per-channel on axis 1 (a scalar scale when per_channel=False);
- bias: int32 initializer -> DequantizeLinear, scale = input scale * weight scale, zero point 0;
- layer: Conv(DQ x, DQ w[, DQ b]); dense: MatMul(DQ x, DQ w)[ -> Add(., DQ b)] (Gemm becomes that);
  Add(DQ a, DQ b); AveragePool/MaxPool/GlobalAveragePool(DQ x) keep their input's scale;
  Softmax(DQ x) -> Q at scale 2^-8, zero point -128;
- then [Relu|Clip ...] -> [Clip(-64 s or 0 after Relu, 63 s) on the 7-bit inputs of ternary layers]
  -> QuantizeLinear -> one DequantizeLinear per tensor, shared by its consumers;
- Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Identity act on the int8 tensor (Q -> Reshape -> DQ).
Float I/O: input -> Q ... DQ -> output. io="int8": the graph input and output themselves are int8.
"""
import numpy as np
import onnx

from tinyc.errors import BadModelError, TinycError
from tinyc.frontend.loader import default_opset

from .calibrate import calibrate, samples
from .graph import QuantGraph
from .qdq import emit

__all__ = ["quantize", "quantize_file"]


def quantize(model, calibration, per_channel=True, power_of_two=False, ternary=None,
             method="minmax", percentile=99.99, io="float") -> onnx.ModelProto:
    """Quantize a float ONNX model (path, bytes or ModelProto) to int8 QDQ.

    calibration: an array of N samples for the model's single input, shaped (N, *shape without the
    batch) or (N, 1, *shape without the batch), or a dict input name -> such an array (same N).
    power_of_two: every scale rounded up to a power of two, symmetric activations (zero point 0).
    ternary: None, "auto" (every conv/dense but the first, the last and depthwise ones) or node names:
    those weights become {-1, 0, 1} (TWN threshold 0.7 mean|w|, scale the mean kept magnitude, to the
    nearest power of two with power_of_two) and their input activations are clamped to 7 bits.
    method: "minmax" or "percentile" (ranges cut at `percentile` and 100 - `percentile`).
    io: "float" keeps float graph input/output; "int8" makes them int8 (read the scales off the
    DequantizeLinear after the input and the QuantizeLinear before the output).
    """
    if method not in ("minmax", "percentile"):
        raise ValueError(f"method must be 'minmax' or 'percentile', not {method!r}")
    if io not in ("float", "int8"):
        raise ValueError(f"io must be 'float' or 'int8', not {io!r}")
    proto, file = load(model)
    try:
        g = QuantGraph(proto, per_channel, power_of_two, ternary)
        ranges = calibrate(emit(g), g.activations, samples(calibration, g.inputs), method, percentile)
        return emit(g, g.qparams(ranges), io)
    except TinycError as err:
        raise err.located(file=file)


def quantize_file(model_path, calib_npy_path, out_path, power_of_two=False, percentile=None):
    """The CLI's `tinyc quantize`: calibration from a .npy array (or a .npz of input name -> array)."""
    try:
        data = np.load(calib_npy_path)
    except (OSError, ValueError) as err:
        raise TinycError(f"cannot read calibration data: {err}", file=str(calib_npy_path)) from None
    calibration = dict(data) if isinstance(data, np.lib.npyio.NpzFile) else data
    model = quantize(model_path, calibration, power_of_two=power_of_two,
                     method="minmax" if percentile is None else "percentile",
                     percentile=99.99 if percentile is None else percentile)
    onnx.save(model, out_path)


def load(model):
    file = None if isinstance(model, (onnx.ModelProto, bytes, bytearray)) else str(model)
    try:
        if isinstance(model, onnx.ModelProto):
            proto = onnx.ModelProto()
            proto.CopyFrom(model)
        else:
            proto = onnx.load(file) if file else onnx.load_from_string(bytes(model))
        onnx.checker.check_model(proto)
    except OSError as err:
        raise BadModelError(f"cannot read the model: {err.strerror or err}", file=file) from None
    except onnx.checker.ValidationError as err:
        raise BadModelError(f"fails the ONNX checker: {str(err).splitlines()[0]}", file=file) from None
    except Exception as err:  # protobuf's DecodeError and friends: whatever it was, it is not ONNX
        raise BadModelError(f"not an ONNX model ({type(err).__name__})", file=file) from None
    if default_opset(proto) < 13:  # per-channel DequantizeLinear and input-style Clip/Squeeze need opset 13
        proto = onnx.version_converter.convert_version(proto, 17)
    return proto, file

