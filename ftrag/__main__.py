"""Command line: your own documents, searched, answered and compared.

    python -m ftrag index DIR [--ask "question"] [--k 3] [--max-words 120] [--hybrid] [--reader NAME]
    python -m ftrag compare DOCS QUESTIONS [--out DIR] [--systems ...]   (ftrag/compare_cli.py)
    python -m ftrag train ...                                             (ftrag/train.py)
    python -m ftrag roofline [--reader NAME]                              (ftrag/roofline.py)

`index`, the last step of labs/02_rag.ipynb:
Loads every .md/.txt file, and every text file without an extension (LICENSE, COPYING), in DIR (one
document per file) and indexes it. Without --ask it lists the documents and their chunk counts; for
each --ask question it prints the top hits and the answer of the RAG system (the reader, SmolLM2 by
default, reading those hits). An answer that only repeats the prompt is reported as such, not printed.
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
    index.add_argument("folder", help="folder with one document per .md, .txt or extensionless text file")
    index.add_argument("--ask", action="append", default=[], help="a question (repeat for several)")
    index.add_argument("--k", type=int, default=3, help="chunks to retrieve per question (default 3)")
    index.add_argument("--max-words", type=int, default=None, help="chunk size in words")
    index.add_argument("--hybrid", action="store_true",
                       help="fuse a BM25 keyword ranking with the dense one (reciprocal rank fusion): "
                            "helps with names and version numbers")
    index.add_argument("--reader", default=None, metavar="NAME",
                       help="the chat model that answers: smollm2-135m (default) or qwen2.5-coder-0.5b "
                            "(default: FTRAG_GENERATOR, else smollm2-135m)")
    from . import compare_cli, roofline, train  # ftrag/train.py, ftrag/compare_cli.py, ftrag/roofline.py
    train.add_subcommand(sub)
    compare_cli.add_subcommand(sub)
    roofline.add_subcommand(sub)
    args = parser.parse_args(argv)
    if args.command in ("train", "compare", "roofline"):
        return args.run(args)
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.reader is not None or args.ask:  # check the reader's name before any model loads
        from .models import generator_name

        try:
            args.reader = generator_name(args.reader)
        except ValueError as err:
            parser.error(str(err))

    from .retrieval import MAX_WORDS, Retriever, load_folder, skipped_files

    try:
        docs = load_folder(args.folder)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    left_out = skipped_files(args.folder)
    if left_out:
        names = ", ".join(p.name for p in left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        print(f"Left out {len(left_out)} file(s) with other extensions ({names}): "
              "save a text copy as .txt (or .md) to include one.")
    retriever = Retriever(max_words=args.max_words or MAX_WORDS, hybrid=args.hybrid)  # loads the embedder
    t0 = time.perf_counter()
    retriever.build(docs)
    print(f"Indexed {len(docs)} documents as {len(retriever)} chunks in {time.perf_counter() - t0:.1f} s.")
    if not args.ask:
        counts = Counter(c["doc_id"] for c in retriever.chunks.values())
        for d in docs:
            print(f"  [{d['id']}] {d['title']}  ({counts[d['id']]} chunks)")
        print('Add --ask "your question" to search them and get an answer.')
    else:
        print(f"Reader: {args.reader}; retrieval: {'hybrid (dense + BM25)' if args.hybrid else 'dense'}.")
    runner = None  # the reader as it generates (a bfloat16 copy on some CPUs): made once, at the first question
    for question in args.ask:
        if not question.strip():
            print("error: --ask needs a non-empty question", file=sys.stderr)
            return 2
        hits = retriever.search(question, k=args.k)
        print(f"\nQ: {question}")
        for rank, h in enumerate(hits, 1):
            preview = " ".join(h.text.split())[:100]
            print(f"  {rank}. [{h.doc_id}] chunk {h.chunk_id}  score {h.score:.3f}  {preview}")
        from .models import READERS, for_inference, generate, load_generator
        from .prompts import OWN_DOCS_SYSTEM, prompt_echo, rag_messages

        # no worked example: its shop sign-off does not belong in answers about your documents
        messages = rag_messages(question, hits, system=OWN_DOCS_SYSTEM, example=False)
        model, tokenizer = load_generator(args.reader)
        if runner is None:
            runner = for_inference(model)
        answer = generate(messages, model=runner, tokenizer=tokenizer).text
        echo = prompt_echo(answer, messages)
        if echo:
            others = " or ".join(f"--reader {r}" for r in READERS if r != args.reader)
            print(f"A: (no answer: the reader echoed its prompt instead of answering; its output repeats "
                  f"{echo!r}.\n   Try fewer chunks (--k 1), --hybrid, or another reader ({others}).)")
        else:
            print("A: " + answer.replace("\n", "\n   "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
