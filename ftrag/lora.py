"""LoRA fine-tuning of the chat generator (explained in labs/03_lora.ipynb; reused by the hybrid lab).

Scope: turn (chat messages, target text) pairs into training examples whose loss covers only the
target, wrap the generator with a LoRA adapter, train it with a plain PyTorch loop, and keep each
adapter under results/adapters/<name>/ with a run record (config, data hash, metrics, adapter hash,
library versions) so a later lab can reload it, or train it itself when it is missing or stale.
Training runs under bfloat16 autocast where the CPU has native bf16 (or on a GPU that has it), the
weights and the optimiser staying float32: about 1.5x float32's speed here, measured side by side
with the loss curves in labs/07_scale.ipynb. `precision="float32"` turns it off.
Leaves out: quantised training (QLoRA) and learning-rate schedules; training with
`accelerate` (one or several processes, GPUs) is the command in ftrag/train.py, built on these pieces.

>>> model, tok = models.load_generator()                                       # doctest: +SKIP
>>> ex = [{"messages": prompts.closed_book_messages(q["question"]), "target": q["response"]}
...       for q in data.load_questions("train")]                              # doctest: +SKIP
>>> peft_model, record = train_or_load("closed_book", ex)                     # doctest: +SKIP
"""
import copy
import hashlib
import importlib.metadata
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from . import models
from .paths import RESULTS

ADAPTERS = RESULTS / "adapters"
IGNORE = -100  # label value the loss skips (PyTorch's cross-entropy ignore_index)
# The linear layers of a Llama-family block (SmolLM2 is one): attention, then MLP.
LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_FILE = "adapter_model.safetensors"
RECORD_FILE = "run_record.json"


# ---- examples ---------------------------------------------------------------------------------

def build_example(tokenizer, messages: list[dict], target: str) -> dict:
    """Token ids of prompt + target (with the chat template), and labels that are -100 on the prompt.

    The target ends with the template's end-of-turn token, which the model must learn to emit so
    that generation stops after the answer.
    """
    if not isinstance(target, str) or not target.strip():
        raise ValueError("Empty target: each example needs the answer text the model should learn.")
    prompt = models.chat_ids(tokenizer, messages)  # checks the messages are not empty
    enc = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": target}], tokenize=True)
    full = list(enc["input_ids"] if hasattr(enc, "keys") else enc)
    if full[:len(prompt)] != prompt:
        raise ValueError("The chat template renders the prompt differently once the answer is added; "
                         "prompt masking needs a template whose prompt is a prefix of the full chat.")
    answer = full[len(prompt):]
    # Keep up to and including the end-of-turn token; the template's trailing newline is not taught.
    if tokenizer.eos_token_id in answer:
        answer = answer[:answer.index(tokenizer.eos_token_id) + 1]
    return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}


def build_examples(tokenizer, examples: list[dict]) -> list[dict]:
    """build_example for a list of {"messages": [...], "target": "..."} dicts."""
    if not examples:
        raise ValueError("No training examples: pass a non-empty list of {'messages', 'target'} dicts.")
    return [build_example(tokenizer, e["messages"], e["target"]) for e in examples]


def collate(features: list[dict], pad_id: int) -> dict:
    """Right-pad a batch: padding gets attention 0 and label -100, so it neither attends nor counts."""
    width = max(len(f["input_ids"]) for f in features)
    ids, mask, labels = [], [], []
    for f in features:
        pad = width - len(f["input_ids"])
        ids.append(f["input_ids"] + [pad_id] * pad)
        mask.append([1] * len(f["input_ids"]) + [0] * pad)
        labels.append(f["labels"] + [IGNORE] * pad)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def write_examples(path, examples: list[dict]) -> Path:
    """Write {"messages": [...], "target": "..."} examples as JSONL, one per line, for `python -m ftrag train`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"messages": e["messages"], "target": e["target"]}, ensure_ascii=False) + "\n")
    return path


def read_examples(path) -> list[dict]:
    """The examples of a JSONL file written by write_examples, checked line by line.

    Raises FileNotFoundError for a missing file and ValueError, naming the line, for an empty file,
    a line that is not JSON, or an example without a non-empty "messages" list and "target" text.
    Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No training file {path}: pass a JSONL file with one "
                                '{"messages": [...], "target": "..."} example per line.')
    examples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {n}: not valid JSON ({err.msg}, column {err.colno}); "
                             "each line must be one JSON object.") from None
        missing = [k for k in ("messages", "target") if not isinstance(e, dict) or k not in e]
        if missing:
            raise ValueError(f"{path}, line {n}: no {' and no '.join(repr(k) for k in missing)}; each line "
                             'must look like {"messages": [{"role": "user", "content": "..."}], "target": "..."}.')
        messages, target = e["messages"], e["target"]
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                           and isinstance(m.get("content"), str) for m in messages)
                or not any(m["content"].strip() for m in messages)):
            raise ValueError(f"{path}, line {n}: \"messages\" must be a non-empty list of "
                             '{"role": ..., "content": ...} turns with some text.')
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f'{path}, line {n}: "target" must be the non-empty answer text the model should learn.')
        examples.append({"messages": messages, "target": target})
    if not examples:
        raise ValueError(f"{path} holds no examples: write one JSON object per line "
                         "(ftrag.lora.write_examples does).")
    return examples


