"""Checks on the built HTML book, as a reader would see it (run by `make test` after the strict build).

They read _build/html, so they are marked `html` and skipped by the unit-test stage.
"""
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
import yaml

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


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.parametrize("file", ["book/index", "labs/00_setup"])
def test_pages_render_in_a_real_browser(file, tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for the browser check: apt-get install -y chromium")
        pytest.skip("Chromium not installed (apt-get install chromium) — browser check skipped")
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
