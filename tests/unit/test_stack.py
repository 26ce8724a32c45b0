"""make run's restart policy: growing delays, and giving up on a process that keeps dying."""

from mlservice.stack import RestartPolicy


def test_delays_double_then_it_gives_up():
    policy = RestartPolicy(limit=5, window=300)
    assert [policy.next_delay(now) for now in (0, 1, 2, 3, 4)] == [1, 2, 4, 8, 16]
    assert policy.next_delay(5) is None


def test_old_restarts_are_forgotten_after_the_window():
    policy = RestartPolicy(limit=2, window=60)
    assert policy.next_delay(0) == 1
    assert policy.next_delay(10) == 2
    assert policy.next_delay(20) is None
    assert policy.next_delay(65) == 2  # the restart at 0 s is out of the window, 10 s is not
