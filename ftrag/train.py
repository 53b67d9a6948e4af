"""Command line: train a LoRA adapter with Hugging Face `accelerate` (scale-out part of labs/07_scale.ipynb).

    python -m ftrag train --data results/lora_train.jsonl --out results/adapters/mine [--steps 25 ...]
    accelerate launch --config_file configs/accelerate_cpu_2proc.yaml -m ftrag train --data ... --out ...

Scope: the recipe of ftrag.lora (same examples, prompt masking, LoRA config, AdamW, seeded batch
order, adapter and run record) in a loop that `accelerate` runs in one process, or data parallel
in several (one per GPU, or CPU processes talking through gloo). Each optimiser step takes one
global batch of --batch-size examples, in the order ftrag.lora.batches gives; every process
trains on its own slice of it, split further into --grad-accum micro-batches. The loss of a step
is the sum of its answer-token losses divided by the answer tokens of the whole global batch, so
the gradient is the one a single process computes on that batch, whatever the number of
processes or micro-batches. Only the main process shows progress and saves.
Leaves out: multi-machine set-up (that is `accelerate config`), checkpoints to resume from,
learning-rate schedules, evaluation during training, and ftrag.lora.train's bfloat16 autocast: this
command trains in float32, the reference its processes are compared on.

>>> main(["--data", "train.jsonl", "--out", "results/adapters/mine", "--steps", "4"])  # doctest: +SKIP
"""
import argparse
import contextlib
import functools
import json
import os
import sys
import time
from pathlib import Path

DESCRIPTION = "train a LoRA adapter on a JSONL file of {messages, target} examples (runs under accelerate launch)"


