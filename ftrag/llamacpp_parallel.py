"""Several greedy answers decoded together in one llama.cpp context, through its lower-level API.

Scope: the serving batch of ftrag.llamacpp.Runtime. Each prompt is its own sequence in a context built
for that many sequences (a key/value buffer of its own per sequence); the prompts' shared start (system
prompt, worked example) is computed once and copied to every sequence; the prompts' own parts are
computed together in chunks of up to `n_batch` tokens; then every unfinished sequence adds one token per
step, in one call, until it ends or reaches max_new_tokens. A finished sequence leaves the batch, so no
step is spent on padding (ftrag.models.generate_many drops finished rows from transformers batches too).
Leaves out: sampling, sequences that join while others decode (continuous batching), GPU offload.
"""
import ctypes

import numpy as np

from .models import MIN_SHARED_TOKENS, shared_prefix_length

CONTEXT_STEP = 256  # llama.cpp rounds a context to this many tokens; a round size per sequence avoids a warning


class Parallel:
    """One llama.cpp context holding up to `sequences` sequences of up to `tokens` tokens each."""

    def __init__(self, llama_cpp, model, sequences: int, tokens: int, threads: int, adapter=None,
                 n_batch: int = 512):
        """model: a loaded llama_model pointer; adapter: a loaded LoRA adapter pointer, or None."""
        self.lib, self.n_batch = llama_cpp, n_batch
        per_sequence = -(-tokens // CONTEXT_STEP) * CONTEXT_STEP
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_seq_max = sequences * per_sequence, sequences
        params.n_batch = params.n_ubatch = n_batch
        params.kv_unified = False  # each sequence attends only to its own buffer, not to all of them
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context for {sequences} sequences of {tokens} tokens.")
        if adapter is not None:
            adapters, scales = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter), (ctypes.c_float * 1)(1.0)
            if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales):
                raise RuntimeError("llama.cpp could not apply the adapter to the parallel context.")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(max(n_batch, sequences), 0, 1)
        self.vocabulary = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))

    def close(self):
        self.lib.llama_batch_free(self.batch)
        self.lib.llama_free(self.ctx)

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> dict[int, int]:
        """Feed (token, position, sequence, wants its next token) entries; return sequence -> greedy next token."""
        chosen = {}
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            self.batch.n_tokens = len(chunk)
            for i, (token, position, sequence, wanted) in enumerate(chunk):
                self.batch.token[i], self.batch.pos[i], self.batch.logits[i] = token, position, wanted
                self.batch.n_seq_id[i], self.batch.seq_id[i][0] = 1, sequence
            if self.lib.llama_decode(self.ctx, self.batch) != 0:
                raise RuntimeError("llama.cpp could not decode a batch: the context is too small for these prompts.")
            for i, (_, _, sequence, wanted) in enumerate(chunk):
                if wanted:
                    logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ctx, i), shape=(self.vocabulary,))
                    chosen[sequence] = int(logits.argmax())
        return chosen

    def tokens(self, prompts: list[list[int]], max_new_tokens: int, is_end) -> list[list[int]]:
        """Greedy new tokens for each prompt (at most as many prompts as the context has sequences).

        is_end: token -> True for the tokens that end an answer (not returned)."""
        self.lib.llama_memory_clear(self.memory, True)
        shared = shared_prefix_length(prompts) if len(prompts) > 1 else 0
        shared = shared if shared >= MIN_SHARED_TOKENS else 0
        if shared:
            self._decode([(t, i, 0, False) for i, t in enumerate(prompts[0][:shared])])
            for sequence in range(1, len(prompts)):
                self.lib.llama_memory_seq_cp(self.memory, 0, sequence, -1, -1)
        entries = [(t, shared + i, s, i == len(p) - shared - 1)
                   for s, p in enumerate(prompts) for i, t in enumerate(p[shared:])]
        new = [[] for _ in prompts]
        step = self._decode(entries)
        while step:
            live = {}
            for sequence, token in step.items():
                if not is_end(token):
                    new[sequence].append(token)
                    if len(new[sequence]) < max_new_tokens:
                        live[sequence] = token
            step = self._decode([(t, len(prompts[s]) + len(new[s]) - 1, s, True) for s, t in live.items()])
        return new
