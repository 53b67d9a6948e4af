"""`python -m ftrag index` without a chat model: argument checks, extensionless files, --hybrid and the
echo check (the generator is replaced by a stub; only the MiniLM embedder loads)."""
import pytest

from ftrag import models
from ftrag.__main__ import main
from ftrag.models import Generation
from ftrag.prompts import prompt_echo
from ftrag.retrieval import load_folder, skipped_files

DOCS = {"LICENSE": "MIT License\n\nPermission is hereby granted, free of charge, to any person.",
        "COPYING": "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007",
        "notes.md": "# Release notes\n\nVersion 2.4.1 fixes the exporter."}


@pytest.fixture
def folder(tmp_path):
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "manual.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\1")
    return tmp_path


def test_extensionless_text_files_are_documents_and_other_files_are_reported(folder):
    (folder / "BINARY").write_bytes(b"\x7fELF\0\0\0")
    with pytest.warns(UserWarning, match="BINARY: it has no extension and is not a text file"):
        docs = load_folder(folder)
    assert [(d["id"], d["title"]) for d in docs] == [
        ("copying", "COPYING"), ("license", "LICENSE"), ("notes", "Release notes")]
    assert docs[1]["body"].startswith("MIT License")
    assert [p.name for p in skipped_files(folder)] == ["manual.pdf"]  # hidden files are not worth a note


def test_an_unknown_reader_is_refused_before_anything_loads(folder, capsys, monkeypatch):
    monkeypatch.setattr(models, "load_embedder", lambda: pytest.fail("loaded the embedder"))
    with pytest.raises(SystemExit) as exit_:
        main(["index", str(folder), "--ask", "Which licence?", "--reader", "gpt-9"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Unknown reader 'gpt-9'" in err
    assert "smollm2-135m" in err and "qwen2.5-coder-0.5b" in err


def test_help_names_the_new_options(capsys):
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    out = capsys.readouterr().out
    assert "--hybrid" in out and "--reader NAME" in out and "qwen2.5-coder-0.5b" in out


class FakeReader:
    """Stands in for load_generator/generate: records what was asked, answers with `reply`."""

    def __init__(self, monkeypatch, reply):
        self.names, self.messages = [], []
        monkeypatch.setattr(models, "load_generator", lambda name=None: self.names.append(name) or ("M", "T"))
        monkeypatch.setattr(models, "for_inference", lambda model: model)
        monkeypatch.setattr(models, "generate", self.generate)
        self.reply = reply

    def generate(self, messages, model=None, tokenizer=None, **_):
        assert (model, tokenizer) == ("M", "T")
        self.messages.append(messages)
        return Generation(self.reply, 100, 10, 0.1)


def test_hybrid_search_and_the_chosen_reader_answer(folder, capsys, monkeypatch):
    fake = FakeReader(monkeypatch, "It is the MIT License.\nSource: [license]")
    assert main(["index", str(folder), "--hybrid", "--reader", "qwen2.5-coder-0.5b", "--k", "2",
                 "--ask", "Which version is the GNU licence?"]) == 0
    out = capsys.readouterr().out
    assert "Left out 1 file(s) with other extensions (manual.pdf)" in out
    assert "Reader: qwen2.5-coder-0.5b; retrieval: hybrid (dense + BM25)." in out
    assert "score 0.0" in out  # fused reciprocal-rank scores (at most 2/61), not cosines
    assert "A: It is the MIT License.\n   Source: [license]" in out and fake.names == ["qwen2.5-coder-0.5b"]


def test_an_answer_that_echoes_the_prompt_is_reported_not_printed(folder, capsys, monkeypatch):
    echo = "Document 1 [copying]: COPYING GNU GENERAL PUBLIC LICENSE Question: Which version?"
    fake = FakeReader(monkeypatch, echo)
    assert main(["index", str(folder), "--ask", "Which version is the GNU licence?"]) == 0
    out = capsys.readouterr().out
    assert "the reader echoed its prompt instead of answering" in out and "'Document 1 [copying]'" in out
    assert "A: Document 1" not in out and "--reader qwen2.5-coder-0.5b" in out
    assert fake.names == [models.generator_name()]


@pytest.mark.parametrize("text, echoed", [
    ("Document 3 [gfdl-1-3]: Document 3 [gfdl-1-3]: GNU Free Documentation License", "Document 3 [gfdl-1-3]"),
    ("The licence is the GPL.\nQuestion: Which version?", "Question:"),
    ("Context:\nDocument text", "Context:"),
    ("Then write 'Source: [doc-id]' naming the document.", "[doc-id]"),
    ("Version 3 of the GPL, dated 29 June 2007.\nSource: [copying]", None),
    ("It says: Permission is hereby granted, free of charge, to any person.", None),  # quoting a document is fine
])
def test_the_echo_detector(text, echoed):
    assert prompt_echo(text) == echoed


def test_the_echo_detector_finds_a_copied_system_prompt():
    system = [{"role": "system", "content": "You are a helpful assistant. Answer in one to three short sentences."}]
    assert prompt_echo("you are a helpful assistant answer in one to three", system)
    assert prompt_echo("A helpful answer, in three sentences.", system) is None
