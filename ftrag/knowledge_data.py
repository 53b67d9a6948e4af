"""The knowledge-injection data set (labs/03b_knowledge.ipynb, described in book/datasheet.md).

Scope: load and check the rewordings of the training-side documents (data/rewordings.jsonl: each
document restated in new words, fact for fact) and the control questions (data/control_questions.jsonl:
general knowledge that has nothing to do with the shop). `problems` lists what a data test rejects:
a rewording that drops a fact some question asks about, or one that copies the wording of an eval
question. Leaves out the training and the sweep (ftrag/knowledge.py).
"""
import re

from . import data, evaluate
from .paths import DATA

REWORDINGS = DATA / "rewordings.jsonl"
CONTROL = DATA / "control_questions.jsonl"
COPY_WORDS = 6  # a rewording may share no run of this many words with an eval question


def load_rewordings() -> dict[str, list[str]]:
    """{document id: [rewording, ...]} in file order."""
    return {r["doc_id"]: r["rewordings"] for r in data.read_jsonl(REWORDINGS)}


def load_control() -> list[dict]:
    """General-knowledge questions shaped like the book's questions (kind "control")."""
    return [{**q, "split": "control", "kind": "control", "yes_no": None, "doc_ids": []}
            for q in data.read_jsonl(CONTROL)]


def training_side_documents() -> list[str]:
    """Ids of the documents some training question uses, sorted."""
    return sorted({d for q in data.load_questions("train") for d in q["doc_ids"]})


def facts_asked(doc_id: str) -> list:
    """The key facts of every question about this document alone: training, eval and the update
    questions' facts before the update (what the old document said)."""
    qs = [q for q in data.load_questions() if q["doc_ids"] == [doc_id]]
    qs += [q for q in data.load_update_questions(after=False) if q["doc_ids"] == [doc_id]]
    facts = []
    for q in qs:
        for f in q.get("key_facts") or []:
            if f not in facts:
                facts.append(f)
    return facts


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9$%.']+", evaluate.normalise(text))


def _runs(words: list[str], n: int) -> set:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def problems(rewordings: dict[str, list[str]] | None = None) -> list[str]:
    """What is wrong with the rewordings, one message per fault (an empty list when all is well)."""
    rewordings = load_rewordings() if rewordings is None else rewordings
    known = {d["id"]: d for d in data.load_documents()}
    eval_runs = set()
    for q in data.load_questions("eval"):
        eval_runs |= _runs(_words(q["question"]), COPY_WORDS)
    out = []
    for doc_id, texts in rewordings.items():
        if doc_id not in known:
            out.append(f"{doc_id}: no such document in data/documents.jsonl")
            continue
        doc_runs = _runs(_words(known[doc_id]["body"]), COPY_WORDS)
        for i, text in enumerate(texts, 1):
            missing = [evaluate.fact_forms(f)[0] for f in facts_asked(doc_id) if not evaluate.has_fact(text, f)]
            if missing:
                out.append(f"{doc_id} rewording {i}: lacks the fact(s) {missing}")
            # a run the document itself has (a product's full name) is the document's, not the question's
            copied = (_runs(_words(text), COPY_WORDS) & eval_runs) - doc_runs
            if copied:
                out.append(f"{doc_id} rewording {i}: copies an eval question's words: "
                           + "; ".join(" ".join(r) for r in sorted(copied)[:3]))
            if text.strip() == known[doc_id]["body"].strip():
                out.append(f"{doc_id} rewording {i}: is the document itself, not a rewording")
    return out
