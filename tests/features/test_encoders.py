"""Categorical encoders against pandas groupby, scikit-learn's TargetEncoder, and a leakage check."""

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
from sklearn.preprocessing import TargetEncoder as SklearnTargetEncoder

from workbench.data import fold_splits, make_folds
from workbench.features import AsCategory, CountEncoder, OrdinalEncoder, TargetEncoder
from workbench.models import train_cv


@pytest.fixture
def hand():
    """Eight rows, one missing city; fold numbers given by hand."""
    X = pd.DataFrame(
        {
            "city": pd.Series(["a", "a", "a", "b", "b", "c", None, "a"], dtype="str"),
            "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    y = np.array([1, 0, 1, 0, 0, 1, 1, 0])
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    return X, y, folds


def reference_encoding(cities: pd.Series, y: np.ndarray, smooth) -> tuple[pd.Series, float]:
    """Smoothed mean per city with pandas groupby (missing cities left out), and the prior."""
    frame = pd.DataFrame({"city": cities.to_numpy(), "y": y.astype(float)})
    prior = frame["y"].mean()
    stats = frame.dropna(subset=["city"]).groupby("city")["y"].agg(["sum", "count", "mean"])
    if smooth == "auto":
        var = frame["y"].var(ddof=0)
        var_in = frame.dropna(subset=["city"]).groupby("city")["y"].var(ddof=0)
        lam = stats["count"] * var / (stats["count"] * var + var_in)
        return lam * stats["mean"] + (1 - lam) * prior, prior
    return (stats["sum"] + smooth * prior) / (stats["count"] + smooth), prior


def reference_oof(cities: pd.Series, y: np.ndarray, splits, smooth) -> np.ndarray:
    out = np.full(len(y), np.nan)
    for train, val in splits:
        table, prior = reference_encoding(cities.iloc[train], y[train], smooth)
        out[val] = cities.iloc[val].map(table).astype(float).fillna(prior).to_numpy()
    return out


@pytest.mark.parametrize("smooth", [0.0, 2.0, "auto"])
def test_full_data_encoding_matches_pandas_groupby(hand, smooth):
    X, y, _ = hand
    te = TargetEncoder(columns=["city"], smooth=smooth).fit(X, y)
    table, prior = reference_encoding(X["city"], y, smooth)
    new = pd.DataFrame({"city": pd.Series(["a", "b", "c", "zzz", None], dtype="str"), "size": 0.0})
    out = te.transform(new)
    expected = [table["a"], table["b"], table["c"], prior, prior]  # unseen and missing -> prior
    np.testing.assert_allclose(out["city"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert prior == pytest.approx(4 / 8)
    if smooth == 2.0:  # and by hand: city a has y = 1, 0, 1, 0 -> (2 + 2 * 0.5) / (4 + 2)
        assert out["city"].iloc[0] == pytest.approx(3 / 6)
        assert out["city"].iloc[2] == pytest.approx((1 + 1) / (1 + 2))
    pd.testing.assert_series_equal(out["size"], new["size"])


@pytest.mark.parametrize("smooth", [2.0, "auto"])
def test_fit_transform_is_out_of_fold_with_the_given_folds(hand, smooth):
    X, y, folds = hand
    out = TargetEncoder(columns=["city"], folds=folds, smooth=smooth).fit_transform(X, y)
    splits, _ = fold_splits(folds, len(y))
    np.testing.assert_allclose(out["city"].to_numpy(), reference_oof(X["city"], y, splits, smooth), rtol=0, atol=1e-12)
    # Row 5 (city c, fold 1): no other c in fold 0, so it gets fold 0's prior, 3/4.
    assert out["city"].iloc[5] == pytest.approx(3 / 4)


def test_time_and_group_folds_use_only_the_rows_they_train_on():
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"shop": pd.Categorical(rng.choice(list("pqrstu"), n))})
    y = rng.integers(0, 2, n)
    time_folds = make_folds(y, kind="time", n_splits=4)
    out = TargetEncoder(folds=time_folds, smooth=5.0).fit_transform(X, y)["shop"].to_numpy()
    splits, fold_of_row = fold_splits(time_folds, n)
    assert all(train.max() < val.min() for train, val in splits)  # only the past
    np.testing.assert_allclose(out, reference_oof(X["shop"], y, splits, 5.0), rtol=0, atol=1e-12)
    assert np.isnan(out[fold_of_row < 0]).all() and not np.isnan(out[fold_of_row >= 0]).any()

    groups = rng.integers(0, 30, n)
    group_folds = make_folds(y, kind="group", groups=groups, n_splits=5, random_state=1)
    out = TargetEncoder(folds=group_folds, smooth="auto").fit_transform(X, y)["shop"].to_numpy()
    splits, _ = fold_splits(group_folds, n)
    np.testing.assert_allclose(out, reference_oof(X["shop"], y, splits, "auto"), rtol=0, atol=1e-12)
    splitter = GroupKFold(n_splits=3)
    out = TargetEncoder(folds=splitter, smooth=1.0).fit_transform(X, y, groups=groups)["shop"].to_numpy()
    splits = list(splitter.split(X, y, groups))
    np.testing.assert_allclose(out, reference_oof(X["shop"], y, splits, 1.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_matches_scikit_learn_target_encoder(task):
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"a": rng.integers(0, 40, n), "b": rng.integers(0, 300, n)})
    if task == "binary":
        y, sk_type, cv = (
            (rng.random(n) < 0.2 + 0.01 * X["a"]).astype(int),
            "binary",
            StratifiedKFold(5, shuffle=True, random_state=0),
        )
    elif task == "multiclass":
        y, sk_type, cv = rng.integers(0, 3, n), "multiclass", StratifiedKFold(4, shuffle=True, random_state=1)
    else:
        y, sk_type, cv = (
            rng.normal(size=n) + 0.1 * X["a"].to_numpy(),
            "continuous",
            KFold(5, shuffle=True, random_state=2),
        )
    ours = TargetEncoder(columns=["a", "b"], folds=cv)
    theirs = SklearnTargetEncoder(cv=cv, target_type=sk_type)
    np.testing.assert_allclose(
        ours.fit_transform(X, y).to_numpy(float), theirs.fit_transform(X, y), rtol=1e-10, atol=1e-12
    )
    new = pd.DataFrame({"a": [0, 5, 999], "b": [1, 2, -1]})
    np.testing.assert_allclose(ours.transform(new).to_numpy(float), theirs.transform(new), rtol=1e-10, atol=1e-12)
    assert ours.target_type_ == task
    if task == "multiclass":
        assert list(ours.get_feature_names_out()) == ["a_0", "a_1", "a_2", "b_0", "b_1", "b_2"]
        assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())


def test_multiclass_matches_pandas_per_class_means():
    X = pd.DataFrame({"c": pd.Categorical(["x", "x", "y", "y", "y", "z"])})
    y = np.array(["lo", "hi", "mid", "hi", "hi", "lo"])
    out = TargetEncoder(smooth=1.0).fit(X, y).transform(X)
    onehot = pd.get_dummies(y).astype(float)
    prior = onehot.mean()
    sums, counts = onehot.groupby(X["c"].to_numpy()).sum(), X["c"].value_counts()
    for cls in ["hi", "lo", "mid"]:
        expected = ((sums[cls] + prior[cls]) / (counts + 1)).reindex(X["c"]).to_numpy()
        np.testing.assert_allclose(out[f"c_{cls}"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_out_of_fold_encoding_does_not_leak_on_a_noise_target():
    """Pure-noise target, ID-like column: out-of-fold encoding gives CV AUC ~0.5, naive encoding does not."""
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame({"user_id": pd.Series([f"u{v:05d}" for v in rng.integers(0, n // 4, n)], dtype="str")})
    y = rng.integers(0, 2, n)
    folds = make_folds(y, n_splits=5, random_state=0)
    model = LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=8, verbose=-1, random_state=0, n_jobs=1)
    oof = TargetEncoder(folds=folds).fit_transform(X, y)
    naive = TargetEncoder().fit(X, y).transform(X)  # full-data statistics: each row sees its own target
    auc_oof = train_cv(model, oof, y, folds, progress=False).score
    auc_naive = train_cv(model, naive, y, folds, progress=False).score
    print(f"noise target: out-of-fold AUC {auc_oof:.4f}, naive AUC {auc_naive:.4f}")
    assert abs(auc_oof - 0.5) <= 0.03
    assert auc_naive > 0.65


def test_same_seed_same_encoding_other_seed_other_folds():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"c": rng.choice(list("abcdefgh"), 500)})
    y = rng.integers(0, 2, 500)
    a = TargetEncoder(random_state=3).fit_transform(X, y)
    b = TargetEncoder(random_state=3).fit_transform(X, y)
    c = TargetEncoder(random_state=4).fit_transform(X, y)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["c"], c["c"])


@pytest.mark.parametrize("dtype", ["str", "category", "object"])
def test_count_and_ordinal_encoders_match_pandas(dtype):
    train = pd.DataFrame({"c": pd.Series(["b", "a", "b", None, "c", "b", None], dtype=dtype), "n": range(7)})
    test = pd.DataFrame({"c": pd.Series(["a", "b", "zzz", None], dtype=dtype), "n": range(4)})
    counts = train["c"].value_counts()
    out = CountEncoder().fit(train).transform(test)
    assert list(out.columns) == ["c", "n"]  # encoded in place, others pass through
    assert out["c"].tolist() == [counts["a"], counts["b"], 0, train["c"].isna().sum()] == [1, 3, 0, 2]
    freq = CountEncoder(normalize=True).fit(train).transform(test)["c"]
    np.testing.assert_allclose(freq, np.array([1, 3, 0, 2]) / 7)
    codes = OrdinalEncoder().fit(train).transform(test)["c"]
    order = sorted(train["c"].dropna().unique())
    assert codes.tolist() == [order.index("a"), order.index("b"), -1, -2]
    assert OrdinalEncoder(unknown_value=-9, missing_value=-5).fit(train).transform(test)["c"].tolist()[2:] == [-9, -5]


def test_category_order_is_kept_and_foreign_categories_are_mapped():
    train = pd.DataFrame({"size": pd.Categorical(["M", "S", "L"], categories=["S", "M", "L"], ordered=True)})
    enc = OrdinalEncoder().fit(train)
    assert enc.transform(train)["size"].tolist() == [1, 0, 2]
    other = pd.DataFrame({"size": pd.Categorical(["L", "XL", "S"], categories=["XL", "L", "S"])})
    assert enc.transform(other)["size"].tolist() == [2, -1, 0]
    cats = AsCategory().fit(train).transform(other)["size"]
    assert list(cats.cat.categories) == ["S", "M", "L"] and cats.isna().tolist() == [False, True, False]


def test_default_columns_are_the_categorical_like_ones():
    X = pd.DataFrame(
        {
            "s": pd.Series(["x", "y"], dtype="str"),
            "c": pd.Categorical(["u", "v"]),
            "b": [True, False],
            "f": [0.5, 1.5],
            "i": [1, 2],
        }
    )
    enc = CountEncoder().fit(X)
    assert enc.columns_ == ["s", "c", "b"]
    assert list(enc.get_feature_names_out()) == list(X.columns)


def test_bad_input_is_named():
    X = pd.DataFrame({"city": ["a", "b", "a", "b"], "n": [1, 2, 3, 4]})
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="'town'"):
        TargetEncoder(columns=["town"]).fit(X, y)
    with pytest.raises(ValueError, match="'town'"):
        CountEncoder(columns="town").fit(X)
    with pytest.raises(ValueError, match=r"target contains 1 NaN.*first rows: \[2\]"):
        TargetEncoder().fit(X, np.array([0, 1, np.nan, 1]))
    enc = TargetEncoder(folds=2).fit(X, y)
    with pytest.raises(ValueError, match=r"(?s)unseen at fit time:\n- town.*missing:\n- city"):
        enc.transform(X.rename(columns={"city": "town"}))
    with pytest.raises(ValueError, match="smooth must be 'auto' or a number"):
        TargetEncoder(smooth=-1).fit(X, y)
    with pytest.raises(ValueError, match="requires y"):
        TargetEncoder().fit(X)
    with pytest.raises(ValueError, match="folds has 3 entries but the data has 4 rows"):
        TargetEncoder(folds=np.array([0, 1, 0])).fit_transform(X, y)
    with pytest.raises(ValueError, match="one class"):
        TargetEncoder().fit(X, np.zeros(4))
    with pytest.raises(ValueError, match="negative integer"):
        OrdinalEncoder(unknown_value=3).fit(X)
