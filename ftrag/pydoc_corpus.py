"""A corpus nobody in this project wrote: topics of Python's own language reference, for the "Your own
documents" lab and its test (`python -m ftrag compare DOCS data/pydoc_questions.jsonl`).

Scope: write the chosen entries of `pydoc_data.topics.topics` (topic name -> text, the pages that
`help("assert")` shows) into a folder, one `<topic>.txt` file per topic, text as is (stripped). The
topics ship with every CPython install, so the corpus is on every learner's machine without a
download. `data/pydoc_questions.jsonl` asks two questions about each topic in TOPICS.

Leaves out: reading the documents back (`ftrag.ingest.load_documents`) and other Python versions'
wording (the questions were written against Python 3.11's text; `load_questions` warns of a key fact
that a different text no longer contains).

>>> paths = write_corpus("pydoc_docs")                                   # doctest: +SKIP
"""
from pathlib import Path

from pydoc_data.topics import topics as _TEXTS

# Prose about behaviour with concrete facts (exception names, methods, numbers), two questions each.
TOPICS = ("assert", "break", "del", "return", "global", "nonlocal", "lambda", "for", "yield", "booleans",
          "truth", "integers", "imaginary", "exceptions", "raise", "augassign", "power", "shifting", "unary",
          "in")


def write_corpus(folder, topics=TOPICS) -> list[Path]:
    """Write `<topic>.txt` for each topic into the folder (created if needed); return the paths.

    Raises ValueError naming a topic that this Python's pydoc_data lacks, before writing anything.
    """
    missing = [t for t in topics if t not in _TEXTS]
    if missing:
        raise ValueError(f"this Python's pydoc_data.topics has no topic {', '.join(map(repr, missing))}: "
                         "pass topics= without it (sorted(pydoc_data.topics.topics) lists the names), "
                         "or use the Python the questions were written for (3.11).")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for topic in topics:
        path = folder / f"{topic}.txt"
        path.write_text(_TEXTS[topic].strip(), encoding="utf-8")
        paths.append(path)
    return paths
