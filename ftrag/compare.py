"""`python -m ftrag compare DOCS QUESTIONS`: the book's comparison on a team's own documents and questions.

Scope: reads and checks the inputs (ftrag.ingest), splits the questions by document unless the file
gives the split, and runs the systems of labs 01-04 on the same eval questions:
- base: the unchanged reader, closed-book (lab 1);
- RAG: the reader with retrieved chunks, in the variant the development questions choose by
  ftrag.tuning's rule among dense and BM25 + dense retrieval, with one or three chunks (lab 2);
- RAG + template: RAG's answers with the Source line added by code (lab 4, ftrag.systems.templated);
- fine-tune: LoRA with lab 3's first recipe on the training questions, closed-book;
- hybrid: LoRA with the same recipe on question + retrieved chunk -> answer with its source (lab 4).
Both fine-tunes are checkpointed after each pass over the training questions, and the same rule keeps
one on the development questions. Every answer is scored by ftrag.evaluate's ruler; the systems are
compared pairwise (exact McNemar, Holm-corrected as one family) and timed side by side in this process
(ftrag.timing). ftrag.report writes what a run found.

Leaves out: the book's house format and persona measures (they are the shop's), unanswerable
questions, and the recipe search of labs 3 and 4 (one recipe, its length chosen on dev).
"""
import copy
import math
import time
from dataclasses import dataclass, field

SYSTEMS = ("base", "RAG", "RAG + template", "fine-tune", "hybrid")
CLI_NAMES = {"base": "base", "rag": "RAG", "template": "RAG + template", "fine-tune": "fine-tune",
             "hybrid": "hybrid"}
TRAINED = ("fine-tune", "hybrid")
HYBRID_SYSTEM = "You answer questions from the documents you are given."
STYLE = {"signoff": "", "terms": {}}  # no house style on a team's own data
CHUNK = 16                            # questions per progress step (and per generation batch)
# The paired tests of a run, one family: (first, second), each run only when both systems ran.
PAIRS = [("RAG", "base"), ("fine-tune", "base"), ("hybrid", "base"), ("RAG", "fine-tune"),
         ("hybrid", "RAG"), ("hybrid", "fine-tune"), ("RAG + template", "RAG")]


@dataclass
class Settings:
    systems: tuple = SYSTEMS
    reader: str | None = None  # None: FTRAG_GENERATOR, else smollm2-135m
    seed: int = 0
    passes: int = 3            # checkpoints of each fine-tune, one per pass over the training questions
    r: int = 8                 # lab 3's first recipe: rank 8 on q and v, batch 4, lr 2e-3
    alpha: int = 16
    targets: tuple = ("q_proj", "v_proj")
    batch_size: int = 4
    lr: float = 2e-3
    max_new_tokens: int = 64
    timing_trials: int = 2
    fast: bool = False         # tests: every stage runs, with two steps per pass and short answers

    def __post_init__(self):
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or not self.systems:
            raise ValueError(f"unknown systems {unknown}: choose among {', '.join(CLI_NAMES)}")
        if "RAG + template" in self.systems and "RAG" not in self.systems:
            self.systems = tuple(s for s in SYSTEMS if s in (*self.systems, "RAG"))  # the template edits RAG's answers
        if self.fast:
            self.passes, self.max_new_tokens, self.timing_trials = 2, 24, 1

    @property
    def trains(self) -> bool:
        return any(s in TRAINED for s in self.systems)


@dataclass
class Run:
    """Everything a report needs: inputs, split, per-system score tables and what was chosen and timed."""
    settings: Settings
    docs: list
    split: dict
    warnings: list = field(default_factory=list)
    tables: dict = field(default_factory=dict)       # system -> eval score table
    chosen: dict = field(default_factory=dict)       # system -> {"kept": name, "dev": {name: right of n}}
    train: dict = field(default_factory=dict)        # system -> {"seconds", "steps", "examples", "tokens_per_s"}
    timing: dict = field(default_factory=dict)       # system -> timing.side_by_side entry
    stage_seconds: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)        # "first vs second" -> stats.compare result (Holm)


def _progress(items, desc: str):
    from tqdm import tqdm  # the text bar on stderr: a notebook widget would leave "0%" in a saved page

    return tqdm(items, desc=desc, unit="batch", mininterval=1, leave=False)


