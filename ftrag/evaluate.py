"""The evaluation harness every lab shares (introduced in labs/00_setup.ipynb).

One function, `score`, turns a system's answers to a list of questions into a per-question table;
`summarise` reduces it to the book's metrics; `save_results` / `load_results` hand them between labs.

Metrics (all in 0..1 unless named otherwise):
- key_fact_accuracy: answerable questions whose answer contains every key fact (normalised match);
- citation_accuracy: answerable questions whose cited ids are non-empty and all among the gold ids;
- format_compliance: answers in the house format (body, then one `Source: [...]` line);
- persona: answers that end the body with the house sign-off and avoid off-persona phrases;
- house_terms: answers that use the house term where the gold response does (domain language);
- abstention: unanswerable questions the system declined to answer;
- false_abstention: answerable questions it declined;
- recall_at_k / mrr: the gold document among the retrieved ids (retrieval systems only);
- prompt_tokens, new_tokens, seconds: mean cost per query.
Leaves out: semantic or LLM-judged correctness (a wrong answer that happens to contain the key fact
counts as correct; key facts are chosen to make that rare).

>>> has_key_facts("Returns are accepted within 45 days.", ["45 days"])
True
>>> cited_ids("Yes. Happy trails!\\nSource: [returns-policy]")
['returns-policy']
"""
import json
import re
import time

import pandas as pd

from . import runs, stats
from .data import load_house_style
from .paths import RESULTS

SOURCE_LINE = re.compile(r"^Source: (none|\[[a-z0-9-]+\](, \[[a-z0-9-]+\])*)$")
MAX_BODY_WORDS = 60  # the style guide asks for <= 50; a little slack for the check
OFF_PERSONA = ("as an ai", "language model", "i think", "i believe")
ABSTAIN = re.compile(
    r"(knowledge base|context|documents?|information|sources?)\W+(\w+\W+){0,3}"
    r"(doesn'?t|does not|do not|don'?t) (cover|say|mention|contain|include|specify|have)|"
    r"(doesn'?t|does not) cover (that|this)|no information|not (mentioned|provided|specified) in|"
    r"(don'?t|do not) (have|know) (that|this|any|the|enough|information)|i'?m not sure|"
    r"(cannot|can'?t|unable to) (find|answer|provide)|^source: none$", re.I | re.M)


def normalise(text: str) -> str:
    """Lowercase, hyphens to spaces, thousands separators dropped, punctuation and spaces folded."""
    text = text.lower().replace("\u2019", "'").replace("-", " ").replace("\u2013", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"[^\w$%.'/:@+ ]", " ", text)
    text = re.sub(r"\.(?!\d)", " ", text)  # keep decimal points, drop full stops
    text = re.sub(r":(?!\d)", " ", text)  # keep times like 9:00, drop a colon ending a phrase
    return " ".join(text.split())


def has_key_facts(answer: str, key_facts: list[str]) -> bool:
    """True when every key fact appears in the answer after normalisation."""
    if not key_facts:
        raise ValueError("No key facts given: unanswerable questions are scored by abstention instead.")
    norm = f" {normalise(answer)} "
    return all(f" {normalise(f)} " in norm for f in key_facts)  # whole words: "45 days" is not in "145 days"


def cited_ids(answer: str) -> list[str]:
    """Document ids cited in square brackets, in order, without repeats."""
    return list(dict.fromkeys(re.findall(r"\[([a-z0-9][a-z0-9-]*)\]", answer)))


def split_body(answer: str) -> tuple[str, str]:
    lines = answer.strip().split("\n")
    return "\n".join(lines[:-1]).strip(), lines[-1].strip()


def format_ok(answer: str) -> bool:
    """House format: one plain body line of <= MAX_BODY_WORDS words, then `Source: [id]` or `Source: none`."""
    lines = [ln for ln in answer.strip().split("\n") if ln.strip()]
    if len(lines) != 2:
        return False
    body, source = lines[0].strip(), lines[1].strip()
    plain = not re.match(r"^([-*#>]|\d+[.)])", body)
    return plain and 0 < len(body.split()) <= MAX_BODY_WORDS and bool(SOURCE_LINE.match(source))


def persona_ok(answer: str, signoff: str) -> bool:
    body, _ = split_body(answer)
    body = body or answer.strip()
    return body.endswith(signoff) and not any(p in body.lower() for p in OFF_PERSONA)


def abstained(answer: str) -> bool:
    return bool(ABSTAIN.search(answer.strip()))


def house_term(response: str, terms: dict) -> str | None:
    """The first house term the gold response uses, or None."""
    low = response.lower()
    return next((t for t in terms if t.lower() in low), None)


def recall_at_k(retrieved: list[str], gold: list[str], k: int) -> float:
    """Share of gold ids among the first k retrieved ids."""
    if not gold:
        raise ValueError("recall@k needs at least one gold id")
    top = set(retrieved[:k])
    return sum(g in top for g in gold) / len(gold)


def reciprocal_rank(retrieved: list[str], gold: list[str]) -> float:
    return next((1 / (i + 1) for i, r in enumerate(retrieved) if r in gold), 0.0)


