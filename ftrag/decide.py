"""The decision helper: the four questions of "Making the decision" in, a recommendation with its
reasons out, each reason pointing at the number this book measured (walked through in
labs/06_decision.ipynb).

The questions, as small sets of answers:
- knowledge_changes: how often the facts change — "rarely", "monthly", "weekly", "daily";
- behaviour_change: whether every answer must follow a format, tone or vocabulary — "none",
  "helpful" (nice to have; a prompt gets part of it) or "required";
- ml_expertise: the team's machine-learning skills — "none", "some" (can fine-tune with a recipe),
  "strong" (can run training and retrieval pipelines side by side);
- latency_budget_ms and cost_sensitivity ("low", "medium", "high"), with queries_per_month optional.
  A latency budget is checked against the latency of one query alone (batch size 1, lab 04's
  results/timing.json) on the assumed production machine; cost uses the cost model (ftrag.cost), which
  prices seconds per query at the serving batch.
must_show_sources=True says that answers must point to the document they came from.
reader_params_m, the size of the model you will serve (millions of parameters), is checked against
labs/08_readers.ipynb (results/readers.json): if the largest measured reader that is not larger than
yours, with RAG and its prompt alone, was shown non-inferior to the small fine-tune on the house format
(at most a margin worse, the margin declared in the lab before the test), a required behaviour no
longer calls for fine-tuning. A test that finds no measurable difference is not such evidence: it
cannot tell equality from a gap smaller than the test could detect. A larger model is assumed to do
at least as well as a measured smaller one; a model smaller than every measured reader gets no such
credit.
What code can add (labs/04_hybrid.ipynb, results/comparison.json): a template on RAG's answers adds
the house format (the sign-off and the Source line) with no training; fine-tuning is for behaviour
code cannot add (house vocabulary, tone), and is needed for it where its paired test beats the
template. The reasons for a required or helpful behaviour cite that comparison (evidence topic
"template").

The rules, in the book's position: RAG is the better balance for most cases; fine-tune when a
consistent behaviour is needed that prompting cannot give and the knowledge is stable; the hybrid when
both current facts and consistent behaviour are needed and the team can run both; a team without ML
skills starts with RAG and moves on as its skills grow. Latency and cost then move the choice between
RAG and fine-tuning only where the knowledge allows it (stable, no sources to show).

Leaves out: data privacy, vendor lock-in and anything else the four questions do not ask.

>>> rec = recommend("weekly", "none", "some", evidence=Evidence(notes={}))
>>> rec.choice
'RAG'
"""
from dataclasses import dataclass, field

from . import cost, runs, stats

CHOICES = ("RAG", "fine-tune", "hybrid")
KNOWLEDGE_CHANGES = ("rarely", "monthly", "weekly", "daily")
CHANGES_PER_MONTH = {"rarely": 0.25, "monthly": 1.0, "weekly": 4.3, "daily": 30.0}  # for the cost model
BEHAVIOUR_CHANGE = ("none", "helpful", "required")
ML_EXPERTISE = ("none", "some", "strong")
COST_SENSITIVITY = ("low", "medium", "high")
# The answers lab 06's form offers, as (label, value), and its default answers: the notebook widget and
# the static page's form (ftrag.static_forms) show the same choices.
FORM_OPTIONS = {
    "knowledge_changes": [(k, k) for k in KNOWLEDGE_CHANGES],
    "behaviour_change": [(b, b) for b in BEHAVIOUR_CHANGE],
    "ml_expertise": [(m, m) for m in ML_EXPERTISE],
    "cost_sensitivity": [(c, c) for c in COST_SENSITIVITY],
    "latency_budget_ms": [("no limit", None), ("300 ms", 300), ("1 s", 1000), ("3 s", 3000)],
    "queries_per_month": [("unknown", None), ("10k", 10_000), ("1M", 1_000_000), ("100M", 100_000_000)],
    "must_show_sources": [("no", False), ("yes", True)],
}
FORM_DEFAULTS = {"knowledge_changes": "weekly", "behaviour_change": "helpful", "ml_expertise": "some",
                 "cost_sensitivity": "medium", "latency_budget_ms": None, "queries_per_month": None,
                 "must_show_sources": False}