# ---- configuration ----------------------------------------------------------------------------

def linear_module_names(model) -> list[str]:
    """Short names of the model's linear layers (what LoRA's target_modules may name)."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def lora_config(r: int = 8, alpha: int = 16, dropout: float = 0.05,
                target_modules=("q_proj", "v_proj"), model=None):
    """A peft LoraConfig for causal-LM training, with the values checked first.

    r: rank of the update B @ A; alpha: scale (the update is multiplied by alpha / r);
    dropout: on the adapter's input during training; target_modules: short names of the linear layers
    to adapt, checked against `model`'s layers if given, else against the Llama-family names.
    """
    from peft import LoraConfig

    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"LoRA rank r must be a positive integer (try 4, 8 or 16), not {r!r}.")
    if not alpha or alpha <= 0:
        raise ValueError(f"lora alpha must be positive (commonly 2 * r), not {alpha!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"lora dropout must be in [0, 1), not {dropout!r}.")
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    valid = linear_module_names(model) if model is not None else list(LLAMA_MODULES)
    unknown = [t for t in target_modules if t not in valid]
    if not target_modules or unknown:
        raise ValueError(f"Unknown target module(s) {unknown or '(none given)'}: "
                         f"choose among the model's linear layers {valid}.")
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                      bias="none", task_type="CAUSAL_LM")


def config_dict(config) -> dict:
    """The LoraConfig fields the run record keeps."""
    return {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "target_modules": sorted(config.target_modules)}


def fresh_base():
    """A private copy of the cached generator: peft injects its layers in place, and the shared
    base model must stay untouched for the other systems in the same process."""
    return copy.deepcopy(models.load_generator()[0])


def add_lora(config, model=None):
    """Wrap `model` (default: a fresh copy of the generator) with a new, trainable LoRA adapter."""
    from peft import get_peft_model

    torch.manual_seed(0)  # LoRA's A matrices start random; the same seed gives the same start
    return get_peft_model(model if model is not None else fresh_base(), config)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ---- training ---------------------------------------------------------------------------------

@dataclass
class TrainResult:
    losses: list = field(default_factory=list)        # one mean loss per step
    step_seconds: list = field(default_factory=list)  # wall time per step
    seconds: float = 0.0                              # whole loop
    steps: int = 0
    batch_size: int = 0
    lr: float = 0.0
    seed: int = 0
    examples: int = 0
    precision: str = "float32"


def batches(n: int, batch_size: int, steps: int, seed: int, lengths: list[int] | None = None):
    """Index lists for `steps` batches: a fresh seeded shuffle for each pass over the data.

    lengths: group examples of similar length into the same batch (within windows of 8 batches of
    the shuffle, then the batches in random order), so that short examples are not padded to the
    length of long ones - about a third fewer padded tokens for documents mixed with short pairs.
    """
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch_size:
            shuffled = torch.randperm(n, generator=gen).tolist()
            if lengths is not None:
                window = 8 * batch_size
                shuffled = [i for w in range(0, n, window)
                            for i in sorted(shuffled[w:w + window], key=lambda i: lengths[i])]
                groups = [shuffled[b:b + batch_size] for b in range(0, n, batch_size)]
                shuffled = [i for g in torch.randperm(len(groups), generator=gen).tolist() for i in groups[g]]
            order += shuffled
        yield order[:batch_size]
        order = order[batch_size:]


def answer_loss(model, batch: dict) -> torch.Tensor:
    """The mean cross-entropy of the answer tokens (label != -100), each predicted one position early:
    the loss `model(**batch).loss` gives, with the output layer applied only where an answer token is
    predicted. That layer (hidden size x vocabulary, 28M weights for the default reader) is a fifth of
    the model's work per token; a RAG-style prompt of 300 tokens before a 40-token answer would spend
    most of it on prompt positions whose predictions no loss reads."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model's own
    labels = batch["labels"][:, 1:]
    where = labels != IGNORE
    hidden = base.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    logits = base.get_output_embeddings()(hidden[:, :-1][where])
    return torch.nn.functional.cross_entropy(logits.float(), labels[where])


