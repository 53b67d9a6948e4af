"""The retriever against references: brute-force numpy search, and what add/replace/remove must leave."""
import os
import subprocess
import sys

import numpy as np
import pytest

from ftrag.models import load_embedder
from ftrag.retrieval import FaissStore, Retriever, chunk_document, load_folder, slugify
from small_kb import DOCS, QUESTIONS  # tests/small_kb.py


@pytest.fixture(scope="module")
def retriever():
    return Retriever(max_words=12).build(DOCS)


def test_faiss_top_k_equals_brute_force_numpy():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(100, 150, dtype=np.int64)
    store = FaissStore(16)
    store.add(ids, vectors)
    queries = vectors[:5] + 0.3 * rng.normal(size=(5, 16)).astype(np.float32)
    scores, found = store.search(queries, 7)
    brute = queries @ vectors.T
    order = np.argsort(-brute, axis=1)[:, :7]
    assert np.array_equal(found, ids[order])
    assert np.allclose(scores, np.take_along_axis(brute, order, axis=1), atol=1e-5)


def test_store_caps_k_and_refuses_duplicate_ids():
    store = FaissStore(4)
    store.add(np.array([1, 2]), np.eye(4, dtype=np.float32)[:2])
    scores, ids = store.search(np.eye(4, dtype=np.float32)[:1], 10)
    assert ids.shape == (1, 2) and -1 not in ids
    with pytest.raises(ValueError, match="duplicate ids"):
        store.add(np.array([2]), np.eye(4, dtype=np.float32)[2:3])
    with pytest.raises(ValueError, match="shape"):
        store.add(np.array([3]), np.ones((1, 5), np.float32))


def test_retriever_finds_the_right_document(retriever):
    top = [hits[0].doc_id for hits in retriever.search_many(QUESTIONS, k=1)]
    assert top == ["returns-policy", "shipping", "tent-care", "store-hours"]


def test_retriever_scores_are_cosine_similarities(retriever):
    hit = retriever.search(QUESTIONS[0], k=1)[0]
    emb = load_embedder().encode([QUESTIONS[0], f"{hit.title}\n{hit.text}"], normalize_embeddings=True)
    assert hit.score == pytest.approx(float(emb[0] @ emb[1]), abs=1e-4)


def test_chunking_keeps_ids_and_respects_size(retriever):
    assert len(retriever) == 7  # every paragraph of DOCS is its own chunk at 12 words
    assert sorted(retriever.doc_ids) == sorted(d["id"] for d in DOCS)
    long_doc = {"id": "long", "body": " ".join(f"Sentence number {i} is here." for i in range(40))}
    chunks = chunk_document(long_doc, max_words=25)
    assert all(len(c.split()) <= 25 for c in chunks) and len(chunks) == 8
    assert " ".join(chunks).split() == long_doc["body"].split()  # nothing lost, nothing repeated
    assert chunk_document({"id": "w", "body": "x " * 30}, max_words=10) == ["x " * 9 + "x"] * 3


def test_empty_inputs_give_clear_errors(retriever):
    with pytest.raises(ValueError, match="Empty corpus"):
        Retriever().build([])
    with pytest.raises(ValueError, match="empty body"):
        Retriever().build([{"id": "a", "title": "A", "body": "  \n\n "}])
    with pytest.raises(ValueError, match="Empty question"):
        retriever.search("   ")
    with pytest.raises(ValueError, match="index is empty"):
        Retriever().search("anything")


def test_k_larger_than_the_index_returns_every_chunk(retriever):
    hits = retriever.search("tents", k=100)
    assert len(hits) == len(retriever)
    assert len({(h.doc_id, h.chunk_id) for h in hits}) == len(retriever)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_replace_leaves_no_stale_chunks():
    r = Retriever(max_words=12).build(DOCS)
    r.replace([{"id": "returns-policy", "title": "Returns policy", "body": "Returns are accepted within 60 days."}])
    assert len(r) == 6 and r.doc_ids.count("returns-policy") == 1
    texts = [h.text for h in r.search("return window", k=100) if h.doc_id == "returns-policy"]
    assert texts == ["Returns are accepted within 60 days."]  # one chunk, the new version only
    assert len(r.store) == len(r) and set(r.store.ids().tolist()) == set(r.chunks)
    r.replace([{"id": "gift-cards", "title": "Gift cards", "body": "Gift cards never expire."}])  # new id: added
    assert r.search("Do gift cards expire?", k=1)[0].doc_id == "gift-cards"