def answer(convs: list, settings: Settings, desc: str, model=None, tokenizer=None) -> list:
    """Greedy answers to the conversations, a progress bar over batches."""
    from . import models

    out = []
    for i in _progress(range(0, len(convs), CHUNK), desc):
        out += models.generate_many(convs[i:i + CHUNK], settings.max_new_tokens, model, tokenizer,
                                    batch_size=CHUNK)
    return out


def closed_book_convs(questions: list[dict]) -> list:
    from . import prompts

    return [prompts.closed_book_messages(q["question"], prompts.OWN_DOCS_SYSTEM) for q in questions]


def rag_convs(questions: list[dict], retriever, k: int, hybrid: bool = False) -> tuple[list, list]:
    """(conversations, retrieved doc ids): RAG's prompt without the shop's worked example, or the hybrid's."""
    from . import prompts, systems

    hits = retriever.search_many([q["question"] for q in questions], k=k)
    if hybrid:
        convs = [systems.hybrid_messages(q["question"], h, system=HYBRID_SYSTEM) for q, h in zip(questions, hits)]
    else:
        convs = [prompts.rag_messages(q["question"], h, system=prompts.OWN_DOCS_SYSTEM, example=False)
                 for q, h in zip(questions, hits)]
    return convs, [[h.doc_id for h in hs] for hs in hits]


def score(questions, answers, system, retrieved=None, k=1):
    from . import evaluate

    return evaluate.score(questions, answers, retrieved=retrieved, system=system, k=k, style=STYLE)


def rag_variants(docs: list[dict], fast: bool) -> dict:
    """name -> (retriever, k), simplest first: the variants the development questions choose among."""
    from .retrieval import Retriever

    dense = Retriever().build(docs)
    variants = {"dense, 1 chunk": (dense, 1), "dense, 3 chunks": (dense, 3)}
    if not fast:
        fused = Retriever(hybrid=True).build(docs)
        variants.update({"BM25 + dense, 1 chunk": (fused, 1), "BM25 + dense, 3 chunks": (fused, 3)})
    return variants


def choose_rag(variants: dict, dev: list[dict], settings: Settings) -> tuple[str, dict]:
    from . import tuning

    tables = {}
    for name, (retriever, k) in variants.items():
        convs, ids = rag_convs(dev, retriever, k)
        tables[name] = score(dev, answer(convs, settings, f"RAG dev: {name}"), "RAG", ids, k)
    return tuning.choose(tables), tables


def gold_hits(question: dict, retriever, k: int) -> list:
    """The k chunks a hybrid training prompt shows: the best-ranked chunk of the question's document
    that holds its key facts (put in when retrieval missed it, as lab 4 does), then other hits."""
    from . import evaluate
    from .retrieval import Hit

    hits = retriever.search(question["question"], k=k + 8)
    gold = set(question["about"])
    holding = [h for h in hits if h.doc_id in gold and evaluate.has_key_facts(h.text, question["key_facts"])]
    holding = holding or [Hit(c["doc_id"], c["chunk_id"], c["title"], c["text"], 0.0)
                          for c in retriever.chunks.values()
                          if c["doc_id"] in gold and evaluate.has_key_facts(c["text"], question["key_facts"])]
    if not holding:
        return hits[:k]
    best = holding[0]
    return [best] + [h for h in hits if (h.doc_id, h.chunk_id) != (best.doc_id, best.chunk_id)][:k - 1]


def training_examples(system: str, train: list[dict], retriever=None, k: int = 1) -> list[dict]:
    from . import prompts, systems

    if system == "fine-tune":
        return [{"messages": prompts.closed_book_messages(q["question"], prompts.OWN_DOCS_SYSTEM),
                 "target": q["answer"]} for q in train]
    examples = []
    for q in train:
        hits = gold_hits(q, retriever, k)
        source = ", ".join(f"[{d}]" for d in q["about"][:1]) or "none"
        examples.append({"messages": systems.hybrid_messages(q["question"], hits, system=HYBRID_SYSTEM),
                         "target": f"{q['answer']}\nSource: {source}"})
    return examples