FORM_LABELS = {"knowledge_changes": "knowledge changes", "behaviour_change": "behaviour change",
               "ml_expertise": "ML expertise", "cost_sensitivity": "cost sensitivity",
               "latency_budget_ms": "latency budget", "queries_per_month": "queries a month",
               "must_show_sources": "answers must show sources"}


@dataclass(frozen=True)
class Reason:
    text: str       # why, in plain words
    evidence: str   # the lab and the measured number behind it


@dataclass
class Recommendation:
    choice: str
    reasons: list
    next_step: str

    def __str__(self) -> str:
        lines = [f"Recommendation: {self.choice}"]
        lines += [f"  - {r.text}\n      evidence: {r.evidence}" for r in self.reasons]
        return "\n".join(lines + [f"  Next step: {self.next_step}"])


@dataclass
class Evidence:
    """What the reasons cite: one sentence per topic (with its lab and number), and the measured
    cost inputs for latency and cost estimates (None when the labs have not run)."""
    notes: dict
    inputs: dict | None = None                      # system name -> cost.SystemInputs
    assumptions: cost.Assumptions = field(default_factory=cost.Assumptions)
    readers: dict = field(default_factory=dict)     # reader name -> lab 08's measurements (results/readers.json)

    def note(self, topic: str) -> str:
        return self.notes.get(topic, f"not measured yet ({topic}): run the labs (make labs) to fill it in")


def _one_of(name: str, value, valid: tuple) -> str:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}; got {value!r}")
    return value


def _number(name: str, value, allow_zero: bool):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be None or a number {'>= 0' if allow_zero else '> 0'}; got {value!r}")
    return value


def latency_ms(evidence: Evidence) -> dict | None:
    """Estimated production latency per system: the latency of one query at batch size 1, measured on
    this CPU (lab 04's timing), divided by the assumed speed-up. Not the cost model's seconds per query,
    which share a batch's time among its queries: a user waits for the whole answer."""
    if not evidence.inputs:
        return None
    est = {name: s.latency_seconds / evidence.assumptions.speedup * 1000 for name, s in evidence.inputs.items()
           if s.latency_seconds is not None}
    return est or None