class TrainError(Exception):
    """Bad input to the command; the message says what to do. The command exits with code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command's flags; the defaults are lab 03's recipe (ftrag.lora.train_or_load)."""
    parser.add_argument("--data", required=True, metavar="FILE.jsonl",
                        help='training examples, one {"messages": [...], "target": "..."} per line')
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the adapter (adapter_model.safetensors) and run_record.json")
    parser.add_argument("--rank", "-r", dest="r", type=int, default=8, help="LoRA rank r (default 8)")
    parser.add_argument("--alpha", type=int, default=16, help="LoRA alpha; the update is scaled by alpha / r (default 16)")
    parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    parser.add_argument("--target-modules", nargs="+", default=["q_proj", "v_proj"], metavar="NAME",
                        help="linear layers to adapt, e.g. q_proj v_proj or all seven: q_proj k_proj v_proj "
                             "o_proj gate_proj up_proj down_proj (default q_proj v_proj)")
    parser.add_argument("--steps", type=int, default=25, help="optimiser steps (default 25)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="examples per optimiser step, summed over all processes (default 4)")
    parser.add_argument("--grad-accum", type=int, default=1, metavar="K",
                        help="micro-batches per step and process: each process holds batch-size / "
                             "(processes * K) examples at a time (default 1)")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (default 2e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch order and of dropout (default 0)")
    parser.add_argument("--max-length", type=int, default=None, metavar="TOKENS",
                        help="cut longer examples to this many tokens (default: no cut)")
    parser.add_argument("--cpu", action="store_true",
                        help="train on the CPU even if a GPU is present (always so without a GPU)")
    parser.add_argument("--log-shards", metavar="FILE.jsonl", default=None,
                        help="write which examples each process trained on, per step (for checks)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """A parser for the command on its own, or `parser` (e.g. a subcommand's) with its flags added."""
    if parser is None:
        parser = argparse.ArgumentParser(prog="python -m ftrag train", description=DESCRIPTION)
    return add_arguments(parser)


def add_subcommand(subparsers) -> None:
    """Register `train` on the `python -m ftrag` command line (see ftrag/__main__.py)."""
    build_parser(subparsers.add_parser("train", help=DESCRIPTION, description=DESCRIPTION)
                 ).set_defaults(run=run)


def _say(*args, **kwargs) -> None:
    """Print on the main process only (RANK is set by torchrun / accelerate launch)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(*args, **kwargs)


def launch_note(env, processes: int) -> str | None:
    """A warning when `accelerate launch --cpu --num_processes N` ran one process: its CPU launcher
    starts several only through MPI (it sets MASTER_ADDR for them, but no WORLD_SIZE)."""
    if processes == 1 and "MASTER_ADDR" in env and "WORLD_SIZE" not in env:
        return ("note: `accelerate launch` started 1 process, not several: with --cpu it needs MPI for more. "
                "Use --config_file configs/accelerate_cpu_2proc.yaml (CPU processes through torchrun and gloo).")
    return None


def check_args(args) -> None:
    for flag, value in [("--steps", args.steps), ("--batch-size", args.batch_size),
                        ("--grad-accum", args.grad_accum)]:
        if value < 1:
            raise TrainError(f"{flag} must be at least 1, not {value}.")
    if not args.lr > 0:
        raise TrainError(f"--lr must be positive (try 2e-3), not {args.lr}.")
    if args.max_length is not None and args.max_length < 2:
        raise TrainError(f"--max-length must be at least 2 tokens, not {args.max_length}.")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise TrainError(f"--out {args.out} is a file: name a folder for the adapter.")


def truncate(features: list[dict], max_length: int | None) -> int:
    """Cut each example to max_length tokens in place; return how many were cut.

    An example whose answer would be cut away entirely is refused: it would teach nothing."""
    from .lora import IGNORE

    if max_length is None:
        return 0
    cut = 0
    for i, f in enumerate(features):
        if len(f["input_ids"]) > max_length:
            cut += 1
            f["input_ids"], f["labels"] = f["input_ids"][:max_length], f["labels"][:max_length]
            if all(t == IGNORE for t in f["labels"]):
                raise TrainError(f"Example {i + 1} (counting non-blank lines) has no answer token left "
                                 f"within --max-length {max_length}: raise it or shorten the prompt.")
    return cut


class StepBatches:
    """Batch sampler: the seeded global batches of ftrag.lora.batches, each cut into `accum`
    consecutive micro-batches. `accelerate` (split_batches=True) gives every process its slice
    of each micro-batch, so the processes together see exactly the global batch."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, accum: int):
        from .lora import batches

        self.global_batches = list(batches(n, batch_size, steps, seed))
        self.batch_size = batch_size // accum  # accelerate reads this attribute to split batches
        self.drop_last = False

    def __iter__(self):
        for batch in self.global_batches:
            for start in range(0, len(batch), self.batch_size):
                yield batch[start:start + self.batch_size]

    def __len__(self):
        return len(self.global_batches) * (len(self.global_batches[0]) // self.batch_size)


def _collate(features: list[dict], pad_id: int) -> dict:
    import torch

    from .lora import collate

    return {**collate(features, pad_id), "index": torch.tensor([f["index"] for f in features])}


def token_loss_sum(logits, labels):
    """Sum of the cross-entropy of every answer token (label != -100), predicted one position early."""
    import torch.nn.functional as F

    from .lora import IGNORE

    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


def run(args) -> int:
    """Train and save; 0 on success, 2 on bad input (message on stderr)."""
    try:
        return _run(args)
    except TrainError as err:
        _say(f"error: {err}", file=sys.stderr)
        return 2


def _checked(fn, *args, **kwargs):
    """fn(*args, **kwargs), with ftrag.lora's input errors turned into TrainError."""
    try:
        return fn(*args, **kwargs)
    except (FileNotFoundError, ValueError) as err:
        raise TrainError(str(err)) from None


def _run(args) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    check_args(args)
    from . import lora, models

    modules = [m for t in args.target_modules for m in t.split(",") if m]  # "q_proj,v_proj" works too
    examples = _checked(lora.read_examples, args.data)  # cheap checks first, before loading a model
    _checked(models.generator_name)  # FTRAG_GENERATOR names a model that exists

    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, gather_object
    from tqdm import tqdm

    accelerator = Accelerator(cpu=args.cpu or not torch.cuda.is_available(),
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    procs, rank = accelerator.num_processes, accelerator.process_index
    if launch_note(os.environ, procs):
        print(launch_note(os.environ, procs), file=sys.stderr)
    if args.batch_size % (procs * args.grad_accum):
        raise TrainError(f"--batch-size {args.batch_size} does not split evenly over {procs} process(es) "
                         f"x {args.grad_accum} micro-batch(es): use a multiple of {procs * args.grad_accum}.")
    with accelerator.main_process_first():  # the first load may de-quantise and cache the model once
        base, tokenizer = models.load_generator()
    config = _checked(lora.lora_config, args.r, args.alpha, args.dropout, modules, model=base)
    features = _checked(lora.build_examples, tokenizer, examples)
    cut = truncate(features, args.max_length)
    for i, f in enumerate(features):
        f["index"] = i
    sampler = StepBatches(len(features), args.batch_size, args.steps, args.seed, args.grad_accum)
    # answer tokens of each global batch: the denominator of that step's loss on every process
    step_tokens = [sum(sum(t != lora.IGNORE for t in features[i]["labels"][1:]) for i in b)
                   for b in sampler.global_batches]

    # a private copy of the base, as in lora.train_or_load: a caller's shared model stays untouched
    model = lora.add_lora(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    loader = torch.utils.data.DataLoader(features, batch_sampler=sampler,
                                         collate_fn=functools.partial(_collate, pad_id=tokenizer.pad_token_id))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    torch.manual_seed(args.seed + rank)  # dropout masks: rank 0 draws as ftrag.lora.train does

    result = lora.TrainResult(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              examples=len(examples))
    shards = []  # (step, micro-batch, rank, example indices) of this process
    model.train()
    micro = iter(loader)
    bar = tqdm(range(args.steps), disable=args.no_progress or not accelerator.is_main_process,
               desc=f"LoRA training ({procs} process{'es' * (procs > 1)})", mininterval=2)
    start = time.perf_counter()
    for step in bar:
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=accelerator.device)
        for k in range(args.grad_accum):
            batch = next(micro)
            index = batch.pop("index")
            shards.append({"step": step, "micro": k, "rank": rank, "indices": index.tolist()})
            labels = batch.pop("labels")
            # gradients are averaged over processes only on the last micro-batch of a step
            sync = contextlib.nullcontext() if k == args.grad_accum - 1 else accelerator.no_sync(model)
            with sync:
                tokens_loss = token_loss_sum(model(**batch).logits, labels)
                # DDP averages over the processes, hence * procs: the sum is over the global batch
                accelerator.backward(tokens_loss * procs / step_tokens[step])
            loss_sum += tokens_loss.detach()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result.losses.append(accelerator.reduce(loss_sum, "sum").item() / step_tokens[step])
        result.step_seconds.append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}")
    result.seconds = time.perf_counter() - start
    bar.close()

    all_shards = gather_object(shards) if procs > 1 else shards
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run_info = {"data_file": str(args.data), "processes": procs, "grad_accum": args.grad_accum,
                    "distributed_type": str(accelerator.distributed_type).split(".")[-1],
                    "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device),
                    "max_length": args.max_length, "examples_cut": cut, "step_tokens": step_tokens}
        record = lora.save_adapter_to(Path(args.out), accelerator.unwrap_model(model), examples, config,
                                      result, extra={"run": run_info})
        if args.log_shards:
            Path(args.log_shards).parent.mkdir(parents=True, exist_ok=True)
            Path(args.log_shards).write_text("".join(json.dumps(s) + "\n" for s in all_shards), encoding="utf-8")
        m = record["metrics"]
        print(f"Trained {args.steps} steps of {args.batch_size} on {procs} process(es) "
              f"({run_info['distributed_type']}, {accelerator.device.type}) in {result.seconds:.1f} s: "
              f"loss {m['first_loss']:.3f} -> {m['last_loss']:.3f}. "
              f"Adapter: {Path(args.out) / lora.ADAPTER_FILE} ({record['adapter_bytes'] / 1e6:.2f} MB).")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
