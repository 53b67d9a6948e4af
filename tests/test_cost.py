"""The cost model on hand-computed cases (no models loaded)."""
import json
from dataclasses import replace

import numpy as np
import pytest

from ftrag import cost

RAG = cost.SystemInputs("RAG", prompt_tokens=500, new_tokens=40, seconds_per_query=0.72, training_seconds=0,
                        index_build_seconds=36, index_update_seconds=0.36, retrains_per_change=0)
FT = cost.SystemInputs("fine-tune", prompt_tokens=100, new_tokens=40, seconds_per_query=0.36,
                       training_seconds=720, index_build_seconds=0, index_update_seconds=0, retrains_per_change=1)
# $3.6/h and speed-up 1: one CPU second costs $0.001, so the numbers below are easy to check by hand.
A = cost.Assumptions(compute_usd_per_hour=3.6, speedup=1, engineer_usd_per_hour=100, hours_per_retrain=2,
                     hours_per_reindex=0.5, setup_hours={"RAG": 12, "fine-tune": 24}, amortise_months=12,
                     queries_per_month=1000, changes_per_month=2)


def test_hand_computed_parts():
    assert cost.per_query_usd(RAG, A) == pytest.approx(0.00072)
    assert cost.per_change_usd(RAG, A) == pytest.approx(0.00036 + 50)        # re-index compute + half an hour
    assert cost.per_change_usd(FT, A) == pytest.approx(0.72 + 200)           # retrain compute + two hours
    assert cost.upfront_usd(RAG, A) == pytest.approx(1200 + 0.036)
    assert cost.upfront_usd(FT, A) == pytest.approx(2400 + 0.72)
    m = cost.monthly_usd(FT, A)
    assert m["queries"] == pytest.approx(0.36) and m["changes"] == pytest.approx(401.44)
    assert m["upfront_share"] == pytest.approx(2400.72 / 12)
    assert m["total"] == pytest.approx(0.36 + 401.44 + 2400.72 / 12)


def test_api_serving_prices_tokens_not_seconds():
    api = cost.Assumptions(serving="api", usd_per_1k_prompt_tokens=0.001, usd_per_1k_new_tokens=0.002)
    assert cost.per_query_usd(RAG, api) == pytest.approx(500 * 0.001 / 1000 + 40 * 0.002 / 1000)
    assert cost.per_query_usd(RAG, api) > cost.per_query_usd(FT, api)     # the longer prompt costs more


def test_speedup_divides_compute_cost():
    fast = cost.Assumptions(compute_usd_per_hour=3.6, speedup=20)
    assert cost.per_query_usd(RAG, fast) == pytest.approx(0.00072 / 20)


@pytest.mark.parametrize("changes", [0, 2, 8])
def test_break_even_is_where_the_cost_lines_cross(changes):
    volume = cost.break_even(RAG, FT, A, changes)
    assert volume is not None and volume > 0
    totals = [cost.monthly_usd(s, A, volume, changes)["total"] for s in (RAG, FT)]
    assert totals[0] == pytest.approx(totals[1], rel=1e-9)
    below, above = volume * 0.9, volume * 1.1
    assert cost.monthly_usd(RAG, A, below, changes)["total"] < cost.monthly_usd(FT, A, below, changes)["total"]
    assert cost.monthly_usd(RAG, A, above, changes)["total"] > cost.monthly_usd(FT, A, above, changes)["total"]


def test_break_even_by_hand():
    # fixed: RAG 2 * 50.00036 + 1200.036 / 12, fine-tune 2 * 200.72 + 2400.72 / 12; slope difference 0.00036
    expected = ((2 * 200.72 + 2400.72 / 12) - (2 * 50.00036 + 1200.036 / 12)) / 0.00036
    assert cost.break_even(RAG, FT, A) == pytest.approx(expected)
    assert cost.break_even(FT, RAG, A) == pytest.approx(expected)        # symmetric


def test_more_changes_move_break_even_up():
    assert cost.break_even(RAG, FT, A, 10) > cost.break_even(RAG, FT, A, 1)


def test_no_break_even_when_lines_do_not_cross():
    same_speed = cost.SystemInputs(**{**FT.__dict__, "seconds_per_query": RAG.seconds_per_query})
    assert cost.break_even(RAG, same_speed, A) is None                  # parallel lines
    slow_ft = cost.SystemInputs(**{**FT.__dict__, "seconds_per_query": 1.0})
    assert cost.break_even(RAG, slow_ft, A) is None                     # fine-tune dearer at every volume