def recommend(knowledge_changes: str, behaviour_change: str, ml_expertise: str,
              latency_budget_ms: float | None = None, cost_sensitivity: str = "medium",
              queries_per_month: float | None = None, must_show_sources: bool = False,
              reader_params_m: float | None = None, evidence: Evidence | None = None) -> Recommendation:
    """RAG, fine-tune or hybrid for the answers given, with reasons and a next step."""
    _one_of("knowledge_changes", knowledge_changes, KNOWLEDGE_CHANGES)
    _one_of("behaviour_change", behaviour_change, BEHAVIOUR_CHANGE)
    _one_of("ml_expertise", ml_expertise, ML_EXPERTISE)
    _one_of("cost_sensitivity", cost_sensitivity, COST_SENSITIVITY)
    _one_of("must_show_sources", must_show_sources, (True, False))
    _number("latency_budget_ms", latency_budget_ms, allow_zero=False)
    _number("queries_per_month", queries_per_month, allow_zero=True)
    _number("reader_params_m", reader_params_m, allow_zero=False)
    ev = evidence if evidence is not None else load_evidence()

    changing = knowledge_changes != "rarely"
    knowledge_in_retriever = changing or must_show_sources
    reasons = []
    if changing:
        reasons.append(Reason(
            f"The knowledge changes {knowledge_changes}: a retriever takes a change by re-indexing in seconds, "
            "a fine-tuned model only by training again.", f"{ev.note('update')}; {ev.note('retrain')}"))
    if must_show_sources:
        reasons.append(Reason(
            "Answers must show their sources: retrieval knows which document each answer came from; "
            "a fine-tuned model answers from its weights and cannot point to one.", ev.note("citations")))

    if behaviour_change == "required":
        if ml_expertise == "none":
            choice = "RAG"
            reasons.append(Reason(
                "A consistent behaviour is required, but the team has no ML expertise: start with RAG, ask for "
                "the format in the prompt and measure how often answers follow it; fine-tune once the skills "
                "are there.", ev.note("prompt_format")))
        elif not knowledge_in_retriever:
            choice = "fine-tune"
            reasons.append(Reason(
                "A consistent behaviour is required and the knowledge is stable: fine-tuning puts the format "
                "and tone into the weights, so every answer follows them without long instructions.",
                ev.note("format")))
        elif ml_expertise == "strong":
            choice = "hybrid"
            reasons.append(Reason(
                "Both current facts and a consistent behaviour are needed, and the team can run a training "
                "and a retrieval pipeline: fine-tune for the behaviour, retrieve for the facts.", ev.note("hybrid")))
        else:
            choice = "RAG"
            reasons.append(Reason(
                "Current facts and a consistent behaviour are both needed, but a hybrid means running two "
                "pipelines: start with RAG and a format prompt, and move to the hybrid as the team's skills grow.",
                ev.note("prompt_format")))
    else:
        choice = "RAG"
        reasons.append(Reason(
            "No behaviour change is required, so the question is how to get the facts in: RAG is the better "
            "balance for most cases, with no training and answers that stay current.", ev.note("facts")))
        if behaviour_change == "helpful":
            reasons.append(Reason("The wanted tone or format can be asked for in the prompt; measure it, "
                                  "and fine-tune (hybrid) only if the prompt falls short.", ev.note("prompt_format")))

    if behaviour_change != "none":
        reasons.append(_template_reason(choice, behaviour_change, ev))
    if behaviour_change == "required" and choice in ("fine-tune", "hybrid"):
        choice = _reader(choice, reasons, ev, reader_params_m)
    can_train = ml_expertise != "none"
    choice = _latency(choice, reasons, ev, latency_budget_ms, knowledge_in_retriever, can_train, behaviour_change)
    choice = _cost(choice, reasons, ev, cost_sensitivity, queries_per_month, knowledge_changes,
                   knowledge_in_retriever, can_train, behaviour_change)
    return Recommendation(choice, reasons, NEXT_STEP[choice])


def _template_reason(choice, behaviour_change, ev) -> Reason:
    """What a code template on RAG's answers gives (the house format), and what it cannot (vocabulary,
    tone): the part of a behaviour that fine-tuning is for."""
    if choice in ("fine-tune", "hybrid"):
        text = ("If the required behaviour is only the house format (the sign-off and the Source line), a "
                "code template on RAG's answers adds it with no training, and RAG is enough; fine-tuning is "
                "for what code cannot add (house vocabulary, tone), and is needed for it only where its "
                "paired test beats the template.")
    elif behaviour_change == "required":
        text = ("Until then, a code template on RAG's answers adds the house format (the sign-off and the "
                "Source line) to every answer; what code cannot add (house vocabulary, tone) waits for the "
                "fine-tune, which has to beat the template on it.")
    else:
        text = ("A code template on RAG's answers adds the house format (the sign-off and the Source line) "
                "without training; fine-tune only for what code cannot add (house vocabulary, tone), and only "
                "if the fine-tune's paired test beats the template on it.")
    return Reason(text, ev.note("template"))


