"""The README's example data set is what its generator makes, small and with its quirks."""

import pandas as pd

from tests.data import make_customers


def test_committed_csv_is_the_generators_output():
    committed = make_customers.CSV_PATH.read_text()
    assert committed == make_customers.as_csv(make_customers.customers())


def test_customers_are_small_with_missing_values_and_two_plans():
    frame = pd.read_csv(make_customers.CSV_PATH)
    assert frame.shape == (400, 4)
    assert list(frame.columns) == ["age", "city", "income", "plan"]
    assert frame["age"].isna().sum() == 37  # every 11th row
    assert frame["city"].isna().sum() == 24  # every 17th row
    assert sorted(frame["plan"].unique()) == ["basic", "premium"]
    assert make_customers.CSV_PATH.stat().st_size < 20_000
