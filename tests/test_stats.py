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
    assert close["verdict"] == ("no measurable difference between A and B (too few questions to detect "
                                "any gap)") and close["p"] == 1.0


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


def test_difference_interval_holds_the_difference_and_mirrors():
    d, low, high = stats.diff_interval(40, 25, 21, 32)
    assert low < d < high and d == pytest.approx(4 / 118)
    assert (low, high) == pytest.approx((-0.077, 0.144), abs=2e-3)  # the book's hybrid-vs-RAG case
    d2, low2, high2 = stats.diff_interval(40, 21, 25, 32)             # B minus A
    assert (d2, low2, high2) == pytest.approx((-d, -high, -low))
    wide, narrow = stats.diff_interval(4, 3, 2, 3), stats.diff_interval(400, 300, 200, 300)
    assert narrow[2] - narrow[1] < wide[2] - wide[1]


def test_mcnemar_power_matches_a_simulation():
    import random
    rng, n, disc, diff, hits, reps = random.Random(1), 60, 0.3, 0.15, 0, 4000
    for _ in range(reps):
        a_only = b_only = 0
        for _ in range(n):
            u = rng.random()
            if u < (disc + diff) / 2:
                a_only += 1
            elif u < disc:
                b_only += 1
        hits += stats.mcnemar(a_only, b_only) < 0.05
    assert stats.mcnemar_power(n, disc, diff) == pytest.approx(hits / reps, abs=0.025)


def test_detectable_difference_shrinks_with_more_questions():
    assert stats.detectable(38, 18) > stats.detectable(118, 46) > stats.detectable(300, 117)
    # the figures: about 0.17 on 118 eval questions, 0.32 on 38, 0.23 on 64
    assert stats.detectable(118, 46) == pytest.approx(0.17, abs=0.01)
    assert stats.detectable(38, 18) == pytest.approx(0.32, abs=0.01)
    # the test can detect what it finds: a detectable gap has at least 80 % power
    d = stats.detectable(64, 26)
    assert stats.mcnemar_power(64, max(26 / 64, d), d) >= 0.8 > stats.mcnemar_power(64, 26 / 64, d - 0.01)


def test_a_null_verdict_names_the_detectable_difference():
    res = stats.compare([True, False] * 20, [False, True] * 20, "A", "B")
    assert "no measurable difference" in res["verdict"] and f"{res['detectable']:.2f}" in res["verdict"]


def test_holm_corrects_a_family_and_rewords_its_verdicts():
    family = [{"p": p, "diff": 0.1, "name_a": "A", "name_b": "B", "lower_is_better": False,
               "detectable": 0.2} for p in (0.01, 0.04, 0.03)]
    stats.holm(family)
    assert [r["p_holm"] for r in family] == pytest.approx([0.03, 0.06, 0.06])
    assert family[0]["verdict"] == "A beats B" and family[1]["verdict"].startswith("no measurable")
    assert all(r["family"] == 3 for r in family)


def test_noninferiority_uses_the_interval_and_the_margin():
    res = stats.compare([True] * 30 + [False] * 8, [True] * 29 + [False] * 9, "hybrid", "RAG")
    assert stats.noninferior(res, 0.2)["holds"] and not stats.noninferior(res, 0.01)["holds"]


def test_bootstrap_over_documents_is_wider_when_questions_cluster():
    a = [True] * 5 + [False] * 5 + [True] * 5 + [False] * 5
    b = [False] * 20
    single = stats.bootstrap_diff(a, b, list(range(20)))
    clustered = stats.bootstrap_diff(a, b, [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5)
    assert single[0] == clustered[0] == 0.5
    assert clustered[2] - clustered[1] > single[2] - single[1]


def test_p_values_print_without_zeroes():
    assert stats.fmt_p(0.0001) == "p < 0.001" and stats.fmt_p(0.0421) == "p = 0.042"


def test_unpaired_detectable_difference_matches_the_textbook_formula():
    # two groups of 100 at a rate of 0.5: (1.96 + 0.84) * sqrt(0.25 * 2 / 100) = 0.198
    assert stats.detectable_unpaired(100, 100, 0.5) == pytest.approx(0.198, abs=1e-3)
    assert stats.detectable_unpaired(118, 64, 0.4) > stats.detectable_unpaired(1000, 1000, 0.4)
