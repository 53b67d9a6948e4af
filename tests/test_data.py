"""Schema and consistency tests for the Cairnfield data set (data/*.jsonl, data/house_style.json).

The files are read with plain ``json`` so that these tests do not depend on the package loader; the
scoring rule is the book's own (`ftrag.evaluate.correct`, `has_fact`, `normalise`), because the data
is checked against the ruler that scores the systems.
What is checked: ids, required fields and types, that every gold document exists; that every key fact
is in its gold document, is an atomic value and does not merely repeat the question; that yes/no
questions are marked and their gold answers lead with the right yes or no; that each eval question's
gold answer and a correct rewording of it score correct; that the old answer of each update question
scores wrong after the update (and the new one wrong before it); that no training question uses a
held-out document; that every gold response follows the house style; the minimum counts; the links
between questions; and that book/datasheet.md states the true counts.
"""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ftrag.evaluate import answerable, correct, fact_forms, has_fact, has_key_facts, normalise, polarity

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
EVAL = [q for q in QUESTIONS if q["split"] == "eval"]
HELDOUT = [q for q in QUESTIONS if q["kind"] == "heldout"]
HELDOUT_DOCS = {d for q in HELDOUT for d in q["doc_ids"]}
CHANGES = {u["id"]: u["change"] for u in UPDATES}

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

def check_response(response, key_facts, doc_ids, question="", yes_no=None):
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
    if key_facts:
        assert has_key_facts(text, key_facts), (key_facts, text)
    for house_term, generic_words in STYLE["terms"].items():
        for word in generic_words:
            assert not re.search(rf"\b{re.escape(norm(word))}s?\b", norm(text)), (word, house_term, text)
    if YES_NO_START.match(question) or yes_no:
        assert re.match(r"^(Yes|No)\b", text), (question, text)
    if yes_no:
        assert polarity(text) == yes_no, (question, text)


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


# ---------------------------------------------------------------- key facts

def tokens(text):
    return set(normalise(text).split())


def check_facts(qid, question, key_facts, yes_no, bodies):
    """Key facts are atomic values found in the gold documents, never the question's own words."""
    assert 0 <= len(key_facts) <= 3, qid
    assert key_facts or yes_no, (qid, "an answerable question needs key facts or a yes/no answer")
    assert yes_no in (None, "yes", "no"), qid
    for fact in key_facts:
        forms = fact_forms(fact)
        assert len({normalise(f) for f in forms}) == len(forms), (qid, "repeated form", forms)
        # the canonical form is in a gold document, as whole words
        assert any(has_fact(body, forms[0]) for body in bodies), (qid, forms[0])
        for form in forms:
            # a form that only repeats the question would score an echo of the question as correct
            assert not tokens(form) <= tokens(question), (qid, "repeats the question", form)
            assert len(form) <= 60 and len(form.split()) <= 6, (qid, "not atomic", form)


# ---------------------------------------------------------------- questions

Q_FIELDS = {"id": str, "split": str, "kind": str, "question": str, "answer": str, "key_facts": list,
            "yes_no": (str, type(None)), "doc_ids": list, "paraphrase_of": (str, type(None)), "response": str}
EVAL_FIELDS = {**Q_FIELDS, "rewording": str}


def test_question_schema():
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids)), "duplicate question ids"
    assert len({q["question"] for q in QUESTIONS}) == len(QUESTIONS), "duplicate question texts"
    for q in QUESTIONS:
        fields = EVAL_FIELDS if q["split"] == "eval" else Q_FIELDS
        assert set(q) == set(fields), q["id"]
        for k, t in fields.items():
            assert isinstance(q[k], t), (q["id"], k)
        assert ID_RE.match(q["id"]), q["id"]
        assert q["question"].endswith("?") and q["answer"], q["id"]
        assert q["split"] in {"train", "eval"}, q["id"]
        allowed = {"train": {"original", "unanswerable"},
                   "eval": {"paraphrase", "unseen", "heldout", "unanswerable"}}
        assert q["kind"] in allowed[q["split"]], q["id"]


def test_question_counts():
    c = Counter((q["split"], q["kind"]) for q in QUESTIONS)
    n_train = sum(v for (s, _), v in c.items() if s == "train")
    n_eval = sum(v for (s, _), v in c.items() if s == "eval")
    assert n_train >= 80 and n_eval >= 70
    assert c[("train", "original")] >= 95
    assert c[("eval", "paraphrase")] >= 22
    assert c[("eval", "unseen")] >= 30
    assert c[("eval", "heldout")] >= 24
    assert c[("eval", "unanswerable")] >= 14
    assert c[("train", "unanswerable")] >= 4


