"""A team's own documents and questions, read and checked for `python -m ftrag compare DOCS QUESTIONS`.

- `load_documents(folder)`: one document per file directly inside the folder, {id, title, body, path}:
  .md, .txt and extensionless text (as `ftrag.retrieval.load_folder` reads them for `index`), .pdf
  (pypdf), .docx (python-docx) and .html/.htm (Beautiful Soup);
- `load_questions(path, docs)`: questions in the book's format (`ftrag.data`) from JSONL or CSV,
  checked before any model loads; each error is an `InputError` naming the file and the line;
- `split_questions(questions, docs)`: train, dev and eval, by document unless the file gives the
  split, with a held-out flag per question (the book's `heldout` kind);
- `too_few(n_eval)`: whether the eval questions are enough to detect a given difference.
What leaves the run possible (an unreadable file, a key fact no document contains) comes back as
warnings: strings that name the file or line and say what to do, for the caller to print.

Leaves out: OCR of scanned PDFs, old .doc files, spreadsheets, subfolders, and page layout (a PDF's
tables and columns come out as runs of text), and unanswerable questions (each question needs key
facts or a yes/no answer).

>>> docs, notes = load_documents("my_docs")                                # doctest: +SKIP
>>> questions, notes = load_questions("questions.csv", docs)             # doctest: +SKIP
>>> print(split_questions(questions, docs, seed=0)["summary"])           # doctest: +SKIP
"""
import csv
import difflib
import hashlib
import io
import json
import logging
import random
import re
from collections import Counter
from pathlib import Path

import docx
import pypdf
from bs4 import BeautifulSoup
from docx.table import Table

from . import stats
from .evaluate import fact_forms, has_fact
from .retrieval import DOCUMENT_SUFFIXES, slugify

SIDES = ("train", "dev", "eval")
# The share of questions that exactly one of two systems gets right, assumed before any run: the
# book's paired key-fact comparisons measured 0.27 to 0.42 (results/comparison.json).
DISCORDANCE = 0.35
MAX_QUESTIONS = 1000  # too_few stops counting here: the exact power takes seconds beyond it


# ---------------------------------------------------------------- documents

class _Unreadable(Exception):
    """A file that gives no text; the message says why and what to do."""


