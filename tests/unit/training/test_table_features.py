"""Date parsing and features, roles' thresholds, and the column plan a pipeline is built from."""

import numpy as np
import pandas as pd
import pytest

from mlservice.store import column_roles
from mlservice.store.csv_dialect import detect_decimal
from mlservice.table_features import BadDate, DateFeatures, guess_format, parse_dates
from mlservice.training.pipeline import MAX_CATEGORIES, build_pipeline, plan_columns


def test_dates_parse_in_the_training_format_any_format_and_as_years():
    parsed = parse_dates(["02/01/1971", "1971-01-02", 1971, "1971", 1971.0, None], "%d/%m/%Y")
    assert parsed.tolist()[:5] == [
        pd.Timestamp("1971-01-02"),
        pd.Timestamp("1971-01-02"),
        pd.Timestamp("1971-01-01"),
        pd.Timestamp("1971-01-01"),
        pd.Timestamp("1971-01-01"),
    ]
    assert pd.isna(parsed.iloc[5])
    with pytest.raises(BadDate) as bad:
        parse_dates(["1971-01-02", "soon"])
    assert (bad.value.value, bad.value.position) == ("soon", 1)


def test_the_format_is_the_one_that_reads_most_values():
    assert guess_format(["01/02/2020", "25/02/2020"]) == "%d/%m/%Y"
    assert guess_format(["01/02/2020", "02/25/2020"]) == "%m/%d/%Y"
    assert guess_format([1971, "1971"]) is None


def test_date_features_are_year_month_weekday_and_ordinal():
    features = DateFeatures().fit(pd.DataFrame({"d": ["1970-01-02"]}))
    assert features.transform(pd.DataFrame({"d": ["1970-01-02", None]}))[0].tolist() == [
        1970.0,
        1.0,
        4.0,  # a Friday
        1.0,
    ]
    assert list(features.get_feature_names_out()) == [
        "d_year",
        "d_month",
        "d_day_of_week",
        "d_ordinal",
    ]


@pytest.mark.parametrize(
    "dtype, present, distinct, values, span, role",
    [
        ("integer", 50, 1, [7], 1, "constant"),
        ("integer", 50, 50, list(range(50)), 50, "id"),
        ("integer", 50, 50, list(range(0, 5000, 100)), 4901, "numeric"),
        ("integer", 10, 10, list(range(10)), 10, "numeric"),  # too few rows to tell
        ("float", 50, 50, [0.5], None, "numeric"),
        ("string", 50, 31, [f"c{i}" for i in range(31)], None, "id"),
        ("string", 50, 29, [f"c{i}" for i in range(29)], None, "categorical"),
        ("string", 50, 40, ["a b c d e"] * 40, None, "text"),
        ("string", 50, 3, ["2020-01-01", "2021-05-06", "2022-12-31"], None, "datetime"),
        ("string", 50, 3, ["1", "2", "3"], None, "categorical"),
        ("boolean", 50, 2, [True, False], None, "categorical"),
        ("datetime", 50, 40, [], None, "datetime"),
    ],
)
def test_roles_follow_their_documented_thresholds(dtype, present, distinct, values, span, role):
    found, evidence = column_roles.detect(dtype, present, distinct, values, span)
    assert found == role, evidence


def test_the_plan_leaves_ids_out_and_caps_many_categories():
    frame = pd.DataFrame(
        {
            "id": np.arange(200),
            "shop": [f"s{i % 80}" for i in range(200)],
            "day": ["2020-01-01"] * 200,
            "note": ["red fast car"] * 200,
        }
    )
    plan = plan_columns(
        frame,
        ["id", "shop", "day", "note"],
        {"id": "id", "shop": "categorical", "day": "datetime", "note": "text"},
    )
    assert [column["name"] for column in plan.schema] == ["shop", "day", "note"]
    assert plan.schema[0]["max_categories"] == MAX_CATEGORIES
    assert [w["kind"] for w in plan.warnings] == ["column_left_out", "categories_grouped"]
    pipeline = build_pipeline(plan.schema, None)
    names = [name for name, _, _ in pipeline.steps[0][1].transformers]
    assert names == ["categorical", "datetime", "text:note"]


def test_a_decimal_comma_is_found_only_beside_another_delimiter():
    assert detect_decimal(b"a;b\n1,5;x\n2;y\n", ";") == ","
    assert detect_decimal(b"a;b\n1,5;x\n2.5;y\n", ";") == "."
    assert detect_decimal(b'a,b\n"1,5",x\n', ",") == "."


def test_a_text_model_takes_one_letter_words_and_opens_with_the_client_copy():
    import io
    import pickle

    from mlservice.training import fitting

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "d": pd.date_range("2020-01-01", periods=60).strftime("%Y-%m-%d"),
            "t": [" ".join(rng.choice(["a", "b", "c", "d"], 5)) for _ in range(60)],
            "y": rng.normal(size=60),
        }
    )
    pipeline = fitting.train(frame, "y", "Ridge", {}, roles={"d": "datetime", "t": "text"})
    pipeline = pipeline.bundle.pipeline

    class ClientOnly(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "mlservice.table_features":
                module = "mlservice_client.table_features"
            assert not module.startswith("mlservice."), module
            return super().find_class(module, name)

    opened = ClientOnly(io.BytesIO(pickle.dumps(pipeline))).load()
    rows = pd.DataFrame({"d": ["2020-02-01", 2021], "t": ["a b", None]})
    assert opened.predict(rows).tolist() == pipeline.predict(rows).tolist()
