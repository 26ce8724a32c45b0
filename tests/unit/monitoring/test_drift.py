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


def dates(n: int, seed: int, start: str) -> pd.Series:
    """``n`` dates as text, drawn uniformly from the year after ``start``."""
    days = np.random.default_rng(seed).integers(0, 365, n)
    return pd.Series((pd.Timestamp(start) + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"))


def test_dates_drift_as_dates_not_as_categories():
    schema = [{"name": "when", "type": "datetime", "role": "datetime", "format": "%Y-%m-%d"}]
    profile = training_profile(pd.DataFrame({"when": dates(3000, 0, "2020-01-01")}), schema)
    column = profile["columns"]["when"]
    assert column["type"] == "datetime" and len(column["edges"]) == 9
    # New dates of the same year are not "unseen": nothing drifts.
    same = drift.report("m", profile, pd.DataFrame({"when": dates(2000, 1, "2020-01-01")}),
                        Thresholds(), "log")  # fmt: skip
    assert same["drifted"] == [] and same["columns"][0]["unseen"] == 0
    # Years (the integer 2021, as a prediction may send them) and a later year drift.
    later = pd.DataFrame({"when": [2021] * 500 + list(dates(1500, 2, "2021-01-01"))})
    moved = drift.report("m", profile, later, Thresholds(), "log")
    assert moved["drifted"] == ["when"] and moved["columns"][0]["missing_rate"] == 0.0
    # What is not a date counts as missing.
    broken = pd.DataFrame({"when": ["not a date"] * 1000 + list(dates(1000, 3, "2020-01-01"))})
    assert drift.report("m", profile, broken, Thresholds(), "log")["columns"][0][
        "missing_rate"
    ] == pytest.approx(0.5)
