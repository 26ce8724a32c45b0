"""Fixtures of the integration tests (the stack's own fixtures are in tests/conftest.py)."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """Mixed numeric and categorical columns with missing values, a string class and a number."""
    rng = np.random.default_rng(42)
    n = 400
    age = rng.integers(18, 80, size=n).astype(float)
    city = rng.choice(["Paris", "Lyon", "Nice"], size=n).astype(object)
    income = 1000 * age + rng.normal(0, 2000, size=n)
    plan = np.where(income > 45_000, "premium", "basic").astype(object)
    frame = pd.DataFrame({"age": age, "city": city, "income": income, "plan": plan})
    frame.loc[::11, "age"] = np.nan
    frame.loc[::17, "city"] = None
    return frame
