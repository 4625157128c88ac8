"""`tinyc bench mlperf-tiny --quick` end to end, in-process through the CLI: every row has every field,
the C build matches the interpreter everywhere, and each speed-up is recomputed from the rows' own
cycles (measured in the run, not constants). No timing is asserted."""
import json

import pytest

from tinyc import targets
from tinyc.cli import main

FIELDS = ("network", "source", "variant", "config", "tiler", "l1_reuse", "cycles", "ms", "cycles_label", "speedup_vs_cpu",
          "peak_l2_bytes", "code_size_bytes", "compile_s", "outputs_match", "cycles_per_core", "accelerator_layers")
LABELS = ("modeled", "counted", "counted host + modeled accelerators")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mlperf_dir):
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "mlperf-tiny", "--quick", "--json", str(out / "rows.json"), "--out", str(out / "figures"),
                 "--mlperf-dir", str(mlperf_dir)])
    return code, json.loads((out / "rows.json").read_text()), out / "figures"


def test_every_row_has_every_field_and_matches_the_interpreter(quick_run):
    code, rows, _ = quick_run
    assert code == 0
    for row in rows:
        missing = [f for f in FIELDS if f not in row]
        assert not missing, (row.get("network"), row.get("config"), missing)
        assert row["outputs_match"] is True, row
        assert row["cycles_label"] in LABELS
        assert row["peak_l2_bytes"] == row["weights_bytes"] + row["arena_bytes"]


def test_every_configuration_runs_for_zoo_and_official(quick_run):
    _, rows, _ = quick_run
    configs = set(targets.get("diana").configs)
    assert {r["config"] for r in rows if r["source"] == "zoo"} == configs
    assert {r["config"] for r in rows if r["source"] == "official"} == configs
    # tinyc's defaults beside the HTVM-style flow, in the same run
    assert {(r["tiler"], r["l1_reuse"]) for r in rows} == {("cp-sat", True), ("dory", False)}


def test_speedups_come_from_the_rows_cycles(quick_run):
    _, rows, _ = quick_run
    cpu = {(r["network"], r["source"], r["variant"], r["tiler"]): r["cycles"] for r in rows if r["config"] == "cpu"}
    for r in rows:
        baseline = cpu[r["network"], r["source"], r["variant"], r["tiler"]]
        assert r["speedup_vs_cpu"] == pytest.approx(baseline / r["cycles"])


def test_writes_the_paper_table_and_figures_data(quick_run):
    _, _, figures = quick_run
    results = json.loads((figures / "mlperf_tiny.json").read_text())
    claims = {h["claim"] for h in results["headlines"]}
    assert any("120" in c or "plain TVM" in c for c in claims) and len(results["headlines"]) == 12
    assert sum("(paper def.)" in c for c in claims) == 3  # Fig. 4, Fig. 5 digital and analog
    assert all(h["label"] for h in results["headlines"])
    assert results["traces"] and all(t["intervals"] for t in results["traces"])
    assert (figures / "mlperf_tiny_rows.csv").is_file() and (figures / "budget_sweep_modeled.csv").is_file()


def test_floors_by_hand(quick_run):
    """Each zoo int8 row's floor: the larger of its MACs over its fastest core's peak (DIANA's digital
    core: 16 x 16 = 256 MACs a cycle) and its weight bytes over the DMA's 8 bytes a cycle."""
    _, rows, figures = quick_run
    floors = json.loads((figures / "mlperf_tiny.json").read_text())["floors"]
    assert floors and all(f["variant"] == "int8" and f["config"] != "cpu" for f in floors)
    by_key = {(r["network"], r["config"]): r for r in rows
              if r["source"] == "zoo" and r["variant"] == "int8" and r["tiler"] == "cp-sat"}
    for f in floors:
        r = by_key[f["network"], f["config"]]
        assert f["floor_cycles"] == round(max(r["macs"] / 256, r["weights_bytes"] / 8))
        assert f["x_floor"] == pytest.approx(r["cycles"] / max(r["macs"] / 256, r["weights_bytes"] / 8))
        htvm = next(d["cycles"] for d in rows if d["source"] == "zoo" and d["tiler"] == "dory"
                    and (d["network"], d["variant"], d["config"]) == (f["network"], "int8", f["config"]))
        assert f["cut_pct"] == pytest.approx(100 * (1 - r["cycles"] / htvm))