def test_add_refuses_an_indexed_id_and_remove_forgets_a_document():
    r = Retriever(max_words=12).build(DOCS)
    with pytest.raises(ValueError, match="replace"):
        r.add([DOCS[0]])
    r.remove(["shipping"])
    assert "shipping" not in r.doc_ids and len(r.store) == len(r) == 5
    assert all(h.doc_id != "shipping" for h in r.search("Is delivery free?", k=100))
    with pytest.raises(KeyError, match="shipping"):
        r.remove("shipping")


def test_hybrid_search_ranks_every_chunk_once(retriever):
    hybrid = Retriever(max_words=12, hybrid=True).build(DOCS)
    hits = hybrid.search("Do orders over $75 ship free?", k=100)
    assert hits[0].doc_id == "shipping" and len(hits) == len(hybrid)
    assert len({(h.doc_id, h.chunk_id) for h in hits}) == len(hits)


@pytest.mark.parametrize("hybrid", [False, True])
def test_save_load_round_trip_gives_identical_results(tmp_path, hybrid):
    r = Retriever(max_words=12, hybrid=hybrid).build(DOCS)
    r.replace([{"id": "shipping", "title": "Shipping", "body": "Shipping is free on every order."}])
    r.save(tmp_path / "idx")
    back = Retriever.load(tmp_path / "idx")
    assert back.doc_ids == r.doc_ids and len(back) == len(r) and back.hybrid == hybrid
    assert back.search_many(QUESTIONS, k=3) == r.search_many(QUESTIONS, k=3)
    back.add([{"id": "gift-cards", "title": "Gift cards", "body": "Gift cards never expire."}])
    assert len(set(back.chunks)) == len(back) == len(r) + 1  # new keys do not collide with loaded ones
    with pytest.raises(FileNotFoundError, match="chunks.json"):
        Retriever.load(tmp_path / "nothing")


def test_load_folder(tmp_path):
    (tmp_path / "Tent Care.md").write_text("# Caring for tents\n\nDry it first.\n\nNo washing machine.")
    (tmp_path / "hours.txt").write_text("We open at 9am.")
    (tmp_path / "notes.pdf").write_text("ignored")
    (tmp_path / "empty.md").write_text("  ")
    with pytest.warns(UserWarning, match="empty.md"):
        docs = load_folder(tmp_path)
    assert [(d["id"], d["title"]) for d in docs] == [("hours", "hours"), ("tent-care", "Caring for tents")]
    assert docs[1]["body"] == "Dry it first.\n\nNo washing machine."
    assert slugify("Returns Policy (2024)") == "returns-policy-2024"
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_folder(tmp_path / "missing")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "scan.pdf").write_text("ignored")
    with pytest.raises(ValueError, match="no .md or .txt files .nor text files without an extension"):
        load_folder(tmp_path / "sub")
    (tmp_path / "sub" / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004")
    assert [(d["id"], d["title"]) for d in load_folder(tmp_path / "sub")] == [("license", "LICENSE")]


def run_cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ftrag", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_indexes_a_folder_and_reports_errors(tmp_path):
    for d in DOCS:
        (tmp_path / f"{d['id']}.md").write_text(f"# {d['title']}\n\n{d['body']}")
    out = run_cli("index", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "Indexed 4 documents" in out.stdout and "[tent-care] Tent care" in out.stdout
    missing = run_cli("index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    nothing = run_cli("index", str(tmp_path / "empty"))
    assert nothing.returncode == 2 and "no .md or .txt" in nothing.stderr
