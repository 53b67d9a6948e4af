"""Schema and consistency tests for the Cairnfield data set (data/*.jsonl, data/house_style.json).

The files are read with plain ``json`` so that these tests do not depend on the package loader.
What is checked: ids, required fields and types, that every gold document exists, that every key
fact is in a gold document (normalised substring match), that every gold response follows the
house style, the minimum counts, the links between questions, and that book/datasheet.md states
the true counts.
"""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
ID_RE = re.compile(r"^[a-z0-9-]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def norm(text: str) -> str:
    """Normalise for key-fact matching: lowercase, hyphens -> spaces, commas in numbers removed,
    whitespace collapsed."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def load_jsonl(name):
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


DOCS = load_jsonl("documents.jsonl")
QUESTIONS = load_jsonl("questions.jsonl")
UPDATES = load_jsonl("updates.jsonl")
UPDATE_QUESTIONS = load_jsonl("update_questions.jsonl")
STYLE = json.loads((DATA / "house_style.json").read_text(encoding="utf-8"))

DOC_BY_ID = {d["id"]: d for d in DOCS}
UPDATED_BY_ID = {**DOC_BY_ID, **{u["id"]: u for u in UPDATES}}  # the knowledge base after the update
Q_BY_ID = {q["id"]: q for q in QUESTIONS}
TRAIN_IDS = {q["id"] for q in QUESTIONS if q["split"] == "train"}
ANSWERABLE = [q for q in QUESTIONS if q["kind"] != "unanswerable"]

YES_NO_START = re.compile(r"^(do|does|did|is|are|was|were|can|could|will|would|should|has|have|may)\b", re.I)
GREETING = re.compile(r"^(hi|hello|hey|greetings|dear)\b", re.I)
HEDGES = ("as an ai", "i think", "i believe", "probably", "i'm not sure", "as a language model")


# ---------------------------------------------------------------- documents and updates

DOC_FIELDS = {"id": str, "title": str, "updated": str, "category": str, "body": str}


@pytest.mark.parametrize("rows,extra", [(DOCS, {}), (UPDATES, {"change": str})], ids=["documents", "updates"])
def test_document_schema(rows, extra):
    ids = [d["id"] for d in rows]
    assert len(ids) == len(set(ids)), "duplicate document ids"
    for d in rows:
        fields = {**DOC_FIELDS, **extra}
        assert set(d) == set(fields), d["id"]
        for k, t in fields.items():
            assert isinstance(d[k], t) and d[k], (d["id"], k)
        assert ID_RE.match(d["id"]), d["id"]
        assert DATE_RE.match(d["updated"]), d["id"]
        paragraphs = d["body"].split("\n\n")
        assert 2 <= len(paragraphs) <= 4, (d["id"], len(paragraphs))
        assert all(p.strip() == p and p and "\n" not in p for p in paragraphs), d["id"]
        assert 120 <= len(d["body"].split()) <= 280, (d["id"], len(d["body"].split()))


def test_document_counts():
    assert len(DOCS) >= 44
    assert len(UPDATES) >= 14


def test_updates_replace_or_add():
    changes = Counter(u["change"] for u in UPDATES)
    assert set(changes) <= {"replace", "add"}
    assert changes["replace"] >= 10 and changes["add"] >= 4
    for u in UPDATES:
        if u["change"] == "replace":
            assert u["id"] in DOC_BY_ID, u["id"]
            assert u["body"] != DOC_BY_ID[u["id"]]["body"], u["id"]
            assert u["updated"] > DOC_BY_ID[u["id"]]["updated"], u["id"]
        else:
            assert u["id"] not in DOC_BY_ID, u["id"]
        assert u["updated"] >= "2026-10-01", u["id"]


# ---------------------------------------------------------------- house style

def check_response(response, key_facts, doc_ids, question=""):
    """Assert that a gold response follows the house style. Returns nothing; raises on failure."""
    lines = response.split("\n")
    assert len(lines) == 2, response
    text, source = lines
    expected_source = "Source: " + (", ".join(f"[{d}]" for d in doc_ids) if doc_ids else "none")
    assert source == expected_source, (source, expected_source)
    assert text.endswith(" " + STYLE["signoff"]), text
    if not doc_ids:
        assert text == f"{STYLE['abstain_answer']} {STYLE['signoff']}", text
        return
    assert len(text.split()) <= 50, text
    sentences = re.findall(r"[.!?](?=\s|$)", text)
    assert 1 <= len(sentences) <= 3, text
    assert not re.search(r"[*#`\[\]_]|^\s*[-•]", text), text  # no markdown, no bullet
    assert not re.search(r"(?:^|\s)[1-9][.)]\s.*\s[1-9][.)]\s", text), text  # no numbered list
    assert not GREETING.match(text), text
    assert not any(h in text.lower() for h in HEDGES), text
    # an answer must not read like an abstention
    assert not re.search(r"knowledge base|do(es)?n'?t cover|does not cover", text, re.I), text
    for fact in key_facts:
        assert norm(fact) in norm(text), (fact, text)
    for house_term, generic_words in STYLE["terms"].items():
        for word in generic_words:
            assert not re.search(rf"\b{re.escape(norm(word))}s?\b", norm(text)), (word, house_term, text)
    if YES_NO_START.match(question):
        assert re.match(r"^(Yes|No)\b", text), (question, text)


def test_house_style_file():
    for k in ("persona", "signoff", "source_format", "abstain_answer", "terms", "rules"):
        assert STYLE[k], k
    assert STYLE["signoff"] == "Happy trails!"
    assert STYLE["source_format"] == "Source: [doc-id]"
    assert all(isinstance(v, list) and v for v in STYLE["terms"].values())
    assert all(isinstance(r, str) for r in STYLE["rules"])


def test_help_desk_number_in_kb():
    phone = re.search(r"\d-\d{3}-\d{3}-\d{4}", STYLE["abstain_answer"]).group()
    assert phone in DOC_BY_ID["contact-us"]["body"]


# ---------------------------------------------------------------- questions

Q_FIELDS = {"id": str, "split": str, "kind": str, "question": str, "answer": str,
            "key_facts": list, "doc_ids": list, "paraphrase_of": (str, type(None)), "response": str}


def test_question_schema():
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids)), "duplicate question ids"
    assert len({q["question"] for q in QUESTIONS}) == len(QUESTIONS), "duplicate question texts"
    for q in QUESTIONS:
        assert set(q) == set(Q_FIELDS), q["id"]
        for k, t in Q_FIELDS.items():
            assert isinstance(q[k], t), (q["id"], k)
        assert ID_RE.match(q["id"]), q["id"]
        assert q["question"].endswith("?") and q["answer"], q["id"]
        assert q["split"] in {"train", "eval"}, q["id"]
        allowed = {"train": {"original", "unanswerable"}, "eval": {"paraphrase", "unseen", "unanswerable"}}
        assert q["kind"] in allowed[q["split"]], q["id"]


def test_question_counts():
    c = Counter((q["split"], q["kind"]) for q in QUESTIONS)
    n_train = sum(v for (s, _), v in c.items() if s == "train")
    n_eval = sum(v for (s, _), v in c.items() if s == "eval")
    assert n_train >= 80 and n_eval >= 70
    assert c[("eval", "paraphrase")] >= 22
    assert c[("eval", "unseen")] >= 30
    assert c[("eval", "unanswerable")] >= 14
    assert c[("train", "unanswerable")] >= 4


@pytest.mark.parametrize("q", ANSWERABLE, ids=lambda q: q["id"])
def test_answerable_question_is_grounded(q):
    assert 1 <= len(q["key_facts"]) <= 3, q["id"]
    assert 1 <= len(q["doc_ids"]) <= 2, q["id"]
    assert all(isinstance(f, str) and f for f in q["key_facts"])
    for d in q["doc_ids"]:
        assert d in DOC_BY_ID, (q["id"], d)
    gold = [norm(DOC_BY_ID[d]["body"]) for d in q["doc_ids"]]
    for fact in q["key_facts"]:
        assert any(norm(fact) in g for g in gold), (q["id"], fact)
        assert norm(fact) in norm(q["answer"]), (q["id"], fact)


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q["id"])
def test_response_house_style(q):
    check_response(q["response"], q["key_facts"], q["doc_ids"], q["question"])


def test_unanswerable_questions():
    for q in QUESTIONS:
        if q["kind"] == "unanswerable":
            assert q["key_facts"] == [] and q["doc_ids"] == [], q["id"]
            assert "knowledge base does not" in q["answer"].lower(), q["id"]
            assert q["paraphrase_of"] is None, q["id"]


def test_paraphrase_links():
    for q in QUESTIONS:
        if q["kind"] == "paraphrase":
            src = Q_BY_ID[q["paraphrase_of"]]
            assert src["split"] == "train" and src["kind"] == "original", q["id"]
            assert q["question"] != src["question"], q["id"]
            assert q["key_facts"] == src["key_facts"] and q["doc_ids"] == src["doc_ids"], q["id"]
        else:
            assert q["paraphrase_of"] is None, q["id"]


def test_unseen_facts_not_in_train():
    """An unseen eval question asks a fact that no train answer states."""
    train_answers = [norm(q["answer"]) for q in QUESTIONS if q["split"] == "train"]
    for q in QUESTIONS:
        if q["kind"] == "unseen":
            new_facts = [f for f in q["key_facts"] if not any(norm(f) in a for a in train_answers)]
            assert new_facts, (q["id"], "every key fact is already in a train answer")


# ---------------------------------------------------------------- update questions

UQ_FIELDS = {"id": str, "question": str, "doc_ids": list, "answer_before": str, "key_facts_before": list,
             "answer": str, "key_facts": list, "response": str, "train_question_id": (str, type(None))}


def test_update_question_schema_and_counts():
    ids = [u["id"] for u in UPDATE_QUESTIONS]
    assert len(ids) == len(set(ids)) and len(ids) >= 14
    linked = [u for u in UPDATE_QUESTIONS if u["train_question_id"]]
    assert len(linked) >= 8
    updated_ids = {u["id"] for u in UPDATES}
    for u in UPDATE_QUESTIONS:
        assert set(u) == set(UQ_FIELDS), u["id"]
        for k, t in UQ_FIELDS.items():
            assert isinstance(u[k], t), (u["id"], k)
        assert ID_RE.match(u["id"]), u["id"]
        assert u["doc_ids"] and all(d in updated_ids for d in u["doc_ids"]), u["id"]
        assert 1 <= len(u["key_facts"]) <= 3, u["id"]
        if u["train_question_id"] is not None:
            tq = Q_BY_ID[u["train_question_id"]]
            assert tq["id"] in TRAIN_IDS and tq["kind"] == "original", u["id"]
            assert set(tq["doc_ids"]) & set(u["doc_ids"]), u["id"]
            # the train answer is stale: it states the old fact, not the new one
            for fact in u["key_facts_before"]:
                assert norm(fact) in norm(tq["answer"]), (u["id"], fact)


@pytest.mark.parametrize("u", UPDATE_QUESTIONS, ids=lambda u: u["id"])
def test_update_question_facts(u):
    new_body = " ".join(norm(UPDATED_BY_ID[d]["body"]) for d in u["doc_ids"])
    for fact in u["key_facts"]:
        assert norm(fact) in new_body, (u["id"], fact)
        assert norm(fact) in norm(u["answer"]), (u["id"], fact)
    changes = {x["id"]: x["change"] for x in UPDATES}
    if u["key_facts_before"]:
        assert all(changes[d] == "replace" for d in u["doc_ids"]), u["id"]
        old_body = " ".join(norm(DOC_BY_ID[d]["body"]) for d in u["doc_ids"])
        for fact in u["key_facts_before"]:
            assert norm(fact) in old_body, (u["id"], fact)
            assert norm(fact) not in new_body, (u["id"], "stale fact still in updated doc", fact)
            assert norm(fact) in norm(u["answer_before"]), (u["id"], fact)
        # the answer really changes: some new fact was not in the old document
        assert any(norm(f) not in old_body for f in u["key_facts"]), u["id"]
    else:
        assert all(changes[d] == "add" for d in u["doc_ids"]), u["id"]
        assert "knowledge base does not" in u["answer_before"].lower(), u["id"]
    check_response(u["response"], u["key_facts"], u["doc_ids"], u["question"])


# ---------------------------------------------------------------- datasheet

def test_datasheet_counts():
    text = (ROOT / "book" / "datasheet.md").read_text(encoding="utf-8")
    assert text.startswith("(datasheet)=\n# The Cairnfield data set")
    stated = {m.group(1): int(m.group(2)) for m in re.finditer(r"^- ([a-z ]+): (\d+)\s*$", text, re.M)}
    true = {
        "documents": len(DOCS),
        "questions": len(QUESTIONS),
        "train questions": len(TRAIN_IDS),
        "eval questions": sum(q["split"] == "eval" for q in QUESTIONS),
        "unanswerable questions": sum(q["kind"] == "unanswerable" for q in QUESTIONS),
        "update documents": len(UPDATES),
        "update questions": len(UPDATE_QUESTIONS),
    }
    for k, v in true.items():
        assert stated.get(k) == v, (k, stated.get(k), v)
