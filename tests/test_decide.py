"""The decision helper on clear cases, edge cases and bad values, with hand-made evidence."""
import json

import pytest

from ftrag import cost
from ftrag.decide import CHOICES, Evidence, Reason, load_evidence, recommend

NOTES = {"update": "lab 02: update took 0.4 s", "retrain": "lab 03: retrain took 90 s",
         "format": "lab 03: format 0.95", "prompt_format": "lab 02: format 0.30 by prompt",
         "hybrid": "lab 04: hybrid facts 0.8", "citations": "lab 02: citations 0.9",
         "facts": "lab 02: facts 0.7", "latency": "labs 02-03: seconds", "cost": "lab 05: cost model"}
# Latency at batch size 1: RAG 1.0 s and fine-tune 0.4 s on the CPU; speed-up 10 -> 100 ms and 40 ms in
# production. The amortised seconds per query (a batch's time over its size) are far smaller, and must not
# be read as latency.
RAG = cost.SystemInputs("RAG", 500, 40, 0.05, 0, 30, 0.4, 0, latency_seconds=1.0)
FT = cost.SystemInputs("fine-tune", 100, 40, 0.02, 600, 0, 0, 1, latency_seconds=0.4)
HYBRID = cost.SystemInputs("hybrid", 500, 40, 0.05, 900, 30, 0.4, 0, latency_seconds=1.0)
EV = Evidence(NOTES, {"RAG": RAG, "fine-tune": FT, "hybrid": HYBRID}, cost.Assumptions(speedup=10))
NO_NUMBERS = Evidence(notes={})


def rec(knowledge="weekly", behaviour="none", expertise="some", evidence=EV, **kw):
    return recommend(knowledge, behaviour, expertise, evidence=evidence, **kw)


def test_weekly_policy_changes_without_behaviour_need_give_rag():
    r = rec("weekly", "none", "strong")
    assert r.choice == "RAG"
    assert any("re-indexing" in x.text and "update took 0.4 s" in x.evidence for x in r.reasons)


def test_strict_format_static_knowledge_ml_team_gives_fine_tune():
    r = rec("rarely", "required", "strong")
    assert r.choice == "fine-tune"
    assert any(x.evidence == NOTES["format"] for x in r.reasons)


def test_both_needs_with_a_strong_team_give_hybrid():
    r = rec("weekly", "required", "strong")
    assert r.choice == "hybrid"
    assert any(x.evidence == NOTES["hybrid"] for x in r.reasons)


def test_no_ml_expertise_with_behaviour_need_starts_with_rag_and_says_why():
    r = rec("rarely", "required", "none")
    assert r.choice == "RAG"
    assert any("no ML expertise" in x.text and "start with RAG" in x.text for x in r.reasons)
    assert "hybrid" in r.next_step


def test_some_expertise_with_both_needs_starts_with_rag_then_hybrid():
    r = rec("daily", "required", "some")
    assert r.choice == "RAG" and any("move to the hybrid" in x.text for x in r.reasons)


def test_sources_required_keep_knowledge_in_a_retriever():
    assert rec("rarely", "required", "strong", must_show_sources=True).choice == "hybrid"
    r = rec("rarely", "none", "strong", must_show_sources=True)
    assert r.choice == "RAG" and any(x.evidence == NOTES["citations"] for x in r.reasons)


def test_tight_latency_with_stable_knowledge_moves_to_fine_tune():
    # RAG ~100 ms and fine-tune ~40 ms against a 60 ms budget
    r = rec("rarely", "none", "some", latency_budget_ms=60)
    assert r.choice == "fine-tune" and any("60 ms" in x.text for x in r.reasons)
    # the same budget with weekly changes keeps RAG and says how to get faster instead
    r = rec("weekly", "none", "some", latency_budget_ms=60)
    assert r.choice == "RAG" and any("fewer or shorter chunks" in x.text for x in r.reasons)
    # a team without ML skills is not sent to fine-tune for latency
    assert rec("rarely", "none", "none", latency_budget_ms=60).choice == "RAG"


