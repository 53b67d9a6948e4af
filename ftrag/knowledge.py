"""Putting facts into the weights (labs/03b_knowledge.ipynb): fine-tuning's best shot at knowledge.

Scope: continued pretraining on the documents as plain text, on rewordings of them (each restates
every fact in new words, data/rewordings.jsonl) and on question-answer pairs for the training
questions that the eval set rewords, swept over the number of rewordings with a checkpoint after each epoch. Every checkpoint
is scored closed-book, with the prompt and greedy decoding of labs 01 and 03, on five sets:
- memorised: the training questions it was trained on, word for word;
- reworded: eval questions that reword a trained question;
- text only: eval questions about facts it saw only as text, never as a question;
- dev: the training questions that are not among the pairs (early stopping and the choice);
- control: general-knowledge questions the base model answers correctly (what it forgets).
The rule of ftrag.tuning picks the checkpoint on the dev set; that adapter is saved as "knowledge".
Leaves out: multiple-choice scoring (the published studies used it; this book scores generated
answers) and learning-rate schedules. The FULL setting trains on every training-side document for
more epochs, and can train every weight instead of LoRA; it is meant for a GPU.

>>> sets = question_sets(documents_for(LAPTOP))                              # doctest: +SKIP
>>> points, kept = sweep(LAPTOP, sets)                                       # doctest: +SKIP
"""
import copy
import ctypes
import gc
import math
from dataclasses import dataclass

import pandas as pd

from . import data, evaluate, knowledge_data, lora, models, prompts, systems, tuning

ADAPTER = "knowledge"
MEASURED = ("memorised", "reworded", "text only", "dev", "control")
MIN_CONTROL = 30  # control questions asked: the first this many that the base model answers correctly
# Labs 01 and 03 let an answer run to 64 new tokens; the sweep scores every checkpoint on every set,
# so its answers stop at 40. The key fact comes first, and the base model is scored the same way.
MAX_NEW_TOKENS = 40


@dataclass(frozen=True)
class Setting:
    """One sweep: which documents, how many rewordings per level, how many epochs at most."""
    name: str
    documents: str            # "updated": every other training-side document the update changes; "all"
    levels: tuple             # numbers of rewordings per document, one training run each
    epochs: int               # at most; a checkpoint after each
    r: int = 32
    alpha: int = 64
    lr: float = 1e-3
    batch_size: int = 8
    full: bool = False        # train every weight (a GPU's job) instead of a LoRA adapter


# A laptop's 10 minutes: 8 of the 16 documents the update changes (so that the update questions can
# ask what the weights still believe), three levels of rewordings, two epochs.
LAPTOP = Setting("laptop", "updated", (0, 1, 3), 2, lr=2e-3)  # lr: lab 03's, for the same scale alpha / r = 2
FULL = Setting("full", "all", (0, 1, 2, 4), 5)
FULL_WEIGHTS = Setting("full weights", "all", (0, 4), 3, lr=2e-5, full=True)


def documents_for(setting: Setting) -> list[str]:
    """The document ids a setting trains on, sorted."""
    side = knowledge_data.training_side_documents()
    if setting.documents == "all":
        return side
    if setting.documents != "updated":
        raise ValueError(f"documents must be 'updated' or 'all', not {setting.documents!r}")
    changed = {u["id"] for u in data.load_updates() if u["change"] == "replace"}
    return [d for d in side if d in changed][::2]


def question_sets(doc_ids: list[str]) -> dict[str, list[dict]]:
    """The question sets of the module docstring for these documents, plus "qa" (the trained pairs)
    and the update questions about them ("update before" and "update after", same ids and order).

    The question-answer pairs are the training questions that an eval question rewords, so that the
    "reworded" set asks about trained facts; the other training questions are dev. Their facts, like
    those of the "text only" set, are in the training text but never asked in training.
    Control questions are all candidates here; `control_set` keeps the ones the base model gets right.
    """
    docs = set(doc_ids)
    about = lambda q: q["doc_ids"] and set(q["doc_ids"]) <= docs and evaluate.answerable(q)  # noqa: E731
    train = sorted((q for q in data.load_questions("train") if about(q)), key=lambda q: q["id"])
    evals = [q for q in data.load_questions("eval") if q["kind"] in ("paraphrase", "unseen") and about(q)]
    trained = {q["paraphrase_of"] for q in evals if q.get("paraphrase_of")}
    qa = [q for q in train if q["id"] in trained]
    dev = [q for q in train if q["id"] not in trained]
    before = {q["id"]: q for q in data.load_update_questions(after=False)}
    changed = [q for q in data.load_update_questions(after=True)
               if about(q) and evaluate.answerable(before[q["id"]]) and before[q["id"]]["doc_ids"]]
    return {"qa": qa, "memorised": qa, "dev": dev,
            "reworded": [q for q in evals if q.get("paraphrase_of") in trained],
            "text only": [q for q in evals if q.get("paraphrase_of") not in trained],
            "control": knowledge_data.load_control(),
            "update after": changed, "update before": [before[q["id"]] for q in changed]}


