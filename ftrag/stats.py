"""Uncertainty for the book's rates and comparisons (used from labs/04_hybrid.ipynb on).

- `interval`: a 95 % Wilson score interval for a rate (good at small n and at rates near 0 or 1);
- `mcnemar`: the exact (binomial) McNemar test of two systems scored on the same questions: only
  the questions where exactly one system is right carry information about which is better;
- `fisher`: Fisher's exact test of two rates measured on different questions;
- `compare`: both, plus the verdict words the prose glues ("beats" only at p < 0.05).
Leaves out: corrections for many comparisons (the book names each test it makes and its p-value).

>>> interval(40, 97)                     # doctest: +ELLIPSIS
(0.412..., 0.319..., 0.511...)
>>> mcnemar(13, 16)                      # 13 questions only A got right, 16 only B   # doctest: +ELLIPSIS
0.71...
"""
import math

ALPHA = 0.05
Z = 1.959963984540054  # two-sided 95 %


def interval(successes: int, n: int, z: float = Z) -> tuple[float, float, float]:
    """(rate, low, high): the Wilson score interval."""
    if n <= 0:
        raise ValueError("A rate needs at least one question (n = 0).")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value that two rates k1/n1 and k2/n2 (different questions) are equal.

    Sums the probabilities of all tables with the same margins that are no more likely than the
    observed one (the usual two-sided rule).
    """
    if min(n1, n2) <= 0 or not (0 <= k1 <= n1 and 0 <= k2 <= n2):
        raise ValueError(f"Fisher's test needs 0 <= k <= n and n > 0, got {k1}/{n1} and {k2}/{n2}.")
    total, n = k1 + k2, n1 + n2

    def prob(x):
        return math.comb(n1, x) * math.comb(n2, total - x) / math.comb(n, total)

    observed = prob(k1)
    support = range(max(0, total - n2), min(total, n1) + 1)
    return min(1.0, sum(p for p in map(prob, support) if p <= observed * (1 + 1e-9)))


def rate(values) -> dict:
    """A rate of booleans (None skipped) with its interval: value, low, high, n."""
    vals = [bool(v) for v in values if v is not None and v == v]  # v == v drops NaN
    p, low, high = interval(sum(vals), len(vals))
    return {"value": p, "low": low, "high": high, "n": len(vals)}


def compare(a: list, b: list, name_a: str = "A", name_b: str = "B", lower_is_better: bool = False) -> dict:
    """Paired comparison of two systems' per-question outcomes (booleans, same questions, same order).

    verdict: "<A> beats <B>", "<B> beats <A>" or "no measurable difference between <A> and <B>".
    lower_is_better: the outcome is an error (a false abstention, say), so fewer True wins.
    """
    if len(a) != len(b):
        raise ValueError(f"Paired comparison needs the same questions: {len(a)} against {len(b)} outcomes.")
    if not a:
        raise ValueError("Paired comparison of no questions: pass each system's outcomes per question.")
    a, b = [bool(x) for x in a], [bool(x) for x in b]
    a_only = sum(x and not y for x, y in zip(a, b))
    b_only = sum(y and not x for x, y in zip(a, b))
    p = mcnemar(a_only, b_only)
    diff = (sum(a) - sum(b)) / len(a)
    if p < ALPHA:
        a_wins = (diff < 0) if lower_is_better else (diff > 0)
        verdict = f"{name_a} beats {name_b}" if a_wins else f"{name_b} beats {name_a}"
    else:
        verdict = f"no measurable difference between {name_a} and {name_b}"
    return {"n": len(a), "a": sum(a) / len(a), "b": sum(b) / len(b), "diff": diff,
            "a_only": a_only, "b_only": b_only, "p": p, "significant": p < ALPHA, "verdict": verdict}


def fmt_rate(r: dict) -> str:
    """'0.40 [0.31, 0.50]' for tables and printed checks."""
    return f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
