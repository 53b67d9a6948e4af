"""`python -m ftrag train` (ftrag/train.py): bad input, the same training as ftrag.lora.train, and a
real data-parallel run: `accelerate launch` with configs/accelerate_cpu_2proc.yaml, 2 CPU processes
talking through gloo, against the same command in one process. About a minute on 2 busy cores."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ftrag import lora, models
from ftrag.__main__ import main
from ftrag.paths import ROOT

QA = [("How long do I have to return boots?", "45 days, if they are unworn."),
      ("Do you ship to Iceland?", "No, we ship within the EU only."),
      ("How long does the Glowpoint lantern last on high?", "6 hours on high."),
      ("Is the Ridge tent waterproof?", "Yes, it is rated to 3000 mm."),
      ("What does express shipping cost?", "It costs 9 euros."),
      ("Can I pay by invoice?", "Yes, for orders over 50 euros."),
      ("How heavy is the Summit backpack?", "It weighs 1.2 kg."),
      ("Do the gloves come in size XS?", "No, sizes start at S.")]
EXAMPLES = [{"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": q}],
             "target": a} for q, a in QA]  # ~40 tokens each: a step takes about a second
STEPS, BATCH, LR = 3, 4, 2e-3
RECIPE = ["--steps", str(STEPS), "--batch-size", str(BATCH), "--lr", str(LR), "--rank", "8",
          "--dropout", "0", "--seed", "0", "--no-progress"]
CPU_CONFIG = ROOT / "configs" / "accelerate_cpu_2proc.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One PyTorch thread in this process while these tests run, as in the launched children: on 2
    shared cores, two threads that wait on each other ran these small steps 10-20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return lora.write_examples(tmp_path_factory.mktemp("train") / "tiny.jsonl", EXAMPLES)


def child_env() -> dict:
    """The environment of a training run: offline, one thread per process (2 processes on 2 cores),
    and nothing left over from a launcher that may have started pytest itself."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ACCELERATE_") and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE",
                                                             "MASTER_ADDR", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return env


def train_cli(launcher: list[str], data, out: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([*launcher, "-m", "ftrag", "train", "--data", str(data), "--out", str(out),
                           "--log-shards", str(out / "shards.jsonl"), *RECIPE],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / lora.RECORD_FILE).read_text())
    shards = [json.loads(line) for line in (out / "shards.jsonl").read_text().splitlines()]
    print(f"{' '.join(launcher[-3:])}: {time.perf_counter() - t0:.1f} s wall, "
          f"{record['metrics']['train_seconds']:.1f} s training")
    return {"record": record, "shards": shards, "weights": load_file(out / lora.ADAPTER_FILE), "dir": out}


@pytest.fixture(scope="module")
def runs(data_file, tmp_path_factory):
    """The same recipe trained in one process and, data parallel, in two."""
    out = tmp_path_factory.mktemp("runs")
    one = train_cli([sys.executable], data_file, out / "one")
    accelerate = Path(sys.executable).parent / "accelerate"  # the venv's own launcher
    two = train_cli([str(accelerate), "launch", "--config_file", str(CPU_CONFIG)], data_file, out / "two")
    return one, two


# ---- the command line and bad input ---------------------------------------------------------------

def test_help_lists_the_recipe_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ["--data", "--out", "--rank", "--alpha", "--dropout", "--target-modules", "--steps",
                 "--batch-size", "--grad-accum", "--lr", "--seed", "--max-length", "--log-shards"]:
        assert flag in out


GOOD = json.dumps(EXAMPLES[0])


