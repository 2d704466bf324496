"""The flat LightGBM tree engine must agree with LightGBM bit for bit."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from workbench.explain._trees import parse_lightgbm, predict_leaves, predict_raw, raw_to_output, to_matrix


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 50, n).astype(float),
            "c": pd.Categorical(rng.choice(list("pqrstuvwxyz"), n)),
            "d": rng.exponential(size=n),
        }
    )
    X.loc[rng.random(n) < 0.1, "a"] = np.nan
    X.loc[rng.random(n) < 0.2, "d"] = 0.0
    logit = X["a"].fillna(0) + (X["c"].isin(["p", "q", "r"])) * 1.5 - 0.05 * X["b"] + np.log1p(X["d"])
    return X, logit.to_numpy(), rng


def _perturbed(X, rng):
    Xt = X.copy()
    Xt.loc[::9, "b"] = np.nan
    Xt.loc[::11, "d"] = 0.0
    Xt["c"] = Xt["c"].cat.add_categories(["unseen"])
    Xt.loc[::13, "c"] = "unseen"
    Xt.loc[::17, "c"] = np.nan
    return Xt


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}, {"max_cat_to_onehot": 32}])
def test_binary_raw_scores_bit_exact(frame, params):
    X, logit, rng = frame
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1, **params).fit(X, y)
    ens = parse_lightgbm(model)
    Xt = _perturbed(X, rng)
    raw = predict_raw(ens, to_matrix(ens, Xt))
    np.testing.assert_array_equal(raw[:, 0], model.predict(Xt, raw_score=True))
    np.testing.assert_allclose(raw_to_output(ens, raw)[:, 0], model.predict_proba(Xt)[:, 1], rtol=0, atol=1e-15)
    assert ens.categorical_features == (2,)


def test_multiclass_and_leaf_indices(frame):
    X, logit, rng = frame
    y = np.digitize(logit, np.quantile(logit, [0.33, 0.66]))
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)
    ens = parse_lightgbm(model)
    M = to_matrix(ens, X)
    raw = predict_raw(ens, M)
    np.testing.assert_array_equal(raw, model.predict(X, raw_score=True))
    np.testing.assert_allclose(raw_to_output(ens, raw), model.predict_proba(X), rtol=0, atol=1e-15)
    leaves = predict_leaves(ens, M)
    local = leaves - np.searchsorted(ens.leaf_tree, np.arange(ens.n_trees))[None, :]
    np.testing.assert_array_equal(local, model.predict(X, pred_leaf=True))
    assert ens.n_trees == 60 and set(ens.tree_class) == {0, 1, 2}


def test_regression_early_stopping_and_numpy_input(frame):
    X, logit, rng = frame
    Xn = X[["a", "b", "d"]].to_numpy()
    y = logit + rng.normal(size=len(X))
    model = lgb.LGBMRegressor(n_estimators=500, learning_rate=0.3, verbose=-1)
    model.fit(
        Xn[:2000], y[:2000], eval_X=(Xn[2000:],), eval_y=(y[2000:],), callbacks=[lgb.early_stopping(5, verbose=False)]
    )
    ens = parse_lightgbm(model)
    assert ens.n_trees == model.best_iteration_ < 500
    np.testing.assert_array_equal(predict_raw(ens, to_matrix(ens, Xn))[:, 0], model.predict(Xn))
    ints = rng.integers(0, 2**25, size=(50, 3))  # non-float input goes through float32, as in LightGBM
    np.testing.assert_array_equal(predict_raw(ens, to_matrix(ens, ints))[:, 0], model.predict(ints))


def test_booster_uses_its_early_stopping_iteration(frame):
    X, logit, rng = frame
    Xn = X[["a", "b", "d"]].to_numpy()
    y = logit + rng.normal(size=len(X))
    train, valid = lgb.Dataset(Xn[:2000], y[:2000]), lgb.Dataset(Xn[2000:], y[2000:])
    booster = lgb.train(
        {"learning_rate": 0.3, "verbose": -1},
        train,
        num_boost_round=500,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,
    )
    ens = parse_lightgbm(booster)
    assert 0 < booster.best_iteration == ens.n_trees < booster.num_trees()
    np.testing.assert_array_equal(predict_raw(ens, Xn)[:, 0], booster.predict(Xn, raw_score=True))


def test_single_leaf_trees():
    X = np.zeros((100, 2))
    y = np.r_[np.zeros(50), np.ones(50)]
    model = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, y)
    ens = parse_lightgbm(model)
    np.testing.assert_array_equal(predict_raw(ens, X)[:, 0], model.predict(X))


def test_errors(frame):
    X, logit, _ = frame
    with pytest.raises(ValueError, match="not fitted"):
        parse_lightgbm(lgb.LGBMClassifier())
    with pytest.raises(TypeError, match="expected a LightGBM model"):
        parse_lightgbm(object())
    model = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, logit)
    with pytest.raises(ValueError, match="X has 3 columns but the model was trained on 4"):
        to_matrix(parse_lightgbm(model), X.iloc[:, :3])