def _reader(choice, reasons, ev, params_m) -> str:
    """A reader large enough to follow the format from the prompt as well as the fine-tune, shown by a
    non-inferiority test with a declared margin (never by a null test), makes the fine-tune unnecessary."""
    if params_m is None:
        return choice
    if not ev.readers:
        reasons.append(Reason(f"The reader's size ({params_m:.0f} M parameters) was not checked: no reader "
                              "comparison has been measured.", ev.note("readers")))
        return choice
    sizes = sorted(ev.readers.items(), key=lambda item: item[1]["params_m"])
    fitting = [item for item in sizes if item[1]["params_m"] <= params_m * 1.05]  # 5 %: sizes are rounded
    name, measured = fitting[-1] if fitting else sizes[0]
    fmt = measured.get("rag", {}).get("house format", {}).get("value")
    ni = measured.get("format_noninferior") or {}
    reached = ni.get("holds") is True and ni.get("margin") is not None
    said = (f"lab 08 (results/readers.json): {name} ({measured['params_m']:.0f} M parameters) with RAG followed "
            f"the house format in {'n/a' if fmt is None else format(fmt, '.2f')} of answers; against the small "
            f"fine-tune, {measured.get('format_vs_finetuned') or 'not compared'}; non-inferiority "
            + (f"at a margin of {ni['margin']:.2f}: {ni.get('verdict', 'holds' if reached else 'does not hold')}"
               if ni.get("margin") is not None else "not tested at a declared margin"))
    if fitting and reached:
        reasons.append(Reason(
            f"A reader of {params_m:.0f} M parameters is at least as large as {name}, which with the prompt alone "
            f"was at most {ni['margin']:.2f} worse than the small fine-tune on the required format (a margin "
            "declared before the test): RAG with that prompt gives the format without a training pipeline.",
            said))
        return "RAG"
    reasons.append(Reason(
        f"A reader of {params_m:.0f} M parameters: " + ("the measured reader of this size was not shown to "
        "follow the format with a prompt alone as well as the fine-tune (no non-inferiority at a declared "
        "margin; a test that finds no difference is not equality), so fine-tuning keeps its place."
        if fitting else
        "smaller than every measured reader, so no reader comparison applies; fine-tuning keeps its place."), said))
    return choice


def _latency(choice, reasons, ev, budget, knowledge_in_retriever, can_train, behaviour_change) -> str:
    est = latency_ms(ev)
    if budget is None:
        return choice
    if est is None:
        reasons.append(Reason(f"The latency budget of {budget:.0f} ms could not be checked.", ev.note("latency")))
        return choice
    fits = {name: ms <= budget for name, ms in est.items()}
    summary = "latency at batch size 1, " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in est.items())
    if fits.get(choice, True):
        reasons.append(Reason(f"The latency budget of {budget:.0f} ms holds for {choice} (estimated: {summary}).",
                              ev.note("latency")))
        return choice
    if choice == "RAG" and fits.get("fine-tune") and not knowledge_in_retriever and can_train \
            and behaviour_change != "required":
        reasons.append(Reason(
            f"RAG's retrieved context does not fit the {budget:.0f} ms budget but a fine-tuned model's short "
            f"prompt does (estimated: {summary}); with stable knowledge and no sources to show, fine-tune.",
            ev.note("latency")))
        return "fine-tune"
    reasons.append(Reason(
        f"{choice} is estimated above the {budget:.0f} ms budget ({summary}); retrieve fewer or shorter chunks, "
        "or serve on faster hardware, rather than give up what this choice is for.", ev.note("latency")))
    return choice


def _cost(choice, reasons, ev, sensitivity, queries, knowledge_changes, knowledge_in_retriever, can_train,
          behaviour_change) -> str:
    if queries is None or not ev.inputs or not {"RAG", "fine-tune"} <= set(ev.inputs):
        return choice
    a = ev.assumptions
    changes = CHANGES_PER_MONTH[knowledge_changes]
    rag, ft = ev.inputs["RAG"], ev.inputs["fine-tune"]
    monthly = {name: cost.monthly_usd(s, a, queries, changes)["total"] for name, s in ev.inputs.items()}
    line = ", ".join(f"{name} {cost.format_usd(usd)}" for name, usd in monthly.items())
    volume = cost.break_even(rag, ft, a, changes)
    where = ("the two never cross" if volume is None
             else f"fine-tuning becomes cheaper than RAG above about {cost.volume_text(volume)} queries a month")
    text = (f"At {cost.volume_text(queries)} queries and {changes:g} knowledge "
            f"change{'' if changes == 1 else 's'} a month: {line}; {where}.")
    cheaper_ft = monthly["fine-tune"] < monthly["RAG"]
    if (choice == "RAG" and sensitivity == "high" and cheaper_ft and not knowledge_in_retriever and can_train
            and behaviour_change != "required"):
        reasons.append(Reason(text + " Cost matters most here and the knowledge is stable: fine-tune.", ev.note("cost")))
        return "fine-tune"
    reasons.append(Reason(text, ev.note("cost")))
    return choice


