"""Every number glued into the built pages comes from the run whose outputs the lab pages show.

The book build writes each lab, exactly as its page shows it, to _build/jupyter_execute/labs/; those
notebooks are the ones nbval executed (tests/nbval_cache.py). These checks read the glue values out
of them, format each `{glue:text}` role of the chapters the way myst-nb does, and look for the result
in the built page; and they check that each lab's page prints the run time it glues.
Marked `html`: they need a built book (make book-strict).
"""
import json
import re
from html import unescape
from pathlib import Path

import pytest
from myst_nb.core.variables import format_plain_text

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
EXECUTED = BUILD / "jupyter_execute" / "labs"
pytestmark = pytest.mark.html
ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
PREFIX = "application/papermill.record/"


def glued(notebook: Path) -> dict:
    """key -> text/plain of every glue() call in an executed notebook (myst-nb moves them from the
    notebook's outputs to <name>.glue.json beside it)."""
    out = {}
    side = notebook.with_suffix(".glue.json")
    if side.exists():
        for name, o in json.loads(side.read_text(encoding="utf-8")).items():
            text = o.get("data", {}).get("text/plain")
            if text is not None:
                out[name] = "".join(text) if isinstance(text, list) else text
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            data = o.get("data", {})
            text = data.get(PREFIX + "text/plain", data.get("text/plain"))
            if name and text is not None:
                out[name] = "".join(text) if isinstance(text, list) else text
    return out


def text_of(html_file: Path) -> str:
    html = html_file.read_text(encoding="utf-8")
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def executed_labs() -> list[Path]:
    return sorted(EXECUTED.glob("[0-9][0-9]*_*.ipynb"))


@pytest.fixture(scope="module", autouse=True)
def built():
    if not executed_labs():
        pytest.fail("No executed labs in _build/jupyter_execute: build the book first (make book-strict).")


@pytest.mark.parametrize("notebook", executed_labs(), ids=lambda p: p.stem)
def test_a_lab_page_prints_the_run_time_it_glues(notebook):
    number = notebook.stem.split("_")[0]
    values = glued(notebook)
    assert f"lab{number}_seconds" in values, f"{notebook.stem} glues no lab{number}_seconds"
    seconds = format_plain_text(values[f"lab{number}_seconds"], ".0f")
    page = text_of(BUILD / "html" / "labs" / f"{notebook.stem}.html")
    printed = re.findall(r"lab ran in (\d+) s", page)
    assert printed == [seconds], f"{notebook.stem}: page prints {printed}, glue says {seconds} s"


def chapter_roles():
    """(chapter, lab notebook, key, format) for every cross-document glue role of the chapters."""
    for md in sorted((ROOT / "book").glob("*.md")):
        for role in ROLE.findall(md.read_text(encoding="utf-8")):
            ref, _, fmt = role.rpartition(":") if role.count(":") > 2 else (role, "", "")
            if "::" not in ref:
                ref, fmt = role, ""
            doc, key = ref.split("::")
            yield md.stem, (md.parent / doc).resolve().stem, key, fmt


def test_every_glued_chapter_value_is_the_one_the_lab_run_produced():
    labs = {p.stem: glued(p) for p in executed_labs()}
    missing, mismatched, checked = [], [], 0
    pages = {}
    for chapter, lab, key, fmt in chapter_roles():
        if lab not in labs or key not in labs[lab]:
            missing.append(f"{chapter}: {lab}::{key}")
            continue
        text = format_plain_text(labs[lab][key], fmt or "s")
        page = pages.setdefault(chapter, text_of(BUILD / "html" / "book" / f"{chapter}.html"))
        checked += 1
        if " ".join(text.split()) not in page:
            mismatched.append(f"{chapter}: {lab}::{key} = {text!r} is not in the page")
    assert not missing, "glue keys no executed lab holds:\n" + "\n".join(missing)
    assert not mismatched, "\n".join(mismatched[:20])
    assert checked > 100
