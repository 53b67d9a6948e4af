"""ftrag.ingest: documents converted from PDF, Word and HTML, every check on a question file, the split
by document with its held-out flags, and the too-few-questions message against ftrag.stats. No model loads."""
import json
import logging

import docx
import pytest

from ftrag import stats
from ftrag.ingest import (DISCORDANCE, InputError, load_documents, load_questions, questions_needed,
                          split_questions, too_few)
from small_kb import DOCS  # tests/small_kb.py


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF that draws each line in Helvetica: a fixture written by hand, with the byte
    offsets its cross-reference table needs, so the test needs no PDF writer."""
    text = " T* ".join(f"({line}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def make_docx(path, title: str, paragraphs: list[str], table: list[list[str]]) -> None:
    document = docx.Document()
    document.add_heading(title, level=0)  # the Title style
    for p in paragraphs:
        document.add_paragraph(p)
    grid = document.add_table(rows=len(table), cols=len(table[0]))
    for r, row in enumerate(table):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    document.save(path)


HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Store hours</title>
<style>p { color: red }</style><script>var hidden = "do not index me";</script></head>
<body><h1>Hours</h1><p>The store opens at <b>9am</b>,
Monday to Saturday.</p><ul><li>Closed on Sundays</li><li>Caf&eacute; inside</li></ul></body></html>"""


# ---------------------------------------------------------------- documents

def test_pdf_docx_html_and_text_files_become_documents(tmp_path):
    (tmp_path / "returns.md").write_text("# Returns policy\n\nUnused gear can be returned within 45 days.\n")
    (tmp_path / "notes.txt").write_text("Refunds go back to the original card.")
    (tmp_path / "LICENSE").write_text("Free to share.")
    (tmp_path / "shipping.pdf").write_bytes(make_pdf(["Standard shipping takes 3 to 5 working days.",
                                                       "Orders over $75 ship free."]))
    make_docx(tmp_path / "tent-care.docx", "Tent care", ["Dry your tent fully before storing it."],
              [["Washing", "Never machine-wash a tent"]])
    (tmp_path / "hours.html").write_text(HTML, encoding="utf-8")
    docs, notes = load_documents(tmp_path)
    assert notes == []
    by_id = {d["id"]: d for d in docs}
    assert list(by_id) == ["hours", "license", "notes", "returns", "shipping", "tent-care"]  # id order
    pdf = " ".join(by_id["shipping"]["body"].split())
    assert "Standard shipping takes 3 to 5 working days." in pdf and "Orders over $75 ship free." in pdf
    assert by_id["shipping"]["title"] == "shipping"
    assert by_id["tent-care"]["title"] == "Tent care"  # the Title paragraph, not part of the body
    assert by_id["tent-care"]["body"] == ("Dry your tent fully before storing it.\n\n"
                                          "Washing | Never machine-wash a tent")
    html = by_id["hours"]
    assert html["title"] == "Store hours"
    # inline tags keep the sentence whole, a list item is a paragraph, scripts and styles are gone
    assert "The store opens at 9am, Monday to Saturday." in html["body"].split("\n\n")
    assert "Closed on Sundays" in html["body"].split("\n\n") and "Café inside" in html["body"]
    assert "hidden" not in html["body"] and "color" not in html["body"]
    assert by_id["returns"]["title"] == "Returns policy"
    assert by_id["returns"]["body"] == "Unused gear can be returned within 45 days."
    assert by_id["returns"]["path"] == str(tmp_path / "returns.md")


def test_unreadable_files_are_named_in_warnings_and_the_others_still_load(tmp_path, caplog):
    (tmp_path / "good.md").write_text("Unused gear can be returned within 45 days.")
    (tmp_path / "corrupt.pdf").write_bytes(make_pdf(["Lost in the damage."])[:90])  # cut short
    (tmp_path / "scan.pdf").write_bytes(make_pdf([]))  # a page with no text on it
    (tmp_path / "latin1.txt").write_bytes("Caf\u00e9 prices".encode("latin-1"))
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "sheet.xlsx").write_bytes(b"x")
    (tmp_path / "old.doc").write_bytes(b"x")
    (tmp_path / ".hidden.md").write_text("Not a document.")
    with caplog.at_level(logging.WARNING):
        docs, notes = load_documents(tmp_path)
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]  # the warnings say it, once
    assert [d["id"] for d in docs] == ["good"]
    for name, advice in [("corrupt.pdf", "save a text copy as .txt"), ("scan.pdf", "OCR"), ("latin1.txt", "UTF-8"),
                         ("broken.docx", "save a text copy as .txt"), ("empty.md", "is empty")]:
        assert sum(name in n for n in notes) == 1, name
        assert advice in next(n for n in notes if name in n), name
    others = [n for n in notes if "other types" in n]
    assert len(others) == 1 and "old.doc" in others[0] and "sheet.xlsx" in others[0]
    assert not any(".hidden" in n for n in notes)


