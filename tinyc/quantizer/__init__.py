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
import onnx

from tinyc.errors import BadModelError, InputError, TinycError
from tinyc.frontend.loader import default_opset

from .calibrate import calibrate, load_calibration, samples
from .graph import LAYER_OPS, QuantGraph
from .qdq import emit
from .target import Plan, accepted, configured, plan

__all__ = ["quantize", "quantize_file", "quantize_with_plan"]


def quantize(model, calibration, per_channel=None, power_of_two=None, ternary=None, method="minmax",
             percentile=99.99, io="float", target=None, config=None) -> onnx.ModelProto:
    """Quantize a float ONNX model (path, bytes or ModelProto) to int8 QDQ.

    calibration: an array of N samples for the model's single input, shaped (N, *shape without the
    batch) or (N, 1, *shape without the batch), or a dict input name -> such an array (same N).
    target, config: quantize for what that configuration's cores accept (target.py): the weights
    (per channel or per tensor, int8 or ternary) and scales of each layer, unless given below.
    per_channel: weight scales per output channel (True, the default without a target), per tensor (False),
    or per channel for the named layers only.
    power_of_two: every scale rounded up to a power of two, symmetric activations (zero point 0); default
    False without a target.
    ternary: "auto" (every conv/dense but the first, the last and depthwise ones), node names, or "none";
    those weights become {-1, 0, 1} (TWN threshold 0.7 mean|w|, scale the mean kept magnitude, to the
    nearest power of two with power_of_two) and their input activations are clamped to 7 bits. Default:
    the target's choice, none without a target.
    method: "minmax" or "percentile" (ranges cut at `percentile` and 100 - `percentile`).
    io: "float" keeps float graph input/output; "int8" makes them int8 (read the scales off the
    DequantizeLinear after the input and the QuantizeLinear before the output).
    """
    return quantize_with_plan(model, calibration, per_channel, power_of_two, ternary, method, percentile, io,
                              target, config)[0]


def quantize_with_plan(model, calibration, per_channel=None, power_of_two=None, ternary=None, method="minmax",
                       percentile=99.99, io="float", target=None, config=None):
    """quantize(), and the Plan: what was chosen and, with a target, per layer the cores that take it."""
    if method not in ("minmax", "percentile"):
        raise InputError(f"method must be 'minmax' or 'percentile', not {method!r}")
    if io not in ("float", "int8"):
        raise InputError(f"io must be 'float' or 'int8', not {io!r}")
    proto, file = load(model)
    try:
        probe = QuantGraph(proto, True, False, None)  # also names the unnamed nodes, in proto
        layers = [n.name for n in probe.nodes if n.op_type in LAYER_OPS]
        feeds = samples(calibration, probe.inputs)
        ranges = calibrate(emit(probe), probe.activations, feeds, method, percentile)
        chosen = plan(proto, ranges, layers, target, config) if target is not None else \
            Plan(power_of_two=False, per_channel=set(layers))
        pc = chosen.per_channel if per_channel is None else per_channel
        pow2 = chosen.power_of_two if power_of_two is None else power_of_two
        tern = chosen.ternary if ternary is None else None if ternary == "none" else ternary
        g = QuantGraph(proto, pc, pow2, tern)
        if g.tern:  # ternary weights make another float network: calibrate that one
            ranges = calibrate(emit(g), g.activations, feeds, method, percentile)
        model = emit(g, g.qparams(ranges), io)
        final = Plan(pow2, {n for n in layers if g.per_channel(n)}, sorted(g.tern), host_only=chosen.host_only)
        if target is not None:
            cores = accepted(model, *configured(target, config))
            for n in layers:
                kind = "ternary" if n in g.tern else "int8"
                why = "; ".join(f"{c}: {failure}" for c, (_, failure) in cores.get(n, {}).items())
                final.layers[n] = {"weights": f"{kind} per {'channel' if g.per_channel(n) else 'tensor'}",
                                   "cores": [c for c, (_, failure) in cores.get(n, {}).items() if not failure],
                                   "why": final.host_only.get(n, why)}
        return model, final
    except TinycError as err:
        raise err.located(file=file)


def quantize_file(model_path, calibration_path, out_path, **options) -> Plan:
    """The CLI's `tinyc quantize`: calibration from a .npy array, a .npz of input name -> array, or a
    folder of .npy files (calibrate.load); options as quantize's. Returns the plan."""
    model, chosen = quantize_with_plan(model_path, load_calibration(calibration_path), **options)
    onnx.save(model, out_path)
    return chosen


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

