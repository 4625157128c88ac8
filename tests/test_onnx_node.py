"""ONNX's own node tests (the cases shipped in the onnx package), selected by op name, run through
TinycBackend: compiled to C, built with the host compiler, executed, compared with ONNX's expected
outputs. Cases that use what tinyc does not support (dtypes other than float32/int8/uint8, sequence
inputs, MaxPool indices) must be rejected with a clear UnsupportedError, never a crash."""
import collections
import warnings

import numpy as np
import pytest

from tinyc.errors import UnsupportedError
from tinyc.onnx_backend import TinycBackend

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


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case):
    try:
        rep = TinycBackend.prepare(case.model)
        for inputs, expected in case.data_sets:
            got = rep.run(inputs)
            assert len(got) == len(expected)
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
    except UnsupportedError as e:
        OUTCOME["unsupported"] += 1
        pytest.skip(f"unsupported: {e}")
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
