"""A small cost model for RAG, a fine-tuned model and the hybrid (explained in labs/05_cost.ipynb).

Every amount is in US dollars and has three parts:
- per query: the compute time one answer takes (measured on this CPU as seconds per query amortised
  over the serving batch, divided by a speed-up factor to the production machine, times its hourly
  price), or, when serving through an API, its prompt and generated tokens times the API's prices;
- per knowledge change: re-indexing (systems that retrieve) or retraining (systems that keep the
  knowledge in their weights), each as compute plus the engineer hours around it;
- up front: building the system (engineer hours) plus the first training run and index build,
  spread over `amortise_months` so it can be added to a monthly bill.
Monthly cost is then linear in query volume, so the cost lines of two systems cross at most once;
`break_even` gives that volume in closed form.

Measured numbers (`SystemInputs`) come from the labs' results/*.json via `measured_inputs`, which
records where each number came from. Times per query come from results/timing.json (labs/04_hybrid.ipynb
times every system side by side): the cost model uses `seconds_per_query`, the batch's time divided by
its size; `latency_seconds`, one query alone at batch size 1, is what a user waits and what the
decision helper checks against a latency budget. Prices, volumes and hours are `Assumptions`: each has a documented
default that is an illustration, not a quote — put in your own.

Leaves out: idle capacity (a GPU you pay for while no query comes), storage, monitoring, labelling
training data, and the cost of wrong answers, which is often the largest.

>>> rag = SystemInputs("RAG", prompt_tokens=400, new_tokens=40, seconds_per_query=0.72,
...                    training_seconds=0, index_build_seconds=6, index_update_seconds=0.4,
...                    retrains_per_change=0)
>>> a = Assumptions(compute_usd_per_hour=1.0, speedup=20)
>>> round(per_query_usd(rag, a) * 1e6, 2)          # 0.72 s / 20 = 36 ms of a $1/h machine
10.0
>>> format_usd(800.0009), format_usd(0.003612), volume_text(1.668e9)
('$800', '$0.0036', '1.7 billion')
"""
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .paths import RESULTS

SYSTEMS = ("RAG", "fine-tune", "hybrid")
SERVING = ("self-hosted", "api")


@dataclass(frozen=True)
class SystemInputs:
    """What one system costs in time and tokens, as measured on this machine."""
    name: str
    prompt_tokens: float          # mean prompt tokens per query (retrieved context included)
    new_tokens: float             # mean generated tokens per query
    seconds_per_query: float      # wall time per query on this CPU in a batch: the batch's time / its size
    training_seconds: float       # one full training run; 0 for a system that is not trained
    index_build_seconds: float    # indexing the whole knowledge base; 0 for a system without an index
    index_update_seconds: float   # applying one knowledge update to the index; 0 without an index
    retrains_per_change: float    # 1 when a knowledge change needs a new training run, 0 when re-indexing is enough
    latency_seconds: float | None = None  # one query alone (batch size 1) on this CPU; None when not measured
    sources: dict = field(default_factory=dict, compare=False)  # field name -> where the number came from

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "latency_seconds" and value is None:
                continue
            if f.name not in ("name", "sources") and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{self.name}: {f.name} must be a number >= 0, not {value!r}")

    @property
    def uses_index(self) -> bool:
        return self.index_build_seconds > 0 or self.index_update_seconds > 0


def _assume(default, doc: str, **kw):
    """A dataclass field whose meaning travels with it (labs/05 prints the table from these)."""
    if callable(default):
        return field(default_factory=default, metadata={"doc": doc}, **kw)
    return field(default=default, metadata={"doc": doc}, **kw)


