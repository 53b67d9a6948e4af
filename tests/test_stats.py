"""Intervals and paired tests against values computed independently."""
import math

import pytest

from ftrag import stats


def test_wilson_matches_the_closed_form_at_known_points():
    # Wilson 95 % for 5/19 and 7/19 (the old update set's two rates), by hand from the formula
    assert stats.interval(5, 19)[1:] == pytest.approx((0.1181, 0.4879), abs=1e-4)
    assert stats.interval(7, 19)[1:] == pytest.approx((0.1915, 0.5896), abs=1e-4)
    assert stats.interval(0, 10)[1] == 0.0 and stats.interval(10, 10)[2] == pytest.approx(1.0)


def test_interval_contains_the_rate_and_narrows_with_n():
    for k, n in [(1, 3), (40, 97), (50, 100), (99, 100)]:
        p, low, high = stats.interval(k, n)
        assert low <= p <= high
    assert stats.interval(500, 1000)[2] - stats.interval(500, 1000)[1] < stats.interval(5, 10)[2] - stats.interval(5, 10)[1]


def test_interval_rejects_empty_and_impossible_counts():
    with pytest.raises(ValueError, match="at least one question"):
        stats.interval(0, 0)
    with pytest.raises(ValueError, match="within 0..n"):
        stats.interval(5, 4)


def test_mcnemar_is_the_two_sided_binomial_test_of_the_discordant_pairs():
    # 13 vs 16 discordant: 2 * P(X <= 13), X ~ Bin(29, 0.5)
    expected = 2 * sum(math.comb(29, i) for i in range(14)) / 2 ** 29
    assert stats.mcnemar(13, 16) == pytest.approx(expected) == pytest.approx(0.711, abs=1e-3)
    assert stats.mcnemar(0, 0) == 1.0 and stats.mcnemar(5, 5) == 1.0
    assert stats.mcnemar(0, 10) == pytest.approx(2 / 1024)


def test_mcnemar_against_scipy_when_available():
    scipy_stats = pytest.importorskip("scipy.stats")
    for a, b in [(3, 12), (15, 27), (1, 1), (0, 7)]:
        assert stats.mcnemar(a, b) == pytest.approx(scipy_stats.binomtest(min(a, b), a + b, 0.5).pvalue)


def test_compare_gives_the_verdict_the_test_supports():
    a = [True] * 20 + [False] * 10
    b = [False] * 20 + [False] * 10
    res = stats.compare(a, b, "the hybrid", "RAG")
    assert res["a_only"] == 20 and res["b_only"] == 0 and res["significant"]
    assert res["verdict"] == "the hybrid beats RAG"
    res = stats.compare(b, a, "RAG", "the hybrid")
    assert res["verdict"] == "the hybrid beats RAG"
    close = stats.compare([True, False, True], [False, True, True], "A", "B")
    assert close["verdict"] == "no measurable difference between A and B" and close["p"] == 1.0


def test_compare_needs_the_same_questions():
    with pytest.raises(ValueError, match="same questions"):
        stats.compare([True], [True, False])
    with pytest.raises(ValueError, match="no questions"):
        stats.compare([], [])


def test_rate_skips_missing_values():
    r = stats.rate([True, None, False, float("nan"), True])
    assert r["n"] == 3 and r["value"] == pytest.approx(2 / 3)
    assert stats.fmt_rate(r).startswith("0.67 [")


def _table(correct, kinds=None):
    import pandas as pd
    n = len(correct)
    return pd.DataFrame({"id": [f"q{i}" for i in range(n)], "kind": kinds or ["unseen"] * n,
                         "answerable": [True] * n, "correct": correct, "abstained": [False] * n,
                         "citation_ok": [True] * n, "format_ok": [True] * n, "persona_ok": [True] * n,
                         "house_term_ok": [None] * n})


def test_rates_give_each_metric_its_interval_and_kind_filter():
    from ftrag import evaluate
    t = _table([True, False, True, True], kinds=["heldout", "heldout", "unseen", "unseen"])
    r = evaluate.rates(t)
    assert r["key_fact_accuracy"]["value"] == 0.75 and r["key_fact_accuracy"]["n"] == 4
    assert "abstention" not in r and "house_terms" not in r  # no unanswerable rows, no house terms
    assert evaluate.rates(t, kind="heldout")["key_fact_accuracy"]["value"] == 0.5


def test_paired_matches_questions_by_id():
    from ftrag import evaluate
    a = _table([True] * 12 + [False] * 3)
    b = _table([False] * 12 + [True] * 3).iloc[::-1]  # same questions, other order
    res = evaluate.paired(a, b, "hybrid", "RAG")
    assert (res["a_only"], res["b_only"]) == (12, 3) and res["n"] == 15
    with pytest.raises(ValueError, match="different questions"):
        evaluate.paired(a, b.iloc[1:], "hybrid", "RAG")


def test_fisher_against_scipy_and_known_values():
    assert stats.fisher(5, 10, 5, 10) == pytest.approx(1.0)
    assert stats.fisher(10, 10, 0, 10) == pytest.approx(2 / math.comb(20, 10))
    scipy_stats = pytest.importorskip("scipy.stats")
    for k1, n1, k2, n2 in [(40, 97, 22, 60), (3, 19, 9, 20), (0, 5, 4, 6)]:
        expected = scipy_stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert stats.fisher(k1, n1, k2, n2) == pytest.approx(expected)
    with pytest.raises(ValueError, match="Fisher"):
        stats.fisher(3, 2, 1, 4)


def test_compare_for_an_error_rate_lets_fewer_errors_win():
    more_errors = [True] * 20 + [False] * 10
    fewer = [False] * 30
    res = stats.compare(more_errors, fewer, "hybrid", "RAG", lower_is_better=True)
    assert res["verdict"] == "RAG beats hybrid"