def test_monotonic_in_volume_and_changes():
    volumes = np.array([0, 10, 1e3, 1e6, 1e9])
    for s in (RAG, FT):
        totals = cost.monthly_usd(s, A, volumes, 2)["total"]
        assert np.all(np.diff(totals) > 0)
        by_changes = cost.monthly_usd(s, A, 1000, np.array([0, 1, 4, 30]))["total"]
        assert np.all(np.diff(by_changes) > 0)


def test_cheapest_on_a_grid_matches_break_even():
    volume = cost.break_even(RAG, FT, A, 2)
    grid = cost.cheapest([RAG, FT], A, np.array([volume / 10, volume * 10]), 2)
    assert grid.tolist() == [0, 1]
    q, c = np.meshgrid([1e3, 1e9], [0, 30])
    assert cost.cheapest([RAG, FT], A, q, c).shape == (2, 2)


@pytest.mark.parametrize("kwargs,match", [
    ({"serving": "cloud"}, "serving must be one of"),
    ({"speedup": 0}, "speedup"),
    ({"compute_usd_per_hour": -1}, "compute_usd_per_hour"),
    ({"queries_per_month": float("nan")}, "queries_per_month"),
    ({"setup_hours": {"RAG": -5}}, "setup_hours"),
])
def test_bad_assumptions_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cost.Assumptions(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="seconds_per_query must be a number >= 0"):
        cost.SystemInputs(**{**RAG.__dict__, "seconds_per_query": -0.1})
    with pytest.raises(ValueError, match="queries must be finite and >= 0"):
        cost.monthly_usd(RAG, A, queries=-5)
    with pytest.raises(ValueError, match="No setup_hours for 'hybrid'"):
        cost.upfront_usd(cost.SystemInputs(**{**RAG.__dict__, "name": "hybrid"}), A)
    with pytest.raises(ValueError, match="at least one system"):
        cost.cheapest([], A, 1, 1)


def write_results(folder, skip=()):
    """Hand-made results files holding every number cost.KEYS asks for (the value 2.0, accuracy 0.9/0.1)."""
    payloads = {}
    for system, keys in cost.KEYS.items():
        for field_name, where in keys.items():
            if where is None or where[0] in skip:
                continue
            node = payloads.setdefault(where[0], {"name": where[0]})
            *parents, leaf = where[1].split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = (0.1 if system == "fine-tune" else 0.9) if field_name == "update_accuracy" else 2.0
    if "rag" in payloads:
        payloads["rag"]["retrieval_seconds"] = 0.25
    for timing in payloads.get("timing", {}).get("systems", {}).values():   # lab 04's shape
        for kind, entry in timing.items():
            entry.update(low=1.5, high=3.0, trials=5, **({"batch": 32} if kind == "seconds_per_query" else {}))
        timing["includes_retrieval"] = False       # so that the tests see the retrieval time added
    for name, payload in payloads.items():
        (folder / f"{name}.json").write_text(json.dumps(payload))


def test_measured_inputs_read_every_number_and_say_where_from(tmp_path):
    write_results(tmp_path)
    inputs = cost.measured_inputs(tmp_path, fallback=lambda: pytest.fail("no fallback needed"))
    assert list(inputs) == list(cost.SYSTEMS)
    rag, ft, hybrid = inputs.values()
    assert rag.seconds_per_query == hybrid.seconds_per_query == 2.25     # generation + retrieval
    assert rag.latency_seconds == hybrid.latency_seconds == 2.25
    assert rag.training_seconds == 0.0 and ft.index_update_seconds == 0.0
    # both times come from lab 04's side-by-side timing; the cost model's is the amortised one
    assert rag.sources["seconds_per_query"].startswith(
        "measured: results/timing.json systems.rag.seconds_per_query.median (batch 32) on transformers "
        "+ results/rag.json")
    assert rag.sources["latency_seconds"].startswith("measured: results/timing.json systems.rag.latency_s.median")
    assert ft.seconds_per_query == ft.latency_seconds == 2.0             # no retrieval time without an index
    assert ft.sources["training_seconds"].startswith("measured: results/lora.json")
    assert rag.sources["training_seconds"] == "zero by design"
    # the fine-tuned model's retraining need comes from its measured update accuracy (0.1 < 0.5 -> retrain);
    # the retrieving systems take a change by re-indexing
    assert (rag.retrains_per_change, ft.retrains_per_change, hybrid.retrains_per_change) == (0, 1, 0)
    assert "0.10 of update questions right without retraining" in ft.sources["retrains_per_change"]
    assert "0.90 of update questions right after re-indexing" in rag.sources["retrains_per_change"]


