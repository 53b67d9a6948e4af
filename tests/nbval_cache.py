"""A pytest plugin: nbval's execution of a lab becomes the book's execution of it.

nbval runs every code cell of a notebook in a kernel and checks that none fails. This plugin keeps
the outputs of that run (text, figures, glue data) in the notebook's cells and, when every cell of
the notebook passed, stores the executed notebook in the book's jupyter-cache. The book build
(`execute_notebooks: cache`) then finds each lab in the cache, matched by the hash of its code
cells, and renders it without running it again.

    python -m pytest --nbval-lax -p tests.nbval_cache --nb-cache _build/.jupyter_cache labs/02_rag.ipynb

Leaves out: nbval's output comparison (the labs run with --nbval-lax) and failed notebooks (they are
never cached, so the book build cannot show a half-run lab).
"""
import time

import nbformat
import pytest
from nbval.plugin import IPyNbCell


def pytest_addoption(parser):
    parser.addoption("--nb-cache", default=None,
                     help="jupyter-cache folder to store each fully passed notebook in")


class _Run:
    """What one notebook's cells produced: passed cells, failures, seconds."""

    def __init__(self, nb):
        self.nb, self.passed, self.failed, self.seconds, self.count = nb, 0, 0, 0.0, 0
        self.cell_seconds: list[float] = []  # per code cell, to see where a lab's time goes


_runs: dict[str, _Run] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not isinstance(item, IPyNbCell):
        yield
        return
    t0 = time.perf_counter()
    outcome = yield
    run = _runs.setdefault(item.parent.nodeid, _Run(item.parent.nb))
    run.seconds += time.perf_counter() - t0
    run.cell_seconds.append(round(time.perf_counter() - t0, 1))
    run.count += 1
    # nbval keeps the cell's outputs in test_outputs; the cell object is the notebook's own.
    item.cell.outputs = [_as_output(o, run.count) for o in (item.test_outputs or [])]
    item.cell.execution_count = run.count
    if outcome.excinfo is None:
        run.passed += 1
    else:
        run.failed += 1


def _as_output(out, count: int):
    out = nbformat.from_dict(dict(out))
    if out.output_type == "execute_result":
        out.execution_count = count
    if out.output_type in ("display_data", "execute_result"):
        out.setdefault("metadata", {})
        # nbval skips the kernel's comm messages, so widget state is never saved: a widget view
        # would render as an empty box; its plain-text form (e.g. a finished progress bar) is kept.
        if len(out.data) > 1:
            out.data.pop("application/vnd.jupyter.widget-view+json", None)
    return out


def pytest_collection_modifyitems(session, config, items):
    files = {i.parent.nodeid for i in items if isinstance(i, IPyNbCell)}
    config._nb_expected = {f: sum(1 for i in items if isinstance(i, IPyNbCell) and i.parent.nodeid == f)
                           for f in files}


def pytest_sessionfinish(session, exitstatus):
    folder = session.config.getoption("--nb-cache")
    if not folder:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(folder)
    expected = getattr(session.config, "_nb_expected", {})
    for nodeid, run in _runs.items():
        if run.failed or run.passed != expected.get(nodeid):
            print(f"\nnbval_cache: {nodeid} not cached ({run.passed} of {expected.get(nodeid)} cells passed)")
            continue
        nbformat.validate(run.nb)
        path = session.config.rootpath / nodeid
        record = cache.cache_notebook_bundle(
            CacheBundleIn(run.nb, str(path), data={"execution_seconds": run.seconds}),
            check_validity=False, overwrite=True)
        slowest = sorted(enumerate(run.cell_seconds, 1), key=lambda c: -c[1])[:5]
        print(f"\nnbval_cache: {nodeid} executed in {run.seconds:.0f} s, cached as record {record.pk}; "
              "slowest code cells: " + ", ".join(f"#{i} {s:.0f} s" for i, s in slowest))

