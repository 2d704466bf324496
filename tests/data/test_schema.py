import numpy as np
import pandas as pd
import pytest

from workbench.data import Schema, infer_schema


def test_telco_schema(telco):
    s = infer_schema(telco, target="Churn")
    assert s.target == "Churn"
    assert s.id == ("customerID",)
    assert set(s.numeric) == {"SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"}
    assert "Contract" in s.categorical and len(s.categorical) == 15
    assert "customerID" not in s.features and "Churn" not in s.features
    assert s.features == [c for c in telco.columns if c not in ("customerID", "Churn")]


def test_roles_by_rule():
    n = 200
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "actor", "music", "long", "short", "boring", "great"]
    df = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "sku": [f"SKU{i:05d}" for i in range(n)],
            "review": [" ".join(rng.choice(words, 6)) for _ in range(n)],
            "color": rng.choice(["red", "green", "blue"], n),
            "city": rng.choice(["New York", "Paris", "Lima"], n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "when_str": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "price": rng.normal(size=n),
            "flag": rng.random(n) > 0.5,
            "y": rng.integers(0, 2, n),
        }
    )
    s = infer_schema(df, target="y")
    assert s.role("user_id") == "id"
    assert s.role("sku") == "id"
    assert s.role("review") == "text"
    assert s.role("color") == "categorical"
    assert s.role("city") == "categorical"
    assert s.role("when") == "datetime"
    assert s.role("when_str") == "datetime"
    assert s.role("price") == "numeric"
    assert s.role("flag") == "numeric"
    assert s.role("y") == "target"


def test_overrides_and_with_roles(telco):
    s = infer_schema(telco, target="Churn", overrides={"SeniorCitizen": "categorical", "gender": "ignore"})
    assert s.role("SeniorCitizen") == "categorical"
    assert "gender" not in s.features
    s2 = s.with_roles({"gender": "categorical"})
    assert "gender" in s2.features
    assert Schema.from_dict(s2.to_dict()) == s2


def test_bad_input(telco):
    with pytest.raises(ValueError, match="target column 'churn' is not in the data"):
        infer_schema(telco, target="churn")
    with pytest.raises(ValueError, match="unknown role 'label'"):
        infer_schema(telco, overrides={"tenure": "label"})
    with pytest.raises(ValueError, match="not in the data"):
        infer_schema(telco, overrides={"nope": "numeric"})
    with pytest.raises(KeyError, match="not in the schema"):
        infer_schema(telco).role("nope")
