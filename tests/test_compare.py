"""`python -m ftrag compare` end to end on a small real corpus (Python's own topics), in fast mode: every
stage runs for real with fewer steps. And the command's answers to bad input."""
import json
import math

import pandas as pd
import pytest

from ftrag import pydoc_corpus, stats
from ftrag.__main__ import main
from ftrag.data import read_jsonl
from ftrag.paths import DATA

TOPICS = ("assert", "break", "del", "lambda")  # 8 questions: a split by document still fills train, dev and eval


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    pydoc_corpus.write_corpus(root / "docs", TOPICS)
    rows = [r for r in read_jsonl(DATA / "pydoc_questions.jsonl") if r["doc_ids"][0] in TOPICS]
    (root / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def report(inputs):
    out = inputs / "report"
    assert main(["compare", str(inputs / "docs"), str(inputs / "questions.jsonl"), "--out", str(out), "--fast"]) == 0
    return out


def test_compare_writes_the_report_the_answers_and_a_run_record(report):
    for name in ("report.md", "report.html", "answers.csv", "results.json", "run.json"):
        assert (report / name).stat().st_size > 100, name
    md = (report / "report.md").read_text()
    assert "95 %" in md and "Holm" in md and "[" in md
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html and "http" not in html.split("<body>")[1]
    run = json.loads((report / "run.json").read_text())
    assert set(run["inputs"]["documents"]) == set(TOPICS) and len(run["inputs"]["questions"]["sha256"]) == 64


def test_the_reports_numbers_are_the_answers_csv_counted_again(report):
    answers = pd.read_csv(report / "answers.csv")
    results = json.loads((report / "results.json").read_text())
    assert set(answers.system) == {"base", "RAG", "RAG + template", "fine-tune", "hybrid"}
    for system, rows in answers.groupby("system"):
        scored = rows[rows.answerable]
        low, high = stats.interval(int(scored.correct.sum()), len(scored))[1:]
        r = results["rates"][system]["key facts (eval)"]
        assert r["value"] == pytest.approx(scored.correct.mean())
        assert (r["low"], r["high"]) == pytest.approx((low, high))
    by = {s: rows.set_index("id").correct for s, rows in answers.groupby("system")}
    for label, t in results["tests"].items():
        a, b = by[t["name_a"]], by[t["name_b"]].loc[by[t["name_a"]].index]
        assert (t["a_only"], t["b_only"]) == (int((a & ~b).sum()), int((b & ~a).sum())), label
        assert t["family"] == len(results["tests"]) and 0 <= t["p"] <= t["p_holm"] <= 1


def test_the_fine_tunes_kept_a_checkpoint_by_the_development_rule(report):
    results = json.loads((report / "results.json").read_text())
    for system in ("RAG", "fine-tune", "hybrid"):
        chosen = results["chosen"][system]
        assert chosen["kept"] in chosen["dev"]
    assert all(t["steps"] >= 1 and not math.isnan(t["final_loss"]) for t in results["training"].values())


@pytest.mark.parametrize("case, text, expected", [
    ("missing", None, "no such file"),
    ("empty", "", "no questions"),
    ("no key facts", '{"question": "What does assert raise?", "answer": "AssertionError."}\n', "line 1"),
])
def test_bad_question_files_get_a_clear_message_and_exit_2(inputs, tmp_path, capsys, case, text, expected):
    path = tmp_path / "q.jsonl"
    if text is not None:
        path.write_text(text)
    assert main(["compare", str(inputs / "docs"), str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and expected in err, err
    assert not (tmp_path / "r").exists()


def test_unknown_systems_are_refused_before_any_work(inputs, capsys):
    assert main(["compare", str(inputs / "docs"), str(inputs / "questions.jsonl"), "--systems", "rag,gpt"]) == 2
    assert "unknown gpt" in capsys.readouterr().err


def test_the_labs_question_set_passes_every_input_check(tmp_path):
    from ftrag import ingest

    pydoc_corpus.write_corpus(tmp_path / "docs")
    docs, doc_warnings = ingest.load_documents(tmp_path / "docs")
    questions, warnings = ingest.load_questions(DATA / "pydoc_questions.jsonl", docs)
    assert not doc_warnings and not warnings and len(questions) == 2 * len(pydoc_corpus.TOPICS)


def test_an_unknown_topic_is_named(tmp_path):
    with pytest.raises(ValueError, match="no-such-topic"):
        pydoc_corpus.write_corpus(tmp_path, ("assert", "no-such-topic"))
    assert not list(tmp_path.iterdir())
