"""Drift against the training profile: stable inputs pass, a shifted number column and a
collapsed text column are flagged, unseen categories and missing values are counted."""

import numpy as np
import pandas as pd
import pytest

from mlservice.monitoring import drift
from mlservice.monitoring.drift import Thresholds
from mlservice.monitoring.feature_profile import training_profile

SCHEMA = [
    {"name": "x", "type": "number"},
    {"name": "y", "type": "number"},
    {"name": "colour", "type": "string", "categories": ["blue", "green", "red"]},
]


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.uniform(0, 10, n),
            "colour": rng.choice(np.array(["red", "green", "blue"], dtype=object), n),
        }
    )


@pytest.fixture(scope="module")
def profile():
    return training_profile(rows(5000, 0), SCHEMA)


def test_the_profile_holds_deciles_and_category_shares(profile):
    x = profile["columns"]["x"]
    assert len(x["edges"]) == 9
    assert sum(x["shares"]) == pytest.approx(1.0)
    assert x["shares"] == pytest.approx([0.1] * 10, abs=1e-3)
    assert sum(profile["columns"]["colour"]["categories"].values()) == pytest.approx(1.0)
    assert profile["rows"] == 5000


def test_in_distribution_rows_flag_nothing(profile):
    found = drift.report("m", profile, rows(2000, 1), Thresholds(), "log")
    assert found["drifted"] == []
    assert all(column["psi"] < 0.05 for column in found["columns"])


def test_a_shifted_number_and_a_collapsed_category_are_flagged(profile):
    frame = rows(2000, 2)
    frame["x"] = frame["x"] + 1.5
    frame["colour"] = "red"
    found = drift.report("m", profile, frame, Thresholds(), "log")
    assert found["drifted"] == ["x", "colour"]


def test_unseen_categories_are_counted(profile):
    frame = rows(2000, 3)
    frame.loc[:99, "colour"] = "purple"
    colour = next(
        c
        for c in drift.report("m", profile, frame, Thresholds(), "log")["columns"]
        if c["feature"] == "colour"
    )
    assert colour["unseen"] == 100
    assert colour["unseen_share"] == 0.05


def test_missing_values_move_the_missing_rate(profile):
    frame = rows(1000, 4)
    frame.loc[:499, "y"] = np.nan
    y = drift.compare(profile, frame, Thresholds())[1]
    assert y["missing_rate"] == 0.5
    assert y["missing_rate_change"] == 0.5
    assert y["drifted"] is True


def test_psi_is_the_symmetric_divergence():
    assert drift.psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    expected = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert drift.psi(np.array([0.7, 0.3]), np.array([0.5, 0.5])) == pytest.approx(expected)
