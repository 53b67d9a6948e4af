"""The `compare` command line: `python -m ftrag compare DOCS QUESTIONS [--out DIR] [--reader NAME]
[--systems base,rag,template,fine-tune,hybrid] [--seed N] [--fast]`.

Scope: parsing and checking the arguments, running ftrag.compare and writing its report with
ftrag.report; an input error is one clear line and exit status 2, Ctrl-C exits 130 with no report
written. The question format is the book's (book/own-documents.md).
"""
import sys

DESCRIPTION = ("The book's comparison on your own documents and questions: base model, RAG, RAG + template, "
               "a LoRA fine-tune and the hybrid, scored with intervals and paired tests.")


def add_subcommand(subparsers) -> None:
    """Register `compare` on the `python -m ftrag` command line (see ftrag/__main__.py)."""
    from .compare import CLI_NAMES

    p = subparsers.add_parser("compare", help=DESCRIPTION, description=DESCRIPTION)
    p.add_argument("docs", help="folder of documents: .md, .txt, extensionless text, .pdf, .docx, .html")
    p.add_argument("questions", help="questions in JSONL or CSV: question, answer, key_facts, and optional "
                                     "id, doc_ids, yes_no, split")
    p.add_argument("--out", default="compare-report", help="folder for the report (default: compare-report)")
    p.add_argument("--reader", default=None, metavar="NAME",
                   help="smollm2-135m (default) or qwen2.5-coder-0.5b, or a local model folder")
    p.add_argument("--systems", default=",".join(CLI_NAMES),
                   help=f"comma-separated subset of {','.join(CLI_NAMES)} (RAG alone needs no training questions)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the training (default 0)")
    p.add_argument("--fast", action="store_true",
                   help="a quick check that every stage runs: two training steps per pass, short answers")
    p.set_defaults(run=run)


def systems_of(text: str) -> tuple:
    from .compare import CLI_NAMES, SYSTEMS

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CLI_NAMES]
    if unknown or not names:
        raise ValueError(f"--systems: unknown {', '.join(unknown) or 'empty list'}; choose among "
                         f"{','.join(CLI_NAMES)}")
    chosen = {CLI_NAMES[n] for n in names}
    return tuple(s for s in SYSTEMS if s in chosen)


def run(args) -> int:
    from . import compare, models, report

    try:
        settings = compare.Settings(systems=systems_of(args.systems), reader=models.generator_name(args.reader),
                                    seed=args.seed, fast=args.fast)
        result = compare.run(args.docs, args.questions, settings)
        out = report.write(args.out, result, args.questions)
    except KeyboardInterrupt:
        print("\ninterrupted: no report written (an earlier report in --out is unchanged)", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nReport: {out / 'report.md'} and {out / 'report.html'}; every answer with its score: "
          f"{out / 'answers.csv'}")
    return 0
