"""The roofline's measurements and bounds (ftrag.roofline), and the production runtime against them."""
import copy
import doctest
import os

import pytest
import torch

from ftrag import llamacpp, models, roofline


def test_doctests():
    assert doctest.testmod(roofline).failed == 0


def test_bounds_pick_the_lower_roof():
    # batch 1: the memory is the limit; batch 64: the cores are
    assert roofline.decode_bound(1, 2e8, 1e8, 4e10, 4e11) == pytest.approx(200)
    assert roofline.decode_bound(64, 2e8, 1e8, 4e10, 4e11) == pytest.approx(2000)
    assert roofline.training_bound(1e8, 4e11) == pytest.approx(1000)


def test_the_output_layer_counts_only_for_answer_tokens():
    # a quarter of the parameters in the output layer, a tenth of the tokens answers
    assert roofline.training_flops(1e8, 2.5e7, 0.1) == pytest.approx(4 * (7.5e7 + 2.5e6))
    assert roofline.training_bound(1e8, 4e11, 2.5e7, 1.0) == pytest.approx(1000)
    with pytest.raises(ValueError, match="answer_share"):
        roofline.training_flops(1e8, 2.5e7, 1.5)


def test_tied_weights_count_once():
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleList([emb, head])
    assert roofline.parameters(model) == 40
    assert roofline.weight_bytes(model.to(torch.bfloat16)) == 80


def test_interleaved_rates_rotate_the_order():
    order = []
    rates = roofline.interleaved_rates({"a": lambda: order.append("a") or 1.0,
                                        "b": lambda: order.append("b") or 3.0}, trials=2)
    assert order == ["a", "b", "b", "a"]
    assert rates["b"]["tokens_per_s"] == 3.0 and rates["a"]["runs"] == [1.0, 1.0]
    with pytest.raises(ValueError):
        roofline.interleaved_rates({}, trials=1)


def test_measurements_are_plausible():
    # a CPU of this decade: between 1 and 1,000 GB/s, and between 1 and 100,000 GFLOP/s
    assert 1e9 < roofline.read_bandwidth(megabytes=128, repeats=3) < 1e12
    assert 1e9 < roofline.matmul_peak(torch.float32, calls=5, repeats=2) < 1e14
    with pytest.raises(ValueError, match="caches"):
        roofline.read_bandwidth(megabytes=8)


# CI builds llama.cpp and sets FTRAG_REQUIRE_LLAMACPP=1, so there a failed build fails this test
# instead of skipping it; a learner without a compiler sees the skip and its reason.
needs_llamacpp = pytest.mark.skipif(
    not llamacpp.available() and os.environ.get("FTRAG_REQUIRE_LLAMACPP") != "1", reason=llamacpp.MISSING)


@needs_llamacpp
def test_production_runtime_decodes_near_the_bandwidth_bound():
    """At batch 1 on SmolLM2-135M in bfloat16, llama.cpp decodes at a large share of the read-bandwidth
    bound measured beside it. On this shared machine the bandwidth measured 28-57 GB/s from one run to
    the next, and the share 0.43-0.80 (about 0.47-0.50 when the memory was fastest): so the bandwidth
    and the rate are measured in turns, three times, and the median share must reach 0.40, far above
    transformers' (about 0.12-0.20, lab 7)."""
    runtime = llamacpp.Runtime.for_reader(precision="bfloat16")
    shares = []
    for _ in range(3):
        bound = roofline.read_bandwidth() / runtime.weight_bytes
        shares.append(runtime.decode_rate(new_tokens=64, repeats=1)["tokens_per_s"] / bound)
    assert sorted(shares)[1] >= 0.40, f"shares of the bandwidth bound: {shares}"


