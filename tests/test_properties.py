"""Property tests on random small int8 networks (tests/graph_strategies.py): quantized by tinyc.quantize,
compiled, run as C; checked by tests/property_checks.py against tinyc's reference interpreter (bit for
bit), onnxruntime on the same QDQ model (each layer within 1 LSB) and a second compile (same bytes).

CI runs a fixed, derandomized set of examples. TINYC_PROPERTIES=long runs 40 times as many, fresh ones
each run (hypothesis keeps failures in .hypothesis/ and replays them first); benchmarks/soak.py runs the
same generators for a given time.
"""
import os

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from graph_strategies import SCHEMES, nets
from property_checks import check, diana_configs

PROFILES = {
    "ci": settings(derandomize=True, deadline=None, database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
    "long": settings(derandomize=False, deadline=None, print_blob=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
}
PROFILE = os.environ.get("TINYC_PROPERTIES", "ci")
SCALE = {"ci": 1, "long": 40}[PROFILE]


def examples(n: int) -> settings:
    return settings(PROFILES[PROFILE], max_examples=n * SCALE)


def checked(net, targets=(("cpu", None),), sanitize=False):
    note(f"layers: {net.layers}; {net.scheme}; {'int8' if net.int8_io else 'float'} I/O")
    return check(net, targets, sanitize)


@pytest.mark.parametrize("scheme", SCHEMES)
@examples(30)
@given(data=st.data())
def test_cpu_matches_interpreter_and_onnxruntime(scheme, data):
    checked(data.draw(nets(scheme)))  # a parameter, not a draw: both quantizations get their share


@pytest.mark.parametrize("target", diana_configs(), ids="/".join)
@examples(6)
@given(net=nets())
def test_target_matches_cpu(target, net):
    checked(net, (("cpu", None), target))


@examples(4)
@given(net=nets())
def test_emitted_c_is_clean_under_sanitizers(net):
    checked(net, (("cpu", None), *diana_configs()[:1]), sanitize=True)
