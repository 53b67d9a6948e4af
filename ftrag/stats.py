"""Uncertainty for the book's rates and comparisons (used from labs/02_rag.ipynb on).

- `interval`: a 95 % Wilson score interval for a rate (good at small n and at rates near 0 or 1);
- `mcnemar`: the exact (binomial) McNemar test of two systems scored on the same questions: only
  the questions where exactly one system is right carry information about which is better;
- `diff_interval`: a 95 % interval for the difference of two paired rates (Newcombe's score method);
- `detectable`: the smallest difference the paired test finds with 80 % power on this many questions
  (exact power of the McNemar test, at the discordance observed): what "no measurable difference" can
  and cannot rule out;
- `compare`: all of these, plus the verdict words the prose glues ("beats" only at p < 0.05);
- `holm`: Holm's correction over a family of comparisons (one lab's), which re-words the verdicts;
- `noninferior`: a declared margin, tested with the interval of the difference;
- `bootstrap_diff`: an interval that resamples whole documents, for questions that share one;
- `fisher`: Fisher's exact test of two rates measured on different questions.
Leaves out: corrections across labs (each lab's comparisons are one family), and power analysis
before a measurement (the detectable difference is computed at the observed discordance).

>>> interval(40, 97)                     # doctest: +ELLIPSIS
(0.412..., 0.319..., 0.511...)
>>> mcnemar(13, 16)                      # 13 questions only A got right, 16 only B   # doctest: +ELLIPSIS
0.71...
>>> detectable(118, 46)                  # 118 questions, 46 of them answered right by one system only
0.165
"""
import math
from functools import lru_cache

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


POWER = 0.8


def _log_binom(n: int, k: int, p: float) -> float:
    if p <= 0 or p >= 1:
        return 0.0 if (p <= 0 and k == 0) or (p >= 1 and k == n) else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log(1 - p))


@lru_cache(maxsize=4096)
def _critical(n_disc: int, alpha: float) -> int:
    """The largest k with mcnemar(k, n_disc - k) < alpha, or -1 when no split is significant."""
    k = -1
    while k + 1 <= n_disc // 2 and mcnemar(k + 1, n_disc - k - 1) < alpha:
        k += 1
    return k