@needs_llamacpp
def test_llamacpp_answers_from_the_same_tokens_as_transformers():
    runtime = llamacpp.Runtime.for_reader(precision="bfloat16")
    conversation = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ours = runtime.generate_many([conversation], max_new_tokens=8)[0]
    theirs = models.generate(conversation, max_new_tokens=8)
    assert ours.prompt_tokens == theirs.prompt_tokens
    assert "Paris" in ours.text and "Paris" in theirs.text
    with pytest.raises(ValueError, match="precision"):
        llamacpp.gguf_file(precision="int3")


@needs_llamacpp
def test_adapter_file_applies_the_same_change_as_peft(tmp_path):
    """A random LoRA adapter on every linear layer, applied by PEFT in transformers and by llama.cpp from
    its converted file, moves the next-token logits the same way: the adapter's effect is many times the
    difference between the two runtimes, and both pick the same token."""
    import numpy as np

    from ftrag import lora

    model, tokenizer = models.load_generator()
    peft_model = lora.add_lora(lora.lora_config(4, 8, 0.0, lora.LLAMA_MODULES), model=copy.deepcopy(model))
    torch.manual_seed(1)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero (no change); give it a change to carry
            p.data.normal_(0, 0.02)
    peft_model.save_pretrained(str(tmp_path))
    path = llamacpp.adapter_gguf(tmp_path, model.config.to_dict())
    ids = models.chat_ids(tokenizer, [{"role": "user", "content": "Which tent suits a wet weekend?"}])

    def llama_logits(adapter):
        runtime = llamacpp.Runtime(llamacpp.gguf_file(precision="bfloat16"), tokenizer, adapter=adapter)
        return runtime.next_token_logits(ids).astype(np.float64)

    with torch.no_grad():
        theirs = peft_model(torch.tensor([ids])).logits[0, -1].double().numpy()
        base = model(torch.tensor([ids])).logits[0, -1].double().numpy()
    ours, ours_base = llama_logits(path), llama_logits(None)
    effect, gap = np.abs(theirs - base).mean(), np.abs(theirs - ours).mean()
    assert np.abs(ours - ours_base).mean() > 0.5 * effect  # llama.cpp applied the adapter at all
    assert gap < 0.25 * effect, f"runtime gap {gap:.3f} vs the adapter's effect {effect:.3f}"
    assert ours.argmax() == theirs.argmax()
    with pytest.raises(ValueError, match="only llama"):
        llamacpp.adapter_gguf(tmp_path, {"model_type": "qwen2"})


def test_command_refuses_an_unknown_reader_before_measuring(capsys):
    from ftrag.__main__ import main

    assert main(["roofline", "--reader", "no-such-reader"]) == 2
    assert "Known readers" in capsys.readouterr().err


@needs_llamacpp
def test_serving_batch_gives_each_conversation_its_own_answer():
    """Decoded together (ftrag.llamacpp_parallel), each conversation keeps its own prompt and answer, in
    the order given, within max_new_tokens; the answers match one-at-a-time decoding where the kernels'
    rounding leaves the greedy path alone (a one-word fact)."""
    runtime = llamacpp.Runtime.for_reader(precision="bfloat16")
    questions = ["What is the capital of France?", "What colour is the sky on a clear day?",
                 "How many legs does a spider have?"]
    convs = [[{"role": "user", "content": q + " Answer in one word."}] for q in questions]
    together = runtime.generate_many(convs, max_new_tokens=8, batch_size=3)
    alone = runtime.generate_many(convs, max_new_tokens=8, batch_size=1)
    assert [a.prompt_tokens for a in together] == [len(models.chat_ids(runtime.tokenizer, c)) for c in convs]
    assert all(0 < a.new_tokens <= 8 for a in together)
    assert "Paris" in together[0].text and "Paris" not in together[1].text + together[2].text
    assert sum(a.text == b.text for a, b in zip(together, alone)) >= 2, [(a.text, b.text) for a, b in zip(together, alone)]
    long_answers = runtime.generate_many([convs[0]] * 2, max_new_tokens=3, batch_size=2, prefix="The")
    assert all(a.new_tokens <= 3 and a.text.startswith("The") for a in long_answers)
