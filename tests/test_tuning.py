"""The one tuning rule, the development split and the code-only format baseline."""
import pandas as pd
import pytest

from ftrag import data, evaluate, prompts, systems, tuning


def table(correct, fmt):
    return pd.DataFrame({"answerable": [True] * len(correct), "correct": correct, "format_ok": fmt})


def test_rule_prefers_facts_then_format_then_the_first_listed():
    assert tuning.choose({"a": table([1, 0], [0, 0]), "b": table([1, 1], [0, 0])}) == "b"
    assert tuning.choose({"a": table([1, 0], [0, 0]), "b": table([0, 1], [1, 0])}) == "b"
    assert tuning.choose({"a": table([1, 0], [1, 0]), "b": table([0, 1], [0, 1])}) == "a"


def test_rule_refuses_variants_scored_on_different_questions():
    with pytest.raises(ValueError, match="same development questions"):
        tuning.choose({"a": table([1], [1]), "b": table([1, 0], [1, 0])})
    with pytest.raises(ValueError, match="at least one"):
        tuning.choose({})


def test_dev_split_is_by_document_and_disjoint_from_eval():
    fit, dev, dev_docs = data.dev_split()
    assert len(dev) >= 30 and all(evaluate.answerable(q) for q in dev)
    assert not {q["id"] for q in fit} & {q["id"] for q in dev}
    assert not any(set(q["doc_ids"]) & dev_docs for q in fit)
    assert all(q["split"] == "train" for q in fit + dev)
    assert not dev_docs & data.heldout_doc_ids()


def test_rag_variants_build_their_prompts():
    for name, (k, _, example, prefix) in prompts.RAG_VARIANTS.items():
        kw = systems.rag_variant(name)
        assert kw["k"] == k and kw["prefix"] == prefix
    with pytest.raises(ValueError, match="unknown RAG variant"):
        systems.rag_variant("nope")


@pytest.mark.parametrize("answer", [
    "The Ridgeline 2 costs $389.",
    "The Ridgeline 2 costs $389.\nHappy trails!\nSource: [wrong-doc]",
    "Sure!\n\nThe Ridgeline 2 costs $389. " + "It is light. " * 30,
])
def test_template_adds_the_house_format_and_keeps_the_facts(answer):
    out = systems.templated(answer, ["tent-ridgeline-2"], "Happy trails!")
    assert evaluate.format_ok(out) and evaluate.persona_ok(out, "Happy trails!"), out
    assert out.endswith("Source: [tent-ridgeline-2]") and "$389" in out


def test_template_cites_none_when_the_answer_declines():
    out = systems.templated("I'm sorry, our knowledge base doesn't cover that.", ["x"], "Happy trails!")
    assert out.endswith("Source: none") and evaluate.format_ok(out)


def test_with_template_scores_rag_answers_in_the_house_format():
    qs = [{"id": "q1", "kind": "unseen", "question": "How much is the Ridgeline 2?", "key_facts": ["$389"],
           "yes_no": None, "doc_ids": ["tent-ridgeline-2"], "response": "It costs $389. Happy trails!"}]
    rag_rows = pd.DataFrame([{"id": "q1", "answer": "It costs $389.", "prompt_tokens": 400,
                              "new_tokens": 9, "seconds": 0.5}])
    table = systems.with_template(rag_rows, qs, None, 1, "Happy trails!", [["tent-ridgeline-2"]])
    row = table.iloc[0]
    assert row.correct and row.format_ok and row.citation_ok and row.system == systems.TEMPLATE
    assert row.prompt_tokens == 400  # the reader's work is RAG's
    with pytest.raises(ValueError, match="no answer"):
        systems.with_template(rag_rows.assign(id="q2"), qs, None, 1, "Happy trails!", [["x"]])
