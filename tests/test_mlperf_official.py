"""The four official MLPerf Tiny int8 models (../shared/models/mlperf_tiny) compiled for the host CPU:
the emitted C against tinyc's reference interpreter (bit-exact), the TFLite interpreter's reference
kernels on each .tflite twin (bit-exact is the goal, asserted), and onnxruntime (same argmax)."""
import numpy as np
import pytest

import tinyc
from conftest import MLPERF_MODELS

N_INPUTS = 20
# Random inputs leave some outputs near a tie, where a rounding difference of a few LSB in the logits,
# amplified by softmax, flips the winner (seen once in 20 on ic: onnxruntime's top two 22 LSB apart).
# Beyond this margin the argmax must agree; within it the two runtimes may differ on one input.
DECISIVE_MARGIN = 32


@pytest.fixture(scope="module", params=sorted(MLPERF_MODELS))
def official(request, mlperf_dir):
    onnx_name, tflite_name = MLPERF_MODELS[request.param]
    cm = tinyc.compile(mlperf_dir / onnx_name, target="cpu")
    inputs = [cm.random_inputs(seed) for seed in range(N_INPUTS)]
    outputs = [cm.run(x) for x in inputs]
    return request.param, cm, inputs, outputs, mlperf_dir / onnx_name, mlperf_dir / tflite_name


def test_c_matches_reference_interpreter(official):
    _, cm, inputs, outputs, _, _ = official
    for x, y in zip(inputs, outputs):
        expected = cm.interpret(x)
        for name in expected:
            np.testing.assert_array_equal(y[name], expected[name])


def test_matches_tflite_interpreter(official):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    task, cm, inputs, outputs, _, tflite_path = official
    # the reference kernels: the optimized ones (XNNPACK) round differently
    interp = Interpreter(model_path=str(tflite_path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    worst, agree = 0, 0
    for x, y in zip(inputs, outputs):
        interp.set_tensor(i["index"], next(iter(x.values())).reshape(i["shape"]))
        interp.invoke()
        ref = interp.get_tensor(o["index"]).ravel().astype(np.int32)
        got = next(iter(y.values())).ravel().astype(np.int32)
        worst = max(worst, int(np.abs(ref - got).max()))
        agree += int(ref.argmax() == got.argmax())
    print(f"\n{task}: vs TFLite on {N_INPUTS} inputs: argmax {agree}/{N_INPUTS}, max difference {worst} LSB")
    assert agree == N_INPUTS
    assert worst == 0


def test_same_argmax_as_onnxruntime(official):
    import onnxruntime as ort
    task, cm, inputs, outputs, onnx_path, _ = official
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    agree, worst, decisive, decisive_agree = 0, 0, 0, 0
    for x, y in zip(inputs, outputs):
        ref = session.run(None, {feed_name: next(iter(x.values()))})[0].ravel().astype(np.int32)
        got = next(iter(y.values())).ravel().astype(np.int32)
        top2 = np.sort(ref)[-2:] if ref.size > 1 else np.array([0, DECISIVE_MARGIN + 1])
        same = int(ref.argmax() == got.argmax())
        agree += same
        if top2[1] - top2[0] > DECISIVE_MARGIN:
            decisive, decisive_agree = decisive + 1, decisive_agree + same
        worst = max(worst, int(np.abs(ref - got).max()))
    print(f"\n{task}: vs onnxruntime: argmax {agree}/{N_INPUTS} ({decisive_agree}/{decisive} where onnxruntime's "
          f"top two differ by more than {DECISIVE_MARGIN} LSB), max difference {worst} LSB "
          "(onnxruntime requantizes in float, TFLite in fixed point)")
    assert decisive_agree == decisive
    assert agree >= N_INPUTS - 1


def test_report(official):
    task, cm, _, _, _, _ = official
    report = cm.report
    totals = report["totals"]
    expected_macs = {"kws": 2_656_768, "vww": 7_489_664, "ic": 12_501_632, "ad": 264_192}  # shared README
    assert totals["macs"] == expected_macs[task]
    assert totals["arena_lower_bound_bytes"] <= totals["arena_bytes"]
    assert all({"name", "op", "core", "shapes", "macs", "buffers"} <= set(layer) for layer in report["layers"])
    assert totals["code_size"]["text"] > 0


def test_runs_clean_under_sanitizers(official):
    _, cm, inputs, outputs, _, _ = official
    got = cm.run(inputs[0], sanitize=True)
    for name in got:
        np.testing.assert_array_equal(got[name], outputs[0][name])