def fine_tune(examples: list[dict], dev_table, settings: Settings, desc: str):
    """(model, choice, training): LoRA with lab 3's first recipe, a checkpoint after each pass scored
    by dev_table(model); the ftrag.tuning rule keeps one checkpoint, whose weights the model ends with."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from . import lora, models, tuning

    tokenizer = models.load_generator()[1]
    features = lora.build_examples(tokenizer, examples)
    per_pass = math.ceil(len(features) / settings.batch_size)
    if settings.fast:
        per_pass = min(per_pass, 2)
    model = lora.add_lora(lora.lora_config(settings.r, settings.alpha, 0.05, settings.targets))
    tables, kept = {}, {}

    def checkpoint(step, result):
        name = f"pass {math.ceil(step / per_pass)}"
        tables[name] = dev_table(model)
        if tuning.choose(tables) == name:
            kept.update(name=name, state=copy.deepcopy(get_peft_model_state_dict(model)))
        return False

    print(f"{desc}: {len(features)} examples, {settings.passes} passes of {per_pass} steps")
    result = lora.train(model, features, steps=per_pass * settings.passes, batch_size=settings.batch_size,
                        lr=settings.lr, seed=settings.seed, every=per_pass, on_checkpoint=checkpoint)
    set_peft_model_state_dict(model, kept["state"])
    tokens = sum(len(f["input_ids"]) for f in features) * settings.passes * (per_pass * settings.batch_size
                                                                            / len(features))
    choice = {"kept": kept["name"], "dev": {n: _right(t) for n, t in tables.items()}}
    training = {"seconds": result.seconds, "steps": result.steps, "examples": len(features),
                "tokens_per_s": tokens / result.seconds if result.seconds else None,
                "final_loss": result.losses[-1], "precision": result.precision}
    return model.eval(), choice, training


def _right(table) -> str:
    from . import tuning

    right, n = tuning.merit(table)[0], int(table.answerable.sum())
    return f"{right} of {n}"


def estimate_seconds(settings: Settings, split: dict, seconds_per_answer: float, step_seconds: float) -> float:
    """A rough run time before the training starts: answers still to give, times the seconds per
    answer just measured, plus the training steps at the measured seconds per step."""
    n_dev, n_eval, n_train = (len(split[s]) for s in ("dev", "eval", "train"))
    trained = [s for s in settings.systems if s in TRAINED]
    answers = n_eval * len(settings.systems) + n_dev * settings.passes * len(trained)
    steps = len(trained) * settings.passes * math.ceil(n_train / settings.batch_size)
    return answers * seconds_per_answer + steps * step_seconds


def time_one_step(examples: list[dict], settings: Settings) -> float:
    """Seconds of one training step on these examples (lab 3's recipe), to estimate the run."""
    from . import lora, models

    features = lora.build_examples(models.load_generator()[1], examples)
    model = lora.add_lora(lora.lora_config(settings.r, settings.alpha, 0.05, settings.targets))
    seconds = lora.train(model, features, steps=1, batch_size=settings.batch_size, progress=False).seconds
    del model
    return seconds


def compare_all(run: Run) -> None:
    """The paired tests of PAIRS among the systems that ran, Holm-corrected as one family."""
    from . import evaluate, stats

    run.tests = {f"{a} vs {b}": evaluate.paired(run.tables[a], run.tables[b], a, b)
                 for a, b in PAIRS if a in run.tables and b in run.tables}
    if run.tests:
        stats.holm(run.tests)


def side_by_side(run: Run, models_of: dict, rag: tuple, hybrid_k: int) -> None:
    """Latency (batch 1) and seconds per query (one batch) of every system, interleaved in this process."""
    from . import models, systems, timing

    retriever, k = rag
    questions = run.split["eval"]
    batch = min(8, len(questions))

    def closed(model):
        return lambda qs, b: models.generate_many(closed_book_convs(qs), run.settings.max_new_tokens, model,
                                                  batch_size=b)

    def reading(model, kk, hybrid):
        return lambda qs, b: models.generate_many(rag_convs(qs, retriever, kk, hybrid)[0],
                                                  run.settings.max_new_tokens, model, batch_size=b)

    work = {"base": closed(None), "RAG": reading(None, k, False),
            "fine-tune": closed(models_of.get("fine-tune")), "hybrid": reading(models_of.get("hybrid"), hybrid_k, True)}
    work = {name: fn for name, fn in work.items() if name in run.tables}
    if "RAG + template" in run.tables:  # code on RAG's answers: RAG's time and a string edit
        work["RAG + template"] = lambda qs, b: [systems.templated(a.text, [], "") for a in work["RAG"](qs, b)]
    run.timing = timing.side_by_side(work, questions, batch=batch, latency_questions=min(2, batch),
                                     trials=run.settings.timing_trials)


class _Stages:
    """Times each stage of a run into run.stage_seconds and says which one is running."""

    def __init__(self, run: Run, log):
        self.run, self.log = run, log

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                stages.log(f"== {name}")
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                stages.run.stage_seconds[name] = time.perf_counter() - self.t0

        return _Stage()


def run(docs_dir, questions_path, settings: Settings, log=print) -> Run:
    """Check the inputs, split them, answer and score with every system, test and time them."""
    import os

    from . import ingest, models, systems

    os.environ[models.GENERATOR_ENV] = models.generator_name(settings.reader)  # every load below uses it
    docs, warnings = ingest.load_documents(docs_dir)
    questions, more = ingest.load_questions(questions_path, docs)
    split = ingest.split_questions(questions, docs, seed=settings.seed, need_training=settings.trains)
    if settings.trains and not split["dev"]:
        raise ingest.InputError("no dev question: each fine-tune keeps the checkpoint that the development "
                                "questions choose; give some questions the split dev, or add questions")
    few = ingest.too_few(len(split["eval"]))
    run_ = Run(settings, docs, split, warnings + more + ([few] if few else []))
    for w in run_.warnings:
        log(f"warning: {w}")
    log(split["summary"])
    stage = _Stages(run_, log)
    eval_qs, dev = split["eval"], split["dev"]
    with stage("index"):
        variants = rag_variants(docs, settings.fast)
    name = next(iter(variants))
    if dev:
        with stage("RAG: the variant the development questions choose"):
            name, tables = choose_rag(variants, dev, settings)
        run_.chosen["RAG"] = {"kept": name, "dev": {n: _right(t) for n, t in tables.items()}}
    retriever, k = variants[name]
    t0, answered = time.perf_counter(), 0
    if "base" in settings.systems:
        with stage("base, closed-book"):
            run_.tables["base"] = score(eval_qs, answer(closed_book_convs(eval_qs), settings, "base"), "base")
        answered += len(eval_qs)
    if "RAG" in settings.systems:
        with stage("RAG"):
            convs, ids = rag_convs(eval_qs, retriever, k)
            run_.tables["RAG"] = score(eval_qs, answer(convs, settings, "RAG"), "RAG", ids, k)
            if "RAG + template" in settings.systems:
                run_.tables["RAG + template"] = systems.with_template(run_.tables["RAG"], eval_qs, retriever, k, "",
                                                                      retrieved=ids)
        answered += len(eval_qs)
    models_of = {}
    if settings.trains:
        examples = {s: training_examples(s, split["train"], retriever, k) for s in TRAINED if s in settings.systems}
        per_answer = (time.perf_counter() - t0) / answered if answered else 1.0
        step_s = time_one_step(next(iter(examples.values())), settings)
        log(f"estimated time to finish: about {estimate_seconds(settings, split, per_answer, step_s) / 60:.0f} min "
            f"({per_answer:.2f} s per answer, {step_s:.1f} s per training step measured here)")
        for system, ex in examples.items():
            hybrid = system == "hybrid"

            def dev_table(model, hybrid=hybrid, system=system):
                convs, ids = rag_convs(dev, retriever, k, hybrid=True) if hybrid else (closed_book_convs(dev), None)
                return score(dev, answer(convs, settings, f"{system}: development", model), system, ids, k)

            with stage(f"{system}: training, a checkpoint after each pass"):
                model, run_.chosen[system], run_.train[system] = fine_tune(ex, dev_table, settings, system)
            with stage(system):
                convs, ids = rag_convs(eval_qs, retriever, k, hybrid=True) if hybrid else (closed_book_convs(eval_qs), None)
                run_.tables[system] = score(eval_qs, answer(convs, settings, system, model), system, ids, k)
            models_of[system] = model
    with stage("timing, side by side"):
        side_by_side(run_, models_of, (retriever, k), k)
    compare_all(run_)
    return run_