NEXT_STEP = {
    "RAG": "Measure retrieval recall and answer format on your own questions; when a consistent behaviour is "
           "needed that the prompt does not give and the team can train, move to the hybrid.",
    "fine-tune": "Keep a held-out set and re-measure format and facts after every retraining; add retrieval "
                 "as soon as facts start to change or answers must show sources.",
    "hybrid": "Version the adapter and the index separately: re-index for knowledge changes, retrain only "
              "when the wanted behaviour changes.",
}


# Evidence sentences: topic -> (the results file it needs, the sentence, placeholder -> (file, key path, format)).
# A format is a number format (".2f"), or "s" (a string, e.g. a verdict), "p" (a p-value, stats.fmt_p) or
# "diff" (a paired comparison's difference with its 95 % interval, stats.fmt_diff). A placeholder whose value
# is missing prints as "n/a"; a topic whose file is missing is left out.
EVIDENCE = {
    "update": ("rag", "lab 02 (results/rag.json): re-indexing the update took {s} s and RAG then answered {acc} "
                      "of the update questions",
               {"s": ("rag", "update_seconds", ".2f"), "acc": ("rag", "update_accuracy", ".2f")}),
    "prompt_format": ("rag", "lab 02 (results/rag.json): asked for the house format in its prompt, RAG followed it "
                             "in {fmt} of answers",
                      {"fmt": ("rag", "summary.format_compliance", ".2f")}),
    "facts": ("rag", "lab 02 (results/rag.json): key-fact accuracy {rag} with retrieval vs {base} closed-book (lab 01)",
              {"rag": ("rag", "summary.key_fact_accuracy", ".2f"), "base": ("baseline", "summary.key_fact_accuracy", ".2f")}),
    "citations": ("rag", "lab 02 (results/rag.json): RAG cited a right source in {rag} of answers; the fine-tuned "
                         "model in {lora} (lab 03)",
                  {"rag": ("rag", "summary.citation_accuracy", ".2f"), "lora": ("lora", "summary.citation_accuracy", ".2f")}),
    "retrain": ("lora", "lab 03 (results/lora.json): without retraining the fine-tuned model answered {acc} of the "
                        "update questions; a training run took {s} s on this CPU",
                {"acc": ("lora", "update_accuracy", ".2f"), "s": ("lora", "train_seconds", ".0f")}),
    "format": ("lora", "lab 03 (results/lora.json): house-format compliance {lora} after fine-tuning vs {base} for "
                       "the base model given the same instructions",
               {"lora": ("lora", "summary.format_compliance", ".2f"), "base": ("lora", "base_summary.format_compliance", ".2f")}),
    "hybrid": ("hybrid", "lab 04 (results/hybrid.json): the hybrid's key-fact accuracy {facts}, house format {fmt}, "
                         "update questions {acc} after re-indexing alone",
               {"facts": ("hybrid", "summary.key_fact_accuracy", ".2f"),
                "fmt": ("hybrid", "summary.format_compliance", ".2f"), "acc": ("hybrid", "update_accuracy", ".2f")}),
    "template": ("comparison", "lab 04 (results/comparison.json): a code template on RAG's answers (the sign-off "
                               "and the Source line added by code) followed the house format in {tpl} of answers, "
                               "RAG alone in {rag}; hybrid vs RAG + template, house format: {fmt_v} (difference "
                               "{fmt_d}, {fmt_p} after Holm); house terms, which code cannot add: {terms_v} "
                               "(difference {terms_d}, {terms_p} after Holm)",
                 {"tpl": ("comparison", "summary.RAG + template.house format.value", ".2f"),
                  "rag": ("comparison", "summary.RAG.house format.value", ".2f"),
                  "fmt_v": ("comparison", "paired.hybrid_template_format.verdict", "s"),
                  "fmt_d": ("comparison", "paired.hybrid_template_format", "diff"),
                  "fmt_p": ("comparison", "paired.hybrid_template_format.p_holm", "p"),
                  "terms_v": ("comparison", "paired.hybrid_template_terms.verdict", "s"),
                  "terms_d": ("comparison", "paired.hybrid_template_terms", "diff"),
                  "terms_p": ("comparison", "paired.hybrid_template_terms.p_holm", "p")}),
}