@pytest.mark.parametrize("lines, extra, message", [
    (None, [], "No training file"),
    ([], [], "holds no examples"),
    (["", "  "], [], "holds no examples"),
    ([GOOD, '{"messages": [}'], [], "line 2: not valid JSON"),
    ([GOOD, "", json.dumps({"messages": EXAMPLES[0]["messages"]})], [], "line 3: no 'target'"),
    ([json.dumps({"target": "hi"})], [], "line 1: no 'messages'"),
    (["[1, 2]"], [], "line 1: no 'messages' and no 'target'"),
    ([json.dumps({"messages": [], "target": "hi"})], [], 'line 1: "messages" must be a non-empty list'),
    ([json.dumps({**EXAMPLES[0], "target": " "})], [], 'line 1: "target" must be the non-empty'),
    ([GOOD], ["--target-modules", "q_proj", "attn"], r"Unknown target module\(s\) \['attn'\].*'down_proj'"),
    ([GOOD], ["--rank", "0"], "rank r must be a positive integer"),
    ([GOOD], ["--steps", "0"], "--steps must be at least 1"),
    ([GOOD], ["--batch-size", "3", "--grad-accum", "2"], "use a multiple of 2"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, lines, extra, message):
    path = tmp_path / "data.jsonl"
    if lines is not None:
        path.write_text("\n".join(lines) + "\n" * bool(lines), encoding="utf-8")
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_launch_that_started_one_cpu_process_is_pointed_to_the_config():
    from ftrag.train import launch_note

    # what `accelerate launch --cpu --num_processes 2` leaves its single child
    assert "accelerate_cpu_2proc.yaml" in launch_note({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"}, 1)
    assert launch_note({"MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2"}, 2) is None  # torchrun: fine
    assert launch_note({}, 1) is None  # plain `python -m ftrag train`


def test_examples_round_trip_through_jsonl(tmp_path):
    assert lora.read_examples(lora.write_examples(tmp_path / "x.jsonl", EXAMPLES)) == EXAMPLES


# ---- the same training as ftrag.lora ------------------------------------------------------------

def test_command_trains_as_lora_train_does_also_with_gradient_accumulation(data_file, tmp_path):
    """In this process, 2 micro-batches per step: the loss of a step is normalised by the answer
    tokens of the whole batch, so accumulating gives the losses of ftrag.lora.train's plain loop."""
    _, tok = models.load_generator()
    steps = 2  # two steps show the second batch, after an update, agrees too
    reference = lora.train(lora.add_lora(lora.lora_config(r=8, dropout=0.0)), lora.build_examples(tok, EXAMPLES),
                           steps=steps, batch_size=BATCH, lr=LR, seed=0, progress=False, precision="float32")
    assert main(["train", "--data", str(data_file), "--out", str(tmp_path / "acc"), "--grad-accum", "2",
                 "--log-shards", str(tmp_path / "shards.jsonl"), *RECIPE, "--steps", str(steps)]) == 0
    record = json.loads((tmp_path / "acc" / lora.RECORD_FILE).read_text())
    assert record["losses"] == pytest.approx(reference.losses, abs=1e-4)
    assert record["config"] == lora.recipe(lora.lora_config(r=8, dropout=0.0), steps, BATCH, LR, 0)
    assert record["data_hash"] == lora.data_hash(EXAMPLES) and record["run"]["grad_accum"] == 2
    shards = [json.loads(line) for line in (tmp_path / "shards.jsonl").read_text().splitlines()]
    assert [s["micro"] for s in shards] == [0, 1] * steps and all(len(s["indices"]) == 2 for s in shards)
    assert not any("lora" in n for n, _ in models.load_generator()[0].named_modules())  # shared base untouched


# ---- 2 processes under accelerate launch ----------------------------------------------------------

def test_two_processes_train_on_disjoint_shards_of_each_batch(runs):
    one, two = runs
    assert two["record"]["run"]["processes"] == 2 and two["record"]["run"]["distributed_type"] == "MULTI_CPU"
    assert one["record"]["run"]["processes"] == 1
    global_batches = list(lora.batches(len(EXAMPLES), BATCH, STEPS, seed=0))
    assert [s["indices"] for s in one["shards"]] == global_batches
    for step, batch in enumerate(global_batches):
        rank0, rank1 = ([s["indices"] for s in two["shards"] if s["step"] == step and s["rank"] == r]
                        for r in (0, 1))
        assert len(rank0) == len(rank1) == 1 and len(rank0[0]) == len(rank1[0]) == BATCH // 2
        assert not set(rank0[0]) & set(rank1[0])         # different examples on each process...
        assert rank0[0] + rank1[0] == batch              # ...that together are the one-process batch


def test_two_process_adapter_matches_the_one_process_adapter(runs, monkeypatch):
    """Not bit-identical, and cannot be: each process sums its own half of the batch and gloo then
    adds the two halves, a different order of float additions than one process summing it all
    (and 2 processes with dropout would draw different masks, hence --dropout 0 here). The batches,
    the token normalisation and the averaged gradient are the same, so the weights agree to float
    rounding. AdamW divides each update by that weight's own gradient scale, so a rounding
    difference in a near-zero gradient can move one weight by up to the learning rate per step;
    the bounds below leave room for that, and the answers must not change."""
    from peft import PeftModel

    one, two = runs
    assert one["record"]["config"] == two["record"]["config"]
    assert one["record"]["data_hash"] == two["record"]["data_hash"]
    assert two["record"]["losses"] == pytest.approx(one["record"]["losses"], abs=1e-4)
    w1, w2 = one["weights"], two["weights"]
    assert w1.keys() == w2.keys()
    max_diff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    rel_diff = max(((w1[k] - w2[k]).norm() / w1[k].norm()).item() for k in w1)
    print(f"adapter weights, 1 vs 2 processes: max abs difference {max_diff:.1e}, "
          f"largest relative (norm) difference of a tensor {rel_diff:.1e}")
    assert max_diff < LR / 4 and rel_diff < 1e-3
    assert max(w1[k].abs().max().item() for k in w1 if "lora_B" in k) > 1e-3  # it did train

    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "float32")  # compare float32 answers, no bf16 copy
    _, tok = models.load_generator()
    batch = lora.collate(lora.build_examples(tok, EXAMPLES), tok.pad_token_id)
    tuned, answers = [], []
    for run in (one, two):
        model = PeftModel.from_pretrained(lora.fresh_base(), str(run["dir"])).eval()
        with torch.no_grad():
            tuned.append(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits)
        answers.append([g.text for g in models.generate_many([e["messages"] for e in EXAMPLES],
                                                             max_new_tokens=12, model=model, tokenizer=tok)])
    with torch.no_grad():
        base = models.load_generator()[0](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()
    logit_diff = (tuned[0] - tuned[1])[real].abs().max().item()
    print(f"logits, 1 vs 2 processes: max abs difference {logit_diff:.1e} "
          f"(the adapter moved them by up to {(tuned[0] - base)[real].abs().max().item():.1f})")
    assert logit_diff < 1e-2
    assert answers[0] == answers[1], answers
