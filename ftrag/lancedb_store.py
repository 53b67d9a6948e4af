"""A LanceDB vector store behind the Retriever's store interface (shown in labs/07_scale.ipynb).

LanceDB is an embedded vector database: no server, the table lives in a folder (Lance files) and
every write is on disk at once, so a new process that opens the folder sees the same vectors.
Scores are inner products (LanceDB's "dot" distance is 1 - dot; we convert back), equal to cosine
similarity on the L2-normalised vectors the Retriever stores, so results match FaissStore.
The `uri` may also be an object-store path ("s3://bucket/kb") or a LanceDB server ("db://name",
with LANCEDB_API_KEY set): the same code then talks to shared storage or a cluster.

Leaves out: an approximate (IVF-PQ/HNSW) index on the table (search is exact, fine for a few hundred
thousand vectors; LanceDB's `create_index` adds one), metadata columns and filters.

>>> r = Retriever(store=LanceDBStore("kb_lancedb")).build(load_documents())    # doctest: +SKIP
>>> r.save("kb_lancedb"); Retriever.load("kb_lancedb").search("Return window?")  # doctest: +SKIP
"""
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust core logs routine warnings to stderr otherwise

from .retrieval import check_vectors  # noqa: E402

TABLE = "vectors"
MINILM_DIM = 384


class LanceDBStore:
    """Vectors keyed by int64 ids in one LanceDB table; exact inner-product search.

    A folder that already holds a table is reopened, not emptied: to index from scratch give a new
    folder (Retriever.build removes only the chunks it knows of); to reopen a saved index use
    Retriever.load(folder)."""

    def __init__(self, uri: str | Path, dim: int | None = None):
        """Open the table at uri, or create an empty one for vectors of `dim` numbers (default 384,
        MiniLM's); dim=None takes an existing table's dimension."""
        import lancedb
        import pyarrow as pa

        self.uri = str(uri)
        if "://" not in self.uri:
            Path(self.uri).mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(self.uri)
        if TABLE in self.db.list_tables().tables:
            self.table = self.db.open_table(TABLE)
            self.dim = self.table.schema.field("vector").type.list_size
            if dim is not None and dim != self.dim:
                raise ValueError(f"{self.uri} holds {self.dim}-d vectors, not {dim}-d: use another folder.")
        else:
            self.dim = dim or MINILM_DIM
            schema = pa.schema([pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float32(), self.dim))])
            self.table = self.db.create_table(TABLE, schema=schema)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import pyarrow as pa

        ids = np.asarray(ids, dtype=np.int64)
        vectors = check_vectors(vectors, self.dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids) == 0:
            return
        # LanceDB would keep two rows under one id; refuse instead, as FaissStore does.
        if len(np.unique(ids)) != len(ids) or self.table.count_rows(_id_filter(ids)):
            raise ValueError("duplicate ids: remove the old vectors before adding new ones under the same id")
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), self.dim)
        self.table.add(pa.table({"id": pa.array(ids, pa.int64()), "vector": column}))

    def ids(self) -> np.ndarray:
        return np.asarray(self.table.search().select(["id"]).limit(None).to_arrow()["id"], dtype=np.int64)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            self.table.delete(_id_filter(ids))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (inner products) and ids of the k nearest vectors per query, best first."""
        vectors = check_vectors(vectors, self.dim)
        k = min(k, len(self))
        scores = np.zeros((len(vectors), max(k, 0)), np.float32)
        ids = np.zeros((len(vectors), max(k, 0)), np.int64)
        if k < 1 or len(vectors) == 0:
            return scores, ids
        query = self.table.search(vectors if len(vectors) > 1 else vectors[0]).distance_type("dot")
        result = query.limit(k).select(["id", "_distance"]).to_arrow()
        rows = (np.asarray(result["query_index"]) if "query_index" in result.column_names
                else np.zeros(result.num_rows, np.int64))
        found, dist = np.asarray(result["id"]), np.asarray(result["_distance"])
        for q in range(len(vectors)):
            mine = np.flatnonzero(rows == q)
            mine = mine[np.argsort(dist[mine], kind="stable")]
            ids[q], scores[q] = found[mine], 1.0 - dist[mine]
        return scores, ids

    def __len__(self) -> int:
        return self.table.count_rows()

    def save(self, folder: Path) -> None:
        """The table is on disk already; saving to another folder copies it there."""
        if _same_place(folder, self.uri):
            return
        import lancedb

        lancedb.connect(str(folder)).create_table(TABLE, data=self.table.to_arrow(), mode="overwrite")

    @classmethod
    def load(cls, folder: Path) -> "LanceDBStore":
        import lancedb

        local = "://" not in str(folder)
        if (local and not Path(folder).is_dir()) or TABLE not in lancedb.connect(str(folder)).list_tables().tables:
            raise FileNotFoundError(f"{folder} holds no LanceDB table {TABLE!r}: build and save a store there first.")
        return cls(folder)


def _id_filter(ids: np.ndarray) -> str:
    return f"id IN ({', '.join(str(int(i)) for i in ids)})"


def _same_place(folder, uri: str) -> bool:
    if "://" in uri or "://" in str(folder):
        return str(folder).rstrip("/") == uri.rstrip("/")
    return Path(folder).resolve() == Path(uri).resolve()
