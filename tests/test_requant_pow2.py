"""requant="pow2" on the four official MLPerf Tiny int8 models: every layer's requantization re-expressed as
DIANA's shift where that brings it to an accelerator; the output against the TFLite interpreter's reference
kernels (the oracle), the share of MACs on the accelerators, and the report's measured error."""
import numpy as np
import pytest
from conftest import MLPERF_MODELS, snr_db

import tinyc

N_INPUTS = 20
MIN_ACCELERATED = 0.80  # measured (mixed): 1.00 on all four (kws: its 10x4 first conv lowered after the rewrite)
MIN_SNR_DB = 15.0  # measured on 20 random inputs: see the README's "Approximate requantization" figures


@pytest.fixture(scope="module", params=sorted(MLPERF_MODELS))
def approximated(request, mlperf_dir):
    onnx_name, tflite_name = MLPERF_MODELS[request.param]
    with pytest.warns(tinyc.TinycNote, match="requant pow2 approximated"):  # never silent
        cm = tinyc.compile(mlperf_dir / onnx_name, target="diana", config="mixed", requant="pow2")
    return request.param, cm, mlperf_dir / tflite_name


def test_macs_on_accelerators_and_report(approximated):
    task, cm, _ = approximated
    layers = cm.report["layers"]
    share = sum(x["macs"] for x in layers if x["core"] != "host") / sum(x["macs"] for x in layers)
    a = cm.report["approximation"]
    print(f"\n{task}: {share:.1%} of MACs on accelerators, {len(a['layers'])} layers approximated, output SNR "
          f"{a['outputs'][0]['snr_db']} dB, top-1 {a['outputs'][0]['top1_agreement']}/{a['inputs']} vs exact")
    assert share >= MIN_ACCELERATED
    approximated_layers = {x["name"] for x in layers if "approximation" in x}
    assert approximated_layers == {x["name"] for x in a["layers"]} and approximated_layers
    for x in layers:  # only an approximated layer reaches an accelerator: the official models' scales are not pow2
        if x["op"] in ("qconv", "aconv", "qmatmul") and x["core"] != "host":
            assert x["name"] in approximated_layers
    assert all(x["max_lsb"] >= 0 and (x["snr_db"] is None or x["snr_db"] > 10) for x in a["layers"])


def test_output_against_tflite(approximated):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    task, cm, tflite_path = approximated
    interp = Interpreter(model_path=str(tflite_path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    zp = o["quantization"][1]
    refs, gots = [], []
    for seed in range(N_INPUTS):
        x = cm.random_inputs(seed)
        interp.set_tensor(i["index"], next(iter(x.values())).reshape(i["shape"]))
        interp.invoke()
        refs.append(interp.get_tensor(o["index"]).ravel().astype(np.int32) - zp)
        gots.append(next(iter(cm.interpret(x).values())).ravel().astype(np.int32) - zp)
    got_c = next(iter(cm.run(cm.random_inputs(0)).values())).ravel().astype(np.int32) - zp  # C = interpreter
    np.testing.assert_array_equal(got_c, gots[0])
    ref, got = np.stack(refs), np.stack(gots)
    snr = snr_db(ref, got)
    agree = int(sum(r.argmax() == g.argmax() for r, g in zip(ref, got)))
    print(f"\n{task}: requant pow2 vs TFLite on {N_INPUTS} inputs: SNR {snr:.1f} dB, top-1 {agree}/{N_INPUTS}")
    assert snr >= MIN_SNR_DB


def test_cli_requant_flag_is_never_silent(mlperf_dir, capsys):
    from tinyc.cli import main
    model = str(mlperf_dir / MLPERF_MODELS["ad"][0])
    assert main(["report", model, "--target", "diana", "--config", "mixed", "--json"]) == 0
    exact = capsys.readouterr()
    assert "approximation" not in exact.out and "requant" not in exact.err  # the default stays exact
    assert main(["report", model, "--target", "diana", "--config", "mixed", "--requant", "pow2"]) == 0
    out, err = capsys.readouterr()
    assert f"tinyc: note: {model}: requant pow2 approximated 10 layers" in err and "top-1 agreement" in err
    assert "requant pow2: 10 layers approximated" in out and "output Identity: SNR" in out