def test_a_name_shared_by_two_files_gets_a_numbered_id_and_a_warning(tmp_path):
    (tmp_path / "guide.md").write_text("Text version.")
    (tmp_path / "guide.pdf").write_bytes(make_pdf(["PDF version."]))
    docs, notes = load_documents(tmp_path)
    assert [(d["id"], d["path"].rsplit(".", 1)[1]) for d in docs] == [("guide", "md"), ("guide-2", "pdf")]
    assert len(notes) == 1 and "guide.pdf" in notes[0] and "'guide-2'" in notes[0]


def test_a_missing_folder_or_one_without_a_readable_document_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_documents(tmp_path / "nowhere")
    (tmp_path / "scan.pdf").write_bytes(make_pdf([]))
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(ValueError, match="no readable document") as err:
        load_documents(tmp_path)
    assert "scan.pdf" in str(err.value) and "data.xlsx" in str(err.value)  # it says why


# ---------------------------------------------------------------- questions

def write_jsonl(path, rows) -> str:
    """rows: dicts, or raw strings written as they are (a broken line)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RETURNS = {"question": "How long do I have to return unused gear?", "answer": "45 days.",
           "key_facts": ["45 days"], "doc_ids": ["returns-policy"]}


def test_a_good_jsonl_file_loads_in_the_book_format(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {**RETURNS, "id": "r1"},
        "",
        {"question": "Is delivery free over $75?", "answer": "Yes.", "key_facts": [], "yes_no": "Yes",
         "split": None},
    ])
    questions, notes = load_questions(path, DOCS)
    assert questions[0] == {"id": "r1", "question": RETURNS["question"], "answer": "45 days.",
                            "key_facts": ["45 days"], "yes_no": None, "doc_ids": ["returns-policy"],
                            "split": None, "line": 1}
    assert questions[1]["id"] == "q3" and questions[1]["yes_no"] == "yes"  # id from the line number
    assert len(notes) == 1 and "line(s) 3" in notes[0] and "without a key fact" in notes[0]


def test_a_missing_question_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file") as err:
        load_questions(tmp_path / "questions.jsonl", DOCS)
    assert "questions.jsonl" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_an_empty_question_file_is_an_input_error(tmp_path):
    (tmp_path / "q.jsonl").write_text("\n  \n")
    with pytest.raises(InputError, match="no questions"):
        load_questions(tmp_path / "q.jsonl", DOCS)


def test_missing_key_facts_are_named_with_their_line(tmp_path):
    no_field = {k: v for k, v in RETURNS.items() if k != "key_facts"}
    with pytest.raises(InputError, match=r"q\.jsonl, line 2: no 'key_facts'"):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, no_field]), DOCS)
    # empty key facts are fine with a yes/no answer, an error without one
    yes_no_only = {**RETURNS, "key_facts": [], "yes_no": "no"}
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, yes_no_only]), DOCS)
    assert questions[1]["yes_no"] == "no"
    bare = {**RETURNS, "key_facts": []}
    with pytest.raises(InputError, match=r"line 3: no key facts and no yes/no answer"):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, yes_no_only, bare]), DOCS)


def test_an_empty_question_is_named_with_its_line(tmp_path):
    with pytest.raises(InputError, match=r"line 2: the question is empty"):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, {**RETURNS, "question": "  "}]), DOCS)


def test_invalid_json_is_named_with_its_line(tmp_path):
    broken = '{"question": "Open on Sunday?", key_facts: []}'  # an unquoted name
    path = write_jsonl(tmp_path / "q.jsonl", [RETURNS, RETURNS, broken])
    with pytest.raises(InputError, match=r"line 3: invalid JSON"):
        load_questions(path, DOCS)


@pytest.mark.parametrize("field, value, message", [
    ("yes_no", "maybe", "yes_no must be yes, no or empty"),
    ("split", "test", "split must be train, dev, eval or empty"),
    ("key_facts", "45 days", "key_facts must be a list"),
    ("key_facts", ["45 days", ""], "a key fact is a non-empty string"),
])
def test_bad_values_are_named_with_their_line(tmp_path, field, value, message):
    with pytest.raises(InputError, match=r"line 2: " + message):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, {**RETURNS, field: value}]), DOCS)


def test_a_doc_id_that_names_no_document_is_an_error_with_a_suggestion(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [RETURNS, {**RETURNS, "doc_ids": ["returns-polcy"]}])
    with pytest.raises(InputError, match=r"line 2: doc_ids names 'returns-polcy'.*mean 'returns-policy'"):
        load_questions(path, DOCS)


def test_a_key_fact_that_no_document_contains_is_a_warning(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {**RETURNS, "key_facts": [["forty five days", "six weeks"]]},  # in the documents as "45 days"
        {**RETURNS, "key_facts": ["46 days"]},                          # a typo
        {**RETURNS, "key_facts": ["original card", ["a week", "$80"]]},  # the second fact: in no form
    ])
    questions, notes = load_questions(path, DOCS)
    assert len(questions) == 3
    assert len(notes) == 2
    assert "line 2" in notes[0] and "'46 days'" in notes[0]
    assert "line 3" in notes[1] and "['a week', '$80']" in notes[1]


def test_a_split_on_some_lines_only_and_repeated_ids_are_errors(tmp_path):
    with pytest.raises(InputError, match=r"line 2: no split, while other lines give one"):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [{**RETURNS, "split": "eval"}, RETURNS]), DOCS)
    with pytest.raises(InputError, match=r"line 2: the id 'a' is also on line 1"):
        load_questions(write_jsonl(tmp_path / "q.jsonl", [{**RETURNS, "id": "a"}] * 2), DOCS)


CSV = '''question,answer,key_facts,doc_ids,yes_no,split
How long for returns?,"45 days, from delivery.",45 days|forty-five days; original card,returns-policy; shipping,,
Is shipping free over $75?,Yes.,,shipping,YES,
'''


def test_csv_facts_split_on_semicolons_and_forms_on_bars(tmp_path):
    (tmp_path / "q.csv").write_text(CSV, encoding="utf-8-sig")  # with the BOM a spreadsheet writes
    questions, notes = load_questions(tmp_path / "q.csv", DOCS)
    first, second = questions
    assert first["key_facts"] == [["45 days", "forty-five days"], "original card"]
    assert first["doc_ids"] == ["returns-policy", "shipping"]
    assert first["answer"] == "45 days, from delivery." and first["yes_no"] is None and first["split"] is None
    assert (first["line"], first["id"]) == (2, "q2")  # the header is line 1
    assert second["key_facts"] == [] and second["yes_no"] == "yes" and second["line"] == 3


def test_csv_errors_count_the_header_as_line_1(tmp_path):
    (tmp_path / "q.csv").write_text(CSV + " ,No.,,shipping,no,\n")
    with pytest.raises(InputError, match=r"q\.csv, line 4: the question is empty"):
        load_questions(tmp_path / "q.csv", DOCS)
    (tmp_path / "q.csv").write_text(CSV + "Open Sundays?,No, closed.,closed,store-hours,no,\n")
    with pytest.raises(InputError, match=r"line 4: more cells than columns"):
        load_questions(tmp_path / "q.csv", DOCS)
    (tmp_path / "q.csv").write_text("question,answer,facts\nOpen Sundays?,No.,closed\n")
    with pytest.raises(InputError, match=r"line 1: the header has no 'key_facts' column"):
        load_questions(tmp_path / "q.csv", DOCS)


# ---------------------------------------------------------------- split

LOCKER_DOCS = [{"id": f"room-{i}", "title": f"Room {i}", "body": f"The locker code for room {i} is {1000 + i}."}
               for i in range(10)]


def locker_questions(tmp_path, extra=()) -> list[dict]:
    """Three questions per room, with doc_ids; extra rows go after them."""
    rows = [{"id": f"r{i}-{j}", "question": f"Locker code of room {i}? ({j})", "answer": str(1000 + i),
             "key_facts": [str(1000 + i)], "doc_ids": [f"room-{i}"]} for i in range(10) for j in range(3)]
    return load_questions(write_jsonl(tmp_path / "q.jsonl", [*rows, *extra]), LOCKER_DOCS)[0]


def sides(split) -> dict:
    return {q["id"]: s for s in ("train", "dev", "eval") for q in split[s]}


def test_the_split_is_by_document_in_the_asked_shares_and_reproducible(tmp_path):
    questions = locker_questions(tmp_path)
    split = split_questions(questions, LOCKER_DOCS, seed=0)
    assert {s: len(split[s]) for s in ("train", "dev", "eval")} == {"train": 12, "dev": 6, "eval": 12}
    for i in range(10):  # all questions about one document on one side
        assert len({sides(split)[f"r{i}-{j}"] for j in range(3)}) == 1
    assert set(split["documents"]["train"]).isdisjoint(split["documents"]["eval"])
    assert sides(split_questions(questions, LOCKER_DOCS, seed=0)) == sides(split)
    assert any(sides(split_questions(questions, LOCKER_DOCS, seed=s)) != sides(split) for s in (1, 2, 3))
    assert "Split by document (seed 0): 30 questions." in split["summary"]
    eval_docs = ", ".join(split["documents"]["eval"])
    assert f"eval    12 questions, 12 held-out; 4 documents: {eval_docs}" in split["summary"]


def test_a_question_about_two_documents_keeps_them_on_one_side(tmp_path):
    both = {"id": "both", "question": "Codes of rooms 1 and 2?", "answer": "1001 and 1002",
            "key_facts": ["1001", "1002"], "doc_ids": ["room-1", "room-2"]}
    questions = locker_questions(tmp_path, [both])
    for seed in range(5):
        s = sides(split_questions(questions, LOCKER_DOCS, seed=seed))
        assert s["r1-0"] == s["r2-0"] == s["both"]


def test_questions_without_doc_ids_follow_the_document_that_holds_their_facts(tmp_path):
    found = {"id": "found", "question": "Which code opens room 7?", "answer": "1007", "key_facts": ["1007"]}
    lost = {"id": "lost", "question": "Code of the sauna?", "answer": "1234", "key_facts": ["1234"]}
    questions = locker_questions(tmp_path, [found, lost])
    for seed in range(5):
        split = split_questions(questions, LOCKER_DOCS, seed=seed)
        assert sides(split)["found"] == sides(split)["r7-0"]
        assert sides(split)["lost"] == sides(split_questions(questions, LOCKER_DOCS, seed=seed))["lost"]
    by_id = {q["id"]: q for s in ("train", "dev", "eval") for q in split[s]}
    assert by_id["found"]["about"] == ["room-7"] and by_id["found"]["doc_ids"] == []  # gold ids stay as given
    assert by_id["lost"]["about"] == [] and not by_id["lost"]["heldout"]
    assert "1 question(s) without doc_ids match no document" in split["summary"]


def test_heldout_flags_follow_the_training_questions_documents(tmp_path):
    rows = [{**RETURNS, "id": "t1", "split": "train"},
            {**RETURNS, "id": "e-seen", "split": "eval"},
            {"question": "Is shipping free over $75?", "answer": "Yes.", "key_facts": ["ship free"],
             "yes_no": "yes", "doc_ids": ["shipping"], "id": "e-held", "split": "eval"},
            {**RETURNS, "id": "e-both", "split": "dev", "doc_ids": ["returns-policy", "shipping"]}]
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", rows), DOCS)
    split = split_questions(questions, DOCS)
    assert split["by"] == "file" and split["summary"].startswith("Split as given in the question file: 4 questions.")
    flags = {q["id"]: (q["split"], q["heldout"], q["kind"]) for s in ("train", "dev", "eval") for q in split[s]}
    assert flags == {"t1": ("train", False, "original"), "e-seen": ("eval", False, "unseen"),
                     "e-held": ("eval", True, "heldout"), "e-both": ("dev", False, "unseen")}


def test_without_training_everything_goes_to_dev_and_eval(tmp_path):
    questions = locker_questions(tmp_path)
    split = split_questions(questions, LOCKER_DOCS, need_training=False)
    assert split["train"] == []
    assert len(split["dev"]) + len(split["eval"]) == 30
    assert len(split["eval"]) == 21  # about 2/3 of 30, in groups of 3
    assert all(q["heldout"] for q in split["eval"])  # no training question: every document is held out


def test_a_given_split_needs_eval_questions_and_training_ones_to_fine_tune(tmp_path):
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [{**RETURNS, "split": "train"}]), DOCS)
    with pytest.raises(InputError, match="no eval question: give some questions the split eval"):
        split_questions(questions, DOCS)
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [{**RETURNS, "split": "eval"}]), DOCS)
    with pytest.raises(InputError, match="no train question: give some questions the split train"):
        split_questions(questions, DOCS)
    assert len(split_questions(questions, DOCS, need_training=False)["eval"]) == 1


def test_questions_about_a_single_document_cannot_be_split_by_document(tmp_path):
    questions, _ = load_questions(write_jsonl(tmp_path / "q.jsonl", [RETURNS, RETURNS]), DOCS)
    with pytest.raises(InputError, match="no train question: the questions are about too few documents"):
        split_questions(questions, DOCS)


# ---------------------------------------------------------------- enough eval questions?

def test_too_few_says_what_the_paired_test_can_detect_and_how_many_are_needed():
    detectable = stats.detectable(20, round(DISCORDANCE * 20))
    needed = questions_needed(0.2)
    message = too_few(20, diff=0.2)
    assert message.startswith(f"With 20 eval questions the paired test can only detect a difference in accuracy "
                              f"of {detectable:.2f}")
    assert f"for 0.20 you need about {needed}" in message
    # the number needed is enough, and clearly fewer are not
    assert stats.detectable(needed, round(DISCORDANCE * needed)) <= 0.2
    assert too_few(needed, diff=0.2) is None
    assert too_few(needed - 10, diff=0.2) is not None
    assert questions_needed(0.1) > 2 * needed  # halving the difference takes about four times the questions
    assert "cannot detect any difference" in too_few(3)
    assert too_few(0).startswith("No eval questions")
