"""Vector search at scale and batched serving, measured (explained in labs/07_scale.ipynb).

Scope:
- a large *synthetic* collection shaped like our MiniLM embeddings: real embeddings of texts cut from
  our documents are the anchors; topics scatter around them and points around the topics, with noise
  drawn from the anchors' own covariance (so the spread has the anisotropy of real embeddings);
- exact ground truth by brute force (numpy), recall@k against it;
- a benchmark for any FAISS index: build seconds, memory (serialised bytes), median and p95
  single-query latency on one thread, recall@k, over a sweep of a search-time parameter;
- a serving benchmark: batched greedy generation (ftrag.models.generate_many) per batch size.
The size knob is the environment variable FTRAG_SCALE_N (default 200,000 vectors).
Leaves out: GPU indexes, sharding over machines, filtered search, and concurrent query load.

>>> base, queries = synthetic_collection(anchors, n=10_000, n_queries=100)       # doctest: +SKIP
>>> truth = exact_search(base, queries, k=10)[1]                                  # doctest: +SKIP
>>> benchmark("HNSW32", faiss.IndexHNSWFlat(384, 32, faiss.METRIC_INNER_PRODUCT),
...           base, queries, truth, sweep=("efSearch", [16, 64]))                 # doctest: +SKIP
"""
import os
import re
import time

import numpy as np

SCALE_ENV = "FTRAG_SCALE_N"
FULL_N = 200_000


def collection_size(default: int = FULL_N) -> int:
    """The number of vectors to generate: FTRAG_SCALE_N if set, else `default`."""
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return default
    if not raw.replace("_", "").isdigit() or int(raw) < 1000:
        raise ValueError(f"{SCALE_ENV}={raw!r}: give a whole number of vectors, at least 1000 (e.g. 20000).")
    return int(raw)


# ---------------------------------------------------------------- the collection

def sentences(text: str) -> list[str]:
    return [s for s in (" ".join(p.split()) for p in re.split(r"(?<=[.!?])\s+|\n\s*\n", text)) if s]


def anchor_texts(documents: list[dict], questions: list[str] = ()) -> list[str]:
    """Real texts to embed as anchors: each sentence, each pair of neighbouring sentences, and the
    questions; duplicates dropped.

    >>> anchor_texts([{"title": "Returns", "body": "Within 45 days. Keep the receipt."}], ["How long?"])
    ['Within 45 days.', 'Keep the receipt.', 'Within 45 days. Keep the receipt.', 'How long?']
    """
    out = []
    for d in documents:
        sents = sentences(d["body"])
        out += sents + [f"{a} {b}" for a, b in zip(sents, sents[1:])]
    out += [q.strip() for q in questions if q.strip()]
    if not out:
        raise ValueError("No text to make anchors from: pass documents with non-empty bodies.")
    return list(dict.fromkeys(out))


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic_collection(anchors: np.ndarray, n: int, n_queries: int = 1000, per_topic: int = 50,
                         topic_spread: float = 0.6, point_spread: float = 0.8, seed: int = 0,
                         chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """n base vectors and n_queries query vectors (float32, L2-normalised), all synthetic.

    anchors: real embeddings (m, dim), m >= 2. About n / per_topic topics are placed around randomly
    chosen anchors (topic = anchor + topic_spread * noise) and points around the topics
    (point = topic + point_spread * noise). The noise has the anchors' covariance scaled to unit
    expected squared length. Queries are drawn the same way but are not in the base.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    if anchors.ndim != 2 or len(anchors) < 2:
        raise ValueError(f"anchors must be a (m, dim) array with m >= 2, not shape {anchors.shape}")
    if n < 1 or n_queries < 1:
        raise ValueError(f"n and n_queries must be positive (got {n}, {n_queries})")
    rng = np.random.default_rng(seed)
    eigval, eigvec = np.linalg.eigh(np.cov(anchors, rowvar=False))
    shape = (eigvec * np.sqrt(np.clip(eigval, 0, None) / eigval.clip(0).sum())).T.astype(np.float32)

    def noise(rows: int) -> np.ndarray:
        return rng.standard_normal((rows, anchors.shape[1]), dtype=np.float32) @ shape

    n_topics = max(1, (n + n_queries) // per_topic)
    topics = normalise(anchors[rng.integers(len(anchors), size=n_topics)].astype(np.float32)
                       + topic_spread * noise(n_topics))
    out = np.empty((n + n_queries, anchors.shape[1]), dtype=np.float32)
    for start in range(0, len(out), chunk):  # in chunks, so the noise never holds a second full copy
        rows = min(chunk, len(out) - start)
        out[start:start + rows] = normalise(topics[rng.integers(n_topics, size=rows)] + point_spread * noise(rows))
    rng.shuffle(out)
    return out[:n], out[n:].copy()


def exact_search(base: np.ndarray, queries: np.ndarray, k: int = 10,
                 chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k by inner product (scores, ids), best first: the ground truth."""
    k = min(k, len(base))
    scores = np.empty((len(queries), k), np.float32)
    ids = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ base.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        ids[start:start + chunk] = np.take_along_axis(top, order, axis=1)
        scores[start:start + chunk] = np.take_along_axis(top_sims, order, axis=1)
    return scores, ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k that the index found (k = truth.shape[1]).

    >>> recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 1, 9]]))
    0.6666666666666666
    """
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"{found.shape[0]} result rows for {truth.shape[0]} ground-truth rows")
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)]))


# ---------------------------------------------------------------- FAISS benchmark

def build(index, base: np.ndarray, max_train: int = 50_000, seed: int = 0) -> float:
    """Train (if the index needs it, on a sample) and add base; returns the seconds it took."""
    t0 = time.perf_counter()
    if not index.is_trained:
        sample = np.random.default_rng(seed).choice(len(base), size=min(max_train, len(base)), replace=False)
        index.train(base[np.sort(sample)])
    index.add(base)
    return time.perf_counter() - t0


def index_bytes(index) -> int:
    """Bytes of the serialised index: the vectors or codes plus the graph or lists it keeps in memory."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def query_latencies(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Found ids and per-query seconds, one query at a time on one thread (a single user's view)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # stable numbers; a server would run one query per core in parallel
    try:
        ids = np.empty((len(queries), k), np.int64)
        seconds = np.empty(len(queries))
        for i in range(len(queries)):
            q = queries[i:i + 1]
            t0 = time.perf_counter()
            ids[i] = index.search(q, k)[1][0]
            seconds[i] = time.perf_counter() - t0
    finally:
        faiss.omp_set_num_threads(threads)
    return ids, seconds