PRECISIONS = ("auto", "float32", "bfloat16")


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype of a precision setting: None (plain float32) or torch.bfloat16. "auto" is
    bfloat16 where the hardware computes it natively (AVX512-BF16 CPUs, bf16 GPUs), float32 elsewhere,
    where emulated bf16 would be slower than float32, and float32 when FTRAG_INFERENCE_DTYPE=float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}.")
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if os.environ.get(models.INFERENCE_DTYPE_ENV, "").strip() == "float32":
        return None  # the setting that makes every machine give the same answers keeps training float32 too
    native = (torch.cuda.is_bf16_supported() if device.startswith("cuda")
              else torch.cpu._is_avx512_bf16_supported())
    return torch.bfloat16 if native else None


def train(model, features: list[dict], steps: int = 25, batch_size: int = 4, lr: float = 2e-3,
          seed: int = 0, progress: bool = True, precision: str = "auto", group_by_length: bool = False,
          every: int = 0, on_checkpoint=None) -> TrainResult:
    """Plain AdamW loop over the trainable parameters; the model is left in eval mode.

    precision: see `autocast_dtype`. group_by_length: see `batches`. every, on_checkpoint: call on_checkpoint(step, result) after every
    `every` steps (and after the last), with the model in eval mode; its time is not training time.
    It returns True to stop training there (early stopping).
    """
    if not features:
        raise ValueError("No training examples: build them with build_examples first.")
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive, not {steps} and {batch_size}.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("The model has no trainable parameters: wrap it with add_lora first.")
    dtype = autocast_dtype(precision, str(model.device))
    torch.manual_seed(seed)  # LoRA dropout draws from the global generator
    pad_id = models.load_generator()[1].pad_token_id
    opt = torch.optim.AdamW(trainable, lr=lr)
    result = TrainResult(batch_size=batch_size, lr=lr, seed=seed, steps=steps, examples=len(features),
                         precision="bfloat16" if dtype else "float32")
    model.train()
    lengths = [len(f["input_ids"]) for f in features] if group_by_length else None
    bar = tqdm(batches(len(features), batch_size, steps, seed, lengths), total=steps, disable=not progress,
               desc="LoRA training", mininterval=2)
    for step, idx in enumerate(bar, 1):
        t0 = time.perf_counter()
        batch = {k: v.to(model.device) for k, v in collate([features[i] for i in idx], pad_id).items()}
        with torch.autocast(model.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = answer_loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        result.losses.append(loss.item())
        result.step_seconds.append(time.perf_counter() - t0)
        result.seconds = sum(result.step_seconds)
        result.steps = step
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}")
        if on_checkpoint is not None and every and (step % every == 0 or step == steps):
            model.eval()
            stop = on_checkpoint(step, result)
            model.train()
            if stop:
                break
    bar.close()
    model.eval()
    return result


# ---- saving, loading, records -----------------------------------------------------------------

def adapter_dir(name: str) -> Path:
    if not re.fullmatch(r"[a-z0-9_-]+", name or ""):
        raise ValueError(f"adapter name {name!r}: use lowercase letters, digits, '-' and '_'")
    return ADAPTERS / name