def _read_text(path: Path) -> tuple[str | None, str]:
    raw = path.read_bytes()
    if not path.suffix and b"\0" in raw[:8192]:
        raise _Unreadable("it has no extension and is not a text file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Unreadable("it is not UTF-8 text. Save it again with the UTF-8 encoding.") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    heading = re.match(r"#+\s+(.+)\n?", text)  # the first Markdown heading is the title, as in load_folder
    if heading:
        return heading.group(1).strip(), text[heading.end():].strip()
    return None, text


def _read_pdf(path: Path) -> tuple[str | None, str]:
    # pypdf logs every repair it tries on a malformed file; the warning that names the file is enough.
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are locked with an empty password
            raise _Unreadable("it is password-protected. Save an unprotected copy, or a text copy as .txt.")
        body = "\n\n".join(page.extract_text() for page in reader.pages)
    finally:
        log.setLevel(level)
    if not body.strip():
        raise _Unreadable("it has no text to extract (a scan?). Run OCR on it, or save a text copy as .txt.")
    return None, body  # PDF metadata titles are often a tool's ("Microsoft Word - doc1"): use the file name


def _read_docx(path: Path) -> tuple[str | None, str]:
    title, paragraphs = None, []
    for block in docx.Document(str(path)).iter_inner_content():
        if isinstance(block, Table):  # one paragraph per row
            rows = [[cell.text.strip() for cell in row.cells] for row in block.rows]
            paragraphs += [" | ".join(cells) for cells in rows if any(cells)]
        elif block.text.strip():
            style = (block.style.name if block.style is not None else None) or ""
            if not paragraphs and title is None and style.startswith(("Title", "Heading")):
                title = block.text.strip()  # a heading that opens the document is its title
            else:
                paragraphs.append(block.text.strip())
    return title, "\n\n".join(paragraphs)


BLOCK_TAGS = ["p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dt", "dd",
              "section", "article", "table", "ul", "ol", "header", "footer"]


def _read_html(path: Path) -> tuple[str | None, str]:
    soup = BeautifulSoup(path.read_bytes(), "html.parser")  # bytes: it finds the encoding itself
    heading = soup.title or soup.h1
    title = heading.get_text(" ", strip=True) if heading else None
    for tag in soup(["head", "title", "script", "style", "noscript", "template"]):
        tag.decompose()
    # Blocks end with a blank line, the chunker's paragraph break; inline tags keep sentences whole.
    for tag in soup(BLOCK_TAGS):
        tag.append("\n\n")
    for tag in soup(["td", "th", "br"]):
        tag.append(" ")
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", soup.get_text()))
    return title or None, "\n\n".join(p for p in paragraphs if p)


# Everything `index` reads (DOCUMENT_SUFFIXES and extensionless text), and more.
CONVERTERS = {**dict.fromkeys([*DOCUMENT_SUFFIXES, ""], _read_text), ".pdf": _read_pdf, ".docx": _read_docx,
              ".html": _read_html, ".htm": _read_html}
FORMATS = {".pdf": "a PDF", ".docx": "a Word document", ".html": "HTML", ".htm": "HTML"}


def _converter(path: Path):
    if path.name.startswith(".") or not path.is_file():
        return None
    return CONVERTERS.get(path.suffix.lower())


def _read(path: Path) -> tuple[str | None, str]:
    """(title or None, body) of one file; _Unreadable with what to do when it gives no text."""
    try:
        title, body = _converter(path)(path)
    except _Unreadable:
        raise
    except Exception as err:  # converters fail on malformed files in many ways; one file must not stop the run
        kind = FORMATS.get(path.suffix.lower(), "text")
        raise _Unreadable(f"it could not be read as {kind} ({type(err).__name__}: {err}). "
                          "Save it again, or save a text copy as .txt.") from err
    if not (title or body.strip()):
        raise _Unreadable("it is empty.")
    return title, body.strip()


def _unique_id(path: Path, taken: dict) -> tuple[str, str | None]:
    """(id, warning or None): the slugified file name, numbered when another file has it already."""
    base = slugify(path.stem) or "document"
    doc_id, n = base, 1
    while doc_id in taken:
        n += 1
        doc_id = f"{base}-{n}"
    if doc_id == base:
        return doc_id, None
    return doc_id, (f"{path.name} gets the id {doc_id!r}, as {taken[base]} has {base!r}: use that id in "
                    "doc_ids, or rename one of the files.")


def load_documents(folder) -> tuple[list[dict], list[str]]:
    """(documents, warnings): one document {id, title, body, path} per readable file directly inside
    the folder, in id order.

    id: the file name without extension, slugified and made unique; title: the first heading (a
    Markdown '#' line, a Word Title/Heading paragraph, HTML's <title> or <h1>), else the file name;
    body: plain text, paragraphs separated by blank lines. Files that give no text, and files of
    other types (one warning lists them), are left out with a warning; hidden files silently.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds your documents "
                                "(.md, .txt, .pdf, .docx, .html).")
    files = sorted(folder.iterdir(), key=lambda p: (slugify(p.stem), p.name))
    docs, notes, taken = [], [], {}
    for path in (p for p in files if _converter(p)):
        try:
            title, body = _read(path)
        except _Unreadable as err:
            notes.append(f"Left out {path.name}: {err}")
            continue
        doc_id, note = _unique_id(path, taken)
        taken[doc_id] = path.name
        notes += [note] if note else []
        title = title or path.stem.replace("_", " ").replace("-", " ")
        docs.append({"id": doc_id, "title": title, "body": body or title, "path": str(path)})
    others = [p.name for p in files if p.is_file() and not p.name.startswith(".") and not _converter(p)]
    if others:
        names = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
        notes.append(f"Left out {len(others)} file(s) of other types ({names}): save a copy as .md, .txt, "
                     ".pdf, .docx or .html to include one.")
    if not docs:
        raise ValueError(f"{folder} has no readable document: put one document per .md, .txt, .pdf, .docx "
                         "or .html file there." + "".join(f"\n  {n}" for n in notes))
    return docs, notes


def _text(doc: dict) -> str:
    return f"{doc['title']}\n\n{doc['body']}"


# ---------------------------------------------------------------- questions

class InputError(ValueError):
    """A question file that cannot be used as it is: the message names the file and line and says what
    to fix."""


def _error(path: Path, line: int | None, message: str) -> InputError:
    return InputError(f"{path}{f', line {line}' if line else ''}: {message}")


def _jsonl_rows(path: Path, text: str):
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            raise _error(path, line, f"invalid JSON ({err.msg}, column {err.colno}): each line is one object "
                         'such as {"question": "...", "answer": "...", "key_facts": ["..."]}.') from None
        if not isinstance(row, dict):
            raise _error(path, line, "each line must be one JSON object {...}, not a list or a value.")
        yield line, row


def _csv_facts(cell: str) -> list:
    """'45 days|forty-five days; receipt' -> [['45 days', 'forty-five days'], 'receipt']: facts are
    separated by ';', the accepted forms of one fact by '|' (the first is canonical)."""
    facts = []
    for fact in cell.split(";"):
        forms = [f.strip() for f in fact.split("|") if f.strip()]
        if forms:
            facts.append(forms[0] if len(forms) == 1 else forms)
    return facts


def _csv_rows(path: Path, text: str):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in ("question", "key_facts") if c not in (reader.fieldnames or [])]
    if missing:
        raise _error(path, 1, f"the header has no {' or '.join(map(repr, missing))} column: the first line "
                     "must name the columns question, answer, key_facts (and optionally id, doc_ids, "
                     "yes_no, split).")
    for row in reader:
        line = reader.line_num  # the file's line, the header being line 1 (where the row ends)
        if None in row:
            raise _error(path, line, "more cells than columns: put quotes around a cell that holds a comma.")
        row = {k: (v or "").strip() for k, v in row.items()}
        if not any(row.values()):
            continue
        row["key_facts"] = _csv_facts(row["key_facts"])
        row["doc_ids"] = [d.strip() for d in row.get("doc_ids", "").split(";") if d.strip()]
        # an empty optional cell is a field not given; an empty question is reported as such
        yield line, {k: v for k, v in row.items() if v != "" or k in ("question", "key_facts")}


def _choice(path: Path, line: int, row: dict, field: str, allowed: tuple) -> str | None:
    """The field's value in lower case, one of `allowed`, or None when not given."""
    value = row.get(field)
    value = value.strip().lower() if isinstance(value, str) else value
    if value not in (None, *allowed):
        raise _error(path, line, f"{field} must be {', '.join(allowed)} or empty, not {row[field]!r}.")
    return value


def _check_facts(path: Path, line: int, facts) -> list:
    if not isinstance(facts, list):
        raise _error(path, line, 'key_facts must be a list, such as ["45 days"] or [["45 days", "forty-five '
                     'days"]] for a fact with two accepted forms.')
    try:
        for fact in facts:
            fact_forms(fact)
    except ValueError as err:
        raise _error(path, line, f"{err}.") from None
    return facts


def _check_doc_ids(path: Path, line: int, ids, known: list[str]) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
        raise _error(path, line, 'doc_ids must be a list of document ids, such as ["returns-policy"].')
    for d in ids:
        if d not in known:
            close = difflib.get_close_matches(d, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _error(path, line, f"doc_ids names {d!r}, which is no document: {hint}A document's id is its "
                         "file name without extension, in lower case with '-' for spaces and punctuation.")
    return ids


def _check_question(path: Path, line: int, row: dict, doc_ids: list[str]) -> dict:
    """The row as a question {id, question, answer, key_facts, yes_no, doc_ids, split, line}."""
    for field in ("question", "key_facts"):
        if field not in row:
            raise _error(path, line, f"no {field!r}: every question needs question and key_facts (a list, "
                         "empty only for a yes/no question that gives yes_no).")
    question = row["question"]
    if not isinstance(question, str) or not question.strip():
        raise _error(path, line, "the question is empty: write the question, or delete the line.")
    facts = _check_facts(path, line, row["key_facts"])
    yes_no = _choice(path, line, row, "yes_no", ("yes", "no"))
    if not facts and yes_no is None:
        raise _error(path, line, "no key facts and no yes/no answer: give the key facts a right answer must "
                     "contain (for a yes/no question, the fact that decides it, or at least yes_no).")
    split = _choice(path, line, row, "split", SIDES)
    ids = _check_doc_ids(path, line, row.get("doc_ids") or [], doc_ids)
    answer = row.get("answer", "")
    if not isinstance(answer, str):
        raise _error(path, line, "answer must be text.")
    qid = row.get("id")
    return {"id": str(qid) if qid not in (None, "") else f"q{line}", "question": question.strip(),
            "answer": answer.strip(), "key_facts": facts, "yes_no": yes_no, "doc_ids": ids, "split": split,
            "line": line}


def _lines(questions: list[dict]) -> str:
    lines = [str(q["line"]) for q in questions]
    return ", ".join(lines[:10]) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def load_questions(path, docs: list[dict]) -> tuple[list[dict], list[str]]:
    """(questions, warnings) from a .jsonl or .csv file, each question checked against the documents.

    JSONL: one object per line with question, key_facts (each fact a string or a list of accepted
    forms) and optionally answer, id, doc_ids, yes_no ("yes", "no" or null), split ("train", "dev",
    "eval"). CSV: the same columns; in key_facts facts are separated by ';' and the accepted forms of
    one fact by '|'; doc_ids by ';'. Raises InputError for anything that would stop or spoil the run;
    warns of a key fact that no document contains (a typo, or a form the documents do not use),
    questions without an answer, and yes/no questions without a key fact.
    """
    path = Path(path)
    if not path.is_file():
        raise _error(path, None, "no such file: pass the .jsonl or .csv file that holds your questions.")
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise _error(path, None, "questions come in a .jsonl file (one JSON object per line) or a .csv file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _error(path, None, "not UTF-8 text: save it again as UTF-8 (a spreadsheet's 'CSV UTF-8').") from None
    rows = (_jsonl_rows if path.suffix.lower() == ".jsonl" else _csv_rows)(path, text)
    doc_ids = [d["id"] for d in docs]
    questions = [_check_question(path, line, row, doc_ids) for line, row in rows]
    if not questions:
        raise _error(path, None, "no questions in the file: write one question per line.")
    given = [q for q in questions if q["split"]]
    if given and len(given) < len(questions):
        first = next(q for q in questions if not q["split"])
        raise _error(path, first["line"], "no split, while other lines give one: give a split (train, dev, "
                     "eval) on every line, or on none to have the questions split by document.")
    seen = {}
    for q in questions:
        if q["id"] in seen:
            raise _error(path, q["line"], f"the id {q['id']!r} is also on line {seen[q['id']]}: ids must differ.")
        seen[q["id"]] = q["line"]
    texts = [_text(d) for d in docs]
    notes = [f"{path}, line {q['line']}: no document contains the key fact {fact!r} (in any accepted form): "
             "a typo? Correct it, or add the form the documents use as an accepted form."
             for q in questions for fact in q["key_facts"] if not any(has_fact(t, fact) for t in texts)]
    unanswered = [q for q in questions if not q["answer"]]
    if unanswered:
        notes.append(f"{path}: no answer on line(s) {_lines(unanswered)}: fine-tuning learns from the answers "
                     "of training questions, so write them (scoring needs only the key facts).")
    bare = [q for q in questions if q["yes_no"] and not q["key_facts"]]
    if bare:
        notes.append(f"{path}: yes/no question(s) without a key fact on line(s) {_lines(bare)}: they are scored "
                     "on the yes or no plus a few words of support, which is weaker; add the fact that "
                     "decides each.")
    return questions, notes


# ---------------------------------------------------------------- split

def _about(question: dict, texts: dict) -> list[str]:
    """The documents a question is about: its doc_ids, else those that contain all its key facts."""
    if question["doc_ids"] or not question["key_facts"]:
        return list(question["doc_ids"])
    return [d for d, t in texts.items() if all(has_fact(t, f) for f in question["key_facts"])]


def _groups(abouts: list[list[str]]) -> dict:
    """document -> its group: documents that one question is about stay together (union-find)."""
    parent = {}

    def root(d):
        parent.setdefault(d, d)
        while parent[d] != d:
            d = parent[d]
        return d

    for ids in abouts:
        for d in ids[1:]:
            parent[root(d)] = root(ids[0])
        if ids:
            root(ids[0])  # a document on its own is a group too
    return {d: root(d) for d in parent}


def _shares(dev: float, eval: float, need_training: bool) -> dict:
    if not (0 <= dev and 0 < eval and dev + eval <= 1) or (need_training and dev + eval >= 1):
        raise ValueError(f"need 0 <= dev, 0 < eval and dev + eval < 1 (= 1 without training), "
                         f"got {dev} and {eval}")
    if not need_training:  # RAG alone learns nothing from questions: all of them measure
        return {"train": 0.0, "dev": dev / (dev + eval), "eval": eval / (dev + eval)}
    return {"train": 1 - dev - eval, "dev": dev, "eval": eval}


def _by_document(sizes: dict, shares: dict, seed: int) -> dict:
    """group -> side, from group -> its number of questions: groups in a seeded order, each to the side
    furthest below its share of questions; eval, train and dev (those with a share) get one group first."""
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    firsts = [s for s in ("eval", "train", "dev") if shares[s] > 0]
    side_of, counts = {}, dict.fromkeys(SIDES, 0)
    total = sum(sizes.values())
    for i, group in enumerate(order):
        side = firsts[i] if i < len(firsts) else max(SIDES, key=lambda s: shares[s] * total - counts[s])
        side_of[group] = side
        counts[side] += sizes[group]
    return side_of


def _hashed_side(qid: str, shares: dict, seed: int) -> str:
    """A side for a question that no document is known for: stable for a seed, whatever the other rows."""
    u = int(hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest()[:12], 16) / 16 ** 12
    if u < shares["train"]:
        return "train"
    return "dev" if u < shares["train"] + shares["dev"] else "eval"


def _summary(split: dict, by: str, seed: int, unmatched: int) -> str:
    head = f"Split by document (seed {seed})" if by == "document" else "Split as given in the question file"
    n = sum(len(split[s]) for s in SIDES)
    lines = [f"{head}: {n} questions."]
    for side in SIDES:
        qs, ids = split[side], split["documents"][side]
        held = f", {sum(q['heldout'] for q in qs)} held-out" if side != "train" else ""
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        lines.append(f"  {side:<5} {len(qs):4d} questions{held}; {len(ids)} documents: {shown or '-'}")
    if unmatched:
        placed = "placed by a seeded hash, and " if by == "document" else ""
        lines.append(f"  {unmatched} question(s) without doc_ids match no document by their key facts: "
                     f"{placed}counted as not held-out.")
    return "\n".join(lines)


def _check_sides(split: dict, by: str, need_training: bool) -> None:
    """Eval questions, and training questions when something is trained: else say how to get them."""
    for side in ("eval", "train") if need_training else ("eval",):
        if split[side]:
            continue
        fix = (f"give some questions the split {side}" if by == "file" else "the questions are about too few "
               "documents to split by document: add questions about other documents, or give every question "
               "a split (train, dev, eval)")
        rag = "; or compare without fine-tuning (RAG needs no training question)" if side == "train" else ""
        raise InputError(f"no {side} question: {fix}{rag}.")


def split_questions(questions: list[dict], docs: list[dict], seed: int = 0, dev: float = 0.2, eval: float = 0.4,
                    need_training: bool = True) -> dict:
    """{"train", "dev", "eval": questions, "documents": side -> doc ids, "by", "summary"}.

    Without a split in the file, the split is by document: all questions about one document (and
    about the documents that share a question with it) go to the same side, in seeded shares of the
    questions (dev, eval, the rest train). A question is about its doc_ids, else about the documents
    that contain all its key facts; one about none goes to a side by a seeded hash. With
    need_training=False (RAG alone), train stays empty. A split given in the file is used as it is.

    Each question comes back with `split`, `about` (its documents), `heldout` (a dev or eval question
    about documents that no training question is about) and `kind`: original (train), heldout, unseen
    (about a training document) or unmatched (no document known), as in the book's data.
    """
    shares = _shares(dev, eval, need_training)
    texts = {d["id"]: _text(d) for d in docs}
    abouts = {q["id"]: _about(q, texts) for q in questions}
    by = "file" if any(q["split"] for q in questions) else "document"
    if by == "file":
        side_of = {q["id"]: q["split"] for q in questions}
    else:
        group = _groups(list(abouts.values()))
        of_question = {qid: group[ids[0]] for qid, ids in abouts.items() if ids}
        sides = _by_document(Counter(of_question.values()), shares, seed)
        side_of = {qid: sides[of_question[qid]] if qid in of_question else _hashed_side(qid, shares, seed)
                   for qid in abouts}
    train_docs = {d for q in questions if side_of[q["id"]] == "train" for d in abouts[q["id"]]}
    split = {side: [] for side in SIDES}
    for q in questions:
        side, about = side_of[q["id"]], abouts[q["id"]]
        heldout = side != "train" and bool(about) and not train_docs & set(about)
        kind = "original" if side == "train" else "heldout" if heldout else "unseen" if about else "unmatched"
        split[side].append({**q, "split": side, "about": about, "heldout": heldout, "kind": kind})
    _check_sides(split, by, need_training)
    split["documents"] = {s: sorted({d for q in split[s] for d in q["about"]}) for s in SIDES}
    split["by"] = by
    split["summary"] = _summary(split, by, seed, sum(not abouts[q["id"]] for q in questions))
    return split


# ---------------------------------------------------------------- enough eval questions?

def detectable(n: int, discordance: float = DISCORDANCE) -> float:
    """The difference in accuracy the paired test detects with 80 % power on n eval questions, at the
    assumed discordance."""
    return stats.detectable(n, round(discordance * n))


def questions_needed(diff: float, discordance: float = DISCORDANCE) -> int | None:
    """About how many eval questions the paired test needs to detect a difference `diff` in accuracy
    with 80 % power (None: more than MAX_QUESTIONS). "About": the exact test's power is not quite
    monotone in the number of questions.

    >>> questions_needed(0.2)
    72
    """
    if not 0 < diff <= 1:
        raise ValueError(f"diff must be in (0, 1], not {diff}")
    high = 10
    while detectable(high, discordance) > diff:  # doubling keeps the costly large n rare
        if high >= MAX_QUESTIONS:
            return None
        high = min(2 * high, MAX_QUESTIONS)
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if detectable(mid, discordance) <= diff else (mid, high)
    return high


def too_few(n_eval: int, diff: float = 0.2, discordance: float = DISCORDANCE) -> str | None:
    """None when n_eval questions let the paired (McNemar) test detect `diff` with 80 % power, else a
    sentence that says what they can detect and how many are needed. The power depends on the share
    of questions that exactly one system gets right: before a run it is assumed (DISCORDANCE).

    >>> print(too_few(20))                        # doctest: +NORMALIZE_WHITESPACE
    With 20 eval questions the paired test can only detect a difference in accuracy of 0.37 (80 % power,
    if 35 % of the questions are answered right by exactly one of the two systems); for 0.20 you need
    about 72.
    >>> too_few(100) is None
    True
    """
    need = questions_needed(diff, discordance)
    need_text = f"about {need}" if need else f"more than {MAX_QUESTIONS}"
    if n_eval < 1:
        return f"No eval questions: for a difference in accuracy of {diff:.2f} you need {need_text}."
    found = detectable(n_eval, discordance)
    if found <= diff:
        return None
    can = ("cannot detect any difference" if found >= 1 else
           f"can only detect a difference in accuracy of {found:.2f}")
    return (f"With {n_eval} eval questions the paired test {can} (80 % power, if {discordance * 100:.0f} % of "
            "the questions are answered right by exactly one of the two systems); "
            f"for {diff:.2f} you need {need_text}.")
