"""The scale helpers against references: numpy brute force, FAISS exact search, and sane benchmark rows."""
import faiss
import numpy as np
import pytest

from ftrag import scale


@pytest.fixture(scope="module")
def collection():
    anchors = np.random.default_rng(5).normal(size=(40, 24)).astype(np.float32)
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    base, queries = scale.synthetic_collection(anchors, n=3000, n_queries=60, per_topic=30, seed=1)
    return anchors, base, queries


def test_collection_is_normalised_clustered_and_reproducible(collection):
    anchors, base, queries = collection
    assert base.shape == (3000, 24) and queries.shape == (60, 24) and base.dtype == np.float32
    assert np.allclose(np.linalg.norm(base, axis=1), 1, atol=1e-5)
    again, _ = scale.synthetic_collection(anchors, n=3000, n_queries=60, per_topic=30, seed=1)
    assert np.array_equal(again, base)
    assert not (queries @ base.T > 1 - 1e-6).any()  # queries are new points, not copies of base vectors
    # cluster structure: a query's nearest neighbour is far closer than a random base vector
    nearest = (queries @ base.T).max(axis=1)
    random = np.einsum("ij,ij->i", queries, base[:60])
    assert nearest.mean() > random.mean() + 0.3


def test_exact_search_equals_a_full_sort_and_faiss(collection):
    _, base, queries = collection
    scores, ids = scale.exact_search(base, queries, k=10, chunk=7)  # chunks that do not divide 60
    full = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    assert np.array_equal(ids, full)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    f_scores, f_ids = index.search(queries, 10)
    assert np.allclose(scores, f_scores, atol=1e-5) and scale.recall_at_k(f_ids, ids) == 1.0
    assert scale.exact_search(base[:4], queries, k=10)[1].shape == (60, 4)  # k capped at the size


def test_recall_counts_the_true_neighbours_found():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert scale.recall_at_k(truth[:, ::-1], truth) == 1.0  # order inside the top-k does not matter
    assert scale.recall_at_k(np.array([[1, 2, 9, 9], [0, 0, 0, 8]]), truth) == pytest.approx((2 / 4 + 1 / 4) / 2)
    with pytest.raises(ValueError, match="rows"):
        scale.recall_at_k(truth[:1], truth)


def test_benchmark_rows_are_sane_and_recall_follows_nprobe(collection):
    _, base, queries = collection
    truth = scale.exact_search(base, queries, k=10)[1]
    flat = scale.benchmark("Flat", faiss.IndexFlatIP(24), base, queries, truth)
    assert len(flat) == 1 and flat[0]["recall_at_k"] == 1.0
    assert flat[0]["memory_mb"] * 1e6 >= base.nbytes and 0 < flat[0]["median_ms"] <= flat[0]["p95_ms"]
    nlist = 32
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(24), 24, nlist, faiss.METRIC_INNER_PRODUCT)
    rows = scale.benchmark("IVF", ivf, base, queries, truth, sweep=("nprobe", [1, nlist]))
    assert [r["setting"] for r in rows] == ["nprobe=1", f"nprobe={nlist}"]
    assert rows[0]["recall_at_k"] < 1.0 and rows[1]["recall_at_k"] == 1.0  # probing every list is exact
    assert rows[0]["build_s"] == rows[1]["build_s"] > 0
    with pytest.raises(ValueError, match="ground-truth"):
        scale.benchmark("Flat", faiss.IndexFlatIP(24), base, queries[:5], truth)


def test_query_timing_restores_the_thread_count(collection):
    _, base, queries = collection
    before = faiss.omp_get_max_threads()
    index = faiss.IndexFlatIP(24)
    index.add(base)
    ids, seconds = scale.query_latencies(index, queries, 5)
    assert ids.shape == (60, 5) and (seconds > 0).all() and faiss.omp_get_max_threads() == before


def test_size_knob(monkeypatch):
    monkeypatch.delenv(scale.SCALE_ENV, raising=False)
    assert scale.collection_size() == scale.FULL_N == 200_000
    monkeypatch.setenv(scale.SCALE_ENV, "20_000")
    assert scale.collection_size() == 20_000
    for bad in ("abc", "10"):
        monkeypatch.setenv(scale.SCALE_ENV, bad)
        with pytest.raises(ValueError, match=scale.SCALE_ENV):
            scale.collection_size()


def test_anchor_texts_and_bad_input():
    docs = [{"id": "a", "title": "Returns", "body": "Within 45 days. Keep the receipt.\n\nCards refunded."}]
    texts = scale.anchor_texts(docs, ["How long?", "  "])
    assert "Keep the receipt. Cards refunded." in texts and "Within 45 days." in texts
    assert texts[-1] == "How long?" and len(texts) == len(set(texts))
    with pytest.raises(ValueError, match="non-empty bodies"):
        scale.anchor_texts([{"id": "a", "body": " "}])
    with pytest.raises(ValueError, match="m >= 2"):
        scale.synthetic_collection(np.ones((1, 4)), n=10)


def test_serving_benchmark_counts_tokens_and_times_batches():
    convs = [[{"role": "user", "content": q}] for q in ("Say hi.", "Name a colour.", "Count to three.")]
    rows = scale.serving_benchmark({"short": convs}, batch_sizes=(1, 3), max_new_tokens=6, min_requests=2)
    assert [(r["prompts"], r["batch_size"], r["requests"]) for r in rows] == [("short", 1, 2), ("short", 3, 3)]
    for r in rows:
        assert 0 < r["new_tokens"] <= r["requests"] * 6 and r["tokens_per_s"] == pytest.approx(r["new_tokens"] / r["seconds"])
        assert 0 < r["latency_s"] <= r["seconds"] and r["prompt_tokens"] > 5
    with pytest.raises(ValueError, match="non-empty"):
        scale.serving_benchmark({"none": []})
