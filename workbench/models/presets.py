"""Sensible starting estimators, so a first model is one line.

Three diverse families for tabular data, each taking the frame :func:`workbench.features.build`
gives (pandas ``category`` columns beside numbers): gradient boosting (:func:`default_lgbm`), a
linear model on one-hot and standardised features (:func:`default_logreg`) and extremely
randomised trees (:func:`default_extratrees`). Their out-of-fold predictions differ enough to
make good level-1 models of a stack.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data.validation import renamed_params

MODEL_FAMILIES: tuple[str, ...] = ("lgbm", "logreg", "extratrees")


@renamed_params(seed="random_state")
def default_lgbm(task: str = "binary", random_state: int = 0, **overrides: Any) -> Any:
    """A LightGBM estimator tuned for small/medium tabular data; pair it with early stopping.

    Slow learning rate and shallow trees with row/column subsampling: strong on data like Telco
    when ``train_cv(..., early_stopping_rounds=200)`` picks the number of trees per fold.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}, default "binary"
        Picks ``LGBMClassifier`` or ``LGBMRegressor`` and the objective.
    random_state : int, default 0
        Seed of the subsampling.
    **overrides
        LightGBM parameters replacing the defaults (``n_estimators``, ``learning_rate``...).

    Returns
    -------
    LGBMClassifier or LGBMRegressor
        Unfitted.

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> from workbench.models import train_cv
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = default_lgbm("binary", random_state=0, n_estimators=100)
    >>> cv = train_cv(model, X, y, folds=3, early_stopping_rounds=20, progress=False)
    >>> round(cv.score, 2)
    0.85
    """
    from lightgbm import LGBMClassifier, LGBMRegressor

    params: dict[str, Any] = {
        "n_estimators": 2000,
        "learning_rate": 0.02,
        "num_leaves": 8,
        "min_child_samples": 40,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.6,
        "reg_lambda": 5.0,
        "random_state": random_state,
        "n_jobs": 2,
        "verbose": -1,
    }
    params.update(overrides)
    cls = LGBMRegressor if task == "regression" else LGBMClassifier
    return cls(**params)


def _categorical_columns(X: Any) -> list[Any]:
    """Columns to encode: ``category``, text and bool columns of a DataFrame (none of an array)."""
    from ..data.schema import is_categorical_like

    if not isinstance(X, pd.DataFrame):
        return []
    return [c for c in X.columns if is_categorical_like(X[c])]


def _numeric_columns(X: Any) -> list[Any]:
    """Every other column (all columns of an array)."""
    from ..data.schema import is_categorical_like

    if not isinstance(X, pd.DataFrame):
        return list(range(X.shape[1]))
    return [c for c in X.columns if not is_categorical_like(X[c])]


def _check_task(task: str) -> None:
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"unknown task {task!r}; use 'binary', 'multiclass' or 'regression'")


def linear_preprocessor() -> Any:
    """One-hot categories (unseen ones ignored); numbers median-imputed with missing indicators, standardised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    return ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore"), _categorical_columns),
            ("numbers", numbers, _numeric_columns),
        ],
        verbose_feature_names_out=False,
    )


@renamed_params(seed="random_state")
def default_logreg(task: str = "binary", random_state: int = 0, C: float = 1.0, **overrides: Any) -> Any:
    """L2 logistic regression on one-hot and standardised features, as one scikit-learn pipeline.

    Categories (pandas ``category``, text, bool) are one-hot encoded, numbers median-imputed
    (plus a missing indicator) and standardised, so ``C`` (inverse regularisation strength)
    means the same for every column. A ``regression`` task gets ridge regression with
    ``alpha = 1 / C`` instead. ``overrides`` go to the final estimator.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}, default "binary"
        Logistic regression for classification, ridge for regression.
    random_state : int, default 0
        Seed of the solver.
    C : float, default 1.0
        Inverse regularisation strength (must be positive).
    **overrides
        Parameters of the final estimator.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted: ``features`` (:func:`linear_preprocessor`) then ``model``.

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> from workbench.features import build
    >>> from workbench.models import train_cv
    >>> df = load_telco()
    >>> X = build(df, target="Churn").fit_transform(df)
    >>> cv = train_cv(default_logreg("binary", C=1.0), X, df["Churn"], folds=3, progress=False)
    >>> round(cv.score, 2)
    0.84
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    _check_task(task)
    if not C > 0:
        raise ValueError(f"C must be a positive number (inverse regularisation strength), got {C!r}")
    if task == "regression":
        model = Ridge(alpha=1.0 / C, **overrides)
    else:
        model = LogisticRegression(**{"C": C, "max_iter": 2000, "random_state": random_state, **overrides})
    return Pipeline([("features", linear_preprocessor()), ("model", model)])


@renamed_params(seed="random_state")
def default_extratrees(task: str = "binary", random_state: int = 0, **overrides: Any) -> Any:
    """Extremely randomised trees on ordinal-coded categories and median-imputed numbers (a pipeline).

    300 trees with at least 20 rows per leaf and half the features per split: smooth probability
    estimates that differ from boosting's, which is what a stack wants. ``overrides`` go to
    ``ExtraTreesClassifier``/``ExtraTreesRegressor`` (``n_estimators``, ``min_samples_leaf``, ``n_jobs``...).

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}, default "binary"
        Picks the classifier or the regressor.
    random_state : int, default 0
        Seed of the trees.
    **overrides
        Parameters of the final estimator.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> from workbench.models import train_cv
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = default_extratrees("binary", random_state=0, n_estimators=50)
    >>> cv = train_cv(model, X, y, folds=3, progress=False)
    >>> round(cv.score, 2)
    0.84
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    _check_task(task)
    params: dict[str, Any] = {
        "n_estimators": 300,
        "min_samples_leaf": 20,
        "max_features": 0.5,
        "random_state": random_state,
        "n_jobs": 1,
    }
    params.update(overrides)
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    numbers = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    features = ColumnTransformer(
        [("codes", codes, _categorical_columns), ("numbers", numbers, _numeric_columns)],
        verbose_feature_names_out=False,
    )
    model = ExtraTreesRegressor(**params) if task == "regression" else ExtraTreesClassifier(**params)
    return Pipeline([("features", features), ("model", model)])


__all__ = ["MODEL_FAMILIES", "default_extratrees", "default_lgbm", "default_logreg", "linear_preprocessor"]
