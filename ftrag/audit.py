"""The ruler, audited on what the models wrote (shown in labs/00_setup.ipynb; protocol in
book/datasheet.md).

data/ruler_audit.jsonl holds hand labels: answers drawn at random from the book's runs, stratified by
system and reader, each read against its gold document and labelled correct or wrong by the protocol
(the fact in any wording; a yes/no answer needs its deciding fact; an unanswerable question needs a
decline). `rescore` puts the scorer's verdict (`evaluate.correct`) beside each label, and `agreement`
reports, per system and reader, how often the two agree and the scorer's two error rates:
- false positive rate: the scorer credits an answer the label calls wrong (out of the wrong ones);
- false negative rate: the scorer rejects an answer the label calls right (out of the right ones);
and the scorer's bias: its accuracy minus the labelled accuracy on the same rows, with the paired
interval, so that a ruler that favours one system shows. Each rate has its 95 % Wilson interval.
`AGREEMENT_FLOOR` is the level the book reports; tests/test_audit.py fails below it.
Leaves out: a second labeller (the labels are one careful reading each; ambiguous rows are flagged).

>>> rows = rescore(load_labels())                                           # doctest: +SKIP
"""
import json

import pandas as pd

from . import data, evaluate, stats
from .paths import ROOT

LABELS = ROOT / "data" / "ruler_audit.jsonl"
AGREEMENT_FLOOR = 0.95
FIELDS = ("audit_id", "system", "reader", "question_id", "answer", "label", "ambiguous", "note")


def load_labels(path=LABELS) -> list[dict]:
    """The hand labels, checked: every field present, a known question, a boolean label."""
    questions = _questions()
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise ValueError(f"{path.name} line {n}: missing {', '.join(missing)}")
        if row["question_id"] not in questions:
            raise ValueError(f"{path.name} line {n}: no question {row['question_id']!r} in data/")
        if not isinstance(row["label"], bool):
            raise ValueError(f"{path.name} line {n}: label must be true or false")
        rows.append(row)
    return rows


def _questions() -> dict:
    qs = {q["id"]: q for q in data.load_questions("eval")}
    qs.update({q["id"]: q for q in data.load_update_questions(after=True)})
    return qs


def rescore(labels: list[dict]) -> pd.DataFrame:
    """One row per label, with the scorer's verdict on the same answer (`scorer`)."""
    questions = _questions()
    return pd.DataFrame([{**row, "scorer": evaluate.correct(row["answer"], questions[row["question_id"]])}
                         for row in labels])


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Per system and reader (and all rows): rows, agreement, false positive and false negative rates,
    labelled and scored accuracy, and the scorer's bias (scored minus labelled) with its interval."""
    groups = [((s, r), g) for (s, r), g in table.groupby(["system", "reader"], sort=False)]
    out = {}
    for (system, reader), g in groups + [(("all", "all"), table)]:
        wrong, right = g[~g.label], g[g.label]
        bias = stats.compare(g.scorer.tolist(), g.label.tolist(), "scorer", "labels")
        out[f"{system} ({reader})" if system != "all" else "all rows"] = {
            "rows": len(g),
            "agreement": stats.rate((g.scorer == g.label).tolist()),
            "false positives": stats.rate((wrong.scorer).tolist()) if len(wrong) else None,
            "false negatives": stats.rate((~right.scorer).tolist()) if len(right) else None,
            "labelled accuracy": g.label.mean(),
            "scored accuracy": g.scorer.mean(),
            "bias": bias,
        }
    return pd.DataFrame(out).T


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """`agreement` formatted for a page: rates with intervals, the bias as a difference."""
    fmt = lambda r: "—" if r is None else stats.fmt_rate(r)  # —: no such rows in the sample
    return pd.DataFrame({
        name: {"rows": int(row["rows"]), "agreement": fmt(row["agreement"]),
               "false positives (of wrong answers)": fmt(row["false positives"]),
               "false negatives (of right answers)": fmt(row["false negatives"]),
               "accuracy, labels": f"{row['labelled accuracy']:.2f}",
               "accuracy, scorer": f"{row['scored accuracy']:.2f}",
               "scorer minus labels [95 % CI]": stats.fmt_diff(row["bias"])}
        for name, row in table.iterrows()
    }).T
