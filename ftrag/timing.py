"""Systems timed side by side: one process, the same questions, interleaved and repeated trials.

Timings taken in different labs or processes differ by more than the systems do on a shared CPU
(another job, a cold cache, a different batch), so the book times the systems it compares together
(labs/04_hybrid.ipynb) and the cost model and decision helper read those numbers (results/timing.json).

Two numbers per system, because they answer different questions:
- latency: seconds to answer one question alone (batch 1), what a customer waits;
- seconds per query at the serving batch: a batch's wall time divided by its size, what the machine
  spends per answer when requests are batched (the cost model's number).
Each is the median over trials, with the lowest and highest trial as its spread. The order of the
systems rotates from trial to trial so that none always runs first (warm-up) or last.

>>> interleaved({"a": lambda: 1, "b": lambda: 1}, trials=3)["a"]["trials"]
3
"""
import statistics
import time
from typing import Callable


def interleaved(work: dict[str, Callable[[], int]], trials: int = 3) -> dict[str, dict]:
    """name -> {median, low, high, trials, runs}: seconds per query of each system's work.

    work: name -> a function that does one trial's work and returns how many queries it answered.
    """
    if trials < 1:
        raise ValueError("trials must be at least 1 (the book uses 3 or more, and reports the median)")
    if not work:
        raise ValueError("Nothing to time: pass at least one system's work.")
    names, seconds = list(work), {name: [] for name in work}
    for trial in range(trials):
        shift = trial % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            queries = work[name]()
            if not queries:
                raise ValueError(f"{name}'s work answered no queries: return how many it answered.")
            seconds[name].append((time.perf_counter() - t0) / queries)
    return {name: {"median": statistics.median(s), "low": min(s), "high": max(s), "trials": len(s),
                   "runs": s} for name, s in seconds.items()}


def side_by_side(answer: dict[str, Callable[[list, int], list]], questions: list, batch: int = 16,
                 latency_questions: int = 2, trials: int = 3) -> dict[str, dict]:
    """Latency (batch 1) and seconds per query (one batch of `batch` questions), for each system.

    answer: name -> function(questions, batch_size) that answers them (e.g. a `systems` function).
    Returns name -> {"latency_s": {...}, "seconds_per_query": {..., "batch": batch}}.
    """
    if len(questions) < max(batch, latency_questions):
        raise ValueError(f"{len(questions)} questions: side_by_side needs at least {max(batch, latency_questions)}.")
    lat_qs, batch_qs = questions[:latency_questions], questions[:batch]

    def one_by_one(fn):
        return lambda: sum(len(fn([q], 1)) for q in lat_qs)

    def batched(fn):
        return lambda: len(fn(batch_qs, batch))

    latency = interleaved({name: one_by_one(fn) for name, fn in answer.items()}, trials)
    per_query = interleaved({name: batched(fn) for name, fn in answer.items()}, trials)
    return {name: {"latency_s": latency[name], "seconds_per_query": {**per_query[name], "batch": batch}}
            for name in answer}