@pytest.mark.parametrize("q", ANSWERABLE, ids=lambda q: q["id"])
def test_answerable_question_is_grounded(q):
    assert answerable(q), q["id"]
    assert 1 <= len(q["doc_ids"]) <= 2, q["id"]
    for d in q["doc_ids"]:
        assert d in DOC_BY_ID, (q["id"], d)
    check_facts(q["id"], q["question"], q["key_facts"], q["yes_no"], [DOC_BY_ID[d]["body"] for d in q["doc_ids"]])
    assert correct(q["answer"], q), (q["id"], "the gold answer must score correct")


@pytest.mark.parametrize("q", ANSWERABLE, ids=lambda q: q["id"])
def test_yes_no_questions_are_marked(q):
    """A question that starts like a yes/no question is one, and its gold answer leads with that answer."""
    if YES_NO_START.match(q["question"]):
        assert q["yes_no"] in ("yes", "no"), q["id"]
    if q["yes_no"]:
        assert polarity(q["answer"]) == q["yes_no"], q["id"]


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q["id"])
def test_response_house_style(q):
    check_response(q["response"], q["key_facts"], q["doc_ids"], q["question"], q["yes_no"])


@pytest.mark.parametrize("q", EVAL, ids=lambda q: q["id"])
def test_eval_answer_and_rewording_score_correct(q):
    """The ruler accepts the gold answer, its gold response and a differently worded correct answer."""
    assert normalise(q["rewording"]) != normalise(q["answer"]), q["id"]
    assert correct(q["answer"], q), (q["id"], q["answer"])
    assert correct(q["rewording"], q), (q["id"], q["rewording"])
    if answerable(q):
        assert correct(q["response"], q), q["id"]


def test_unanswerable_questions():
    for q in QUESTIONS:
        if q["kind"] == "unanswerable":
            assert q["key_facts"] == [] and q["doc_ids"] == [] and q["yes_no"] is None, q["id"]
            assert "knowledge base does not" in q["answer"].lower(), q["id"]
            assert q["paraphrase_of"] is None, q["id"]


def test_paraphrase_links():
    for q in QUESTIONS:
        if q["kind"] == "paraphrase":
            src = Q_BY_ID[q["paraphrase_of"]]
            assert src["split"] == "train" and src["kind"] == "original", q["id"]
            assert q["question"] != src["question"], q["id"]
            assert q["doc_ids"] == src["doc_ids"] and q["yes_no"] == src["yes_no"], q["id"]
            # the same fact asked again: a paraphrase may ask for part of it, or for all of it
            mine, theirs = (json.dumps(f) for f in q["key_facts"]), (json.dumps(f) for f in src["key_facts"])
            mine, theirs = set(mine), set(theirs)
            assert mine <= theirs or theirs <= mine, q["id"]
        else:
            assert q["paraphrase_of"] is None, q["id"]


def test_unseen_facts_not_in_train():
    """An unseen or held-out eval question asks a fact that no train answer states (checked on the
    values; a yes/no question's asked fact is its yes or no, which this check cannot see)."""
    train_answers = [q["answer"] for q in QUESTIONS if q["split"] == "train"]
    for q in QUESTIONS:
        if q["kind"] in ("unseen", "heldout") and q["key_facts"] and not q["yes_no"]:
            new_facts = [f for f in q["key_facts"]
                         if not any(has_fact(a, fact_forms(f)[0]) for a in train_answers)]
            assert new_facts, (q["id"], "every key fact is already in a train answer")


def test_heldout_documents():
    """At least 8 documents, over several categories, that no training question uses; every eval
    question about them is of kind heldout."""
    assert len(HELDOUT_DOCS) >= 8 and len(HELDOUT) >= 24
    assert len({DOC_BY_ID[d]["category"] for d in HELDOUT_DOCS}) >= 5
    for q in QUESTIONS:
        touches = set(q["doc_ids"]) & HELDOUT_DOCS
        if q["split"] == "train":
            assert not touches, (q["id"], "a training question uses a held-out document")
        elif touches:
            assert q["kind"] == "heldout" and set(q["doc_ids"]) <= HELDOUT_DOCS, q["id"]
    per_doc = Counter(d for q in HELDOUT for d in q["doc_ids"])
    assert min(per_doc.values()) >= 2, per_doc


# ---------------------------------------------------------------- update questions

UQ_FIELDS = {"id": str, "question": str, "doc_ids": list, "answer_before": str, "key_facts_before": list,
             "yes_no_before": (str, type(None)), "answer": str, "key_facts": list, "yes_no": (str, type(None)),
             "response": str, "rewording": str, "train_question_id": (str, type(None))}


def before(u):
    return {"id": u["id"], "question": u["question"], "key_facts": u["key_facts_before"], "yes_no": u["yes_no_before"]}


def after(u):
    return {"id": u["id"], "question": u["question"], "key_facts": u["key_facts"], "yes_no": u["yes_no"]}


def jaccard(a, b):
    a, b = set(re.findall(r"[a-z0-9$]+", a.lower())), set(re.findall(r"[a-z0-9$]+", b.lower()))
    return len(a & b) / len(a | b)


