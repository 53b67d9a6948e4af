"""What `python -m ftrag compare` writes: report.md, a self-contained report.html, answers.csv (every
answer with its score, to check the ruler by hand), results.json (the report's numbers) and run.json
(versions, input hashes, settings, machine).

Scope: turning a finished ftrag.compare.Run into files. The whole set is written into a temporary
folder next to the output and moved into place at the end, so an interrupted run leaves the previous
report (or none), never half of one.
"""
import base64
import hashlib
import html
import io
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import stats

MEASURES = {  # column of the report table -> (evaluate.rates metric, question kind)
    "key facts (eval)": ("key_fact_accuracy", None),
    "held-out documents": ("key_fact_accuracy", "heldout"),
    "citations": ("citation_accuracy", None),
}


def numbers(run) -> dict:
    """The report's numbers: per system and measure {value, low, high, n}; the paired tests; the rest."""
    from . import evaluate

    rates = {system: {label: evaluate.rates(table, kind).get(metric) for label, (metric, kind) in MEASURES.items()}
             for system, table in run.tables.items()}
    tests = {label: {k: r[k] for k in ("name_a", "name_b", "n", "a", "b", "a_only", "b_only", "diff", "diff_low", "diff_high",
                                       "p", "p_holm", "family", "detectable", "verdict")}
             for label, r in run.tests.items()}
    return {"rates": rates, "tests": tests, "chosen": run.chosen, "training": run.train, "timing": run.timing,
            "stage_seconds": run.stage_seconds,
            "split": {s: len(run.split[s]) for s in ("train", "dev", "eval")},
            "heldout_eval": sum(q["heldout"] for q in run.split["eval"]), "warnings": run.warnings}


def answers_table(run) -> pd.DataFrame:
    """Every eval answer of every system with its score and the question's gold key facts."""
    gold = {q["id"]: q for q in run.split["eval"]}
    cols = ["system", "id", "kind", "question", "answer", "answerable", "correct", "cited", "citation_ok", "seconds"]
    table = pd.concat([t[cols] for t in run.tables.values()], ignore_index=True)
    table["key_facts"] = [json.dumps(gold[i]["key_facts"], ensure_ascii=False) for i in table.id]
    table["doc_ids"] = [" ".join(gold[i]["about"]) for i in table.id]
    table["cited"] = [" ".join(c) for c in table.cited]
    return table


def _rate_text(r: dict | None) -> str:
    return "n/a" if not r or r.get("value") is None else stats.fmt_rate(r)


def result_table(run, nums: dict) -> pd.DataFrame:
    rows = {}
    for system in run.tables:
        row = {label: _rate_text(nums["rates"][system][label]) for label in MEASURES}
        t = run.timing.get(system, {})
        if t:
            row["latency, s (batch 1)"] = f"{t['latency_s']['median']:.2f}"
            row[f"s per query (batch {t['seconds_per_query']['batch']})"] = f"{t['seconds_per_query']['median']:.3f}"
        rows[system] = row
    return pd.DataFrame(rows).T


