"""Results files carry their writer's lab and run; a lab refuses later labs' and stale results."""
import pytest

from ftrag import evaluate, runs


@pytest.fixture
def stamps(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "STAMPS", tmp_path)
    (tmp_path / "02_rag.ok").write_text("run-b\n")
    return tmp_path


def test_by_hand_reads_anything(stamps):
    runs.check_readable("rag", {"lab": "09_later", "run": "old"}, reader=None)


def test_current_run_of_an_earlier_lab_is_readable(stamps):
    runs.check_readable("rag", {"lab": "02_rag", "run": "run-b"}, reader="04_hybrid")


def test_a_lab_reads_its_own_results(stamps):
    runs.check_readable("hybrid", {"lab": "04_hybrid", "run": "whatever"}, reader="04_hybrid")


def test_results_of_a_later_lab_are_refused(stamps):
    with pytest.raises(runs.StaleResults, match="runs after it"):
        runs.check_readable("lora", {"lab": "03_lora", "run": "x"}, reader="02_rag")


def test_results_of_an_older_run_are_refused(stamps):
    with pytest.raises(runs.StaleResults, match="not by its last passing run"):
        runs.check_readable("rag", {"lab": "02_rag", "run": "run-a"}, reader="04_hybrid")


def test_results_without_a_writer_are_refused(stamps):
    with pytest.raises(runs.StaleResults, match="does not say which lab"):
        runs.check_readable("rag", {"summary": {}}, reader="04_hybrid")


def test_save_and_load_record_the_run(stamps, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "RESULTS", tmp_path / "results")
    monkeypatch.setenv("FTRAG_LAB", "02_rag")
    monkeypatch.setenv("FTRAG_RUN", "run-b")
    evaluate.save_results("rag", {"key_fact_accuracy": 0.5})
    monkeypatch.setenv("FTRAG_LAB", "04_hybrid")
    assert evaluate.load_results("rag")["run"] == "run-b"
    (stamps / "02_rag.ok").write_text("run-c\n")  # lab 02 ran again, but this file is from run-b
    with pytest.raises(runs.StaleResults):
        evaluate.load_results("rag")