def test_each_runtime_timed_gives_its_own_inputs(tmp_path):
    write_results(tmp_path)
    timing = json.loads((tmp_path / "timing.json").read_text())
    faster = json.loads(json.dumps(timing["systems"]))
    for entry in faster.values():
        entry["seconds_per_query"]["median"] = 0.5
    timing.update(runtime="llama.cpp", systems=faster,
                  runtimes={"llama.cpp": faster, "transformers": timing["systems"]})
    (tmp_path / "timing.json").write_text(json.dumps(timing))
    assert cost.runtimes(tmp_path) == ("llama.cpp", ["llama.cpp", "transformers"])
    production = cost.measured_inputs(tmp_path)["fine-tune"]
    slow = cost.measured_inputs(tmp_path, runtime="transformers")["fine-tune"]
    assert (production.seconds_per_query, slow.seconds_per_query) == (0.5, 2.0)
    assert production.sources["seconds_per_query"].endswith("on llama.cpp")
    assert slow.sources["seconds_per_query"].endswith("on transformers")
    with pytest.raises(ValueError, match="no times for runtime 'vllm'"):
        cost.measured_inputs(tmp_path, runtime="vllm")


def test_a_fine_tuned_model_that_gets_updates_right_needs_no_retrain(tmp_path):
    write_results(tmp_path)
    lora = json.loads((tmp_path / "lora.json").read_text())
    lora["update_accuracy"] = 0.8
    (tmp_path / "lora.json").write_text(json.dumps(lora))
    assert cost.measured_inputs(tmp_path)["fine-tune"].retrains_per_change == 0


def test_missing_results_use_the_fallback_once_and_label_it(tmp_path):
    write_results(tmp_path, skip=("hybrid",))
    calls = []

    def fallback():
        calls.append(1)
        return {"hybrid": {"prompt_tokens": 300.0, "new_tokens": 30.0, "seconds_per_query": 1.5,
                           "training_seconds": 99.0, "index_update_seconds": 0.5}, "notes": {"hybrid": "stand-in"}}

    inputs = cost.measured_inputs(tmp_path, fallback=fallback)
    assert len(calls) == 1
    assert inputs["hybrid"].training_seconds == 99.0 and inputs["hybrid"].sources["training_seconds"] == "fallback: stand-in"
    assert inputs["hybrid"].retrains_per_change == 0 and "by design" in inputs["hybrid"].sources["retrains_per_change"]
    assert inputs["RAG"].sources["prompt_tokens"].startswith("measured")


def test_missing_results_without_fallback_name_the_lab(tmp_path):
    write_results(tmp_path, skip=("lora",))
    with pytest.raises(FileNotFoundError, match="run labs/03_lora.ipynb"):
        cost.measured_inputs(tmp_path)


def test_missing_timing_names_lab_04(tmp_path):
    write_results(tmp_path, skip=("timing",))
    with pytest.raises(FileNotFoundError, match=r"run labs/04_hybrid.ipynb first"):
        cost.measured_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"No results/timing.json: run labs/04_hybrid.ipynb first"):
        cost.load_timing(tmp_path)