def mcnemar_power(n: int, discordance: float, diff: float, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided McNemar test on n questions, when a share `discordance` of them is
    answered right by exactly one system and the rates differ by `diff` (|diff| <= discordance)."""
    diff = abs(diff)
    if not 0 <= diff <= discordance <= 1:
        raise ValueError(f"need 0 <= |diff| <= discordance <= 1, got {diff} and {discordance}")
    if discordance == 0:
        return 0.0
    pi = (1 + diff / discordance) / 2  # chance that a discordant question favours the better system
    power = 0.0
    for n_disc in range(n + 1):
        weight = math.exp(_log_binom(n, n_disc, discordance))
        k = _critical(n_disc, alpha)
        if weight < 1e-12 or k < 0:
            continue
        tails = sum(math.exp(_log_binom(n_disc, x, pi)) for x in range(k + 1))
        tails += sum(math.exp(_log_binom(n_disc, x, pi)) for x in range(n_disc - k, n_disc + 1))
        power += weight * tails
    return min(1.0, power)


def detectable(n: int, n_disc: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest difference in rates the paired test detects with this power on n questions, taking
    the share of discordant questions as observed (n_disc / n; at least the difference itself, and at
    least one question). A null verdict rules out differences of about this size, not smaller ones."""
    if n <= 0 or not 0 <= n_disc <= n:
        raise ValueError(f"need n > 0 and 0 <= n_disc <= n, got {n_disc} of {n}")
    observed = max(n_disc, 1) / n

    def enough(step):  # power grows with the difference, so a bisection over steps of 0.005 finds it
        diff = step / 200
        return mcnemar_power(n, max(observed, diff), diff, alpha) >= power

    low, high = 0, 200
    if not enough(high):
        return 1.0
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high / 200


def detectable_unpaired(n1: int, n2: int, rate: float, power: float = POWER) -> float:
    """The smallest difference between two rates measured on different questions (n1 and n2 of them)
    that a two-sided test at the 5 % level finds with this power, near the pooled `rate` (normal
    approximation; Fisher's exact test needs slightly more)."""
    if min(n1, n2) <= 0 or not 0 <= rate <= 1:
        raise ValueError(f"need n1, n2 > 0 and 0 <= rate <= 1, got {n1}, {n2}, {rate}")
    z_power = {0.8: 0.8416212335729143, 0.9: 1.2815515655446004}[power]
    spread = math.sqrt(max(rate * (1 - rate), 0.25 / max(n1, n2)) * (1 / n1 + 1 / n2))
    return min(1.0, (Z + z_power) * spread)


def diff_interval(both: int, a_only: int, b_only: int, neither: int, z: float = Z) -> tuple[float, float, float]:
    """(difference, low, high) of two paired rates, A minus B: Newcombe's score interval (1998, method
    10), built from the two Wilson intervals and the correlation of the paired outcomes."""
    n = both + a_only + b_only + neither
    if n <= 0:
        raise ValueError("A paired difference needs at least one question.")
    p1, l1, u1 = interval(both + a_only, n, z)
    p2, l2, u2 = interval(both + b_only, n, z)
    denom = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(denom) if denom else 0.0
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return d, max(-1.0, low), min(1.0, high)


def _verdict(res: dict, p: float) -> str:
    a, b = res["name_a"], res["name_b"]
    if p < ALPHA:
        a_wins = (res["diff"] < 0) if res["lower_is_better"] else (res["diff"] > 0)
        return f"{a} beats {b}" if a_wins else f"{b} beats {a}"
    if res["detectable"] >= 1:
        return f"no measurable difference between {a} and {b} (too few questions to detect any gap)"
    return (f"no measurable difference between {a} and {b} (the test would detect a gap of about "
            f"{res['detectable']:.2f})")


def compare(a: list, b: list, name_a: str = "A", name_b: str = "B", lower_is_better: bool = False) -> dict:
    """Paired comparison of two systems' per-question outcomes (booleans, same questions, same order).

    diff: A's rate minus B's, with its 95 % interval (diff_low, diff_high); detectable: the smallest
    difference this test finds with 80 % power here. verdict: "<A> beats <B>", "<B> beats <A>" or "no
    measurable difference between <A> and <B> (the test would detect a gap of about d)".
    lower_is_better: the outcome is an error (a false abstention, say), so fewer True wins.
    `holm` re-words the verdicts of a family of comparisons from the corrected p-values.
    """
    if len(a) != len(b):
        raise ValueError(f"Paired comparison needs the same questions: {len(a)} against {len(b)} outcomes.")
    if not a:
        raise ValueError("Paired comparison of no questions: pass each system's outcomes per question.")
    a, b = [bool(x) for x in a], [bool(x) for x in b]
    a_only = sum(x and not y for x, y in zip(a, b))
    b_only = sum(y and not x for x, y in zip(a, b))
    both = sum(x and y for x, y in zip(a, b))
    p = mcnemar(a_only, b_only)
    diff, low, high = diff_interval(both, a_only, b_only, len(a) - both - a_only - b_only)
    res = {"n": len(a), "a": sum(a) / len(a), "b": sum(b) / len(b), "diff": diff, "diff_low": low,
           "diff_high": high, "a_only": a_only, "b_only": b_only, "p": p, "p_holm": p, "family": 1,
           "significant": p < ALPHA, "detectable": detectable(len(a), a_only + b_only),
           "name_a": name_a, "name_b": name_b, "lower_is_better": lower_is_better}
    res["verdict"] = _verdict(res, p)
    return res


def holm(results) -> None:
    """Holm's step-down correction over one family of `compare` results (a dict or a list), in place:
    each gets p_holm and family, and its significance and verdict follow the corrected p-value."""
    items = list(results.values()) if isinstance(results, dict) else list(results)
    for res, adjusted in zip(items, holm_adjust([r["p"] for r in items])):
        res["p_holm"], res["family"] = adjusted, len(items)
        res["significant"] = adjusted < ALPHA
        if "name_a" in res:  # a `compare` result: its verdict follows the corrected p-value
            res["verdict"] = _verdict(res, adjusted)


def holm_adjust(pvalues: list) -> list:
    """Holm's step-down adjusted p-values, in the order given.

    >>> holm_adjust([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def noninferior(res: dict, margin: float) -> dict:
    """Is A at most `margin` worse than B? Yes when the 95 % interval of the difference lies above
    -margin (an error rate, lower_is_better: below +margin). The margin is declared before looking."""
    ok = res["diff_high"] < margin if res["lower_is_better"] else res["diff_low"] > -margin
    a, b = res["name_a"], res["name_b"]
    verdict = (f"{a} is at most {margin:.2f} worse than {b}" if ok else
               f"{a} may be more than {margin:.2f} worse than {b}")
    return {"margin": margin, "holds": ok, "verdict": verdict}


def bootstrap_diff(a: list, b: list, groups: list, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(difference, low, high): A's rate minus B's with a 95 % percentile interval from resampling
    whole groups (documents) with replacement, for questions that are not independent of each other."""
    if not (len(a) == len(b) == len(groups)) or not a:
        raise ValueError("bootstrap_diff needs one outcome of each system and one group per question.")
    import random

    by_group: dict = {}
    for x, y, g in zip(a, b, groups):
        by_group.setdefault(g, []).append((bool(x), bool(y)))
    keys = sorted(by_group)
    rng = random.Random(seed)
    diffs = []
    for _ in range(reps):
        rows = [r for g in rng.choices(keys, k=len(keys)) for r in by_group[g]]
        diffs.append(sum(x - y for x, y in rows) / len(rows))
    diffs.sort()
    point = sum(bool(x) - bool(y) for x, y in zip(a, b)) / len(a)
    return point, diffs[int(0.025 * reps)], diffs[int(0.975 * reps) - 1]


def fmt_diff(res: dict) -> str:
    """'+0.04 [-0.08, +0.15]': a paired difference with its 95 % interval."""
    return f"{res['diff']:+.2f} [{res['diff_low']:+.2f}, {res['diff_high']:+.2f}]"


def fmt_p(p: float) -> str:
    """'p = 0.042', or 'p < 0.001' below 0.001."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_rate(r: dict) -> str:
    """'0.40 [0.31, 0.50]' for tables and printed checks."""
    return f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
