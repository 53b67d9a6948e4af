"""A small cost model for RAG, a fine-tuned model and the hybrid (explained in labs/05_cost.ipynb).

Every amount is in US dollars and has three parts:
- per query: the compute time one answer takes (measured on this CPU, divided by a speed-up factor to
  the production machine, times its hourly price), or, when serving through an API, its prompt and
  generated tokens times the API's prices;
- per knowledge change: re-indexing (systems that retrieve) or retraining (systems that keep the
  knowledge in their weights), each as compute plus the engineer hours around it;
- up front: building the system (engineer hours) plus the first training run and index build,
  spread over `amortise_months` so it can be added to a monthly bill.
Monthly cost is then linear in query volume, so the cost lines of two systems cross at most once;
`break_even` gives that volume in closed form.

Measured numbers (`SystemInputs`) come from the labs' results/*.json via `measured_inputs`, which
records where each number came from. Prices, volumes and hours are `Assumptions`: each has a documented
default that is an illustration, not a quote — put in your own.

Leaves out: idle capacity (a GPU you pay for while no query comes), storage, monitoring, labelling
training data, and the cost of wrong answers, which is often the largest.

>>> rag = SystemInputs("RAG", prompt_tokens=400, new_tokens=40, seconds_per_query=0.72,
...                    training_seconds=0, index_build_seconds=6, index_update_seconds=0.4,
...                    retrains_per_change=0)
>>> a = Assumptions(compute_usd_per_hour=1.0, speedup=20)
>>> round(per_query_usd(rag, a) * 1e6, 2)          # 0.72 s / 20 = 36 ms of a $1/h machine
10.0
"""
import json
import math
from dataclasses import dataclass, field, fields
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
    seconds_per_query: float      # mean wall time per query on this CPU (retrieval + generation)
    training_seconds: float       # one full training run; 0 for a system that is not trained
    index_build_seconds: float    # indexing the whole knowledge base; 0 for a system without an index
    index_update_seconds: float   # applying one knowledge update to the index; 0 without an index
    retrains_per_change: float    # 1 when a knowledge change needs a new training run, 0 when re-indexing is enough
    sources: dict = field(default_factory=dict, compare=False)  # field name -> where the number came from

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
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


# ---------------------------------------------------------------- a quick stand-in measurement

def quick_measure(n_questions: int = 4, max_new_tokens: int = 32) -> dict[str, dict]:
    """Stand-ins for missing results, measured now (well under a minute on 2 idle CPU cores): n
    closed-book and n RAG answers, one index build and one update, one LoRA training step.

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
        return {"prompt_tokens": float(np.mean([g.prompt_tokens for g in out])),
                "new_tokens": float(np.mean([g.new_tokens for g in out])),
                "seconds_per_query": float(np.mean([g.seconds for g in out]))}

    models.generate_many([closed_book_messages(questions[0]["question"])], max_new_tokens=4)  # warm-up, not timed
    closed = answer([closed_book_messages(q["question"]) for q in questions])
    rag = answer([rag_messages(q["question"], h) for q, h in zip(questions, hits)])
    rag["seconds_per_query"] += retrieval_s
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
                                      "(lora.train_or_load's default recipe), not a full run"},
    }


# ---------------------------------------------------------------- measured numbers

LAB_OF = {"rag": "labs/02_rag.ipynb", "lora": "labs/03_lora.ipynb", "hybrid": "labs/04_hybrid.ipynb"}
# Where each measured number lives: system -> field -> (results file, key path inside it).
# A missing file or key falls back (see measured_inputs); None means "zero by design".
KEYS = {
    "RAG": {"prompt_tokens": ("rag", "summary.prompt_tokens"), "new_tokens": ("rag", "summary.new_tokens"),
            "seconds_per_query": ("rag", "summary.seconds"), "training_seconds": None,
            "index_build_seconds": ("rag", "index_seconds"), "index_update_seconds": ("rag", "update_seconds"),
            "update_accuracy": ("rag", "update_accuracy")},
    "fine-tune": {"prompt_tokens": ("lora", "summary.prompt_tokens"), "new_tokens": ("lora", "summary.new_tokens"),
                  "seconds_per_query": ("lora", "summary.seconds"), "training_seconds": ("lora", "train_seconds"),
                  "index_build_seconds": None, "index_update_seconds": None,
                  "update_accuracy": ("lora", "update_accuracy")},
    "hybrid": {"prompt_tokens": ("hybrid", "summary.prompt_tokens"), "new_tokens": ("hybrid", "summary.new_tokens"),
               "seconds_per_query": ("hybrid", "summary.seconds"), "training_seconds": ("hybrid", "train_seconds"),
               "index_build_seconds": ("rag", "index_seconds"), "index_update_seconds": ("hybrid", "update_seconds"),
               "update_accuracy": ("hybrid", "update_accuracy")},
}
# Retrieval time per query, added to the generation seconds of the systems that retrieve.
RETRIEVAL_KEY = ("rag", "retrieval_seconds")
# Below this share of update questions answered without retraining, a knowledge change needs a retrain.
UPDATE_ACCURACY_NEEDED = 0.5


def load(name: str, results_dir=None) -> dict | None:
    """results/<name>.json (or in results_dir), or None when its lab has not run."""
    path = Path(results_dir or RESULTS) / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


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


def measured_inputs(results_dir=None, fallback=None) -> dict[str, SystemInputs]:
    """RAG, fine-tune and hybrid inputs from results/*.json, each with `sources` saying per number
    whether it was measured (and where), zero by design, or a fallback.

    fallback: a function returning quick stand-in numbers (e.g. `quick_measure`); called at most once,
    and only if some number is missing. Without it, a missing number raises and names the lab to run."""
    files = {name: load(name, results_dir) for name in LAB_OF}
    stand_in = {}

    def get_fallback(system, field_name, where):
        if not stand_in:
            if fallback is None:
                raise FileNotFoundError(f"{system} {field_name}: no {where[1]} in results/{where[0]}.json — run "
                                        f"{LAB_OF[where[0]]} first, or pass fallback=cost.quick_measure to measure "
                                        "a stand-in now.")
            stand_in.update(fallback())
        note = stand_in.get("notes", {})
        return stand_in[system][field_name], "fallback: " + note.get(field_name, note.get(system, "quick measurement"))

    out = {}
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
            else:
                values[field_name], sources[field_name] = get_fallback(system, field_name, where)
        retrieval = lookup(files[RETRIEVAL_KEY[0]], RETRIEVAL_KEY[1])
        if keys["index_build_seconds"] is not None and retrieval is not None \
                and sources["seconds_per_query"].startswith("measured"):
            values["seconds_per_query"] += retrieval
            sources["seconds_per_query"] += f" + results/{RETRIEVAL_KEY[0]}.json {RETRIEVAL_KEY[1]}"
        values["retrains_per_change"], sources["retrains_per_change"] = _retrains(system, keys, files)
        out[system] = SystemInputs(system, sources=sources, **values)
    return out