def test_latency_budget_uses_latency_at_batch_one_not_amortised_seconds():
    # amortised, RAG would be 5 ms; alone it takes 100 ms, which is what the budget is about
    r = rec("rarely", "none", "some", latency_budget_ms=60)
    assert any("latency at batch size 1" in x.text and "RAG 100 ms" in x.text for x in r.reasons)
    unmeasured = {n: cost.SystemInputs(**{**s.__dict__, "latency_seconds": None}) for n, s in EV.inputs.items()}
    r = rec("rarely", "none", "some", latency_budget_ms=60,
            evidence=Evidence(NOTES, unmeasured, EV.assumptions))
    assert r.choice == "RAG" and any("could not be checked" in x.text for x in r.reasons)


def test_generous_latency_budget_changes_nothing():
    r = rec("rarely", "none", "some", latency_budget_ms=500)
    assert r.choice == "RAG" and any("holds for RAG" in x.text for x in r.reasons)


def test_high_volume_and_cost_sensitivity_above_break_even_moves_to_fine_tune():
    volume = cost.break_even(RAG, FT, EV.assumptions, 0.25)
    assert rec("rarely", "none", "some", cost_sensitivity="high", queries_per_month=volume * 2).choice == "fine-tune"
    assert rec("rarely", "none", "some", cost_sensitivity="high", queries_per_month=volume / 2).choice == "RAG"
    assert rec("rarely", "none", "some", cost_sensitivity="low", queries_per_month=volume * 2).choice == "RAG"
    r = rec("weekly", "none", "some", cost_sensitivity="high", queries_per_month=volume * 2)
    assert r.choice == "RAG" and any("queries a month" in x.text for x in r.reasons)


def test_without_measurements_the_rules_still_answer_and_say_what_is_missing():
    r = rec("weekly", "none", "some", evidence=NO_NUMBERS, latency_budget_ms=50, queries_per_month=1e6)
    assert r.choice == "RAG"
    assert all(isinstance(x, Reason) and x.text and x.evidence for x in r.reasons)
    assert any("not measured yet" in x.evidence for x in r.reasons)


@pytest.mark.parametrize("knowledge", ["rarely", "monthly", "weekly", "daily"])
@pytest.mark.parametrize("behaviour", ["none", "helpful", "required"])
@pytest.mark.parametrize("expertise", ["none", "some", "strong"])
def test_every_combination_gives_a_choice_with_reasons(knowledge, behaviour, expertise):
    r = rec(knowledge, behaviour, expertise)
    assert r.choice in CHOICES and r.reasons and r.next_step
    if expertise == "none":
        assert r.choice == "RAG"          # no training without the skills to run it
    assert str(r).startswith(f"Recommendation: {r.choice}")


@pytest.mark.parametrize("kwargs,match", [
    ({"knowledge_changes": "hourly"}, "knowledge_changes must be one of 'rarely', 'monthly', 'weekly', 'daily'"),
    ({"behaviour_change": "yes"}, "behaviour_change must be one of 'none', 'helpful', 'required'"),
    ({"ml_expertise": "expert"}, "ml_expertise must be one of 'none', 'some', 'strong'"),
    ({"cost_sensitivity": "extreme"}, "cost_sensitivity must be one of 'low', 'medium', 'high'"),
    ({"latency_budget_ms": 0}, "latency_budget_ms must be None or a number > 0"),
    ({"latency_budget_ms": "fast"}, "latency_budget_ms"),
    ({"queries_per_month": -1}, "queries_per_month must be None or a number >= 0"),
    ({"must_show_sources": "yes"}, "must_show_sources must be one of"),
])
def test_bad_values_list_the_valid_ones(kwargs, match):
    args = {"knowledge_changes": "weekly", "behaviour_change": "none", "ml_expertise": "some", **kwargs}
    with pytest.raises(ValueError, match=match):
        recommend(**args, evidence=EV)


def test_load_evidence_quotes_the_saved_numbers_and_skips_missing_labs(tmp_path):
    (tmp_path / "rag.json").write_text(json.dumps({"summary": {"format_compliance": 0.25, "key_fact_accuracy": 0.7,
                                                               "citation_accuracy": 0.8},
                                                   "update_seconds": 0.42, "update_accuracy": 0.9}))
    (tmp_path / "lora.json").write_text(json.dumps({"summary": {"format_compliance": 0.96},
                                                    "base_summary": {"format_compliance": 0.1},
                                                    "train_seconds": 123.4, "update_accuracy": 0.05}))
    ev = load_evidence(tmp_path)
    assert ev.notes["update"].startswith("lab 02") and "0.42 s" in ev.notes["update"] and "0.90" in ev.notes["update"]
    assert "0.96 after fine-tuning vs 0.10" in ev.notes["format"] and "123 s" in ev.notes["retrain"]
    assert "vs n/a closed-book" in ev.notes["facts"]            # lab 01 has not run: its number is n/a
    assert "hybrid" not in ev.notes and ev.inputs is None        # lab 04 missing, and no fallback given
    assert "not measured yet" in ev.note("hybrid") and "not measured yet" in ev.note("latency")


