"""The harness on hand-made answers, where the right score is known."""
import pytest

from ftrag import evaluate as ev
from ftrag.models import Generation

GOOD = "You can return unused gear within 45 days of delivery. Happy trails!\nSource: [returns-policy]"
Q = {"id": "q1", "kind": "original", "question": "How long for returns?", "key_facts": ["45 days"],
     "doc_ids": ["returns-policy"], "response": GOOD}
STYLE = {"signoff": "Happy trails!", "terms": {"Trail Miles": ["points"]}}
UNANSWERABLE = {"id": "q2", "kind": "unanswerable", "question": "Do you sell e-bikes?", "key_facts": [],
                "doc_ids": [], "response": "..."}


def test_normalise_folds_case_hyphens_commas_and_stops():
    assert ev.normalise("A 45-Day window, $1,299.50 total.") == "a 45 day window $1299.50 total"


@pytest.mark.parametrize("answer,facts,expected", [
    ("Returns within 45 days.", ["45 days"], True),
    ("Returns within a 45-day window.", ["45 days"], False),   # a different form is not the key fact
    ("It costs $1,299 and weighs 2.1 kg.", ["$1299", "2.1 kg"], True),
    ("It costs $1,299.", ["$1299", "2.1 kg"], False),           # every key fact is needed
    ("Within 145 days.", ["45 days"], False),                   # no match inside a longer number
])
def test_has_key_facts(answer, facts, expected):
    assert ev.has_key_facts(answer, facts) is expected


def test_has_key_facts_refuses_empty_fact_list():
    with pytest.raises(ValueError, match="abstention"):
        ev.has_key_facts("anything", [])


def test_cited_ids_in_order_without_repeats():
    assert ev.cited_ids("see [a-1] and [b] and [a-1]; [1] too") == ["a-1", "b", "1"]


@pytest.mark.parametrize("answer,ok", [
    (GOOD, True),
    ("I'm sorry, our knowledge base doesn't cover that. Happy trails!\nSource: none", True),
    ("Two ids. Happy trails!\nSource: [a], [b-2]", True),
    ("No source line at all.", False),
    ("- a bullet\nSource: [a]", False),
    ("Body.\nSource: returns-policy", False),                    # ids go in brackets
    ("Body.\nMore body.\nSource: [a]", False),                   # one body line
    (" ".join(["word"] * 61) + "\nSource: [a]", False),
])
def test_format_ok(answer, ok):
    assert ev.format_ok(answer) is ok


def test_persona_needs_signoff_and_no_ai_talk():
    assert ev.persona_ok(GOOD, "Happy trails!")
    assert not ev.persona_ok("Returns take 45 days.\nSource: [returns-policy]", "Happy trails!")
    assert not ev.persona_ok("As an AI I cannot say. Happy trails!\nSource: none", "Happy trails!")


@pytest.mark.parametrize("answer,yes", [
    ("I'm sorry, our knowledge base doesn't cover that.", True),
    ("I don't have information about e-bikes.", True),
    ("The context does not mention e-bikes.", True),
    ("Yes, we sell the Voltra e-bike for $2,000.", False),
])
def test_abstained(answer, yes):
    assert ev.abstained(answer) is yes


def test_recall_and_reciprocal_rank():
    assert ev.recall_at_k(["x", "a", "b"], ["a", "b"], 2) == 0.5
    assert ev.recall_at_k(["x", "a", "b"], ["a", "b"], 3) == 1.0
    assert ev.reciprocal_rank(["x", "y", "a"], ["a"]) == pytest.approx(1 / 3)
    assert ev.reciprocal_rank(["x"], ["a"]) == 0.0
    with pytest.raises(ValueError):
        ev.recall_at_k(["a"], [], 1)


def test_score_and_summarise_on_known_answers():
    questions = [Q, dict(Q, id="q3"), UNANSWERABLE]
    answers = [Generation(GOOD, 100, 20, 1.0),
               "Returns are accepted within 30 days.\nSource: [shipping]",         # wrong fact, wrong source
               "Yes, we sell e-bikes."]                                             # should have abstained
    table = ev.score(questions, answers, retrieved=[["returns-policy"], ["shipping", "returns-policy"], []],
                     system="hand", k=1, style=STYLE)
    s = ev.summarise(table)
    assert s["questions"] == 3
    assert s["key_fact_accuracy"] == 0.5
    assert s["citation_accuracy"] == 0.5
    assert s["format_compliance"] == pytest.approx(2 / 3)
    assert s["persona"] == pytest.approx(1 / 3)
    assert s["abstention"] == 0.0 and s["false_abstention"] == 0.0
    assert s["recall_at_1"] == 0.5 and s["mrr"] == 0.75
    assert s["prompt_tokens"] == 100.0  # only the Generation carries costs


def test_score_checks_lengths():
    with pytest.raises(ValueError, match="one answer per question"):
        ev.score([Q], [])


def test_results_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "RESULTS", tmp_path)
    table = ev.score([Q], [GOOD], system="x", style=STYLE)
    ev.save_results("unit_test", ev.summarise(table), table, note="hi")
    back = ev.load_results("unit_test")
    assert back["summary"]["key_fact_accuracy"] == 1.0 and back["note"] == "hi" and len(back["rows"]) == 1
    assert ev.load_results("missing") is None
    with pytest.raises(ValueError):
        ev.save_results("Bad Name", {})


def test_colons_and_negations_do_not_confuse_the_checks():
    assert ev.has_key_facts("We have six basecamps: Boulder and more.", ["six basecamps"])
    assert ev.has_key_facts("Open 9:00 to 18:00.", ["9:00"])
    assert not ev.abstained("No, the Cairnfield Promise does not cover misuse. Happy trails!\nSource: [promise]")
    assert ev.abstained("The context does not say whether the Hearth has a hood.")
