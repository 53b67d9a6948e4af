"""Interleaved timing: every system runs once per trial, in rotating order, and sizes are checked."""
import time

import pytest

from ftrag import timing


def test_interleaved_rotates_the_order_and_reports_the_median():
    order = []

    def work(name, seconds):
        def run():
            order.append(name)
            time.sleep(seconds)
            return 2
        return run

    res = timing.interleaved({"fast": work("fast", 0.002), "slow": work("slow", 0.02)}, trials=3)
    assert order == ["fast", "slow", "slow", "fast", "fast", "slow"]
    assert res["slow"]["median"] > res["fast"]["median"] > 0
    assert res["fast"]["low"] <= res["fast"]["median"] <= res["fast"]["high"] and res["fast"]["trials"] == 3
    assert res["slow"]["median"] == pytest.approx(0.01, rel=0.8)  # 0.02 s for 2 queries


def test_side_by_side_times_batch_one_and_the_serving_batch():
    calls = []

    def system(questions, batch_size):
        calls.append((len(questions), batch_size))
        return ["answer"] * len(questions)

    res = timing.side_by_side({"rag": system}, list(range(8)), batch=4, latency_questions=2, trials=2)
    assert res["rag"]["seconds_per_query"]["batch"] == 4
    assert calls.count((1, 1)) == 4 and calls.count((4, 4)) == 2


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="at least 1"):
        timing.interleaved({"a": lambda: 1}, trials=0)
    with pytest.raises(ValueError, match="answered no queries"):
        timing.interleaved({"a": lambda: 0})
    with pytest.raises(ValueError, match="needs at least 16"):
        timing.side_by_side({"a": lambda q, b: q}, list(range(3)))
