"""The LanceDB store against the FAISS store it stands in for: same top-k, persistence, Retriever updates."""
import subprocess
import sys

import numpy as np
import pytest

from ftrag.lancedb_store import LanceDBStore
from ftrag.retrieval import FaissStore, Retriever
from small_kb import DOCS, QUESTIONS  # tests/small_kb.py


def same_hits(a, b):
    """Same chunks in the same order; scores equal up to float rounding (1 - (1 - dot) in LanceDB)."""
    return len(a) == len(b) and all([(h.doc_id, h.chunk_id) for h in x] == [(h.doc_id, h.chunk_id) for h in y]
               and np.allclose([h.score for h in x], [h.score for h in y], atol=1e-5) for x, y in zip(a, b))


def unit_vectors(n, dim, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_same_top_k_and_scores_as_faiss(tmp_path):
    vectors, ids = unit_vectors(300, 32), np.arange(1000, 1300, dtype=np.int64)
    faiss_store, lance = FaissStore(32), LanceDBStore(tmp_path / "db", dim=32)
    faiss_store.add(ids, vectors)
    lance.add(ids, vectors)
    queries = unit_vectors(20, 32, seed=1)
    f_scores, f_ids = faiss_store.search(queries, 10)
    l_scores, l_ids = lance.search(queries, 10)
    assert np.array_equal(l_ids, f_ids)
    assert np.allclose(l_scores, f_scores, atol=1e-5)  # "dot" distance turned back into inner product
    one_scores, one_ids = lance.search(queries[:1], 10)  # a single query takes the other code path
    assert np.array_equal(one_ids, f_ids[:1]) and one_scores.shape == (1, 10)


def test_k_larger_than_the_store_returns_everything_once(tmp_path):
    lance = LanceDBStore(tmp_path / "db", dim=8)
    scores, ids = lance.search(unit_vectors(2, 8), 5)
    assert ids.shape == (2, 0) and len(lance) == 0
    lance.add(np.array([7, 8, 9]), unit_vectors(3, 8))
    scores, ids = lance.search(unit_vectors(2, 8, seed=3), 50)
    assert ids.shape == (2, 3) and all(sorted(row) == [7, 8, 9] for row in ids.tolist())
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_persists_across_objects_and_processes(tmp_path):
    folder, queries = tmp_path / "db", unit_vectors(4, 16, seed=2)
    lance = LanceDBStore(folder, dim=16)
    lance.add(np.arange(50), unit_vectors(50, 16))
    lance.remove(np.array([0, 1, 2]))
    scores, ids = lance.search(queries, 5)
    reopened = LanceDBStore.load(folder)
    assert reopened.dim == 16 and len(reopened) == 47
    assert np.array_equal(reopened.search(queries, 5)[1], ids)
    np.save(tmp_path / "q.npy", queries)
    code = ("import sys, numpy as np; from ftrag.lancedb_store import LanceDBStore; "
            "s = LanceDBStore.load(sys.argv[1]); print(s.search(np.load(sys.argv[2]), 5)[1].tolist())")
    out = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "q.npy")],
                         capture_output=True, text=True, check=True).stdout
    assert eval(out) == ids.tolist()  # a fresh process reads the same table from disk


def test_refuses_bad_input_with_clear_errors(tmp_path):
    lance = LanceDBStore(tmp_path / "db", dim=4)
    lance.add(np.array([1, 2]), np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(ValueError, match="duplicate ids"):
        lance.add(np.array([2]), np.eye(4, dtype=np.float32)[2:3])
    with pytest.raises(ValueError, match="shape"):
        lance.add(np.array([3]), np.ones((1, 5), np.float32))
    with pytest.raises(ValueError, match="4-d vectors"):
        LanceDBStore(tmp_path / "db", dim=8)
    with pytest.raises(FileNotFoundError, match="no LanceDB table"):
        LanceDBStore.load(tmp_path / "empty")


def test_retriever_on_lancedb_matches_faiss_and_updates_by_document(tmp_path):
    lance = Retriever(max_words=12, store=LanceDBStore(tmp_path / "kb")).build(DOCS)
    faiss_r = Retriever(max_words=12).build(DOCS)
    assert same_hits(lance.search_many(QUESTIONS, k=3), faiss_r.search_many(QUESTIONS, k=3))
    new = {"id": "returns-policy", "title": "Returns policy", "body": "Returns are accepted within 60 days."}
    lance.replace([new])
    texts = [h.text for h in lance.search("return window", k=100) if h.doc_id == "returns-policy"]
    assert texts == ["Returns are accepted within 60 days."]  # the old chunks are gone from the table
    lance.remove(["shipping"])
    assert len(lance.store) == len(lance) and set(lance.store.ids().tolist()) == set(lance.chunks)
    assert all(h.doc_id != "shipping" for h in lance.search("Is delivery free?", k=100))
    lance.save(tmp_path / "kb")  # the vectors are already there; this writes the chunk table
    back = Retriever.load(tmp_path / "kb")
    assert isinstance(back.store, LanceDBStore)
    assert back.search_many(QUESTIONS, k=3) == lance.search_many(QUESTIONS, k=3)
    lance.save(tmp_path / "copy")  # another folder gets a copy of the table
    assert same_hits(Retriever.load(tmp_path / "copy").search_many(QUESTIONS, k=3), lance.search_many(QUESTIONS, k=3))
