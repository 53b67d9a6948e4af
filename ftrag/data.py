"""Loaders for the Cairnfield Outfitters data set in data/ (described in book/datasheet.md).

Every record is a plain dict, as stored in the JSONL files:
documents (id, title, updated, category, body), questions (id, split, kind, question, answer,
key_facts, yes_no, doc_ids, paraphrase_of, response, and for eval questions a correct `rewording`),
updates (a document plus change: replace|add), update questions (before/after answers, key facts
and yes/no answers) and the house style.

A key fact is a string or a list of accepted forms (the first is canonical); `yes_no` is "yes", "no"
or None. A question is answerable when it has key facts or a yes/no answer
(`ftrag.evaluate.answerable`), so test that rather than `q["key_facts"]`: a pure yes/no question has
none. Kinds: train = original | unanswerable; eval = paraphrase | unseen | heldout | unanswerable,
where heldout questions ask about documents that no training question uses.

>>> docs = load_documents(); docs[0]["id"]                      # doctest: +SKIP
'returns-policy'
>>> len(load_questions("eval")) >= 70                           # doctest: +SKIP
True
"""
import json
from pathlib import Path

from .paths import DATA

SPLITS = ("train", "eval")


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the data set ships in the repository's data/ folder; "
                                "run from a full clone of the book.")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_documents() -> list[dict]:
    """The knowledge base as it stands before the update."""
    return read_jsonl(DATA / "documents.jsonl")


def load_questions(split: str | None = None) -> list[dict]:
    """All questions, or those of one split ('train' or 'eval')."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    rows = read_jsonl(DATA / "questions.jsonl")
    return [q for q in rows if split is None or q["split"] == split]


def load_updates() -> list[dict]:
    """The knowledge update: documents that replace (same id) or add to the knowledge base."""
    return read_jsonl(DATA / "updates.jsonl")


def load_update_questions(after: bool = True) -> list[dict]:
    """Questions whose answer changes with the update, shaped like ordinary questions.

    after=True gives the right answer once the update is applied; after=False the one before it
    (no key facts and no yes/no answer then means the old knowledge base did not cover it, and the
    question is unanswerable). The gold doc_ids before the update are those that existed then.
    """
    old_ids = {d["id"] for d in load_documents()}
    out = []
    for q in read_jsonl(DATA / "update_questions.jsonl"):
        facts = q["key_facts"] if after else q["key_facts_before"]
        yes_no = q.get("yes_no") if after else q.get("yes_no_before")
        covered = bool(facts) or yes_no is not None
        docs = q["doc_ids"] if after else [d for d in q["doc_ids"] if d in old_ids]
        out.append({**q, "split": "update", "kind": "update" if covered else "unanswerable",
                    "key_facts": facts, "yes_no": yes_no, "answer": q["answer"] if after else q["answer_before"],
                    "doc_ids": docs if covered else []})
    return out


def load_house_style() -> dict:
    return json.loads((DATA / "house_style.json").read_text(encoding="utf-8"))


def updated_documents() -> list[dict]:
    """The knowledge base after the update is applied (replace by id, then add)."""
    docs = {d["id"]: d for d in load_documents()}
    for u in load_updates():
        docs[u["id"]] = {k: v for k, v in u.items() if k != "change"}
    return list(docs.values())


def dev_split(train: list[dict] | None = None, every: int = 4) -> tuple[list[dict], list[dict], set]:
    """(fit, dev, dev_docs): the development split every arm is tuned on (`ftrag.tuning`).

    dev: the answerable training questions about every `every`-th training-side document (sorted by
    id), so that, like the eval set's held-out documents, a model trained on `fit` never saw them.
    fit: the training questions that touch none of those documents (the unanswerable ones included).
    The eval set plays no part in any choice.
    """
    train = load_questions("train") if train is None else train
    documents = sorted({d for q in train for d in q["doc_ids"]})
    dev_docs = set(documents[::every])
    dev = [q for q in train if q["doc_ids"] and set(q["doc_ids"]) <= dev_docs]
    fit = [q for q in train if not set(q["doc_ids"]) & dev_docs]
    return fit, dev, dev_docs


def heldout_doc_ids() -> set:
    """Documents that only eval questions of kind `heldout` ask about: no training example, distractors
    included, may show them."""
    return {d for q in load_questions("eval") if q["kind"] == "heldout" for d in q["doc_ids"]}
