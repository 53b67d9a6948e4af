"""ftrag.lora on the real SmolLM2 (one load, ~20 s, shared by the module): masking, adapter round
trip, merge, config errors, and that training lowers the loss."""
import json

import pytest
import torch

from ftrag import lora, models, prompts

EXAMPLES = [
    {"messages": prompts.closed_book_messages("How long do I have to return boots?"),
     "target": "You have 45 days to return unworn boots. Happy trails!\nSource: [returns-policy]"},
    {"messages": prompts.closed_book_messages("Do you ship to Iceland?"),
     "target": "Our knowledge base doesn't cover that. Happy trails!\nSource: none"},
]


@pytest.fixture(scope="module")
def generator():
    return models.load_generator()


@pytest.fixture()
def adapters(tmp_path, monkeypatch):
    monkeypatch.setattr(lora, "ADAPTERS", tmp_path / "adapters")
    return tmp_path / "adapters"


def logits(model, tokenizer):
    batch = lora.collate(lora.build_examples(tokenizer, EXAMPLES), tokenizer.pad_token_id)
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def test_the_answer_loss_is_the_models_own_loss_on_the_answer_tokens(generator):
    # the output layer applied at the answer positions only gives the loss of every position
    model = perturbed_lora()
    batch = lora.collate(lora.build_examples(generator[1], EXAMPLES), generator[1].pad_token_id)
    with torch.no_grad():
        assert lora.answer_loss(model, batch).item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)


def perturbed_lora(r=4):
    """An adapter whose B matrices are non-zero, so it really changes the output (B starts at zero)."""
    model = lora.add_lora(lora.lora_config(r=r, dropout=0.0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.eval()


def test_labels_mask_exactly_prompt_and_padding(generator):
    _, tok = generator
    feats = lora.build_examples(tok, EXAMPLES)
    batch = lora.collate(feats, tok.pad_token_id)
    for row, f, ex in zip(range(2), feats, EXAMPLES):
        n_prompt = len(models.chat_ids(tok, ex["messages"]))
        n = len(f["input_ids"])
        labels, ids = batch["labels"][row].tolist(), batch["input_ids"][row].tolist()
        assert labels[:n_prompt] == [lora.IGNORE] * n_prompt                 # prompt masked
        assert labels[n_prompt:n] == ids[n_prompt:n]                         # answer taught, unshifted
        assert lora.IGNORE not in labels[n_prompt:n]
        assert labels[n:] == [lora.IGNORE] * (len(labels) - n)               # padding masked
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (len(labels) - n)
        # the taught tokens are the answer followed by the end-of-turn token, nothing else
        assert ids[n - 1] == tok.eos_token_id
        assert tok.decode(ids[n_prompt:n - 1]) == ex["target"]
    assert batch["input_ids"].shape[0] == 2 and len(feats[0]["input_ids"]) != len(feats[1]["input_ids"])


def test_empty_target_is_refused(generator):
    with pytest.raises(ValueError, match="Empty target"):
        lora.build_example(generator[1], EXAMPLES[0]["messages"], "  ")
    with pytest.raises(ValueError, match="No training examples"):
        lora.build_examples(generator[1], [])


@pytest.mark.parametrize("kwargs, message", [
    ({"r": 0}, "rank r must be a positive integer"),
    ({"r": 2.5}, "rank r must be a positive integer"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"target_modules": ["q_proj", "attn"]}, r"Unknown target module\(s\) \['attn'\].*'v_proj'"),
    ({"target_modules": []}, "Unknown target module"),
])
def test_bad_config_gives_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora.lora_config(**kwargs)


def test_target_modules_are_checked_against_the_model(generator):
    assert lora.linear_module_names(generator[0]) == sorted(lora.LLAMA_MODULES + ("lm_head",))
    with pytest.raises(ValueError, match="lm_head"):  # the valid names listed come from the model
        lora.lora_config(target_modules=["c_attn"], model=generator[0])


def test_lora_trains_under_one_percent_and_leaves_the_shared_base_alone(generator):
    model = lora.add_lora(lora.lora_config())
    trainable, total = lora.count_parameters(model)
    assert 0 < trainable < 0.01 * total
    assert not any("lora" in n for n, _ in generator[0].named_modules())


def test_saved_adapter_reloads_to_identical_logits(generator, adapters):
    model, tok = generator
    tuned = perturbed_lora()
    result = lora.TrainResult(losses=[2.0, 1.5], step_seconds=[0.1, 0.1], seconds=0.2, steps=2, batch_size=2)
    record = lora.save_adapter(tuned, "roundtrip", EXAMPLES, tuned.peft_config["default"], result)
    assert (adapters / "roundtrip" / lora.ADAPTER_FILE).exists()
    assert json.loads((adapters / "roundtrip" / lora.RECORD_FILE).read_text())["adapter_hash"] == record["adapter_hash"]
    assert record["data_hash"] == lora.data_hash(EXAMPLES) and record["config"]["lora"]["r"] == 4

    reloaded = lora.load_adapter("roundtrip")
    before, after = logits(tuned, tok), logits(reloaded, tok)
    assert torch.equal(before, after)
    assert not torch.allclose(before, logits(model, tok), atol=1e-3)  # the adapter does change the output


def test_tampered_adapter_is_refused(generator, adapters):
    tuned = perturbed_lora()
    result = lora.TrainResult(losses=[1.0], step_seconds=[0.1], seconds=0.1, steps=1, batch_size=2)
    lora.save_adapter(tuned, "tampered", EXAMPLES, tuned.peft_config["default"], result)
    with open(adapters / "tampered" / lora.ADAPTER_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="does not match the hash"):
        lora.load_adapter("tampered")
    with pytest.raises(FileNotFoundError, match="train_or_load"):
        lora.load_adapter("never-trained")


def test_merged_logits_equal_unmerged(generator):
    _, tok = generator
    tuned = perturbed_lora()
    unmerged = logits(tuned, tok)
    merged_model = tuned.merge_and_unload()
    assert not any("lora" in n for n, _ in merged_model.named_modules())
    assert torch.allclose(unmerged, logits(merged_model, tok), atol=1e-4)


def test_a_few_steps_lower_the_loss_and_train_or_load_reuses_the_adapter(generator, adapters, capsys):
    _, tok = generator
    feats = lora.build_examples(tok, EXAMPLES)
    batch = lora.collate(feats, tok.pad_token_id)

    model, record = lora.train_or_load("tiny", EXAMPLES, r=4, dropout=0.0, steps=4, batch_size=2, lr=3e-3,
                                       progress=False)
    base_loss = record["losses"][0]  # step 1's loss is the untrained model's (B starts at zero)
    with torch.no_grad():
        tuned_loss = model(**batch).loss.item()
    assert tuned_loss < base_loss - 0.1, (base_loss, tuned_loss)
    assert len(record["losses"]) == 4 and record["metrics"]["seconds_per_step"] > 0

    assert "Training adapter 'tiny'" in capsys.readouterr().out
    again, record2 = lora.train_or_load("tiny", EXAMPLES, r=4, dropout=0.0, steps=4, batch_size=2, lr=3e-3)
    assert "Loaded adapter 'tiny'" in capsys.readouterr().out and record2 == record
    with torch.no_grad():
        assert again(**batch).loss.item() == pytest.approx(tuned_loss, abs=1e-5)
