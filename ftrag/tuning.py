"""The one rule that picks a variant on the development split, for every arm (RAG's prompt, the
closed-book fine-tune's recipe, the hybrid's recipe, the larger reader's prompt).

The rule, declared before any variant is scored:
1. most key facts right on the development questions (`data.dev_split`);
2. on a tie, most answers in the house format;
3. on a tie again, the variant listed first (the simpler or cheaper one: list them that way).
Each variant is a score table of `evaluate.score` on the same development questions. The eval set
is scored once, with the chosen variant. Differences on the development split are reported with
their paired test, but the rule does not wait for significance: on 39 questions it would rarely
come, and "keep the first" would then favour whatever was listed first.
Leaves out: trading accuracy against cost (the cost model in labs/05_cost.ipynb does that later).

>>> import pandas as pd
>>> t = lambda c, f: pd.DataFrame({"answerable": [True] * 3, "correct": c, "format_ok": f})
>>> choose({"a": t([1, 0, 0], [1, 1, 1]), "b": t([1, 1, 0], [0, 0, 0]), "c": t([0, 1, 1], [1, 1, 1])})
'c'
"""
import pandas as pd

RULE = ("the variant with the most key facts right on the development questions; on a tie, the one "
        "with the most answers in the house format; on a tie again, the one listed first")


def merit(table: pd.DataFrame) -> tuple[int, int]:
    """(key facts right, answers in house format) on one variant's development table."""
    answerable = table[table.answerable]
    return int(answerable.correct.astype(bool).sum()), int(table.format_ok.astype(bool).sum())


def choose(tables: dict) -> str:
    """The name of the variant the rule keeps; tables: name -> development score table, in the order
    the variants are listed (simplest first)."""
    if not tables:
        raise ValueError("choose() needs at least one variant's development table.")
    sizes = {len(t) for t in tables.values()}
    if len(sizes) != 1:
        raise ValueError(f"the variants were scored on different numbers of questions ({sorted(sizes)}): "
                         "score every variant on the same development questions.")
    names = list(tables)
    return max(names, key=lambda n: (*merit(tables[n]), -names.index(n)))