def score(questions: list[dict], answers: list, retrieved: list[list[str]] | None = None,
          system: str = "system", k: int = 3, style: dict | None = None) -> pd.DataFrame:
    """One row per question. answers: strings or models.Generation objects, in question order.

    retrieved: for retrieval systems, the ranked document ids given to the generator per question.
    style: the house style (sign-off, house terms); defaults to data/house_style.json.
    """
    if len(answers) != len(questions):
        raise ValueError(f"{len(answers)} answers for {len(questions)} questions: pass one answer per question")
    style = style or load_house_style()
    rows = []
    for i, (q, a) in enumerate(zip(questions, answers)):
        text = a if isinstance(a, str) else a.text
        answerable = bool(q["key_facts"])
        cited = cited_ids(text)
        term = house_term(q.get("response", ""), style["terms"]) if answerable else None
        row = {
            "system": system, "id": q["id"], "kind": q.get("kind", ""), "question": q["question"],
            "answer": text, "answerable": answerable,
            "correct": has_key_facts(text, q["key_facts"]) if answerable else abstained(text),
            "cited": cited,
            "citation_ok": (bool(cited) and set(cited) <= set(q["doc_ids"])) if answerable else None,
            "format_ok": format_ok(text), "persona_ok": persona_ok(text, style["signoff"]),
            "house_term_ok": (term.lower() in text.lower()) if term else None,
            "abstained": abstained(text),
            "prompt_tokens": getattr(a, "prompt_tokens", None), "new_tokens": getattr(a, "new_tokens", None),
            "seconds": getattr(a, "seconds", None),
        }
        if retrieved is not None and answerable:
            row[f"recall_at_{k}"] = recall_at_k(retrieved[i], q["doc_ids"], k)
            row["rr"] = reciprocal_rank(retrieved[i], q["doc_ids"])
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict:
    """The book's metrics for one system's table (see the module docstring)."""
    ans, una = table[table.answerable], table[~table.answerable]

    def mean(series):
        series = series.dropna()
        return float(series.astype(float).mean()) if len(series) else None

    out = {
        "questions": len(table),
        "key_fact_accuracy": mean(ans.correct),
        "citation_accuracy": mean(ans.citation_ok),
        "format_compliance": mean(table.format_ok),
        "persona": mean(table.persona_ok),
        "house_terms": mean(ans.house_term_ok),
        "abstention": mean(una.abstained),
        "false_abstention": mean(ans.abstained),
        "prompt_tokens": mean(table.prompt_tokens),
        "new_tokens": mean(table.new_tokens),
        "seconds": mean(table.seconds),
    }
    for col in table.columns:
        if col.startswith("recall_at_"):
            out[col] = mean(ans[col])
    if "rr" in table:
        out["mrr"] = mean(ans.rr)
    return out


def save_results(name: str, summary: dict, table: pd.DataFrame | None = None, **extra) -> str:
    """Write results/<name>.json (summary, extra numbers, per-question rows) and return its path."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"result name {name!r}: use lowercase letters, digits and underscores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "written": time.strftime("%Y-%m-%dT%H:%M:%S"), **runs.current(),
               "summary": summary, **extra}
    if table is not None:
        payload["rows"] = json.loads(table.to_json(orient="records"))
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return str(path)


def load_results(name: str) -> dict | None:
    """A saved result, or None when the lab that writes it has not run yet.

    Under `make labs` a lab may read only what the current run of an earlier lab wrote
    (`runs.check_readable` raises StaleResults otherwise).
    """
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    runs.check_readable(name, payload)
    return payload


# ---- uncertainty (ftrag.stats): each rate with its 95 % interval, paired tests between systems ----
RATE_COLUMNS = {  # metric: (column of the score table, rows it is a rate over)
    "key_fact_accuracy": ("correct", "answerable"), "citation_accuracy": ("citation_ok", "answerable"),
    "format_compliance": ("format_ok", "all"), "persona": ("persona_ok", "all"),
    "house_terms": ("house_term_ok", "answerable"), "abstention": ("abstained", "unanswerable"),
    "false_abstention": ("abstained", "answerable"),
}


def _rows(table: pd.DataFrame, over: str) -> pd.DataFrame:
    return {"all": table, "answerable": table[table.answerable], "unanswerable": table[~table.answerable]}[over]


def rates(table: pd.DataFrame, kind: str | None = None) -> dict:
    """metric -> {value, low, high, n}: the rate metrics of `summarise` with Wilson 95 % intervals.

    kind: only questions of that kind (e.g. "heldout"). A metric with no rows is left out.
    """
    if kind is not None:
        table = table[table.kind == kind]
    out = {}
    for metric, (column, over) in RATE_COLUMNS.items():
        rows = _rows(table, over)
        if column in rows and rows[column].notna().any():
            out[metric] = stats.rate(rows[column].tolist())
    return out


def paired(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str, column: str = "correct",
           over: str = "answerable", kind: str | None = None) -> dict:
    """Exact McNemar comparison of two systems' score tables on the questions both answered.

    The tables are matched by question id, so they must come from the same questions.
    """
    if kind is not None:
        a, b = a[a.kind == kind], b[b.kind == kind]
    a, b = _rows(a, over).set_index("id"), _rows(b, over).set_index("id")
    if set(a.index) != set(b.index):
        raise ValueError(f"{name_a} and {name_b} were scored on different questions: a paired test "
                         "needs both systems' answers to the same questions.")
    return stats.compare(a[column].astype(bool).tolist(), b.loc[a.index, column].astype(bool).tolist(),
                         name_a, name_b)
