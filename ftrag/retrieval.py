"""Chunking, a vector store and the Retriever of the minimal RAG system (built in labs/02_rag.ipynb).

Documents are dicts with at least `id`, `title` and `body` (paragraphs split by blank lines), as in
data/documents.jsonl or as `load_folder` reads them from your own .md/.txt files. Each document is
cut into chunks of at most `max_words` words; every chunk keeps its document id, gets a unique int64
key, and its MiniLM embedding (L2-normalised, so inner product = cosine) goes into a vector store.
Replacing a document removes all its old chunks first, so a search never returns a stale version.
With hybrid=True the dense ranking is fused with a BM25 keyword ranking (reciprocal rank fusion).

Leaves out: approximate indexes (exact search is fast at this size; labs/02 says when IVF/HNSW pay
off), metadata filters, rerankers, and concurrent writers.

>>> r = Retriever().build([{"id": "returns-policy", "title": "Returns", "body": "Within 45 days."}])  # doctest: +SKIP
>>> r.search("How long do I have to return gear?", k=1)[0].doc_id                                     # doctest: +SKIP
'returns-policy'
"""
import importlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

MAX_WORDS = 60    # chunk size in words (about a paragraph); labs/02 measures the trade-off
RRF_K = 60        # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def check_question(question: str) -> str:
    """The question without surrounding spaces; an empty one is refused (prompts use this too)."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("Empty question: pass the customer's question as a non-empty string.")
    return question.strip()


@dataclass
class Hit:
    doc_id: str
    chunk_id: int   # position of the chunk inside its document
    title: str
    text: str
    score: float    # cosine similarity (dense) or fused RRF score (hybrid)


# ---------------------------------------------------------------- chunking

def _words(text: str) -> int:
    return len(text.split())


def _pieces(paragraph: str, max_words: int) -> list[str]:
    """A paragraph cut at sentence ends into pieces of <= max_words (a long sentence is cut by words)."""
    if _words(paragraph) <= max_words:
        return [paragraph]
    out, current = [], []
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        words = sentence.split()
        while len(words) > max_words:  # a single overlong sentence
            out.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            out.append(" ".join(current))
            current = []
        current += words
    if current:
        out.append(" ".join(current))
    return out


def chunk_document(doc: dict, max_words: int = MAX_WORDS) -> list[str]:
    """Paragraphs of doc["body"], split when longer than max_words and merged with their neighbours
    while the merged chunk stays within max_words.

    >>> chunk_document({"id": "a", "body": "One two.\\n\\nThree four five."}, max_words=5)
    ['One two.\\n\\nThree four five.']
    >>> chunk_document({"id": "a", "body": "One two.\\n\\nThree four five."}, max_words=3)
    ['One two.', 'Three four five.']
    """
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, not {max_words}")
    body = doc.get("body", "")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
    if not paragraphs:
        raise ValueError(f"Document {doc.get('id')!r} has an empty body: give it some text or leave it out.")
    chunks = []
    for piece in (p for para in paragraphs for p in _pieces(para, max_words)):
        if chunks and _words(chunks[-1]) + _words(piece) <= max_words:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return chunks


# ---------------------------------------------------------------- vector stores

class VectorStore(Protocol):
    """What the Retriever needs from a vector store. Vectors: float32, L2-normalised, shape (n, dim)."""
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...  # scores, ids
    def __len__(self) -> int: ...
    def save(self, folder: Path) -> None: ...
    @classmethod
    def load(cls, folder: Path) -> "VectorStore": ...


def check_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"vectors must have shape (n, {dim}), not {vectors.shape}")
    return vectors


class FaissStore:
    """Exact inner-product search with FAISS; IndexIDMap2 lets us add and remove by our own int64 ids."""
    FILE = "index.faiss"

    def __init__(self, dim: int):
        import faiss

        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = check_vectors(vectors, self.dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        # FAISS would silently keep two vectors under one id; refuse instead.
        if len(np.unique(ids)) != len(ids) or np.isin(ids, self.ids()).any():
            raise ValueError("duplicate ids: remove the old vectors before adding new ones under the same id")
        self.index.add_with_ids(vectors, ids)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map)

    def remove(self, ids: np.ndarray) -> None:
        self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = check_vectors(vectors, self.dim)
        k = min(k, len(self))  # FAISS pads with -1 ids when k exceeds the index size
        if k < 1:
            return np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64)
        return self.index.search(vectors, k)

    def __len__(self) -> int:
        return self.index.ntotal

    def save(self, folder: Path) -> None:
        import faiss

        Path(folder).mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(Path(folder) / self.FILE))

    @classmethod
    def load(cls, folder: Path) -> "FaissStore":
        import faiss

        index = faiss.read_index(str(Path(folder) / cls.FILE))
        store = cls(index.d)
        store.index = index
        return store


# ---------------------------------------------------------------- retriever

def _check_documents(documents) -> list[dict]:
    documents = list(documents)
    for d in documents:
        if not isinstance(d, dict) or not str(d.get("id", "")).strip() or "body" not in d:
            raise ValueError("Each document must be a dict with an 'id', a 'title' and a 'body' "
                             f"(got {str(d)[:80]!r}).")
    ids = [d["id"] for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError(f"Duplicate document ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return documents


def _bm25_tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


class Retriever:
    """Chunks documents, embeds the chunks and searches them; add/replace/remove work by document id."""

    def __init__(self, embedder=None, store: VectorStore | None = None, max_words: int = MAX_WORDS,
                 hybrid: bool = False):
        if embedder is None:
            from .models import load_embedder

            embedder = load_embedder()
        self.embedder, self.store, self.max_words, self.hybrid = embedder, store, max_words, hybrid
        self.chunks: dict[int, dict] = {}   # key -> {doc_id, chunk_id, title, text}
        self.next_key = 0                   # keys are never reused, so a stale id cannot come back
        self._bm25 = None

    # -- building
    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @staticmethod
    def passage(chunk: dict) -> str:
        """The text that is embedded: the title gives each chunk its topic."""
        return f"{chunk['title']}\n{chunk['text']}"

    def build(self, documents) -> "Retriever":
        """Index documents from scratch (the existing contents are dropped)."""
        documents = _check_documents(documents)
        if not documents:
            raise ValueError("Empty corpus: pass at least one document ({'id', 'title', 'body'}).")
        if self.store is not None:
            self.store.remove(np.fromiter(self.chunks, np.int64, len(self.chunks)))
        self.chunks, self._bm25 = {}, None
        self.add(documents)
        return self

    def add(self, documents) -> None:
        """Add new documents; an id that is already indexed is refused (use replace)."""
        documents = _check_documents(documents)
        if not documents:
            return
        taken = sorted(set(d["id"] for d in documents) & set(self.doc_ids))
        if taken:
            raise ValueError(f"Already indexed: {taken}. Use replace() to update a document.")
        new = []
        for d in documents:
            title = str(d.get("title") or d["id"])
            new += [{"doc_id": d["id"], "chunk_id": i, "title": title, "text": t}
                    for i, t in enumerate(chunk_document(d, self.max_words))]
        vectors = self.embed([self.passage(c) for c in new])
        if self.store is None:  # the embedder tells us the dimension
            self.store = FaissStore(vectors.shape[1])
        keys = np.arange(self.next_key, self.next_key + len(new), dtype=np.int64)
        self.store.add(keys, vectors)
        self.chunks.update(zip(keys.tolist(), new))
        self.next_key += len(new)
        self._bm25 = None

    def replace(self, documents) -> None:
        """Swap in new versions of documents (all old chunks go); unknown ids are simply added."""
        documents = _check_documents(documents)
        self.remove([d["id"] for d in documents if d["id"] in set(self.doc_ids)])
        self.add(documents)

    def remove(self, doc_ids) -> None:
        doc_ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        missing = sorted(set(doc_ids) - set(self.doc_ids))
        if missing:
            raise KeyError(f"Not in the index: {missing}")
        keys = [k for k, c in self.chunks.items() if c["doc_id"] in set(doc_ids)]
        if keys:
            self.store.remove(np.array(keys, dtype=np.int64))
        for k in keys:
            del self.chunks[k]
        self._bm25 = None

    @property
    def doc_ids(self) -> list[str]:
        return list(dict.fromkeys(c["doc_id"] for c in self.chunks.values()))

    def __len__(self) -> int:
        return len(self.chunks)

    # -- searching
    def search(self, question: str, k: int = 3) -> list[Hit]:
        return self.search_many([question], k)[0]

    def search_many(self, questions: list[str], k: int = 3) -> list[list[Hit]]:
        """The k best chunks per question, best first (all chunks when k exceeds the index)."""
        questions = [check_question(q) for q in questions]
        if not self.chunks:
            raise ValueError("The index is empty: call build(documents) first.")
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        if not questions:
            return []
        vectors = self.embed(questions)
        if not self.hybrid:
            scores, keys = self.store.search(vectors, k)
            return [[self._hit(int(key), float(s)) for s, key in zip(srow, krow)]
                    for srow, krow in zip(scores, keys)]
        scores, keys = self.store.search(vectors, len(self))  # full dense ranking to fuse with BM25
        return [self._fuse(q, krow, k) for q, krow in zip(questions, keys)]

    def _hit(self, key: int, score: float) -> Hit:
        return Hit(**self.chunks[key], score=score)

    def _fuse(self, question: str, dense_keys: np.ndarray, k: int) -> list[Hit]:
        """Reciprocal rank fusion of the dense and the BM25 ranking."""
        if self._bm25 is None:
            import bm25s

            keys = list(self.chunks)
            bm25 = bm25s.BM25()
            bm25.index(_bm25_tokens([self.passage(self.chunks[key]) for key in keys]), show_progress=False)
            self._bm25 = (bm25, np.array(keys))
        bm25, keys = self._bm25
        fused = {}
        for rank, key in enumerate(dense_keys.tolist()):
            fused[key] = 1 / (RRF_K + rank + 1)
        bm25_scores = bm25.get_scores(_bm25_tokens([question])[0])
        for rank, i in enumerate(np.argsort(-bm25_scores, kind="stable")):
            fused[int(keys[i])] = fused.get(int(keys[i]), 0) + 1 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda key: -fused[key])[:k]
        return [self._hit(key, fused[key]) for key in best]

    # -- persistence
    def save(self, folder) -> None:
        """Write the store and the chunk table to folder (created if needed)."""
        if self.store is None:
            raise ValueError("Nothing to save: call build(documents) first.")
        folder = Path(folder)
        self.store.save(folder)
        store_cls = type(self.store)
        meta = {"store": f"{store_cls.__module__}:{store_cls.__qualname__}", "max_words": self.max_words,
                "hybrid": self.hybrid, "next_key": self.next_key,
                "chunks": [{"key": k, **c} for k, c in self.chunks.items()]}
        (folder / "chunks.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder, embedder=None) -> "Retriever":
        folder = Path(folder)
        if not (folder / "chunks.json").exists():
            raise FileNotFoundError(f"{folder} holds no saved retriever (chunks.json is missing).")
        meta = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        module, name = meta["store"].split(":")
        store = getattr(importlib.import_module(module), name).load(folder)
        r = cls(embedder, store, meta["max_words"], meta["hybrid"])
        r.chunks = {c.pop("key"): c for c in meta["chunks"]}
        r.next_key = meta["next_key"]
        if len(store) != len(r.chunks):
            raise ValueError(f"{folder}: the store has {len(store)} vectors for {len(r.chunks)} chunks")
        return r


# ---------------------------------------------------------------- your own documents

def slugify(name: str) -> str:
    """'Returns Policy (2024)' -> 'returns-policy-2024'"""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


DOCUMENT_SUFFIXES = (".md", ".txt")  # and text files without an extension: LICENSE, COPYING, README


def is_document_file(path) -> bool:
    """Whether `load_folder` reads this file: a .md or .txt file, or a visible file with no extension."""
    p = Path(path)
    return p.is_file() and (p.suffix.lower() in DOCUMENT_SUFFIXES or (p.suffix == "" and not p.name.startswith(".")))


def skipped_files(path) -> list[Path]:
    """The visible files directly inside a folder that `load_folder` does not read (other extensions)."""
    return sorted(p for p in Path(path).iterdir()
                  if p.is_file() and not p.name.startswith(".") and not is_document_file(p))


def load_folder(path) -> list[dict]:
    """Documents from the text files directly inside a folder, one document per file: every .md and .txt
    file, and every file without an extension (LICENSE, COPYING, README); other files are left out (see
    `skipped_files`).

    id: the file name without extension, slugified; title: the first Markdown heading, else the
    file name; body: the rest of the text. Empty files, and extensionless files that are not text
    (they hold NUL bytes), are skipped with a warning.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds your .md/.txt files.")
    files = sorted((p for p in folder.iterdir() if is_document_file(p)),
                   key=lambda p: (slugify(p.stem), p.name))  # in id order
    if not files:
        raise ValueError(f"{folder} has no .md or .txt files (nor text files without an extension, such as "
                         "LICENSE): put one document per file there.")
    docs, seen = [], {}
    for p in files:
        raw = p.read_bytes()
        if not p.suffix and b"\0" in raw[:8192]:
            warnings.warn(f"Skipping {p.name}: it has no extension and is not a text file.")
            continue
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n").strip()
        doc_id = slugify(p.stem)
        if not text or not doc_id:
            warnings.warn(f"Skipping {p.name}: {'it is empty' if not text else 'its name has no letters or digits'}.")
            continue
        if doc_id in seen:
            raise ValueError(f"{p.name} and {seen[doc_id]} both give the id {doc_id!r}: rename one of them.")
        seen[doc_id] = p.name
        heading = re.match(r"#+\s+(.+)\n?", text)
        title = heading.group(1).strip() if heading else p.stem.replace("_", " ").replace("-", " ")
        body = text[heading.end():].strip() if heading else text
        docs.append({"id": doc_id, "title": title, "body": body or title, "source": str(p)})
    if not docs:
        raise ValueError(f"{folder}: every text file is empty.")
    return docs
