"""Adaptive batching: concurrent calls grouped, each caller gets its own answer."""

import threading
import time

import pytest

from mlservice.serving.batching import Batcher


def _doubler(calls):
    """A run function that records each batch it receives."""

    def run(payloads):
        calls.append(list(payloads))
        time.sleep(0.01)  # like a predict call: long enough for others to queue
        return [p * 2 for p in payloads]

    return run


def _submit_concurrently(batcher, payloads):
    results = {}

    def worker(p):
        results[p] = batcher.submit(p, 1)

    threads = [threading.Thread(target=worker, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return results


def test_concurrent_calls_share_batches_and_get_their_own_results():
    calls = []
    batcher = Batcher(_doubler(calls), max_rows=64, max_wait=0.02)
    results = _submit_concurrently(batcher, list(range(40)))
    assert results == {p: p * 2 for p in range(40)}
    assert sum(len(c) for c in calls) == 40
    assert len(calls) < 40  # grouped, not one call each
    assert batcher.batches == len(calls) and batcher.payloads == 40


def test_a_batch_never_exceeds_max_rows():
    calls = []
    batcher = Batcher(_doubler(calls), max_rows=4, max_wait=0.02)
    results = _submit_concurrently(batcher, list(range(30)))
    assert results == {p: p * 2 for p in range(30)}
    assert max(len(c) for c in calls) <= 4


def test_a_lone_call_runs_after_at_most_max_wait():
    batcher = Batcher(lambda ps: [p + 1 for p in ps], max_rows=64, max_wait=0.05)
    started = time.perf_counter()
    assert batcher.submit(1, 1) == 2
    assert time.perf_counter() - started < 1.0
    # No wait configured: no delay at all beyond the call.
    batcher = Batcher(lambda ps: [p + 1 for p in ps], max_rows=64, max_wait=0)
    assert batcher.submit(41, 1) == 42


def test_a_large_call_bypasses_the_queue():
    calls = []
    batcher = Batcher(_doubler(calls), max_rows=10, max_wait=1.0)
    started = time.perf_counter()
    assert batcher.submit(5, 10) == 10
    assert time.perf_counter() - started < 0.5  # did not wait for company
    assert calls == [[5]]


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_recovers():
    def failing(payloads):
        time.sleep(0.01)
        if any(p < 0 for p in payloads):
            raise ValueError("bad batch")
        return payloads

    batcher = Batcher(failing, max_rows=64, max_wait=0.05)
    errors = []

    def worker(p):
        try:
            batcher.submit(p, 1)
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(p,)) for p in (-1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert errors and all(e == "bad batch" for e in errors)
    assert batcher.submit(7, 1) == 7  # later calls are not stuck behind the failure


@pytest.mark.parametrize("wait", [0, 0.001])
def test_many_rounds_under_contention_lose_nothing(wait):
    batcher = Batcher(lambda ps: [p for p in ps], max_rows=8, max_wait=wait)
    out = []
    lock = threading.Lock()

    def worker(base):
        for i in range(50):
            value = base * 1000 + i
            got = batcher.submit(value, 1)
            with lock:
                out.append((value, got))

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(out) == 400 and all(v == g for v, g in out)
