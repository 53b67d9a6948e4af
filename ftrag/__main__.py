"""Command line: ask questions of your own documents (the last step of labs/02_rag.ipynb).

    python -m ftrag index DIR [--ask "question"] [--k 3] [--max-words 120]

Loads every .md/.txt file in DIR (one document per file) and indexes it. Without --ask it lists the
documents and their chunk counts; for each --ask question it prints the top hits and the answer of
the RAG system (SmolLM2 reading those hits).
"""
import argparse
import os
import sys
import time
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftrag", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    index = sub.add_parser("index", help="index a folder of .md/.txt files and search it")
    index.add_argument("folder", help="folder with one document per .md or .txt file")
    index.add_argument("--ask", action="append", default=[], help="a question (repeat for several)")
    index.add_argument("--k", type=int, default=3, help="chunks to retrieve per question (default 3)")
    index.add_argument("--max-words", type=int, default=None, help="chunk size in words")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("--k must be at least 1")

    from .retrieval import MAX_WORDS, Retriever, load_folder

    try:
        docs = load_folder(args.folder)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    retriever = Retriever(max_words=args.max_words or MAX_WORDS)  # loads the embedder
    t0 = time.perf_counter()
    retriever.build(docs)
    print(f"Indexed {len(docs)} documents as {len(retriever)} chunks in {time.perf_counter() - t0:.1f} s.")
    if not args.ask:
        counts = Counter(c["doc_id"] for c in retriever.chunks.values())
        for d in docs:
            print(f"  [{d['id']}] {d['title']}  ({counts[d['id']]} chunks)")
        print('Add --ask "your question" to search them and get an answer.')
    for question in args.ask:
        if not question.strip():
            print("error: --ask needs a non-empty question", file=sys.stderr)
            return 2
        hits = retriever.search(question, k=args.k)
        print(f"\nQ: {question}")
        for rank, h in enumerate(hits, 1):
            preview = " ".join(h.text.split())[:100]
            print(f"  {rank}. [{h.doc_id}] chunk {h.chunk_id}  score {h.score:.3f}  {preview}")
        from .models import generate
        from .prompts import OWN_DOCS_SYSTEM, rag_messages

        # no worked example: its shop sign-off does not belong in answers about your documents
        print("A: " + generate(rag_messages(question, hits, system=OWN_DOCS_SYSTEM, example=False)).text.replace("\n", "\n   "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