# ---- training data ----------------------------------------------------------------------------

def text_feature(tokenizer, text: str) -> dict:
    """Plain text for continued pretraining: every token is a target, and the end-of-text token closes it."""
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    return {"input_ids": ids, "labels": list(ids)}


def training_texts(doc_ids: list[str], rewordings: int) -> list[str]:
    """Each document as written (title and body), then its first `rewordings` rewordings."""
    docs = {d["id"]: d for d in data.load_documents()}
    written = knowledge_data.load_rewordings() if rewordings else {}
    short = [d for d in doc_ids if len(written.get(d, [])) < rewordings]
    if short:
        raise ValueError(f"{len(short)} document(s) have fewer than {rewordings} rewordings in "
                         f"{knowledge_data.REWORDINGS.name} (first: {short[0]}): lower the level or write more.")
    return ([f"{docs[d]['title']}\n\n{docs[d]['body']}" for d in doc_ids]
            + [text for d in doc_ids for text in written.get(d, [])[:rewordings]])


def qa_examples(questions: list[dict]) -> list[dict]:
    """The closed-book pairs of lab 03: the question alone, and the answer in the house format."""
    return [{"messages": prompts.closed_book_messages(q["question"]), "target": q["response"]} for q in questions]


def training_features(tokenizer, doc_ids: list[str], rewordings: int, qa: list[dict]) -> tuple[list, list]:
    """(features to train on, what the run record hashes): the texts of `training_texts`, then the pairs."""
    texts = training_texts(doc_ids, rewordings)
    features = [text_feature(tokenizer, t) for t in texts] + lora.build_examples(tokenizer, qa_examples(qa))
    return features, [{"text": t} for t in texts] + qa_examples(qa)


def tokens(features: list[dict]) -> int:
    return sum(len(f["input_ids"]) for f in features)


# ---- measuring --------------------------------------------------------------------------------

def merged(model):
    """A copy of a LoRA model with the adapter folded into the weights (lab 3 checks that this gives
    the same logits), which generates faster than the unmerged adapter; any other model as it is."""
    return copy.deepcopy(model).merge_and_unload().eval() if hasattr(model, "merge_and_unload") else model


def closed_book(questions: list[dict], model=None) -> list:
    """The sweep's closed-book answers: lab 1's prompt and greedy decoding, at most MAX_NEW_TOKENS."""
    return systems.closed_book(questions, model=None if model is None else merged(model),
                               max_new_tokens=MAX_NEW_TOKENS)


def measure(model, sets: dict, names=MEASURED) -> dict[str, pd.DataFrame]:
    """Closed-book score tables of `model` on the named sets, answered in one batched pass."""
    questions = [q for n in names for q in sets[n]]
    answers = closed_book(questions, model)
    tables, start = {}, 0
    for n in names:
        part = answers[start:start + len(sets[n])]
        tables[n] = evaluate.score(sets[n], part, system=n)
        start += len(sets[n])
    return tables


def baseline(sets: dict, model=None) -> dict[str, pd.DataFrame]:
    """The base model's tables on every measured set. Fixes sets["control"] to the first MIN_CONTROL
    candidates the base model answers correctly (what fine-tuning could make it forget), and its
    table to those rows."""
    tables = measure(model if model is not None else models.load_generator()[0], sets)
    right = tables["control"].correct.astype(bool)
    if right.sum() < MIN_CONTROL:
        raise ValueError(f"The base model answers only {right.sum()} of the {len(right)} control questions: "
                         f"a forgetting measure needs at least {MIN_CONTROL}; add easier ones to "
                         f"{knowledge_data.CONTROL.name}.")
    keep = right & (right.cumsum() <= MIN_CONTROL)
    sets["control"] = [q for q, ok in zip(sets["control"], keep) if ok]
    tables["control"] = tables["control"][keep].reset_index(drop=True)
    return tables


def rates(tables: dict[str, pd.DataFrame]) -> dict:
    """Key-fact accuracy with its 95 % interval and n, per set."""
    return {n: evaluate.rates(t)["key_fact_accuracy"] for n, t in tables.items()}