@dataclass(frozen=True)
class Assumptions:
    """Prices, volumes and effort that are not measured here. Defaults are illustrations: change them."""
    compute_usd_per_hour: float = _assume(
        1.0, "price of one machine-hour for serving and training (the order of an entry-level cloud GPU)")
    speedup: float = _assume(
        20.0, "how many times faster that machine runs this model than the 2 CPU cores measured here "
              "(a guess for a GPU; set 1 with a 2-vCPU VM's price to price this CPU itself)")
    serving: str = _assume("self-hosted", "'self-hosted' prices compute time; 'api' prices tokens")
    usd_per_1k_prompt_tokens: float = _assume(0.00015, "API price per 1,000 prompt tokens (a small model)")
    usd_per_1k_new_tokens: float = _assume(0.0006, "API price per 1,000 generated tokens")
    queries_per_month: float = _assume(50_000, "questions answered per month")
    changes_per_month: float = _assume(4.0, "knowledge changes per month (a new policy, a price change)")
    engineer_usd_per_hour: float = _assume(100.0, "cost of one engineer-hour")
    hours_per_retrain: float = _assume(8.0, "engineer hours per retraining: data, training, evaluation, "
                                            "versioning, roll-out")
    hours_per_reindex: float = _assume(0.5, "engineer hours per re-index: apply the changed documents, "
                                            "spot-check answers")
    setup_hours: dict = _assume(lambda: {"RAG": 40.0, "fine-tune": 80.0, "hybrid": 120.0},
                                "engineer hours to build each system once (the hybrid needs both pipelines)")
    amortise_months: float = _assume(12.0, "months over which the up-front cost is spread")

    def table(self) -> list[dict]:
        """One row per assumption: name, value, meaning."""
        return [{"assumption": f.name, "value": getattr(self, f.name), "meaning": f.metadata["doc"]}
                for f in fields(self)]

    def __post_init__(self):
        if self.serving not in SERVING:
            raise ValueError(f"serving must be one of {SERVING}, not {self.serving!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("serving", "setup_hours"):
                continue
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number >= 0, not {value!r}")
        if self.speedup <= 0 or self.amortise_months <= 0:
            raise ValueError("speedup and amortise_months must be > 0")
        bad = {k: v for k, v in self.setup_hours.items() if not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ValueError(f"setup_hours must be numbers >= 0, not {bad}")


def _compute_usd(cpu_seconds: float, a: Assumptions) -> float:
    """Seconds measured on this CPU, priced on the production machine."""
    return cpu_seconds / a.speedup / 3600 * a.compute_usd_per_hour


def per_query_usd(s: SystemInputs, a: Assumptions) -> float:
    """The cost of answering one query."""
    if a.serving == "api":
        return (s.prompt_tokens * a.usd_per_1k_prompt_tokens + s.new_tokens * a.usd_per_1k_new_tokens) / 1000
    return _compute_usd(s.seconds_per_query, a)


def per_change_usd(s: SystemInputs, a: Assumptions) -> float:
    """The cost of one knowledge change: re-indexing and/or retraining, compute plus people."""
    retrain = s.retrains_per_change * (_compute_usd(s.training_seconds, a)
                                       + a.hours_per_retrain * a.engineer_usd_per_hour)
    reindex = (_compute_usd(s.index_update_seconds, a) + a.hours_per_reindex * a.engineer_usd_per_hour
               if s.uses_index else 0.0)
    return retrain + reindex


def upfront_usd(s: SystemInputs, a: Assumptions) -> float:
    """Building the system once: engineer hours, the first training run and the first index build."""
    if s.name not in a.setup_hours:
        raise ValueError(f"No setup_hours for {s.name!r}: give Assumptions(setup_hours={{{s.name!r}: hours, ...}})")
    return a.setup_hours[s.name] * a.engineer_usd_per_hour + _compute_usd(s.training_seconds + s.index_build_seconds, a)


def _check_volume(values, name: str):
    arr = np.asarray(values, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0, not {values!r}")
    return arr


def monthly_usd(s: SystemInputs, a: Assumptions, queries=None, changes=None) -> dict:
    """Monthly cost broken down: queries, knowledge changes, the up-front share, and their total.

    queries / changes default to the assumptions; either may be a numpy array (for plots)."""
    q, c = np.broadcast_arrays(_check_volume(a.queries_per_month if queries is None else queries, "queries"),
                               _check_volume(a.changes_per_month if changes is None else changes, "changes"))
    parts = {"queries": q * per_query_usd(s, a), "changes": c * per_change_usd(s, a),
             "upfront_share": np.full(q.shape, upfront_usd(s, a) / a.amortise_months)}
    parts["total"] = parts["queries"] + parts["changes"] + parts["upfront_share"]
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in parts.items()}


def break_even(first: SystemInputs, second: SystemInputs, a: Assumptions, changes=None) -> float | None:
    """Monthly query volume at which both systems cost the same, or None if their lines never cross
    at a positive volume (one is cheaper at every volume, or both grow equally fast).

    Monthly total = fixed + volume * per-query, so the crossing is (fixed_2 - fixed_1) / (per_1 - per_2)."""
    fixed = [monthly_usd(s, a, queries=0, changes=changes)["total"] for s in (first, second)]
    slope = per_query_usd(first, a) - per_query_usd(second, a)
    if slope == 0:
        return None
    volume = (fixed[1] - fixed[0]) / slope
    return volume if volume > 0 else None


def cheapest(systems: list[SystemInputs], a: Assumptions, queries, changes) -> np.ndarray:
    """Index (into systems) of the cheapest system on a grid of volumes x changes (same shapes broadcast)."""
    if not systems:
        raise ValueError("Give at least one system to compare.")
    return np.stack([monthly_usd(s, a, queries, changes)["total"] for s in systems]).argmin(axis=0)


# ---------------------------------------------------------------- numbers for a reader

def round_sig(value: float, digits: int = 2) -> float:
    """value rounded to `digits` significant figures: round_sig(1_668_034_512) == 1_700_000_000."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def volume_text(volume: float | None, digits: int = 2) -> str:
    """A query volume for a reader, to `digits` significant figures: '1.7 billion', '57,000', 'never'."""
    if volume is None or not math.isfinite(volume):
        return "never"
    v = round_sig(volume, digits)
    for size, word in [(1e12, "trillion"), (1e9, "billion"), (1e6, "million")]:
        if v >= size:
            return f"{v / size:,.{max(0, digits - 1 - math.floor(math.log10(v / size)))}f} {word}"
    return f"{v:,.0f}"


def break_even_words(volume: float | None) -> str:
    """A break-even volume as the cost chapter prints it."""
    return "at no volume" if volume is None else f"above about {volume_text(volume)} queries a month"


def format_usd(usd: float) -> str:
    """Dollars rounded for a reader: whole dollars from $100, cents from $1, two significant figures below."""
    if usd < 0:
        return "-" + format_usd(-usd)
    if usd >= 100:
        return f"${usd:,.0f}"
    if usd >= 1:
        return f"${usd:,.2f}"
    if usd == 0:
        return "$0"
    return f"${usd:.{max(2, 1 - math.floor(math.log10(usd)))}f}"


# ---------------------------------------------------------------- what a break-even rests on

def fixed_monthly_usd(s: SystemInputs, a: Assumptions, changes=None) -> float:
    """The part of the monthly bill that does not grow with queries: knowledge changes and the up-front share."""
    return monthly_usd(s, a, queries=0, changes=changes)["total"]


def break_even_table(first: SystemInputs, second: SystemInputs, a: Assumptions, changes=None) -> list[dict]:
    """Every number the break-even volume of `first` against `second` rests on, one row each:
    quantity, value (formatted for a reader), kind ('measured', 'assumed' or 'computed') and number.

    The break-even is (fixed_second - fixed_first) / (per_query_first - per_query_second): the rows give
    both fixed parts and both costs per query, and every measured or assumed number inside them."""
    c = a.changes_per_month if changes is None else float(changes)
    rows = []

    def row(quantity, number, text, kind):
        rows.append({"quantity": quantity, "value": text, "kind": kind, "number": number})

    for s in (first, second):
        if a.serving == "api":
            row(f"{s.name}: prompt tokens per query", s.prompt_tokens, f"{s.prompt_tokens:,.0f}", "measured")
            row(f"{s.name}: generated tokens per query", s.new_tokens, f"{s.new_tokens:,.0f}", "measured")
        else:
            row(f"{s.name}: seconds per query on this CPU (amortised over the serving batch)",
                s.seconds_per_query, f"{s.seconds_per_query:.3f} s", "measured")
        if s.retrains_per_change:
            row(f"{s.name}: a training run on this CPU", s.training_seconds,
                f"{s.training_seconds:,.0f} s", "measured")
    if a.serving == "api":
        row("API price per 1,000 prompt tokens", a.usd_per_1k_prompt_tokens,
            f"${a.usd_per_1k_prompt_tokens:g}", "assumed")
        row("API price per 1,000 generated tokens", a.usd_per_1k_new_tokens,
            f"${a.usd_per_1k_new_tokens:g}", "assumed")
    else:
        row("speed-up of the serving machine over this CPU", a.speedup, f"{a.speedup:g}x", "assumed")
        row("price of a machine-hour", a.compute_usd_per_hour, format_usd(a.compute_usd_per_hour), "assumed")
    row("knowledge changes per month", c, f"{c:g}", "assumed")
    row("engineer hours per retraining", a.hours_per_retrain, f"{a.hours_per_retrain:g} h", "assumed")
    row("engineer hours per re-index", a.hours_per_reindex, f"{a.hours_per_reindex:g} h", "assumed")
    row("price of an engineer-hour", a.engineer_usd_per_hour, format_usd(a.engineer_usd_per_hour), "assumed")
    for s in (first, second):
        hours = a.setup_hours.get(s.name, float("nan"))
        row(f"{s.name}: engineer hours to build it", hours, f"{hours:g} h", "assumed")
    row("months the build cost is spread over", a.amortise_months, f"{a.amortise_months:g}", "assumed")
    for s in (first, second):
        row(f"{s.name}: cost of one knowledge change", per_change_usd(s, a), format_usd(per_change_usd(s, a)),
            "computed")
        fixed = fixed_monthly_usd(s, a, c)
        row(f"{s.name}: fixed cost a month (changes + build share)", fixed, format_usd(fixed), "computed")
        per_million = per_query_usd(s, a) * 1e6
        row(f"{s.name}: cost per million queries", per_million, format_usd(per_million), "computed")
    volume = break_even(first, second, a, c)
    row("break-even: difference of the fixed costs / difference of the costs per query",
        float("nan") if volume is None else volume,
        "never" if volume is None else f"{volume_text(volume)} queries a month", "computed")
    return rows


# The assumptions that can move a break-even; setup_hours is scaled as a whole.
SENSITIVE = ("speedup", "compute_usd_per_hour", "usd_per_1k_prompt_tokens", "usd_per_1k_new_tokens",
             "changes_per_month", "engineer_usd_per_hour", "hours_per_retrain", "hours_per_reindex",
             "setup_hours", "amortise_months")


def scaled(a: Assumptions, name: str, factor: float) -> Assumptions:
    """The assumptions with one of them multiplied by factor (setup_hours: every system's hours)."""
    if name == "setup_hours":
        return replace(a, setup_hours={k: v * factor for k, v in a.setup_hours.items()})
    if name not in {f.name for f in fields(a)} or name == "serving":
        raise ValueError(f"Unknown numeric assumption {name!r}; choose among {', '.join(SENSITIVE)}")
    return replace(a, **{name: getattr(a, name) * factor})


def sensitivity(first: SystemInputs, second: SystemInputs, a: Assumptions, factor: float = 2.0,
                names=SENSITIVE) -> list[dict]:
    """The break-even with each assumption divided and multiplied by `factor`, the others unchanged,
    largest move first. Rows: assumption, value, low (break-even at value / factor), high (at value *
    factor); None where the lines do not cross. Assumptions that do not move it are left out."""
    if factor <= 1:
        raise ValueError(f"factor must be > 1, not {factor!r}")
    base = break_even(first, second, a)
    rows = []
    for name in names:
        low = break_even(first, second, scaled(a, name, 1 / factor))
        high = break_even(first, second, scaled(a, name, factor))
        if low == base and high == base:
            continue
        ends = [v for v in (low, high) if v is not None]
        if base is None or len(ends) < 2:
            spread = math.inf
        else:
            spread = abs(math.log(ends[1] / ends[0]))
        if spread < 1e-9:
            continue
        rows.append({"assumption": name, "value": a.setup_hours if name == "setup_hours" else getattr(a, name),
                     "low": low, "high": high, "spread": spread})
    return sorted(rows, key=lambda r: -r["spread"])


def break_even_grid(first: SystemInputs, second: SystemInputs, a: Assumptions,
                    rows: tuple[str, list], columns: tuple[str, list]) -> np.ndarray:
    """Break-even volumes on a grid of two assumptions: rows = (name, values), columns = (name, values);
    NaN where the lines do not cross. Values replace the assumption (setup_hours: a factor)."""
    (row_name, row_values), (col_name, col_values) = rows, columns

    def set_(asm, name, value):
        return scaled(asm, name, value) if name == "setup_hours" else replace(asm, **{name: value})

    out = np.full((len(row_values), len(col_values)), np.nan)
    for i, rv in enumerate(row_values):
        for j, cv in enumerate(col_values):
            v = break_even(first, second, set_(set_(a, row_name, rv), col_name, cv))
            out[i, j] = np.nan if v is None else v
    return out


# ---------------------------------------------------------------- a quick stand-in measurement

def quick_measure(n_questions: int = 4, max_new_tokens: int = 32) -> dict[str, dict]:
    """Stand-ins for missing results, measured now (well under a minute on 2 idle CPU cores): n
    closed-book and n RAG answers in one batch and one of each alone (batch size 1), one index build and
    one update, one LoRA training step.

    The base model stands in for the fine-tuned one (a merged adapter costs the same per token); a
    training run is assumed to see as many examples as `lora.train_or_load`'s default recipe, and the
    hybrid's training time is the closed-book step's time per token times its longer examples. All
    three stand-ins are named in the returned "notes"."""
    import inspect
    import time

    from . import data, lora, models
    from .prompts import closed_book_messages, rag_messages
    from .retrieval import Retriever

    questions, train = data.load_questions("eval")[:n_questions], data.load_questions("train")[:n_questions]
    if not questions or not train:
        raise ValueError("No questions to time: check data/questions.jsonl.")
    retriever = Retriever()
    t0 = time.perf_counter()
    retriever.build(data.load_documents())
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = retriever.search_many([q["question"] for q in questions], k=3)
    retrieval_s = (time.perf_counter() - t0) / len(questions)

    def answer(conversations):
        out = models.generate_many(conversations, max_new_tokens=max_new_tokens, batch_size=len(conversations))
        t0 = time.perf_counter()
        models.generate_many(conversations[:1], max_new_tokens=max_new_tokens, batch_size=1)
        return {"prompt_tokens": float(np.mean([g.prompt_tokens for g in out])),
                "new_tokens": float(np.mean([g.new_tokens for g in out])),
                "seconds_per_query": float(np.mean([g.seconds for g in out])),
                "latency_seconds": time.perf_counter() - t0}

    models.generate_many([closed_book_messages(questions[0]["question"])], max_new_tokens=4)  # warm-up, not timed
    closed = answer([closed_book_messages(q["question"]) for q in questions])
    rag = answer([rag_messages(q["question"], h) for q, h in zip(questions, hits)])
    rag["seconds_per_query"] += retrieval_s
    rag["latency_seconds"] += retrieval_s
    t0 = time.perf_counter()
    retriever.replace(data.load_updates())
    update_s = time.perf_counter() - t0

    recipe = inspect.signature(lora.train_or_load).parameters
    examples_seen = recipe["steps"].default * recipe["batch_size"].default
    tokenizer = models.load_generator()[1]

    def features(conversations):
        return lora.build_examples(tokenizer, [{"messages": c, "target": q["response"]} for c, q in zip(conversations, train)])

    closed_features = features([closed_book_messages(q["question"]) for q in train])
    rag_features = features([rag_messages(q["question"], h)
                             for q, h in zip(train, retriever.search_many([q["question"] for q in train], k=3))])
    step = lora.train(lora.add_lora(lora.lora_config()), closed_features, steps=1,
                      batch_size=len(closed_features), progress=False).seconds
    per_token = step / sum(len(f["input_ids"]) for f in closed_features)
    tokens_per_example = {name: np.mean([len(f["input_ids"]) for f in fs])
                          for name, fs in [("closed", closed_features), ("rag", rag_features)]}
    return {
        "RAG": {**rag, "index_build_seconds": build_s, "index_update_seconds": update_s},
        "fine-tune": {**closed, "training_seconds": per_token * tokens_per_example["closed"] * examples_seen},
        "hybrid": {**rag, "training_seconds": per_token * tokens_per_example["rag"] * examples_seen,
                   "index_build_seconds": build_s, "index_update_seconds": update_s},
        "notes": {"fine-tune": "the base model answering closed-book stands in for the fine-tuned model",
                  "hybrid": "the base model answering from retrieved context stands in for the hybrid",
                  "training_seconds": f"one training step's time per token x the tokens of {examples_seen} examples "
                                      "(lora.train_or_load's default recipe), not a full run",
                  "seconds_per_query": f"{n_questions} answers in one batch, its time over its size",
                  "latency_seconds": "one answer alone (batch size 1)"},
    }


# ---------------------------------------------------------------- measured numbers

LAB_OF = {"rag": "labs/02_rag.ipynb", "lora": "labs/03_lora.ipynb", "hybrid": "labs/04_hybrid.ipynb",
          "timing": "labs/04_hybrid.ipynb"}
# results/timing.json (lab 04) times every system side by side, in one process, interleaved:
# systems -> name -> {"latency_s": {...}, "seconds_per_query": {..., "batch": B}}, each with median, low,
# high and trials. Its names for the cost model's systems:
TIMING_NAMES = {"RAG": "rag", "fine-tune": "lora", "hybrid": "hybrid"}
TIMING_MISSING = ("No results/timing.json: run labs/04_hybrid.ipynb first (it times base, RAG, LoRA and the "
                  "hybrid side by side: latency at batch size 1 and seconds per query at the serving batch).")
# Where each measured number lives: system -> field -> (results file, key path inside it).
# A missing file or key falls back (see measured_inputs); None means "zero by design".
KEYS = {
    "RAG": {"prompt_tokens": ("rag", "summary.prompt_tokens"), "new_tokens": ("rag", "summary.new_tokens"),
            "seconds_per_query": ("timing", "systems.rag.seconds_per_query.median"),
            "latency_seconds": ("timing", "systems.rag.latency_s.median"), "training_seconds": None,
            "index_build_seconds": ("rag", "index_seconds"), "index_update_seconds": ("rag", "update_seconds"),
            "update_accuracy": ("rag", "update_accuracy")},
    "fine-tune": {"prompt_tokens": ("lora", "summary.prompt_tokens"), "new_tokens": ("lora", "summary.new_tokens"),
                  "seconds_per_query": ("timing", "systems.lora.seconds_per_query.median"),
                  "latency_seconds": ("timing", "systems.lora.latency_s.median"),
                  "training_seconds": ("lora", "train_seconds"),
                  "index_build_seconds": None, "index_update_seconds": None,
                  "update_accuracy": ("lora", "update_accuracy")},
    "hybrid": {"prompt_tokens": ("hybrid", "summary.prompt_tokens"), "new_tokens": ("hybrid", "summary.new_tokens"),
               "seconds_per_query": ("timing", "systems.hybrid.seconds_per_query.median"),
               "latency_seconds": ("timing", "systems.hybrid.latency_s.median"),
               "training_seconds": ("hybrid", "train_seconds"),
               "index_build_seconds": ("rag", "index_seconds"), "index_update_seconds": ("hybrid", "update_seconds"),
               "update_accuracy": ("hybrid", "update_accuracy")},
}
# Retrieval time per query (lab 02). Lab 04 times each system whole, search included; an entry of
# results/timing.json that says "includes_retrieval": false gets this added to both its times.
RETRIEVAL_KEY = ("rag", "retrieval_seconds")
# Below this share of update questions answered without retraining, a knowledge change needs a retrain.
UPDATE_ACCURACY_NEEDED = 0.5


def load(name: str, results_dir=None) -> dict | None:
    """results/<name>.json (through `evaluate.load_results`), or the file in results_dir; None when its
    lab has not run."""
    if results_dir is None:
        from .evaluate import load_results  # ftrag/evaluate.py: also refuses results left by an older run
        return load_results(name)
    path = Path(results_dir) / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def load_timing(results_dir=None) -> dict:
    """The "systems" of results/timing.json (labs/04_hybrid.ipynb): for each system, `latency_s` (one query
    at batch size 1) and `seconds_per_query` (a batch's time over its size, with its `batch`), each with
    median, low, high and trials. Raises FileNotFoundError when lab 04 has not run, ValueError when the
    file lacks a number the cost model and the decision helper use.

    >>> load_timing("/nonexistent")                        # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileNotFoundError: No results/timing.json: run labs/04_hybrid.ipynb first ...
    """
    payload = load("timing", results_dir)
    if payload is None:
        raise FileNotFoundError(TIMING_MISSING)
    systems = payload.get("systems")
    missing = [f"systems.{name}.{kind}.median" for name in TIMING_NAMES.values()
               for kind in ("latency_s", "seconds_per_query")
               if lookup(payload, f"systems.{name}.{kind}.median") is None]
    if not isinstance(systems, dict) or missing:
        raise ValueError(f"results/timing.json lacks {', '.join(missing) or 'systems'}: "
                         "re-run labs/04_hybrid.ipynb.")
    return systems


def lookup(payload: dict | None, path: str):
    """payload["a"]["b"] for path "a.b", if it is a number; else None."""
    node = payload
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _retrains(system: str, keys: dict, files: dict) -> tuple[float, str]:
    """Whether a knowledge change needs a training run. A retrieving system takes it by re-indexing (it has
    nothing else to change); a fine-tuned model needs a retrain if it missed the update questions."""
    file, path = keys["update_accuracy"]
    accuracy = lookup(files[file], path)
    seen = "" if accuracy is None else f"; {accuracy:.2f} of update questions right after re-indexing (results/{file}.json)"
    if keys["index_update_seconds"] is not None:
        return 0.0, "by design: a change is a re-index" + seen
    if accuracy is None:
        return 1.0, "by design: update questions not measured yet"
    return (float(accuracy < UPDATE_ACCURACY_NEEDED),
            f"measured: {accuracy:.2f} of update questions right without retraining "
            f"(results/{file}.json {path}; retrain below {UPDATE_ACCURACY_NEEDED})")


def runtimes(results_dir=None) -> tuple[str, list[str]]:
    """The production runtime of results/timing.json (the one its "systems" hold) and every runtime it
    timed, production first; ("transformers", ["transformers"]) for a file written before runtimes."""
    payload = load("timing", results_dir) or {}
    production = payload.get("runtime", "transformers")
    return production, [production] + [r for r in payload.get("runtimes", {}) if r != production]


def measured_inputs(results_dir=None, fallback=None, runtime: str | None = None) -> dict[str, SystemInputs]:
    """RAG, fine-tune and hybrid inputs from results/*.json, each with `sources` saying per number
    whether it was measured (and where), zero by design, or a fallback.

    fallback: a function returning quick stand-in numbers (e.g. `quick_measure`); called at most once,
    and only if some number is missing. Without it, a missing number raises and names the lab to run.
    runtime: whose times to use ("transformers", "llama.cpp": see `runtimes`); None is the production
    runtime, the one results/timing.json's "systems" hold."""
    files = {name: load(name, results_dir) for name in LAB_OF}
    if runtime is not None and files["timing"] is not None and runtime != files["timing"].get("runtime", "transformers"):
        timed = files["timing"].get("runtimes", {})
        if runtime not in timed:
            raise ValueError(f"results/timing.json has no times for runtime {runtime!r}; it has "
                             f"{', '.join(timed) or 'only transformers'}. Re-run labs/04_hybrid.ipynb.")
        files["timing"] = {**files["timing"], "systems": timed[runtime], "runtime": runtime}
    timed_on = (files["timing"] or {}).get("runtime", "transformers")
    stand_in = {}

    def get_fallback(system, field_name, where):
        if not stand_in:
            if fallback is None:
                raise FileNotFoundError(f"{system} {field_name}: no {where[1]} in results/{where[0]}.json — run "
                                        f"{LAB_OF[where[0]]} first, or pass fallback=cost.quick_measure to measure "
                                        "a stand-in now.")
            stand_in.update(fallback())
        note = stand_in.get("notes", {})
        value = stand_in.get(system, {}).get(field_name)
        if value is None:
            if field_name == "latency_seconds":
                return None, "not measured: " + TIMING_MISSING
            raise KeyError(f"The fallback gave no {system} {field_name}.")
        return value, "fallback: " + note.get(field_name, note.get(system, "quick measurement"))

    out = {}
    timing = files.get("timing") or {}
    for system, keys in KEYS.items():
        values, sources = {}, {}
        for field_name, where in keys.items():
            if field_name == "update_accuracy":
                continue
            if where is None:
                values[field_name], sources[field_name] = 0.0, "zero by design"
                continue
            value = lookup(files[where[0]], where[1])
            if value is not None:
                values[field_name], sources[field_name] = value, f"measured: results/{where[0]}.json {where[1]}"
                batch = lookup(timing, where[1].replace(".median", ".batch")) if where[0] == "timing" else None
                if batch is not None and field_name == "seconds_per_query":
                    sources[field_name] += f" (batch {batch:.0f})"
                if where[0] == "timing":
                    sources[field_name] += f" on {timed_on}"
            elif field_name == "latency_seconds" and fallback is None:
                values[field_name], sources[field_name] = None, "not measured: " + TIMING_MISSING
            else:
                values[field_name], sources[field_name] = get_fallback(system, field_name, where)
        retrieval = lookup(files[RETRIEVAL_KEY[0]], RETRIEVAL_KEY[1])
        entry = (timing.get("systems") or {}).get(TIMING_NAMES[system], {})
        included = entry.get("includes_retrieval", True) if isinstance(entry, dict) else True
        if keys["index_build_seconds"] is not None and retrieval is not None and not included:
            for field_name in ("seconds_per_query", "latency_seconds"):
                if values[field_name] is not None and sources[field_name].startswith("measured"):
                    values[field_name] += retrieval
                    sources[field_name] += f" + results/{RETRIEVAL_KEY[0]}.json {RETRIEVAL_KEY[1]}"
        values["retrains_per_change"], sources["retrains_per_change"] = _retrains(system, keys, files)
        out[system] = SystemInputs(system, sources=sources, **values)
    return out