def test_update_question_schema_and_counts():
    ids = [u["id"] for u in UPDATE_QUESTIONS]
    assert len(ids) == len(set(ids)) and len(ids) >= 60
    assert len({u["question"] for u in UPDATE_QUESTIONS}) == len(ids)
    linked = [u for u in UPDATE_QUESTIONS if u["train_question_id"]]
    assert len(linked) >= 8
    updated_ids = {u["id"] for u in UPDATES}
    for u in UPDATE_QUESTIONS:
        assert set(u) == set(UQ_FIELDS), u["id"]
        for k, t in UQ_FIELDS.items():
            assert isinstance(u[k], t), (u["id"], k)
        assert ID_RE.match(u["id"]), u["id"]
        assert u["question"].endswith("?"), u["id"]
        assert u["doc_ids"] and all(d in updated_ids for d in u["doc_ids"]), u["id"]
        if u["train_question_id"] is not None:
            tq = Q_BY_ID[u["train_question_id"]]
            assert tq["id"] in TRAIN_IDS and tq["kind"] == "original", u["id"]
            assert set(tq["doc_ids"]) & set(u["doc_ids"]), u["id"]
            # the train answer is stale: it states the old fact, not the new one
            for fact in u["key_facts_before"]:
                assert has_fact(tq["answer"], fact), (u["id"], fact)
    # at least 2 per changed document, more for the added ones
    per_doc = Counter(d for u in UPDATE_QUESTIONS for d in u["doc_ids"])
    for x in UPDATES:
        assert per_doc[x["id"]] >= (5 if x["change"] == "add" else 2), (x["id"], per_doc[x["id"]])


def test_update_questions_are_not_copied_from_training():
    train_questions = [q["question"] for q in QUESTIONS if q["split"] == "train"]
    for u in UPDATE_QUESTIONS:
        worst = max(train_questions, key=lambda t: jaccard(u["question"], t))
        assert jaccard(u["question"], worst) < 0.6, (u["id"], u["question"], worst)


@pytest.mark.parametrize("u", UPDATE_QUESTIONS, ids=lambda u: u["id"])
def test_update_question_facts(u):
    new_bodies = [UPDATED_BY_ID[d]["body"] for d in u["doc_ids"]]
    old_bodies = [DOC_BY_ID[d]["body"] for d in u["doc_ids"] if d in DOC_BY_ID]
    check_facts(u["id"], u["question"], u["key_facts"], u["yes_no"], new_bodies)
    new, old = after(u), before(u)
    # after the update: the new answer and a rewording of it are right, the old answer is wrong
    assert correct(u["answer"], new) and correct(u["response"], new), u["id"]
    assert correct(u["rewording"], new), (u["id"], u["rewording"])
    assert normalise(u["rewording"]) != normalise(u["answer"]), u["id"]
    assert not correct(u["answer_before"], new), (u["id"], "the stale answer still scores correct")
    if answerable(old):
        assert any(d in DOC_BY_ID for d in u["doc_ids"]), u["id"]
        check_facts(u["id"], u["question"], u["key_facts_before"], u["yes_no_before"], old_bodies)
        # before the update: the old answer is right, the new one (and its rewording) wrong
        assert correct(u["answer_before"], old), u["id"]
        assert not correct(u["answer"], old) and not correct(u["rewording"], old), u["id"]
        if all(CHANGES[d] == "replace" for d in u["doc_ids"]):
            for fact in u["key_facts_before"]:
                assert not any(has_fact(b, fact_forms(fact)[0]) for b in new_bodies), (u["id"], "stale fact kept", fact)
        # the answer really changes: a new fact or the other yes/no
        assert u["yes_no"] != u["yes_no_before"] or any(
            not any(has_fact(b, fact_forms(f)[0]) for b in old_bodies) for f in u["key_facts"]), u["id"]
    else:
        assert "knowledge base does not" in u["answer_before"].lower(), u["id"]
        assert u["key_facts_before"] == [] and u["yes_no_before"] is None, u["id"]
    if all(CHANGES[d] == "add" for d in u["doc_ids"]):
        assert not answerable(old), (u["id"], "the old knowledge base had no such document")
    check_response(u["response"], u["key_facts"], u["doc_ids"], u["question"], u["yes_no"])


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
        "heldout questions": len(HELDOUT),
        "held out documents": len(HELDOUT_DOCS),
        "unanswerable questions": sum(q["kind"] == "unanswerable" for q in QUESTIONS),
        "yes or no questions": sum(q["yes_no"] is not None for q in QUESTIONS),
        "update documents": len(UPDATES),
        "update questions": len(UPDATE_QUESTIONS),
    }
    for k, v in true.items():
        assert stated.get(k) == v, (k, stated.get(k), v)
    for d in HELDOUT_DOCS:
        assert f"`{d}`" in text, (d, "the datasheet lists every held-out document")