# ---- the sweep --------------------------------------------------------------------------------

def _model(setting: Setting):
    if setting.full:
        model = lora.fresh_base().float()
        for p in model.parameters():
            p.requires_grad_(True)
        return model, None
    config = lora.lora_config(setting.r, setting.alpha, 0.05, lora.LLAMA_MODULES)
    return lora.add_lora(config), config


def sweep(setting: Setting, doc_ids: list[str], sets: dict, seed: int = 0, progress: bool = False, log=print):
    """Train one run per number of rewordings, scoring each epoch's checkpoint; returns (points, kept).

    points: one dict per checkpoint (rewordings, epochs, training seconds and tokens, loss, rates,
    score tables). A run stops early when its dev key facts fall below its best epoch's. kept: the
    point the ftrag.tuning rule picks on the dev set (listed in training order, so on a tie the
    cheaper point wins). Its weights are saved as the adapter ADAPTER (a LoRA setting) or kept in
    memory as kept["model"] (full weights); `kept_model` returns them.
    """
    tokenizer = models.load_generator()[1]
    points, best = [], None
    for level in setting.levels:
        features, trained_on = training_features(tokenizer, doc_ids, level, sets["qa"])
        tokens_per_epoch = tokens(features)
        per_epoch = math.ceil(len(features) / setting.batch_size)
        model, config = _model(setting)
        level_best = [-1]

        def checkpoint(step, result, level=level, model=model, config=config, features=features,
                       trained_on=trained_on, tokens_per_epoch=tokens_per_epoch, per_epoch=per_epoch,
                       level_best=level_best):
            nonlocal best
            tables = measure(model, sets)
            epoch = step // per_epoch
            point = {"name": f"{level} rewordings, epoch {epoch}", "rewordings": level, "epochs": epoch,
                     "train_seconds": result.seconds, "train_tokens": tokens_per_epoch * epoch,
                     "examples": len(features), "loss": sum(result.losses[-per_epoch:]) / per_epoch,
                     "precision": result.precision, "rates": rates(tables), "tables": tables}
            points.append(point)
            log(f"{point['name']}: {result.seconds:.0f} s of training, loss {point['loss']:.2f}, "
                + ", ".join(f"{n} {r['value']:.2f}" for n, r in point["rates"].items()))
            dev_right = tuning.merit(tables["dev"])[0]
            rivals = {best["name"]: best["tables"]["dev"]} if best else {}
            if tuning.choose({**rivals, point["name"]: tables["dev"]}) == point["name"]:
                if best is not None:
                    best.pop("model", None)
                best = point
                if config is None:
                    point["model"] = copy.deepcopy(model).eval()
                else:
                    lora.save_adapter(model, ADAPTER, trained_on, config, copy.deepcopy(result),
                                      {"setting": setting.name, "rewordings": level, "epochs": epoch})
            stop = dev_right < level_best[0]
            level_best[0] = max(level_best[0], dev_right)
            return stop

        lora.train(model, features, steps=setting.epochs * per_epoch, batch_size=setting.batch_size,
                   lr=setting.lr, seed=seed, progress=progress, group_by_length=True,
                   every=per_epoch, on_checkpoint=checkpoint)
        del model, checkpoint
        _release_memory()
    kept = tuning.choose({p["name"]: p["tables"]["dev"] for p in points})
    return points, next(p for p in points if p["name"] == kept)


def _release_memory() -> None:
    """Free a finished run's model and hand the memory back to the OS (glibc), so that the next run
    does not stack its peak on top of the last one's."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def kept_model(kept: dict):
    """The kept checkpoint's model, ready to answer: the saved adapter merged into a fresh base, or
    the full model in memory."""
    return kept["model"] if "model" in kept else merged(lora.load_adapter(ADAPTER))


def rows(points: list[dict], base: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every scored answer: one row per (checkpoint or base, set, question)."""
    parts = [t.assign(point=name, set=n)[["point", "set", "id", "kind", "question", "answer", "correct"]]
             for name, tables in [("base", base)] + [(p["name"], p["tables"]) for p in points]
             for n, t in tables.items()]
    return pd.concat(parts, ignore_index=True)


def old_and_new(answers, sets: dict, system: str) -> dict[str, pd.DataFrame]:
    """Answers to the update questions scored twice: against the new fact and against the old one."""
    return {"new fact": evaluate.score(sets["update after"], answers, system=system),
            "old fact": evaluate.score(sets["update before"], answers, system=system)}
