"""A runtime built for CPU inference beside transformers: llama.cpp (llama-cpp-python) on the same GGUF files.

Scope:
- whether the runtime is installed, with a message that says how to get it (it ships only as source
  and needs a C compiler; the book's labs then keep to transformers);
- two GGUF files per reader: the published quantised file (the bytes ftrag.models checks and
  transformers de-quantises) and a bfloat16 file that llama.cpp de-quantises from it once into the cache,
  so both runtimes can run exactly the same weights;
- greedy answers from exactly the token ids transformers sees (ftrag.models.chat_ids), decoded with the
  same tokenizer, returned as ftrag.models.Generation; one at a time, a prompt that shares its start
  with the previous one reuses that part of the KV cache, as llama.cpp servers do;
- the book's LoRA adapters (PEFT folders under results/adapters/) written as llama.cpp adapter files
  (GGUF, type "adapter"), which llama.cpp applies to the base weights as it computes, as PEFT does;
  for the llama architecture (the default reader), whose query and key rows llama.cpp stores permuted;
- a serving batch: several conversations decoded together in one context (ftrag.llamacpp_parallel);
- the decode rate at batch 1 or at a serving batch, with the prefill taken out, as
  ftrag.roofline.decode_rate does for transformers.
Leaves out: adapters for other architectures, DoRA and rank-stabilised LoRA, GPU offload and sampling.

>>> Runtime.for_reader(precision="bfloat16").generate_many([[{"role": "user", "content": "Hi"}]])  # doctest: +SKIP
"""
import importlib.util
import json
import os
import re
import statistics
import time
from pathlib import Path

from . import models
from .llamacpp_parallel import Parallel

MISSING = ("llama-cpp-python is not installed. It ships only as source and builds in about 5 minutes "
           "with a C compiler and cmake: run `make setup` again after installing them (on Debian: "
           "apt-get install build-essential cmake). Everything else in the book runs on transformers "
           "without it.")
PRECISIONS = ("published", "bfloat16")  # the reader's own quantised file, or all weights in bfloat16
BF16 = 32  # llama.cpp's LLAMA_FTYPE_MOSTLY_BF16


def available() -> bool:
    """True when llama-cpp-python can be imported here."""
    return importlib.util.find_spec("llama_cpp") is not None


def require():
    """The llama_cpp module, or a RuntimeError that says how to install it."""
    if not available():
        raise RuntimeError(MISSING)
    import llama_cpp

    return llama_cpp