def test_load_evidence_reads_latency_from_lab_04s_timing(tmp_path):
    from test_cost import write_results
    write_results(tmp_path)
    ev = load_evidence(tmp_path)
    assert ev.inputs["RAG"].latency_seconds == 2.25                # 2.0 s alone + 0.25 s retrieval
    assert "batch size 1" in ev.notes["latency"] and "RAG 2.00 s (1.50-3.00 s, 5 trials)" in ev.notes["latency"]
    assert "add 0.250 s of search" in ev.notes["latency"]
    assert "amortised over a batch of 32" in ev.notes["cost"] and "8 h per retraining" in ev.notes["cost"]


# ---- the reader's size (labs/08_readers.ipynb, results/readers.json) ----------------------------
NULL = "no measurable difference between RAG (large) and hybrid (small) (the test would detect a gap of about 0.17)"


def _readers(large_reaches_format: bool, null_only: bool = False) -> dict:
    """Hand-made lab 08 evidence. large_reaches_format: the large reader's RAG passed a non-inferiority test
    at a declared margin. null_only: the paired test found no difference, and no margin was tested."""
    def entry(params, fmt, verdict, ni):
        return {"params_m": params, "rag": {"house format": {"value": fmt}}, "format_vs_finetuned": verdict,
                "format_reached_by_prompt": bool(ni and ni["holds"]), "format_noninferior": ni}
    small = entry(135, 0.78, "hybrid (small) beats RAG (small)",
                  {"margin": 0.05, "holds": False, "verdict": "RAG (small) may be more than 0.05 worse than hybrid"})
    if null_only:
        large = entry(630, 0.95, NULL, None)
    elif large_reaches_format:
        large = entry(630, 0.97, NULL, {"margin": 0.05, "holds": True,
                                        "verdict": "RAG (large) is at most 0.05 worse than hybrid (small)"})
    else:
        large = entry(630, 0.80, "hybrid (small) beats RAG (large)",
                      {"margin": 0.05, "holds": False, "verdict": "RAG (large) may be more than 0.05 worse"})
    return {"small": small, "large": large}


def _with_readers(reaches: bool, null_only: bool = False) -> Evidence:
    return Evidence(NOTES, EV.inputs, EV.assumptions, _readers(reaches, null_only))


def test_a_reader_that_follows_the_format_by_prompt_makes_the_fine_tune_unnecessary():
    ev = _with_readers(True)
    assert rec("weekly", "required", "strong", evidence=ev).choice == "hybrid"  # size not given: as before
    r = rec("weekly", "required", "strong", evidence=ev, reader_params_m=700)
    assert r.choice == "RAG"
    assert any("large (630 M parameters)" in x.evidence and "0.97" in x.evidence for x in r.reasons)
    assert any("at most 0.05 worse" in x.text and "margin of 0.05" in x.evidence for x in r.reasons)
    assert rec("rarely", "required", "strong", evidence=ev, reader_params_m=630).choice == "RAG"


def test_a_null_format_comparison_is_not_taken_for_equality():
    # the paired test found no difference, but no margin was tested: the fine-tune keeps its place
    ev = _with_readers(False, null_only=True)
    r = rec("weekly", "required", "strong", evidence=ev, reader_params_m=700)
    assert r.choice == "hybrid"
    assert not any("as well as" in x.text and "which" in x.text for x in r.reasons)
    said = next(x for x in r.reasons if "reader of 700 M" in x.text)
    assert "not shown" in said.text and "not equality" in said.text
    assert "not tested at a declared margin" in said.evidence and NULL in said.evidence
    # an old readers.json that set format_reached_by_prompt from a null test, without a margin, is no evidence
    old = _readers(False, null_only=True)
    old["large"]["format_reached_by_prompt"] = True
    r = rec("weekly", "required", "strong", evidence=Evidence(NOTES, EV.inputs, EV.assumptions, old),
            reader_params_m=700)
    assert r.choice == "hybrid"
    # a non-inferiority test that failed is no evidence either
    r = rec("weekly", "required", "strong", evidence=_with_readers(False), reader_params_m=700)
    assert r.choice == "hybrid" and any("may be more than 0.05 worse" in x.evidence for x in r.reasons)


