"""The scorer against the hand labels of data/ruler_audit.jsonl (ftrag.audit)."""
import json

import pytest

from ftrag import audit, stats


@pytest.fixture(scope="module")
def rows():
    return audit.rescore(audit.load_labels())


def test_the_sample_is_large_and_stratified(rows):
    assert len(rows) >= 200
    assert {"base", "RAG", "LoRA", "hybrid"} <= set(rows[rows.reader == "smollm2-135m"].system)
    assert rows.reader.nunique() >= 2
    assert rows.audit_id.is_unique
    assert rows.groupby(["system", "reader"]).size().min() >= 20


def test_the_scorer_agrees_with_the_labels_as_reported(rows):
    """The datasheet reports the agreement; the build fails if the scorer drifts below the floor."""
    agree = stats.rate((rows.scorer == rows.label).tolist())
    assert agree["value"] >= audit.AGREEMENT_FLOOR, audit.shown(audit.agreement(rows)).to_string()


def test_no_bare_yes_or_no_is_labelled_or_scored_correct(rows):
    bare = rows[rows.answer.str.strip().str.lower().str.rstrip(".!").isin(["yes", "no"])]
    assert not bare.label.any() and not bare.scorer.any()


def test_bad_label_lines_are_named(tmp_path):
    good = json.loads(audit.LABELS.read_text(encoding="utf-8").splitlines()[0])
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "label"}) + "\n")
    with pytest.raises(ValueError, match="line 1: missing label"):
        audit.load_labels(path)
    path.write_text(json.dumps({**good, "question_id": "q999"}) + "\n")
    with pytest.raises(ValueError, match="no question 'q999'"):
        audit.load_labels(path)
