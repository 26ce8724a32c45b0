"""What the client repeats, and how it waits."""

import itertools

import pytest
import requests

from mlservice_client import WaitTimeout, backoff


def test_delays_grow_to_the_cap():
    assert list(itertools.islice(backoff.delays(0.25, 2.0, 1.5), 5)) == [0.25, 0.5, 1.0, 1.5, 1.5]


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [
        (503, "5", 5.0),
        (503, None, None),
        (503, "soon", None),
        (503, "3600", None),
        (502, "5", None),
        (429, "1", None),
        (503, "-1", None),
    ],
)
def test_only_503_with_a_usable_retry_after_is_repeated(status, header, wait):
    assert backoff.retryable_status(status, header) == wait


def test_a_refused_connection_is_repeated_for_any_method_a_lost_one_only_if_idempotent():
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))
    )
    lost = requests.ConnectionError("Connection aborted.")
    assert backoff.retryable_error("POST", refused)
    assert not backoff.retryable_error("POST", lost)
    assert backoff.retryable_error("GET", lost) and backoff.retryable_error("DELETE", lost)
    assert not backoff.retryable_error("GET", requests.ReadTimeout())


def test_poll_returns_when_finished_and_times_out_otherwise():
    clock = itertools.count()
    values = iter([1, 2, 3])
    seen = []
    found = backoff.poll(
        lambda: next(values), lambda v: v == 3, None, "x", seen.append, sleep=lambda _: None
    )
    assert (found, seen) == (3, [1, 2, 3])
    with pytest.raises(WaitTimeout, match="task t is not finished after 5 s; it goes on"):
        backoff.poll(
            lambda: 0,
            lambda v: False,
            5,
            "task t",
            clock=lambda: float(next(clock)),
            sleep=lambda _: None,
        )