def test_a_small_reader_or_one_that_falls_short_keeps_the_fine_tune():
    # smaller than the large measured reader: the small one's evidence applies, and it fell short
    r = rec("weekly", "required", "strong", evidence=_with_readers(True), reader_params_m=300)
    assert r.choice == "hybrid" and any("small (135 M parameters)" in x.evidence for x in r.reasons)
    # smaller than every measured reader: no credit
    r = rec("weekly", "required", "strong", evidence=_with_readers(True), reader_params_m=50)
    assert r.choice == "hybrid" and any("smaller than every measured reader" in x.text for x in r.reasons)
    # the large reader measured short of the fine-tune's format
    assert rec("weekly", "required", "strong", evidence=_with_readers(False), reader_params_m=700).choice == "hybrid"


def test_the_reader_size_is_checked_and_reported_when_unmeasured():
    with pytest.raises(ValueError, match="reader_params_m"):
        rec(reader_params_m=-1)
    r = rec("weekly", "required", "strong", reader_params_m=500)  # EV has no reader measurements
    assert r.choice == "hybrid" and any("was not checked" in x.text for x in r.reasons)
    # no behaviour needed: the size changes nothing
    assert rec("weekly", "none", "strong", evidence=_with_readers(True), reader_params_m=700).choice == "RAG"


# ---- what a code template adds (labs/04_hybrid.ipynb, results/comparison.json) ---------------------
def _compared(verdict, diff, low, high, p):
    return {"verdict": verdict, "diff": diff, "diff_low": low, "diff_high": high, "p": p, "p_holm": p,
            "detectable": 0.17}


def test_the_template_note_quotes_lab_04s_comparison(tmp_path):
    (tmp_path / "comparison.json").write_text(json.dumps({
        "summary": {"RAG": {"house format": {"value": 0.31}}, "RAG + template": {"house format": {"value": 0.98}}},
        "paired": {"hybrid_template_format": _compared("no measurable difference between hybrid and RAG + template "
                                                       "(the test would detect a gap of about 0.09)",
                                                       -0.02, -0.06, 0.03, 0.62),
                   "hybrid_template_terms": _compared("hybrid beats RAG + template", 0.21, 0.08, 0.33, 0.0004)}}))
    ev = load_evidence(tmp_path)
    note = ev.notes["template"]
    assert note.startswith("lab 04 (results/comparison.json)") and "0.98" in note and "0.31" in note
    assert "house format: no measurable difference" in note and "-0.02 [-0.06, +0.03]" in note
    assert "p = 0.620 after Holm" in note
    assert "house terms, which code cannot add: hybrid beats RAG + template" in note and "p < 0.001" in note
    # a comparison.json without the paired tests: the numbers it lacks print as n/a
    (tmp_path / "comparison.json").write_text(json.dumps({"summary": {}}))
    assert "n/a" in load_evidence(tmp_path).notes["template"]


@pytest.mark.parametrize("knowledge,expertise", [("rarely", "strong"), ("weekly", "strong"), ("weekly", "none"),
                                                 ("daily", "some")])
def test_required_and_helpful_behaviour_cite_what_the_template_gives(knowledge, expertise):
    ev = Evidence({**NOTES, "template": "lab 04: template format 0.98"}, EV.inputs, EV.assumptions)
    for behaviour in ("required", "helpful"):
        r = rec(knowledge, behaviour, expertise, evidence=ev)
        tpl = [x for x in r.reasons if x.evidence == "lab 04: template format 0.98"]
        assert len(tpl) == 1 and "code template" in tpl[0].text and "house vocabulary" in tpl[0].text
    assert not any("template" in x.evidence for x in rec(knowledge, "none", expertise, evidence=ev).reasons)
    # the template changes no choice by itself: the behaviour asked for may be vocabulary or tone
    assert rec(knowledge, "required", expertise, evidence=ev).choice == rec(knowledge, "required", expertise).choice
