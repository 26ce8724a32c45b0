"""How a shadow version's answers are compared with the served ones, and counted."""

from __future__ import annotations

import numpy as np

from mlservice.registry import shadow
from mlservice.store.bundles import Task


class Bundle:
    """The fields of a bundle the comparison reads."""

    def __init__(self, task: str, classes: list | None = None) -> None:
        self.task, self.classes = task, classes


def test_labels_are_compared_not_class_indices():
    served = Bundle(Task.CLASSIFICATION, ["no", "yes"])
    other = Bundle(Task.CLASSIFICATION, ["yes", "no"])  # the same labels, in another order
    agreed = shadow.agreeing_rows(served, np.array([0, 1, 1]), other, np.array([1, 0, 1]))
    assert agreed == 2


def test_regression_values_agree_within_a_relative_tolerance():
    served = Bundle(Task.REGRESSION)
    ours = np.array([100.0, 100.0, 0.0, -5.0])
    theirs = np.array([100.009, 100.02, 0.0, -5.0])
    assert shadow.agreeing_rows(served, ours, served, theirs) == 3
    classifier = Bundle(Task.CLASSIFICATION, ["a"])
    assert shadow.agreeing_rows(served, ours, classifier, np.zeros(4)) == 0


def test_counts_are_shown_with_their_rate():
    raw = {b"requests": b"4", b"requests_agreed": b"3", b"rows": b"10", b"rows_agreed": b"9"}
    assert shadow.counts(raw) == {
        "requests_compared": 4,
        "requests_agreed": 3,
        "agreement_rate": 0.75,
        "rows_compared": 10,
        "rows_agreed": 9,
        "failed": 0,
        "dropped": 0,
    }
    assert shadow.counts({b"dropped": b"2"})["agreement_rate"] is None
