"""DateFeatures against pandas' .dt accessors, with a reference date and parsed text."""

import numpy as np
import pandas as pd
import pytest

from workbench.features import DateFeatures


def test_parts_match_pandas_and_elapsed_days_count_from_the_earliest_fit_date():
    train = pd.DataFrame(
        {
            "signup": pd.to_datetime(["2023-03-05 08:30", "2024-02-29 23:00", None, "2023-12-31 00:00"]),
            "n": [1, 2, 3, 4],
        }
    )
    dates = DateFeatures(
        parts=[
            "year",
            "quarter",
            "month",
            "day",
            "day_of_week",
            "day_of_year",
            "hour",
            "minute",
            "is_weekend",
            "elapsed_days",
        ]
    ).fit(train)
    out = dates.transform(train)
    s = train["signup"]
    for part in ["year", "quarter", "month", "day", "day_of_week", "day_of_year", "hour", "minute"]:
        np.testing.assert_array_equal(out[f"signup_{part}"], getattr(s.dt, part).astype(float))
    np.testing.assert_array_equal(out["signup_is_weekend"], [1.0, 0.0, np.nan, 1.0])  # Sunday, Thursday, -, Sunday
    np.testing.assert_allclose(out["signup_elapsed_days"], [0.0, 361 + 14.5 / 24, np.nan, 300 + 15.5 / 24])
    assert list(out.columns) == list(dates.get_feature_names_out()) and "signup" not in out and out.columns[-1] == "n"
    new = pd.DataFrame({"signup": pd.to_datetime(["2023-03-04 08:30"]), "n": [0]})
    assert dates.transform(new)["signup_elapsed_days"].iloc[0] == pytest.approx(-1.0)  # reference learned in fit


def test_text_dates_are_parsed_and_a_fixed_reference_is_used():
    df = pd.DataFrame({"when": pd.Series(["2024-01-02", "", None, "2024-01-04 12:00"], dtype="str")})
    out = DateFeatures(
        columns=["when"], parts=["day_of_week", "elapsed_days"], reference="2024-01-01", keep_original=True
    ).fit_transform(df)
    assert list(out.columns) == ["when", "when_day_of_week", "when_elapsed_days"]
    np.testing.assert_allclose(out["when_elapsed_days"], [1.0, np.nan, np.nan, 3.5])
    np.testing.assert_array_equal(out["when_day_of_week"], [1.0, np.nan, np.nan, 3.0])


def test_time_zones_keep_local_parts():
    s = pd.Series(pd.to_datetime(["2024-06-01 22:00"]).tz_localize("America/New_York"))
    out = DateFeatures(parts=["hour", "elapsed_days"], reference="2024-06-01 00:00").fit_transform(
        pd.DataFrame({"t": s})
    )
    assert out["t_hour"].iloc[0] == 22.0
    assert out["t_elapsed_days"].iloc[0] == pytest.approx(22 / 24)


def test_bad_input_is_named():
    df = pd.DataFrame({"when": ["2024-01-02", "not a date"], "n": [1, 2]})
    with pytest.raises(ValueError, match="column 'when' has 1 value.*'not a date'"):
        DateFeatures(columns=["when"]).fit(df)
    with pytest.raises(ValueError, match="column 'n' is numeric"):
        DateFeatures(columns=["n"]).fit(df)
    with pytest.raises(ValueError, match="'wen'"):
        DateFeatures(columns=["wen"]).fit(df)
    with pytest.raises(ValueError, match="unknown part"):
        DateFeatures(parts=["century"]).fit(df)