def data_hash(examples: list[dict]) -> str:
    """sha256 of the examples as canonical JSON: the same data gives the same hash on any machine."""
    blob = json.dumps(examples, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def versions() -> dict:
    return {p: importlib.metadata.version(p) for p in ("torch", "transformers", "peft", "ftrag")}


def recipe(config, steps: int, batch_size: int, lr: float, seed: int, precision: str = "float32") -> dict:
    """Everything that decides the trained weights, besides the data."""
    return {"base_model": models.generator_name(), "lora": config_dict(config),
            "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "precision": precision}


def save_adapter(model, name: str, examples: list[dict], config, result: TrainResult,
                 metrics: dict | None = None) -> dict:
    """Write the adapter (safetensors) and run_record.json to results/adapters/<name>/; return the record."""
    return save_adapter_to(adapter_dir(name), model, examples, config, result, metrics)


def save_adapter_to(folder, model, examples: list[dict], config, result: TrainResult,
                    metrics: dict | None = None, extra: dict | None = None) -> dict:
    """save_adapter into any folder (named in the record by its last part); `extra` adds top-level
    record entries, such as how the run was launched."""
    folder = Path(folder)
    name = folder.name
    model.save_pretrained(str(folder), safe_serialization=True, save_embedding_layers=False)  # embeddings are never adapted
    trainable, total = count_parameters(model)
    losses = result.losses
    record = {
        "name": name,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": recipe(config, result.steps, result.batch_size, result.lr, result.seed, result.precision),
        "data_hash": data_hash(examples),
        "examples": len(examples),
        "metrics": {"first_loss": losses[0], "last_loss": losses[-1],
                    "first10_loss": sum(losses[:10]) / len(losses[:10]),
                    "last10_loss": sum(losses[-10:]) / len(losses[-10:]),
                    "train_seconds": result.seconds, "seconds_per_step": result.seconds / result.steps,
                    "trainable_params": trainable, "total_params": total, **(metrics or {})},
        "losses": losses,
        "adapter_file": ADAPTER_FILE,
        "adapter_hash": file_hash(folder / ADAPTER_FILE),
        "adapter_bytes": (folder / ADAPTER_FILE).stat().st_size,
        "versions": versions(),
        **(extra or {}),
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def read_record(name: str) -> dict | None:
    path = adapter_dir(name) / RECORD_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def add_metrics(name: str, metrics: dict) -> dict:
    """Merge evaluation metrics into a saved run record (written after training, once measured)."""
    record = read_record(name)
    if record is None:
        raise FileNotFoundError(f"No run record for adapter {name!r} in {adapter_dir(name)}: train and save it first.")
    record["metrics"].update(metrics)
    (adapter_dir(name) / RECORD_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def load_adapter(name: str, model=None):
    """The saved adapter on top of `model` (default: a fresh copy of the generator), in eval mode.

    Refuses an adapter file whose hash no longer matches its run record.
    """
    from peft import PeftModel

    folder = adapter_dir(name)
    record = read_record(name)
    if record is None or not (folder / ADAPTER_FILE).exists():
        raise FileNotFoundError(f"No saved adapter {name!r} in {folder}: run labs/03_lora.ipynb, "
                                "or call train_or_load, which trains it when missing.")
    if file_hash(folder / ADAPTER_FILE) != record["adapter_hash"]:
        raise ValueError(f"{folder / ADAPTER_FILE} does not match the hash in its run record: "
                         "it was changed after training; delete the folder to retrain.")
    return PeftModel.from_pretrained(model if model is not None else fresh_base(), str(folder)).eval()


def train_or_load(name: str, examples: list[dict], r: int = 8, alpha: int = 16, dropout: float = 0.05,
                  target_modules=("q_proj", "v_proj"), steps: int = 25, batch_size: int = 4,
                  lr: float = 2e-3, seed: int = 0, progress: bool = True, precision: str = "auto"):
    """(peft model, run record): the saved adapter if it was trained on these examples with this
    recipe, otherwise a newly trained and saved one. Either way on a fresh copy of the generator.

    The defaults are lab 03's recipe: about one pass over ~100 short examples, ~1 min on 2 CPU cores.
    """
    config = lora_config(r, alpha, dropout, target_modules)
    record = read_record(name)
    used = "bfloat16" if autocast_dtype(precision, models.device()) else "float32"
    if (record is not None and record["data_hash"] == data_hash(examples)
            and record["config"] == recipe(config, steps, batch_size, lr, seed, used)):
        print(f"Loaded adapter {name!r} trained {record['written']} (data {record['data_hash'][:12]}).")
        return load_adapter(name), record
    print(f"Training adapter {name!r}: " + ("none saved yet." if record is None else "data or recipe changed."))
    model = add_lora(config)
    features = build_examples(models.load_generator()[1], examples)
    result = train(model, features, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=progress,
                   precision=precision)
    return model, save_adapter(model, name, examples, config, result)