def test_load_timing_reads_lab_04s_shape_and_refuses_a_partial_file(tmp_path):
    write_results(tmp_path)
    systems = cost.load_timing(tmp_path)
    assert systems["rag"]["latency_s"]["median"] == 2.0 and systems["rag"]["seconds_per_query"]["batch"] == 32
    payload = json.loads((tmp_path / "timing.json").read_text())
    del payload["systems"]["lora"]["latency_s"]
    (tmp_path / "timing.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="systems.lora.latency_s.median"):
        cost.load_timing(tmp_path)


def test_timing_of_whole_systems_gets_no_retrieval_added(tmp_path):
    write_results(tmp_path)
    payload = json.loads((tmp_path / "timing.json").read_text())
    payload["systems"]["rag"]["includes_retrieval"] = True
    del payload["systems"]["hybrid"]["includes_retrieval"]        # lab 04's default: the whole system
    (tmp_path / "timing.json").write_text(json.dumps(payload))
    inputs = cost.measured_inputs(tmp_path)
    assert inputs["RAG"].seconds_per_query == inputs["hybrid"].latency_seconds == 2.0
    assert "retrieval_seconds" not in inputs["RAG"].sources["seconds_per_query"]


@pytest.mark.parametrize("usd,text", [(800.0009, "$800"), (1234.5, "$1,234"), (12.345, "$12.35"),
                                      (0.003612, "$0.0036"), (0.0841, "$0.084"), (0, "$0"), (-50, "-$50.00")])
def test_format_usd_rounds_for_a_reader(usd, text):
    assert cost.format_usd(usd) == text


@pytest.mark.parametrize("volume,text", [(1_668_034_512, "1.7 billion"), (57_342, "57,000"), (850, "850"),
                                         (1.2e6, "1.2 million"), (9.96e8, "1.0 billion"), (None, "never")])
def test_volume_text_keeps_two_significant_figures(volume, text):
    assert cost.volume_text(volume) == text
    assert cost.break_even_words(volume if volume else None).startswith("above about" if volume else "at no")


def test_break_even_table_holds_every_number_and_the_result():
    rows = {r["quantity"]: r for r in cost.break_even_table(RAG, FT, A)}
    kinds = {r["kind"] for r in rows.values()}
    assert kinds == {"measured", "assumed", "computed"}
    assert rows["engineer hours per retraining"]["value"] == "2 h"
    assert rows["engineer hours per re-index"]["value"] == "0.5 h"
    assert rows["speed-up of the serving machine over this CPU"]["value"] == "1x"
    be = [r for q, r in rows.items() if q.startswith("break-even")][0]
    assert be["number"] == pytest.approx(cost.break_even(RAG, FT, A))
    fixed = [rows[f"{s.name}: fixed cost a month (changes + build share)"]["number"] for s in (RAG, FT)]
    per_million = [rows[f"{s.name}: cost per million queries"]["number"] for s in (RAG, FT)]
    assert be["number"] == pytest.approx((fixed[1] - fixed[0]) / ((per_million[0] - per_million[1]) / 1e6))
    api = {r["quantity"] for r in cost.break_even_table(RAG, FT, cost.Assumptions(serving="api"))}
    assert "API price per 1,000 prompt tokens" in api and "speed-up of the serving machine over this CPU" not in api


def test_sensitivity_moves_the_break_even_the_way_the_formula_says():
    rows = {r["assumption"]: r for r in cost.sensitivity(RAG, FT, A, factor=2)}
    base = cost.break_even(RAG, FT, A)
    # self-hosted, the per-query saving is compute time: a twice faster machine halves it, about doubling
    # the volume (not exactly: the training run's compute in the fixed part gets cheaper too)
    assert rows["speedup"]["high"] == pytest.approx(2 * base, rel=0.01)
    assert rows["speedup"]["low"] == pytest.approx(base / 2, rel=0.01)
    assert rows["hours_per_retrain"]["high"] > base > rows["hours_per_retrain"]["low"]
    assert "usd_per_1k_prompt_tokens" not in rows                   # token prices do not matter self-hosted
    spreads = [r["spread"] for r in cost.sensitivity(RAG, FT, A)]
    assert spreads == sorted(spreads, reverse=True)
    with pytest.raises(ValueError, match="factor must be > 1"):
        cost.sensitivity(RAG, FT, A, factor=1)


def test_break_even_grid_matches_break_even_cell_by_cell():
    grid = cost.break_even_grid(RAG, FT, A, ("hours_per_retrain", [1, 2, 8]), ("speedup", [1, 10]))
    assert grid.shape == (3, 2)
    assert grid[1, 0] == pytest.approx(cost.break_even(RAG, FT, A))
    assert grid[2, 1] == pytest.approx(cost.break_even(RAG, FT, replace(A, hours_per_retrain=8, speedup=10)))
    assert np.all(np.diff(grid, axis=0) > 0) and np.all(np.diff(grid, axis=1) > 0)
    slow_ft = cost.SystemInputs(**{**FT.__dict__, "seconds_per_query": 1.0})
    assert np.isnan(cost.break_even_grid(RAG, slow_ft, A, ("speedup", [1]), ("hours_per_retrain", [2]))).all()