def figure_png(run, nums: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(run.tables)
    rs = [nums["rates"][s]["key facts (eval)"] for s in systems]
    values = [r["value"] for r in rs]
    errors = [[r["value"] - r["low"] for r in rs], [r["high"] - r["value"] for r in rs]]
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar(systems, values, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_ylim(0, 1)
    ax.set_ylabel("key-fact accuracy (eval)")
    ax.set_title(f"{nums['split']['eval']} eval questions, 95 % intervals")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def blocks(run, nums: dict, machine: dict) -> list:
    """The report as a list of ("h", text) / ("p", text) / ("ul", items) / ("table", DataFrame) / ("img", name)."""
    s = run.settings
    out = [("h", "Fine-tuning vs RAG on your documents"),
           ("p", f"{len(run.docs)} documents; {sum(nums['split'].values())} questions: {nums['split']['train']} "
                 f"training, {nums['split']['dev']} development, {nums['split']['eval']} eval "
                 f"({nums['heldout_eval']} about documents no training question is about). Reader: {machine['reader']}; "
                 f"seed {s.seed}{'; fast mode (a test run: few training steps, short answers)' if s.fast else ''}.")]
    if run.warnings:
        out += [("h2", "Warnings"), ("ul", run.warnings)]
    out += [("h2", "Results on the eval questions"),
            ("p", "Each rate with its 95 % Wilson interval; an answer is right when it states every key fact, "
                  "in any accepted form. Timings: medians of interleaved trials in this process."),
            ("table", result_table(run, nums)), ("img", "report.png")]
    if run.tests:
        family = len(run.tests)
        out += [("h2", f"Paired tests (exact McNemar on the same questions, Holm-corrected over {family})"),
                ("ul", [f"{label}: {r['verdict']} (difference {stats.fmt_diff(r)}, {stats.fmt_p(r['p_holm'])} "
                        "after Holm)." for label, r in run.tests.items()]),
                ("p", "\"No measurable difference\" never means equal: the test could only find a gap of about "
                      "the detectable difference given in brackets.")]
    out += [("h2", "Chosen on the development questions"),
            ("p", "One rule for every system (ftrag.tuning): the variant with the most key facts right; on a "
                  "tie, the simpler or shorter one."),
            ("ul", [f"{system}: kept {c['kept']} (" + ", ".join(f"{n}: {v}" for n, v in c["dev"].items()) + ")"
                    for system, c in run.chosen.items()])]
    if run.train:
        out += [("h2", "Training"),
                ("ul", [f"{system}: {t['examples']} examples, {t['steps']} steps in {t['seconds']:.0f} s "
                        f"({t['precision']}, final loss {t['final_loss']:.2f})" for system, t in run.train.items()])]
    out += [("h2", "Run"),
            ("ul", [f"{name}: {seconds:.0f} s" for name, seconds in run.stage_seconds.items()]
             + [f"machine: {machine['platform']}, {machine['cpus']} CPUs, torch {machine['torch']}, "
                f"device {machine['device']}"])]
    return out


def _md_table(df: pd.DataFrame) -> str:
    head = "| | " + " | ".join(map(str, df.columns)) + " |"
    lines = [head, "|" + "---|" * (len(df.columns) + 1)]
    lines += ["| " + " | ".join([str(i)] + [str(v) for v in row]) + " |" for i, row in zip(df.index, df.values)]
    return "\n".join(lines)


def markdown(parts: list) -> str:
    out = []
    for kind, body in parts:
        out.append({"h": lambda b: f"# {b}", "h2": lambda b: f"## {b}", "p": str,
                    "ul": lambda b: "\n".join(f"- {x}" for x in b), "table": _md_table,
                    "img": lambda b: f"![key-fact accuracy per system]({b})"}[kind](body))
    return "\n\n".join(out) + "\n"


def page(parts: list, png: bytes) -> str:
    """One HTML file with everything inside it (the figure as a data URI), for mail or a wiki."""
    image = "data:image/png;base64," + base64.b64encode(png).decode()
    render = {"h": lambda b: f"<h1>{html.escape(b)}</h1>", "h2": lambda b: f"<h2>{html.escape(b)}</h2>",
              "p": lambda b: f"<p>{html.escape(b)}</p>",
              "ul": lambda b: "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in b) + "</ul>",
              "table": lambda b: b.to_html(border=0),
              "img": lambda b: f'<img alt="key-fact accuracy per system" src="{image}">'}
    body = "\n".join(render[kind](b) for kind, b in parts)
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Fine-tuning vs RAG on your '
            f"documents</title><style>{style}</style></head><body>{body}</body></html>\n")


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def machine_facts(run) -> dict:
    import torch

    from . import models

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "device": models.device(), "reader": models.generator_name()}


def record(run, questions_path, machine: dict) -> dict:
    from . import lora

    settings = asdict(run.settings)
    return {"written": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine,
            "versions": lora.versions(), "settings": settings,
            "inputs": {"questions": {"path": str(questions_path), "sha256": _sha256(questions_path)},
                       "documents": {d["id"]: _sha256(d["path"]) for d in run.docs}},
            "split": {s: [q["id"] for q in run.split[s]] for s in ("train", "dev", "eval")}}


def write(out, run, questions_path) -> Path:
    """Write the report files into `out` (created, or replaced as a whole) and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nums, machine = numbers(run), machine_facts(run)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        parts, png = blocks(run, nums, machine), figure_png(run, nums)
        (staging / "report.png").write_bytes(png)
        (staging / "report.md").write_text(markdown(parts), encoding="utf-8")
        (staging / "report.html").write_text(page(parts, png), encoding="utf-8")
        answers_table(run).to_csv(staging / "answers.csv", index=False)
        (staging / "results.json").write_text(json.dumps(nums, indent=1, default=str), encoding="utf-8")
        (staging / "run.json").write_text(json.dumps(record(run, questions_path, machine), indent=1, default=str),
                                          encoding="utf-8")
        old = out.with_name(f".{out.name}-old")
        if out.exists():
            os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
