"""The small customers data set the README trains on, and the tests too.

Generated, never downloaded: 400 rows of age, city, income and plan (basic or
premium, decided by income), with missing ages and cities. The committed
``customers.csv`` is this script's output (a unit test checks it):

    python tests/data/make_customers.py      # rewrites tests/data/customers.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CSV_PATH = Path(__file__).with_name("customers.csv")


def customers(rows: int = 400, seed: int = 42) -> pd.DataFrame:
    """Mixed numeric and categorical columns with missing values, a string class and a number."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, size=rows).astype(float)
    city = rng.choice(["Paris", "Lyon", "Nice"], size=rows).astype(object)
    income = 1000 * age + rng.normal(0, 2000, size=rows)
    plan = np.where(income > 45_000, "premium", "basic").astype(object)
    frame = pd.DataFrame({"age": age, "city": city, "income": income.round(2), "plan": plan})
    frame.loc[::11, "age"] = np.nan
    frame.loc[::17, "city"] = None
    return frame


def as_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


if __name__ == "__main__":
    CSV_PATH.write_text(as_csv(customers()))
    print(f"wrote {CSV_PATH}")