def gguf_file(name: str | None = None, precision: str = "published") -> Path:
    """The reader's GGUF file in a precision (see PRECISIONS): its published file, checked against the
    published sha256, or a bfloat16 copy de-quantised from that file by llama.cpp (made once, in the cache)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    entry = models.reader(models.generator_name(name))
    published = models.checked_gguf(entry)
    if precision == "published":
        return published
    out = models.cache_dir() / entry.name / f"{Path(entry.gguf_file).stem}-bf16.gguf"
    if not out.exists():
        llama_cpp = require()
        out.parent.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize = BF16, True  # de-quantise every tensor, then store it as bf16
        params.nthread = os.cpu_count() or 1
        tmp = out.with_suffix(".partial")
        if llama_cpp.llama_model_quantize(str(published).encode(), str(tmp).encode(), params) != 0:
            raise RuntimeError(f"llama.cpp could not convert {published} to bfloat16 (see its log above).")
        os.replace(tmp, out)  # no half-written file is ever taken for the real one
    return out


# PEFT's module names in a llama model -> llama.cpp's tensor names
LLAMA_TENSORS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down"}


def _permute_rows(w, heads: int):
    """The row order llama.cpp keeps query and key weights in (rotary halves interleaved per head), as its
    converter writes them and transformers' GGUF loader undoes."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def adapter_gguf(adapter_dir: Path, base_config: dict) -> Path:
    """A llama.cpp adapter file (adapter.gguf, in the adapter's folder) from a PEFT LoRA folder.

    base_config: the base model's config (model.config.to_dict()). Each pair of LoRA matrices is stored as
    <tensor>.lora_a (r x in) and <tensor>.lora_b (out x r) in float32, with the adapter's alpha; llama.cpp
    scales B @ A by alpha / r, as PEFT does. Re-written whenever the PEFT weights are newer.
    """
    import gguf
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    config_file, weights = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{adapter_dir} holds no adapter_model.safetensors: train the adapter first.")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if base_config.get("model_type") != "llama":
        raise ValueError(f"Adapters for {base_config.get('model_type')!r} models are not converted; only llama.")
    if config.get("use_dora") or config.get("use_rslora") or config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError(f"{adapter_dir}: DoRA, rank-stabilised LoRA and per-layer ranks are not converted.")
    out = adapter_dir / "adapter.gguf"
    if out.exists() and out.stat().st_mtime >= weights.stat().st_mtime:
        return out
    heads = {"attn_q": base_config["num_attention_heads"],
             "attn_k": base_config.get("num_key_value_heads") or base_config["num_attention_heads"]}
    writer = gguf.GGUFWriter(str(out.with_suffix(".partial")), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for key, value in sorted(load_file(str(weights)).items()):
        found = re.search(r"layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$", key)
        if not found or found[2] not in LLAMA_TENSORS:
            raise ValueError(f"{adapter_dir}: tensor {key} is not a LoRA matrix of a llama linear layer.")
        name = f"blk.{found[1]}.{LLAMA_TENSORS[found[2]]}.weight.lora_{found[3].lower()}"
        value = value.astype("float32")
        if found[3] == "B" and LLAMA_TENSORS[found[2]] in heads:  # B holds the output rows
            value = _permute_rows(value, heads[LLAMA_TENSORS[found[2]]])
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(out.with_suffix(".partial"), out)
    return out


class Runtime:
    """One GGUF file loaded in llama.cpp, answering with the transformers tokenizer's token ids."""

    def __init__(self, path: Path, tokenizer, threads: int | None = None, n_ctx: int = 2048,
                 adapter: Path | None = None):
        """adapter: a llama.cpp adapter file (see adapter_gguf), applied on top of the weights at `path`."""
        import torch

        llama_cpp = require()
        self.path, self.tokenizer, self.adapter = Path(path), tokenizer, adapter
        self.threads = threads or torch.get_num_threads()  # the same cores transformers uses
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=self.threads,
                                   n_threads_batch=self.threads, seed=0, verbose=False,
                                   lora_path=str(adapter) if adapter else None)
        self._eog = lambda t: llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, t)

    @classmethod
    def for_reader(cls, name: str | None = None, precision: str = "published", adapter: str | None = None,
                   **kwargs) -> "Runtime":
        """The reader's GGUF file (see gguf_file) in llama.cpp, with the reader's transformers tokenizer.

        adapter: the name of a LoRA adapter of the book (a folder under results/adapters/), converted with
        adapter_gguf and applied on top.
        """
        from .lora import adapter_dir  # lora imports peft; only adapters need it

        model, tokenizer = models.load_generator(name)
        gguf_adapter = adapter_gguf(adapter_dir(adapter), model.config.to_dict()) if adapter else None
        return cls(gguf_file(name, precision), tokenizer, adapter=gguf_adapter, **kwargs)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights llama.cpp reads for every token: the GGUF file's tensors."""
        return int(self.llm._model.size())

    def _tokens(self, ids: list[int], max_new_tokens: int, stop: bool = True) -> list[int]:
        new = []
        for token in self.llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            if stop and self._is_end(token):
                break
            new.append(token)
            if len(new) == max_new_tokens:
                break
        return new

    def next_token_logits(self, ids: list[int]):
        """The logits llama.cpp gives the token after `ids` (a numpy vector over the vocabulary)."""
        import numpy as np

        self.llm.reset()
        self.llm.eval(ids)
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).copy()

    def _is_end(self, token: int) -> bool:
        return self._eog(token) or token == self.tokenizer.eos_token_id

    def generate_many(self, conversations: list[list[dict]], max_new_tokens: int = 64,
                      prefix: str = "", batch_size: int = 1) -> list[models.Generation]:
        """Greedy answers, like ftrag.models.generate_many.

        batch_size 1: one conversation at a time; a prompt reuses the cached start it shares with the one
        before. Larger: up to batch_size conversations of similar length decoded together (see
        ftrag.llamacpp_parallel); each answer's seconds are then its batch's time over the batch's size.
        """
        forced = self.tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
        prompts = [models.chat_ids(self.tokenizer, c) + forced for c in conversations]
        longest = max(map(len, prompts), default=0)
        if longest + max_new_tokens > self.llm.n_ctx():
            raise ValueError(f"A prompt of {longest} tokens does not fit llama.cpp's context of "
                             f"{self.llm.n_ctx()}: pass a larger n_ctx to Runtime.")
        out: list = [None] * len(prompts)
        if batch_size <= 1:
            for i, ids in enumerate(prompts):
                t0 = time.perf_counter()
                out[i] = self._answer(ids, self._tokens(ids, max_new_tokens), prefix, time.perf_counter() - t0)
            return out
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # as transformers batches them
        parallel = Parallel(require(), self.llm._model.model, min(batch_size, len(prompts)),
                            longest + max_new_tokens + 1, self.threads, self.llm._lora_adapter)
        try:
            for start in range(0, len(order), batch_size):
                members = order[start:start + batch_size]
                t0 = time.perf_counter()
                new = parallel.tokens([prompts[i] for i in members], max_new_tokens, self._is_end)
                seconds = (time.perf_counter() - t0) / len(members)
                for i, tokens in zip(members, new):
                    out[i] = self._answer(prompts[i], tokens, prefix, seconds)
        finally:
            parallel.close()
        return out

    def _answer(self, ids: list[int], new: list[int], prefix: str, seconds: float) -> models.Generation:
        text = prefix + self.tokenizer.decode(new, skip_special_tokens=True)
        return models.Generation(text.strip(), len(ids), len(new), seconds)

    def decode_rate(self, new_tokens: int = 64, repeats: int = 3, batch: int = 1) -> dict:
        """Decoded tokens per second at `batch` sequences, without the prefill (see
        ftrag.roofline.decode_rate, which does the same for transformers); batch > 1 decodes the
        sequences together (ftrag.llamacpp_parallel)."""
        ids = models.chat_ids(self.tokenizer, [{"role": "user", "content": "Describe a tent in detail."}])
        parallel = None
        if batch > 1:
            parallel = Parallel(require(), self.llm._model.model, batch, len(ids) + new_tokens + 9, self.threads,
                                self.llm._lora_adapter)

        def seconds(n):
            t0 = time.perf_counter()
            if parallel is None:
                self.llm.reset()  # no cached prefix: both runs pay the same prefill
                self._tokens(ids, n, stop=False)  # exactly n tokens: end-of-text does not stop it
            else:
                parallel.tokens([ids] * batch, n, lambda token: False)
            return time.perf_counter() - t0

        try:
            seconds(8)  # warm-up, not timed
            runs = [batch * new_tokens / (seconds(new_tokens + 8) - seconds(8)) for _ in range(repeats)]
        finally:
            if parallel is not None:
                parallel.close()
        return {"tokens_per_s": statistics.median(runs), "low": min(runs), "high": max(runs), "runs": runs}
