"""ftrag.report on a made-up run (no model): the files, their numbers, and no half-written report."""
import json

import pandas as pd
import pytest

from ftrag import compare, evaluate, report, stats

QUESTIONS = [{"id": f"q{i}", "question": f"What is fact {i}?", "key_facts": [f"value{i}"], "yes_no": None,
              "doc_ids": ["d1"], "about": ["d1"], "heldout": i % 2 == 0, "kind": "heldout" if i % 2 == 0 else "unseen"}
             for i in range(6)]


@pytest.fixture
def run(tmp_path):
    doc = tmp_path / "d1.txt"
    doc.write_text(" ".join(f"value{i}" for i in range(6)))
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    answers = {"base": ["value0", "no", "no", "value3", "no", "no"],
               "RAG": ["value0 [d1]", "value1 [d1]", "value2 [d1]", "value3", "no", "value5 [d1]"]}
    r = compare.Run(compare.Settings(systems=("base", "RAG")), [{"id": "d1", "path": str(doc)}],
                    {"train": [], "dev": [], "eval": QUESTIONS})
    r.tables = {s: evaluate.score(QUESTIONS, a, system=s, style=compare.STYLE) for s, a in answers.items()}
    r.chosen = {"RAG": {"kept": "dense, 1 chunk", "dev": {"dense, 1 chunk": "3 of 4"}}}
    compare.compare_all(r)
    return r, qfile


def test_the_numbers_are_the_answers_counted_again(run, tmp_path):
    r, qfile = run
    out = report.write(tmp_path / "report", r, qfile)
    answers = pd.read_csv(out / "answers.csv")
    results = json.loads((out / "results.json").read_text())
    assert results["rates"]["RAG"]["key facts (eval)"]["value"] == pytest.approx(5 / 6)
    assert results["rates"]["base"]["key facts (eval)"]["value"] == answers[answers.system == "base"].correct.mean()
    heldout = answers[(answers.system == "RAG") & (answers.kind == "heldout")]
    low, high = stats.interval(int(heldout.correct.sum()), len(heldout))[1:]
    assert (results["rates"]["RAG"]["held-out documents"]["low"],
            results["rates"]["RAG"]["held-out documents"]["high"]) == pytest.approx((low, high))
    test = results["tests"]["RAG vs base"]
    assert (test["a_only"], test["b_only"]) == (3, 0) and test["family"] == 1
    md = (out / "report.md").read_text()
    assert "RAG vs base: " + test["verdict"] in md and "0.83 [" in md


def test_an_interrupted_write_leaves_the_earlier_report_whole(run, tmp_path, monkeypatch):
    r, qfile = run
    out = report.write(tmp_path / "report", r, qfile)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "answers_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.write(tmp_path / "report", r, qfile)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
