"""The machine's limits and how close a runtime gets to them: a roofline (explained in labs/07_scale.ipynb).

Scope:
- two quick measurements of this machine: the read bandwidth (summing a large bfloat16 tensor) and the
  matrix-multiply peak in bfloat16 and float32 (a product the size of SmolLM2's MLP), both with every
  thread torch uses, each the best of several repeats (a bound is the most the machine did);
- the decode rate of a transformers model at a given batch size, with the prompt's prefill taken out
  (the time of a long answer minus that of a short one, forced to full length);
- the bounds those numbers put on a transformer, per token: decoding at batch b reads every weight once
  per step and does 2 FLOPs per parameter per sequence, so it can go no faster than
  min(b * bandwidth / weight bytes, peak / (2 * parameters)); LoRA training does about 4 FLOPs per
  parameter per token (the forward pass, and the backward pass's gradients for the activations; the
  frozen weights get none), so it can go no faster than peak / (4 * parameters); the output layer runs
  only where an answer token is predicted (ftrag.lora.answer_loss), so its parameters count for that
  share of the tokens alone.
Leaves out: the KV cache's and the attention's own reads and FLOPs (small next to the weights at the
book's prompt lengths), caches smaller than the weights, and GPUs (the same formulas hold with their
numbers).

>>> decode_bound(batch=1, weight_bytes=269e6, params=135e6, bandwidth=37e9, peak=370e9)
137.54646840148698
>>> training_bound(params=135e6, peak=370e9)
685.1851851851852
"""
import statistics
import sys
import time

import torch

MATMUL_SHAPE = (1024, 576, 2304)  # (tokens, hidden, MLP width): one of SmolLM2-135M's MLP products


def _best(seconds_of_one, repeats: int) -> float:
    """The shortest of `repeats` timed calls, after one untimed warm-up call."""
    seconds_of_one()
    return min(seconds_of_one() for _ in range(repeats))


def read_bandwidth(megabytes: int = 512, repeats: int = 7) -> float:
    """Bytes per second that summing a `megabytes` bfloat16 tensor reads (larger than any cache)."""
    if megabytes < 64:
        raise ValueError("Use at least 64 MB, or the caches answer instead of the memory.")
    x = torch.ones(megabytes * 10**6 // 2, dtype=torch.bfloat16)

    def one():
        t0 = time.perf_counter()
        x.sum()
        return time.perf_counter() - t0

    return x.numel() * 2 / _best(one, repeats)


def matmul_peak(dtype=torch.bfloat16, shape=MATMUL_SHAPE, calls: int = 20, repeats: int = 5) -> float:
    """FLOPs per second of `calls` products of the given (m, k, n) shape in `dtype`."""
    m, k, n = shape
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)

    def one():
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b)
        return time.perf_counter() - t0

    return 2 * m * k * n * calls / _best(one, repeats)


def weight_bytes(model) -> int:
    """Bytes of the model's weights as it computes with them (tied weights counted once)."""
    seen = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
    return sum(seen.values())


def parameters(model) -> int:
    """Parameters of the model (tied weights counted once)."""
    return sum({p.data_ptr(): p.numel() for p in model.parameters()}.values())


def decode_bound(batch: int, weight_bytes: float, params: float, bandwidth: float, peak: float) -> float:
    """Tokens per second decoding can reach at `batch` sequences: the lower of the memory and compute roofs."""
    return min(batch * bandwidth / weight_bytes, peak / (2 * params))


def training_flops(params: float, output_params: float = 0, answer_share: float = 1.0) -> float:
    """FLOPs per training token: 4 per parameter, the output layer's `output_params` counted only for the
    `answer_share` of the tokens where the loss reads its prediction."""
    if not 0 <= answer_share <= 1 or not 0 <= output_params <= params:
        raise ValueError("answer_share must be in [0, 1] and output_params at most params.")
    return 4 * (params - output_params * (1 - answer_share))


def training_bound(params: float, peak: float, output_params: float = 0, answer_share: float = 1.0) -> float:
    """Tokens per second LoRA training can reach at the peak (see training_flops)."""
    return peak / training_flops(params, output_params, answer_share)


