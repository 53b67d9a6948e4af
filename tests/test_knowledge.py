"""The knowledge-injection data and pieces (ftrag/knowledge_data.py, ftrag/knowledge.py): rewordings
that hold every asked fact and copy no eval question, question sets that keep trained and untrained
facts apart, plain-text training examples, length-grouped batches and the training precision."""
import json

import pytest
import torch

from ftrag import data, evaluate, knowledge, knowledge_data, lora


def test_every_training_side_document_has_four_rewordings_that_pass_the_checks():
    written = knowledge_data.load_rewordings()
    assert sorted(written) == knowledge_data.training_side_documents()
    assert all(len(texts) == 4 and len(set(texts)) == 4 for texts in written.values())
    assert knowledge_data.problems(written) == []


def test_the_checks_catch_a_dropped_fact_and_a_copied_eval_question():
    doc = {d["id"]: d for d in data.load_documents()}["tent-ridgeline-2"]
    question = next(q for q in data.load_questions("eval") if len(q["question"].split()) >= 7)
    bad = {"tent-ridgeline-2": [doc["body"].replace("$389", "a fair price"),
                                doc["body"] + " " + question["question"],
                                doc["body"]]}
    found = knowledge_data.problems(bad)
    assert any("rewording 1: lacks the fact(s) ['$389'" in p for p in found)
    assert any("rewording 2: copies an eval question's words" in p for p in found)
    assert any("rewording 3: is the document itself" in p for p in found)
    assert knowledge_data.problems({"no-such-doc": ["text"]}) == ["no-such-doc: no such document in data/documents.jsonl"]


def test_control_questions_are_answerable_general_knowledge():
    control = knowledge_data.load_control()
    assert len(control) >= 2 * knowledge.MIN_CONTROL and len({q["id"] for q in control}) == len(control)
    assert all(evaluate.answerable(q) and q["doc_ids"] == [] for q in control)
    shop = " ".join(d["body"] for d in data.load_documents()).lower()
    assert not any("cairnfield" in q["question"].lower() for q in control) and "cairnfield" in shop


@pytest.mark.parametrize("setting", [knowledge.LAPTOP, knowledge.FULL])
def test_question_sets_keep_trained_and_untrained_facts_apart(setting):
    docs = knowledge.documents_for(setting)
    sets = knowledge.question_sets(docs)
    trained = {q["id"] for q in sets["qa"]}
    assert trained and not trained & {q["id"] for q in sets["dev"]}
    assert all(q["paraphrase_of"] in trained for q in sets["reworded"])
    assert all(q.get("paraphrase_of") not in trained for q in sets["text only"])
    assert all(q["split"] == "eval" for q in sets["reworded"] + sets["text only"])
    assert all(set(q["doc_ids"]) <= set(docs) for n in ("qa", "dev", "reworded", "text only", "update after")
               for q in sets[n])
    assert [q["id"] for q in sets["update before"]] == [q["id"] for q in sets["update after"]]
    assert all(evaluate.answerable(q) for q in sets["update before"])


def test_laptop_documents_are_among_those_the_update_changes():
    changed = {u["id"] for u in data.load_updates() if u["change"] == "replace"}
    docs = knowledge.documents_for(knowledge.LAPTOP)
    assert docs and set(docs) <= changed
    with pytest.raises(ValueError, match="'updated' or 'all'"):
        knowledge.documents_for(knowledge.Setting("x", "some", (0,), 1))


def test_a_level_needs_that_many_rewordings():
    docs = knowledge.documents_for(knowledge.LAPTOP)
    assert len(knowledge.training_texts(docs, 0)) == len(docs)
    assert len(knowledge.training_texts(docs, 3)) == 4 * len(docs)
    with pytest.raises(ValueError, match="fewer than 5 rewordings"):
        knowledge.training_texts(docs, 5)


def test_plain_text_examples_learn_every_token_and_end_the_text():
    class Tok:
        eos_token_id = 0
        def encode(self, text, add_special_tokens=False):
            return [len(w) for w in text.split()]
    f = knowledge.text_feature(Tok(), "a bb ccc")
    assert f["input_ids"] == [1, 2, 3, 0] and f["labels"] == f["input_ids"]


def test_length_grouped_batches_cover_each_pass_and_pad_less():
    lengths = [10, 200] * 16
    plain = list(lora.batches(32, 4, 8, seed=0))
    grouped = list(lora.batches(32, 4, 8, seed=0, lengths=lengths))
    assert sorted(i for b in grouped for i in b) == list(range(32))  # one pass: each example once
    width = lambda bs: sum(max(lengths[i] for i in b) * len(b) for b in bs)  # noqa: E731
    assert width(grouped) < width(plain)
    assert all(len({lengths[i] for i in b}) == 1 for b in grouped)


def test_precision_settings(monkeypatch):
    monkeypatch.setenv("FTRAG_INFERENCE_DTYPE", "float32")  # the same answers on every machine
    assert lora.autocast_dtype("auto", "cpu") is None and lora.autocast_dtype("auto", "cuda") is None
    monkeypatch.delenv("FTRAG_INFERENCE_DTYPE")
    assert lora.autocast_dtype("auto", "cpu") in (None, torch.bfloat16)
    assert lora.autocast_dtype("float32", "cpu") is None
    assert lora.autocast_dtype("bfloat16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        lora.autocast_dtype("fp8", "cpu")
