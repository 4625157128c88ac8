"""ONNX's own node tests (the cases shipped in the onnx package), selected by op name, run through
TinycBackend: compiled to C, built with the host compiler, executed, compared with ONNX's expected
outputs. Cases that use what tinyc does not support (dtypes other than float32/int8/uint8, sequence
inputs, MaxPool indices) must be rejected with a clear UnsupportedError, never a crash. Every case is
compiled first and the models are built into executables many at a time (the `results` fixture)."""
import collections
import warnings

import numpy as np
import pytest

from tinyc.errors import UnsupportedError
from tinyc.onnx_backend import TinycBackend

from batch_run import run_batch

OPS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "Sigmoid", "AveragePool", "MaxPool",
       "GlobalAveragePool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Pad", "Softmax",
       "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
       "Identity", "Constant", "Shape",
       # issue 13's op coverage
       "BatchNormalization", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceSumSquare", "ReduceL1",
       "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "Resize", "Slice", "Split", "Gather", "Cast", "Expand",
       "Tile", "Sub", "Div", "Max", "Min", "Pow", "Sqrt", "Exp", "Log", "Tanh", "Erf", "Neg", "Abs", "Reciprocal",
       "Softplus", "Selu", "LeakyRelu", "PRelu", "Elu", "HardSigmoid", "HardSwish", "GlobalMaxPool", "ArgMax",
       "ArgMin", "LogSoftmax", "LayerNormalization", "InstanceNormalization", "ConvTranspose", "DepthToSpace",
       "SpaceToDepth", "LSTM", "GRU", "RNN"}


def _cases():
    from onnx.backend.test.case import node
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        every = node.collect_testcases(None)
    return [c for c in every if {n.op_type for n in c.model.graph.node} <= OPS]


CASES = _cases()
OUTCOME = collections.Counter()
BATCH = 64  # models per C build


def _prepared(case):
    """Compile a case for each of its data sets: [(CompiledModel, run-time inputs, expected)], or the error."""
    try:
        rep = TinycBackend.prepare(case.model)
        return [(*rep.compiled_for(inputs), expected) for inputs, expected in case.data_sets]
    except UnsupportedError as e:
        return e
    except BaseException as e:  # noqa: BLE001 - reported by the case's own test
        return e


@pytest.fixture(scope="module")
def results():
    """Every case compiled first, then run many models per executable (tests/batch_run.py): the C
    compiler's start-up and the link are paid once per batch. A batch that fails to build or run is run
    model by model, so a failure is always its own case's."""
    prepared = {c.name: _prepared(c) for c in CASES}
    runs = [(name, k, cm, feeds) for name, p in prepared.items() if isinstance(p, list)
            for k, (cm, feeds, _) in enumerate(p)]
    got = {}
    for start in range(0, len(runs), BATCH):
        chunk = runs[start:start + BATCH]
        try:
            outputs = run_batch([(cm, feeds) for _, _, cm, feeds in chunk])
        except Exception:  # noqa: BLE001
            outputs = []
            for _, _, cm, feeds in chunk:
                try:
                    outputs.append(cm.run(feeds))
                except Exception as e:  # noqa: BLE001 - reported by the case's own test
                    outputs.append(e)
        for (name, k, _, _), out in zip(chunk, outputs):
            got[(name, k)] = out
    return prepared, got


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case, results):
    prepared, got = results
    p = prepared[case.name]
    if isinstance(p, UnsupportedError):
        OUTCOME["unsupported"] += 1
        pytest.skip(f"unsupported: {p}")
    try:
        if isinstance(p, BaseException):
            raise p
        for k, (_, _, expected) in enumerate(p):
            outputs = got[(case.name, k)]
            if isinstance(outputs, BaseException):
                raise outputs
            assert len(outputs) == len(expected)
            for g, e in zip(outputs.values(), expected):
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
    except BaseException:
        OUTCOME["failed"] += 1
        raise
    OUTCOME["passed"] += 1


def test_node_summary():
    """Runs last in this file: prints the counts and requires every op to have passing cases."""
    ran = OUTCOME["passed"] + OUTCOME["failed"]
    print(f"\nONNX node tests: {len(CASES)} selected by op name, {ran} ran, {OUTCOME['passed']} passed, "
          f"{OUTCOME['failed']} failed, {OUTCOME['unsupported']} rejected as unsupported")
    if ran == 0:
        pytest.skip("run together with test_node")
    assert OUTCOME["failed"] == 0