def decode_rate(model, tokenizer, batch: int = 1, new_tokens: int = 64, repeats: int = 3) -> dict:
    """Decoded tokens per second of a transformers model at `batch` sequences, without the prefill.

    Each trial generates `new_tokens` + 8 and 8 tokens from the same short prompt, forced to full length
    (greedy); the difference in time is `new_tokens` decode steps. Returns the median over trials with
    its range: {"tokens_per_s", "low", "high", "runs"}.
    """
    from .models import chat_ids, for_inference  # models imports nothing from here

    if batch < 1 or new_tokens < 8:
        raise ValueError("batch must be at least 1 and new_tokens at least 8.")
    runner = for_inference(model)
    ids = chat_ids(tokenizer, [{"role": "user", "content": "Describe a tent in detail."}])
    inputs = torch.tensor([ids] * batch, device=runner.device)
    mask = torch.ones_like(inputs)

    def seconds(n):
        t0 = time.perf_counter()
        with torch.no_grad():
            runner.generate(input_ids=inputs, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                            do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return time.perf_counter() - t0

    seconds(8)  # warm-up, not timed
    runs = [batch * new_tokens / (seconds(new_tokens + 8) - seconds(8)) for _ in range(repeats)]
    return {"tokens_per_s": statistics.median(runs), "low": min(runs), "high": max(runs), "runs": runs}


def interleaved_rates(measure: dict, trials: int = 3) -> dict[str, dict]:
    """name -> {"tokens_per_s", "low", "high", "runs"}: each name's measure() (a rate) taken `trials`
    times, the names taking turns in an order that rotates, as ftrag.timing.interleaved does for seconds."""
    if trials < 1 or not measure:
        raise ValueError("Pass at least one measure and one trial.")
    names, runs = list(measure), {name: [] for name in measure}
    for trial in range(trials):
        shift = trial % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(measure[name]())
    return {name: {"tokens_per_s": statistics.median(r), "low": min(r), "high": max(r), "runs": r}
            for name, r in runs.items()}


def add_subcommand(subparsers) -> None:
    """`python -m ftrag roofline [--reader NAME]`: this machine's bounds and each runtime's share at batch 1."""
    p = subparsers.add_parser("roofline", help="measure this machine's bandwidth and peak, and how close "
                                               "transformers and llama.cpp decode to them (about a minute)")
    p.add_argument("--reader", default=None, metavar="NAME",
                   help="smollm2-135m (default) or qwen2.5-coder-0.5b (default: FTRAG_GENERATOR)")
    p.set_defaults(run=_run)


def _run(args) -> int:
    from . import llamacpp, models  # both load torch models; the bounds alone need neither

    try:
        name = models.generator_name(args.reader)
    except ValueError as err:  # an unknown reader: one line that lists the known ones, before any measuring
        print(f"error: {err}", file=sys.stderr)
        return 2
    bandwidth, peak = read_bandwidth(), matmul_peak()
    print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s; bfloat16 matrix-product peak {peak / 1e9:.0f} GFLOP/s")
    model, tokenizer = models.load_generator(name)
    runner = models.for_inference(model)
    params, weights = parameters(runner), weight_bytes(runner)
    rows = [("transformers", weights, decode_rate(model, tokenizer)["tokens_per_s"])]
    if llamacpp.available():
        for precision in llamacpp.PRECISIONS:
            runtime = llamacpp.Runtime.for_reader(name, precision=precision)
            rows.append((f"llama.cpp {precision}", runtime.weight_bytes, runtime.decode_rate()["tokens_per_s"]))
    else:
        print(llamacpp.MISSING)
    for label, read, rate in rows:
        bound = decode_bound(1, read, params, bandwidth, peak)
        print(f"{label:>22}: {rate:6.1f} tokens/s at batch 1, {rate / bound:4.0%} of the bound "
              f"({bound:.0f} tokens/s for {read / 1e6:.0f} MB of weights)")
    return 0
