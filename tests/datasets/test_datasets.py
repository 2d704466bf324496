import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.datasets import TELCO_CATEGORICAL, load_telco, score_telco_submission

DATA = Path(__file__).resolve().parents[2] / "workbench" / "datasets" / "data" / "telco_churn.csv.gz"


def test_telco_shape_and_dtypes(telco):
    assert telco.shape == (7043, 21)
    assert telco["TotalCharges"].dtype == np.float64
    assert telco["TotalCharges"].isna().sum() == 11
    # the blank TotalCharges are exactly the brand-new customers
    assert (telco.loc[telco["TotalCharges"].isna(), "tenure"] == 0).all()
    for col in TELCO_CATEGORICAL:
        assert isinstance(telco[col].dtype, pd.CategoricalDtype), col
    assert set(telco["Churn"].unique()) == {0, 1}
    assert telco["Churn"].sum() == 1869  # the published churn count
    assert telco["customerID"].is_unique
    assert pd.api.types.is_string_dtype(telco["customerID"].dtype)


def test_telco_matches_raw_file():
    with gzip.open(DATA, "rt") as fh:
        raw = pd.read_csv(fh, dtype=str, keep_default_na=False)
    df = load_telco()
    assert (raw["customerID"].to_numpy() == df["customerID"].to_numpy()).all()
    assert ((raw["Churn"] == "Yes").to_numpy() == (df["Churn"] == 1).to_numpy()).all()
    blank = raw["TotalCharges"].str.strip() == ""
    np.testing.assert_allclose(raw.loc[~blank, "TotalCharges"].astype(float), df.loc[~blank.to_numpy(), "TotalCharges"])
    assert list(df["Contract"].cat.categories) == ["Month-to-month", "One year", "Two year"]


def test_competition_split_is_fixed_and_kaggle_shaped():
    a = load_telco(split="competition")
    b = load_telco(split="competition")
    train, test, sample = a
    assert len(train) + len(test) == 7043
    assert "Churn" in train and "Churn" not in test
    assert list(sample.columns) == ["customerID", "Churn"]
    assert (sample["customerID"].to_numpy() == test["customerID"].to_numpy()).all()
    assert not set(train["customerID"]) & set(test["customerID"])
    pd.testing.assert_frame_equal(a.train, b.train)
    assert abs(train["Churn"].mean() - load_telco()["Churn"].mean()) < 0.005  # stratified
    assert list(test.columns) == [c for c in train.columns if c != "Churn"]


def test_score_submission_rejects_incomplete_and_scores_perfect():
    comp = load_telco(split="competition")
    with pytest.raises(ValueError, match="one row per test customer"):
        score_telco_submission(comp.sample_submission.iloc[:10])
    assert score_telco_submission(comp.sample_submission) == 0.5


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        load_telco(split="holdout")
