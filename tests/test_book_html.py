"""Checks on the built HTML book, as a reader would see it (run by `make test` after the strict build).

They read _build/html, so they are marked `html` and skipped by the unit-test stage.
"""
import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
import yaml

from browser import Browser, chromium  # tests/browser.py

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
pytestmark = pytest.mark.html


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


@pytest.fixture(scope="module", autouse=True)
def built():
    if not (HTML / "index.html").exists():
        pytest.fail("No _build/html/index.html: build the book first (make book-strict).")


def page(file: str) -> str:
    return (HTML / f"{file}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("file", toc_files())
def test_every_toc_page_is_built(file):
    assert (HTML / f"{file}.html").exists()


@pytest.mark.parametrize("file", [f for f in toc_files() if f.startswith("labs/")])
def test_lab_pages_show_executed_output_and_a_figure(file):
    html = page(file)
    assert "cell_output" in html, f"{file}: no executed output in the page"
    assert re.search(r"<img[^>]+(src=\"[^\"]*\.png\"|data:image/png)", html), f"{file}: no figure"
    assert "Traceback (most recent call last)" not in html


@pytest.mark.parametrize("file", [f for f in toc_files() if (ROOT / f"{f}.md").exists()
                                  and "{glue" in (ROOT / f"{f}.md").read_text()])
def test_chapters_show_glued_numbers_not_placeholders(file):
    html = page(file)
    assert "{glue" not in html and "glue:" not in html, f"{file}: a glue role was not replaced"
    assert "pasted-text" in html or "pasted-inline" in html, f"{file}: no glued value in the page"


def page_text(file: str) -> str:
    """What a reader sees of a page: no scripts, styles or tags, entities decoded."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", page(file), flags=re.S | re.I)
    return unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("file", toc_files())
def test_no_dollar_sign_was_eaten_by_the_math_renderer(file):
    """An unescaped '$' in prose pairs with the next one and turns the text between into math:
    "from $99 instead of $75" renders as "from \\(99 instead of \\)75". Escape prose dollars as \\$."""
    eaten = re.findall(r"\\\(\s*\d.{0,40}", page_text(file))
    assert not eaten, f"{file}: text rendered as math, an unescaped $ in the source: {eaten[:3]}"


# Phrases about the project's own work queue, and a script the repository does not have.
FORBIDDEN = ["we set as a goal", "our goal", "bar 0.8", "issue's bar", "train_lora.py"]


@pytest.mark.parametrize("file", toc_files())
def test_pages_speak_to_the_reader_not_about_the_work_queue(file):
    text = " ".join(page_text(file).split()).lower()
    found = [phrase for phrase in FORBIDDEN if phrase in text]
    assert not found, f"{file}: {found}"


@pytest.mark.parametrize("file", toc_files())
def test_no_path_of_the_build_machine_in_a_page(file):
    text = page_text(file)
    found = re.findall(r"(?<![\w.~])/(?:tmp|root|home)/\S*", text)
    if len(str(ROOT)) > 1:
        found += [m.group(0) for m in re.finditer(re.escape(str(ROOT)) + r"/\S*", text)]
    assert not found, f"{file}: paths of the machine that built it: {sorted(set(found))[:5]}"


@pytest.mark.parametrize("file", ["book/index", "labs/00_setup"])
def test_pages_render_in_a_real_browser(file, tmp_path):
    browser = need_chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600"]
    url = (HTML / f"{file}.html").as_uri()
    shot = tmp_path / "page.png"
    subprocess.run(flags + [f"--screenshot={shot}", url], check=True, timeout=120, capture_output=True)
    assert shot.exists() and shot.stat().st_size > 10_000, "the screenshot is missing or blank"
    dom = subprocess.run(flags + ["--dump-dom", url], check=True, timeout=120, capture_output=True,
                         text=True).stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "Fine-Tuning vs RAG" in title
    text = re.sub(r"<[^>]+>", " ", dom)
    assert "Traceback" not in text and "No key found" not in text
    keep = ROOT / "_build" / "screenshots"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / f"{file.replace('/', '_')}.png")


# What a reader must never see: a missing number, a widget's text stand-in, a p-value rounded to zero,
# a progress bar frozen at its start.
LEFTOVERS = {"NaN": r"\bNaN\b", "nan": r"\bnan\b", "p = 0.000": r"p = 0\.000", "widget repr": r"[VH]Box\(",
             "frozen progress bar": r"Loading weights: 0%|\b0%\|"}


@pytest.mark.parametrize("file", toc_files())
def test_no_nan_widget_repr_zero_p_or_progress_bar(file):
    text = " ".join(page_text(file).split())
    found = {name: re.search(pattern, text).group(0) for name, pattern in LEFTOVERS.items()
             if re.search(pattern, text)}
    assert not found, f"{file}: {found}"


def test_no_page_loads_a_script_or_stylesheet_from_outside_the_book():
    """Offline (a training room without a network) every page must work: nothing from a CDN."""
    outside = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"((?:https?:)?//[^\"]+)\"[^>]*>", re.I)
    found = {}
    for path in HTML.rglob("*.html"):
        for tag in outside.finditer(path.read_text(encoding="utf-8")):
            if tag.group(0).lower().startswith("<link") and "stylesheet" not in tag.group(0).lower() \
                    and "preload" not in tag.group(0).lower():
                continue  # a link element that loads nothing (canonical, icon of an outside site)
            found.setdefault(str(path.relative_to(HTML)), []).append(tag.group(1))
    assert not found, f"pages that load from outside the book: {dict(list(found.items())[:5])}"


def need_chromium() -> str:
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for the browser check: apt-get install -y chromium")
        pytest.skip("Chromium not installed (apt-get install chromium) — browser check skipped")
    return browser


@pytest.fixture
def offline_browser(tmp_path):
    need_chromium()
    browser = Browser(tmp_path / "profile")
    yield browser
    browser.close()


def test_formulas_render_offline(offline_browser):
    """The cost chapter's formulas, drawn with the network cut off: MathML boxes of real size, no raw TeX."""
    offline_browser.open((HTML / "book" / "performance-cost.html").as_uri())
    boxes = offline_browser.js("Array.from(document.querySelectorAll('math')).map(m => {"
                               "const r = m.getBoundingClientRect(); return [r.width, r.height]; })")
    assert len(boxes) >= 2, "the cost chapter shows no formula"
    assert all(w > 5 and h > 5 for w, h in boxes), f"a formula has no size on the page: {boxes}"
    body = offline_browser.js("document.body.innerText")
    assert "\\frac" not in body and "\\text{" not in body, "raw TeX on the page"
    offline_browser.js("document.querySelector('math[display=block]').scrollIntoView()")
    keep = ROOT / "_build" / "screenshots"
    keep.mkdir(exist_ok=True)
    offline_browser.screenshot(keep / "formulas_offline.png")
    assert (keep / "formulas_offline.png").stat().st_size > 10_000


def choose(browser, form_id: str, answers: dict) -> None:
    """Pick each answer (by its label) in the page's form, as a reader would, and fire change events."""
    browser.js(f"""(() => {{
        const answers = {json.dumps(answers)};
        for (const [name, label] of Object.entries(answers)) {{
            const select = document.querySelector('#{form_id} select[name=' + name + ']');
            select.selectedIndex = Array.from(select.options).findIndex(o => o.text === label);
            select.dispatchEvent(new Event('change'));
        }}
    }})()""")


def test_decision_form_follows_the_python_helper(offline_browser):
    from ftrag import decide

    evidence = decide.load_evidence()
    offline_browser.open((HTML / "labs" / "06_decision.html").as_uri())
    assert offline_browser.js("document.querySelectorAll('#ftrag-decide select').length") == len(decide.FORM_OPTIONS)
    answer_sets = [{}, {"knowledge_changes": "rarely", "behaviour_change": "required", "ml_expertise": "strong"},
                   {"knowledge_changes": "monthly", "behaviour_change": "required", "ml_expertise": "strong",
                    "must_show_sources": "yes", "latency_budget_ms": "3 s", "queries_per_month": "10k"}]
    seen = set()
    for labels in answer_sets:
        answers = dict(decide.FORM_DEFAULTS)
        for name, label in labels.items():
            answers[name] = dict(decide.FORM_OPTIONS[name])[label]
        full = {name: next(text for text, value in decide.FORM_OPTIONS[name] if value == answers[name])
                for name in decide.FORM_OPTIONS}
        choose(offline_browser, "ftrag-decide", full)
        page_choice = offline_browser.js("document.querySelector('#ftrag-decide .ftrag-choice').textContent")
        page_reasons = offline_browser.js(
            "Array.from(document.querySelectorAll('#ftrag-decide .ftrag-reason')).map(r => r.textContent)")
        rec = decide.recommend(**answers, evidence=evidence)
        assert page_choice == rec.choice, f"{labels}: the page says {page_choice}, the helper {rec.choice}"
        assert page_reasons == [r.text for r in rec.reasons], f"{labels}: the reasons differ"
        seen.add(page_choice)
    assert len(seen) >= 2, f"the form gave one recommendation for every answer set: {seen}"


def test_cost_form_computes_what_the_cost_model_does(offline_browser):
    from dataclasses import replace

    from ftrag import cost

    offline_browser.open((HTML / "labs" / "05_cost.html").as_uri())
    systems = cost.measured_inputs()
    for numbers in [{"queries_per_month": 200_000, "changes_per_month": 1},
                    {"queries_per_month": 5_000_000, "changes_per_month": 30, "speedup": 5,
                     "compute_usd_per_hour": 3, "hours_per_retrain": 2}]:
        offline_browser.js(f"""(() => {{
            for (const [name, value] of Object.entries({json.dumps(numbers)})) {{
                const input = document.querySelector('#ftrag-cost input[name=' + name + ']');
                input.value = String(value);
                input.dispatchEvent(new Event('input'));
            }}
        }})()""")
        page = dict(offline_browser.js("Array.from(document.querySelectorAll('#ftrag-cost tr[data-usd]'))"
                                       ".map(r => [r.dataset.system, parseFloat(r.dataset.usd)])"))
        a = replace(cost.Assumptions(), **numbers)
        for name, s in systems.items():
            assert page[name] == pytest.approx(cost.monthly_usd(s, a)["total"], rel=1e-9), (numbers, name)
        volume = offline_browser.js("document.querySelector('#ftrag-cost .ftrag-break-even').dataset.volume")
        expected = cost.break_even(systems["RAG"], systems["fine-tune"], a)
        assert (volume == "never") == (expected is None)
        if expected is not None:
            assert float(volume) == pytest.approx(expected, rel=1e-9)
