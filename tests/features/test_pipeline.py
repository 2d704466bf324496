"""build(): a default feature pipeline from a schema, straight into LightGBM."""

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier

from workbench.data import infer_schema, make_folds
from workbench.datasets import load_telco
from workbench.features import FeaturePipeline, build
from workbench.models import default_lgbm, train_cv


def test_raw_telco_in_one_line_reaches_the_target_auc(telco):
    schema = infer_schema(telco, target="Churn")
    y = telco["Churn"]
    folds = make_folds(y, kind="stratified", n_splits=5, random_state=0)
    cv = train_cv(
        default_lgbm("binary", learning_rate=0.1, n_jobs=1),
        build(telco, schema).fit_transform(telco),
        y,
        folds,
        metric="auc",
        early_stopping_rounds=50,
        progress=False,
    )
    print(f"Telco CV AUC with build(): {cv.score:.4f}")
    assert cv.score >= 0.845


def test_telco_frame_is_model_ready_and_test_data_gets_the_same_columns(telco):
    schema = infer_schema(telco, target="Churn")
    pipe = build(telco, schema)
    X = pipe.fit_transform(telco)
    assert "customerID" not in X and "Churn" not in X
    assert list(X.columns) == schema.features == list(pipe.get_feature_names_out())
    for col in schema.categorical:
        assert isinstance(X[col].dtype, pd.CategoricalDtype)
        assert list(X[col].cat.categories) == sorted(telco[col].dropna().unique())
    pd.testing.assert_frame_equal(X[list(schema.numeric)], telco[list(schema.numeric)])
    train, test, _ = load_telco(split="competition")
    fitted = build(schema).fit(train)
    X_test = fitted.transform(test)  # no Churn column in test
    assert list(X_test.columns) == list(fitted.transform(train).columns)
    for col in schema.categorical:
        assert X_test[col].dtype == fitted.transform(train)[col].dtype


def test_target_never_reaches_the_features(telco):
    schema = infer_schema(telco, target="Churn")
    shuffled = telco.assign(Churn=np.random.default_rng(0).permutation(telco["Churn"].to_numpy()))
    pd.testing.assert_frame_equal(build(schema).fit_transform(telco), build(schema).fit_transform(shuffled))


def _tickets(n=300, seed=0):
    rng = np.random.default_rng(seed)
    words = ["refund", "late", "broken", "thanks", "great", "slow", "help", "charge"]
    df = pd.DataFrame(
        {
            "ticket_id": [f"T{i:05d}" for i in range(n)],
            "agent": pd.Series([f"agent{a:03d}" for a in rng.integers(0, 60, n)], dtype="str"),
            "channel": pd.Series(rng.choice(["mail", "phone", "chat"], n), dtype="str"),
            "opened": pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10_000, n), unit="h"))
            .dt.strftime("%Y-%m-%d %H:%M")
            .astype("str"),
            "message": pd.Series([" ".join(rng.choice(words, 8)) for _ in range(n)], dtype="str"),
            "wait_min": rng.gamma(2.0, 10.0, n),
        }
    )
    df["escalated"] = ((df["message"].str.contains("refund") & (df["wait_min"] > 15)) | (rng.random(n) < 0.05)).astype(
        int
    )
    return df


def test_mixed_frame_text_dates_and_frequent_categories():
    df = _tickets()
    schema = infer_schema(df, target="escalated")
    assert schema.text == ("message",) and schema.datetime == ("opened",) and schema.id == ("ticket_id",)
    pipe = build(df, target="escalated", count_threshold=20, text_max_features=30)
    X = pipe.fit_transform(df)
    assert isinstance(pipe, FeaturePipeline) and list(X.columns) == list(pipe.get_feature_names_out())
    assert "agent_count" in X and "channel_count" not in X  # 60 agents > 20, 3 channels
    assert X["agent_count"].iloc[0] == (df["agent"] == df["agent"].iloc[0]).sum()
    assert {"opened_year", "opened_day_of_week", "opened_elapsed_days"} <= set(X.columns)
    assert "message__word__refund" in X and "message" not in X and "opened" not in X
    assert (X["message__word__refund"] == df["message"].str.count(r"\brefund\b")).all()
    new = _tickets(5, seed=1).assign(agent="agent999")  # an agent never seen in fit
    X_new = pipe.transform(new.drop(columns="escalated"))
    assert X_new["agent"].isna().all() and (X_new["agent_count"] == 0).all()
    model = LGBMClassifier(n_estimators=50, num_leaves=8, verbose=-1, random_state=0, n_jobs=1)
    cv = train_cv(model, X, df["escalated"], make_folds(df["escalated"], n_splits=3, random_state=0), progress=False)
    assert cv.score > 0.8


def test_bad_input_is_named(telco):
    schema = infer_schema(telco, target="Churn")
    with pytest.raises(ValueError, match="needs target="):
        build(telco)
    with pytest.raises(ValueError, match="'tenure'"):
        build(telco.drop(columns="tenure"), schema)
    pipe = build(schema).fit(telco)
    with pytest.raises(ValueError, match="'Contract'"):
        pipe.transform(telco.drop(columns="Contract"))
    with pytest.raises(ValueError, match="differs from the schema's target"):
        build(telco, schema, target="gender")
    with pytest.raises(ValueError, match="holds non-numbers"):
        pipe.transform(telco.assign(tenure="many"))
