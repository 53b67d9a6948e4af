"""Which lab run wrote a results file, and whether the lab now running may read it.

`make labs` runs each lab with FTRAG_LAB (its name, e.g. `02_rag`) and FTRAG_RUN (a fresh run id)
set, and, once the lab passes, writes the run id to its stamp `_build/.labs/<lab>.ok`. Results
files record the lab and run that wrote them, so a reading lab can refuse:
- results of a lab that runs after it (its numbers would come from another build);
- results that the stamped, passing run of their writer did not write (left by an older run or
  by a run that failed).
A lab run by hand in JupyterLab has no FTRAG_LAB, and reads whatever results exist.

>>> check_readable("rag", {"lab": "02_rag", "run": "x"}, reader=None)   # by hand: no check
"""
import os
from pathlib import Path

from .paths import ROOT

# `make` sets FTRAG_STAMPS (a build with another reader keeps its own stamps)
STAMPS = Path(os.environ.get("FTRAG_STAMPS") or ROOT / "_build" / ".labs")


class StaleResults(RuntimeError):
    """A lab would read numbers that do not come from the current run of the labs before it."""


def current() -> dict:
    """The lab and run id of this process, as `make labs` set them (both None when run by hand)."""
    return {"lab": os.environ.get("FTRAG_LAB") or None, "run": os.environ.get("FTRAG_RUN") or None}


def stamped_run(lab: str) -> str | None:
    stamp = STAMPS / f"{lab}.ok"
    return stamp.read_text(encoding="utf-8").strip() if stamp.exists() else None


def check_readable(name: str, payload: dict, reader: str | None = "env") -> None:
    """Raise StaleResults unless the lab running now may read results/<name>.json (see module doc)."""
    reader = current()["lab"] if reader == "env" else reader
    if reader is None:
        return
    writer = payload.get("lab")
    if writer == reader:
        return
    fix = "run `make labs` (it re-runs every lab that is out of date, in order)"
    if writer is None:
        raise StaleResults(f"results/{name}.json does not say which lab wrote it: it predates this run; {fix}.")
    if writer > reader:  # lab names start with their two-digit number
        raise StaleResults(f"lab {reader} reads results/{name}.json, written by lab {writer}, which runs after "
                           "it: compare those numbers in a later lab instead.")
    if payload.get("run") != stamped_run(writer):
        raise StaleResults(f"results/{name}.json was written by run {payload.get('run')} of lab {writer}, "
                           f"not by its last passing run ({stamped_run(writer)}); {fix}.")