def _field(payload: dict | None, path: str, spec: str) -> str | None:
    """One placeholder of an evidence sentence, formatted, or None when the results file lacks it."""
    if spec == "s" or spec == "diff":
        node = payload
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        if spec == "s":
            return node if isinstance(node, str) else None
        ok = isinstance(node, dict) and all(isinstance(node.get(k), (int, float)) for k in ("diff", "diff_low",
                                                                                            "diff_high"))
        return stats.fmt_diff(node) if ok else None
    number = cost.lookup(payload, path)
    if number is None:
        return None
    return stats.fmt_p(number) if spec == "p" else format(number, spec)


def load_evidence(results_dir=None, assumptions: cost.Assumptions | None = None, fallback=None) -> Evidence:
    """Evidence from results/*.json; a topic whose lab has not run says so. `fallback` (e.g.
    cost.quick_measure) fills missing latency and cost inputs, as in cost.measured_inputs."""
    a = assumptions or cost.Assumptions()
    files = {name: cost.load(name, results_dir) for name in ("baseline", "rag", "lora", "hybrid", "comparison")}
    notes = {}
    for topic, (needs, sentence, fields) in EVIDENCE.items():
        if files[needs] is None:
            continue
        values = {name: _field(files[file], path, spec) for name, (file, path, spec) in fields.items()}
        notes[topic] = sentence.format(**{name: "n/a" if v is None else v for name, v in values.items()})
    try:
        inputs = cost.measured_inputs(results_dir, fallback=fallback)
    except FileNotFoundError:
        inputs = None
    if inputs:
        tag = "" if all(not src.startswith("fallback") for s in inputs.values()
                        for src in s.sources.values()) else " (some are quick fallback measurements)"
        try:
            timing = cost.load_timing(results_dir)
        except (FileNotFoundError, ValueError):
            timing = None
        if timing is not None:
            def measured(name):
                t = timing[cost.TIMING_NAMES[name]]["latency_s"]
                parts = [f"{t['low']:.2f}-{t['high']:.2f} s"] if {"low", "high"} <= set(t) else []
                parts += [f"{t['trials']} trials"] if t.get("trials") else []
                return f"{name} {t['median']:.2f} s" + (f" ({', '.join(parts)})" if parts else "")

            retrieval = [s.sources["latency_seconds"] for s in inputs.values()
                         if cost.RETRIEVAL_KEY[1] in s.sources.get("latency_seconds", "")]
            search = cost.lookup(files["rag"], cost.RETRIEVAL_KEY[1]) if retrieval else None
            notes["latency"] = (f"lab 04 (results/timing.json, production runtime {cost.runtimes(results_dir)[0]}): "
                                "median latency of one query alone (batch size 1) on 2 CPU cores, " + ", ".join(measured(name) for name in inputs) +
                                (f"; the systems that retrieve add {search:.3f} s of search (lab 02)" if search else "")
                                + f"; divided by an assumed {a.speedup:g}x faster production machine (lab 05)")
        batch = None if timing is None else timing[cost.TIMING_NAMES["RAG"]]["seconds_per_query"].get("batch")
        per_query = f"seconds per query amortised over a batch of {batch:g}" if batch else "seconds per query"
        runtime = "" if timing is None else f" on {cost.runtimes(results_dir)[0]}"
        notes["cost"] = (f"lab 05 cost model: {per_query} (lab 04{runtime}), tokens, training and re-index times{tag}, "
                         f"with its default prices ({cost.format_usd(a.compute_usd_per_hour)} per machine-hour, "
                         f"{cost.format_usd(a.engineer_usd_per_hour)} per engineer-hour, {a.hours_per_retrain:g} h "
                         f"per retraining, {a.hours_per_reindex:g} h per re-index)")
    try:
        readers = cost.load("readers", results_dir)
    except runs.StaleResults:  # lab 08 runs after the labs that ask for advice before it
        readers = None
    return Evidence(notes, inputs, a, (readers or {}).get("readers", {}))