def benchmark(name: str, index, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
              sweep: tuple[str, list] | None = None) -> list[dict]:
    """Build `index` on base, then time every query and score recall@k (k = truth.shape[1]) for
    each value of a search-time parameter (e.g. ("efSearch", [16, 64]) or ("nprobe", [1, 8])).

    One row per setting: index, setting, build_s, memory_mb, median_ms, p95_ms, recall_at_k.
    """
    import faiss

    if len(queries) != len(truth):
        raise ValueError(f"{len(queries)} queries for {len(truth)} ground-truth rows")
    build_s = build(index, base)
    memory_mb = index_bytes(index) / 1e6  # MB = 10^6 bytes
    param, values = sweep or (None, [None])
    rows = []
    for value in values:
        if param:
            faiss.ParameterSpace().set_index_parameter(index, param, value)
        found, seconds = query_latencies(index, queries, truth.shape[1])
        rows.append({"index": name, "setting": f"{param}={value}" if param else "", "build_s": build_s,
                     "memory_mb": memory_mb, "median_ms": 1e3 * float(np.median(seconds)),
                     "p95_ms": 1e3 * float(np.percentile(seconds, 95)), "recall_at_k": recall_at_k(found, truth)})
    return rows


# ---------------------------------------------------------------- serving

def serving_benchmark(conversations: dict[str, list[list[dict]]], batch_sizes=(1, 4, 16),
                      max_new_tokens: int = 48, min_requests: int = 8, model=None, tokenizer=None) -> list[dict]:
    """Batched greedy generation, timed: for each named set of conversations (e.g. with and without
    retrieved context) and each batch size b, answer the first max(b, min_requests) conversations
    (all of them if there are fewer) in batches of b.

    One row per (prompt set, batch size): requests, prompt_tokens (mean), new_tokens (total),
    seconds (wall time), tokens_per_s (new tokens / wall time) and latency_s (median time a request
    waits for its batch to finish).
    """
    from .models import for_inference, generate_many, load_generator

    if not conversations or not all(conversations.values()):
        raise ValueError("Pass a dict of non-empty conversation lists, e.g. {'without context': [...]}.")
    if model is None or tokenizer is None:  # fill in only what is missing, as generate_many does
        default_model, default_tokenizer = load_generator()
        model, tokenizer = model or default_model, tokenizer or default_tokenizer
    model = for_inference(model)  # the inference copy is made once, outside the timed calls
    first = next(iter(conversations.values()))[:1]
    generate_many(first, max_new_tokens=4, model=model, tokenizer=tokenizer)  # warm-up, not timed
    rows = []
    for label, convs in conversations.items():
        for bs in batch_sizes:
            batch = convs[:max(bs, min_requests)]
            t0 = time.perf_counter()
            outs = generate_many(batch, max_new_tokens=max_new_tokens, model=model, tokenizer=tokenizer,
                                 batch_size=bs)
            wall = time.perf_counter() - t0
            # Generation.seconds is the batch's time divided by its size: a request waits for all of it.
            waits = [o.seconds * len(outs[s:s + bs]) for s in range(0, len(outs), bs) for o in outs[s:s + bs]]
            new = sum(o.new_tokens for o in outs)
            rows.append({"prompts": label, "batch_size": bs, "requests": len(outs),
                         "prompt_tokens": float(np.mean([o.prompt_tokens for o in outs])),
                         "new_tokens": new, "seconds": wall, "tokens_per_s": new / wall,
                         "latency_s": float(np.median(waits))})
    return rows
