"""Level-2 models for stacking probability (or value) predictions: ``meta_model``.

A stack's upper level sees the out-of-fold predictions of the level below as columns named
``level<k>/<model>``; with ``restack=True`` the original features come along. The linear meta
model works on the log-odds of the predicted probabilities, where a weighted sum is the natural
way to pool classifiers (probabilities near 0 and 1 are not squashed together).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import renamed_params

META_MODELS: tuple[str, ...] = ("logreg", "lgbm")
_MEMBER = re.compile(r"^level\d+/")
_EPS = 1e-6


def _member_columns(X: Any) -> list[Any]:
    """Prediction columns of the level below (all columns of an array)."""
    if not isinstance(X, pd.DataFrame):
        return list(range(X.shape[1]))
    return [c for c in X.columns if _MEMBER.match(str(c))]


def _feature_columns(X: Any) -> list[Any]:
    """Original features passed up with ``restack=True`` (none of an array)."""
    if not isinstance(X, pd.DataFrame):
        return []
    return [c for c in X.columns if not _MEMBER.match(str(c))]


def log_odds(P: Any) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities, clipped to [1e-6, 1 - 1e-6] so 0 and 1 stay finite."""
    from scipy.special import logit

    return logit(np.clip(np.asarray(P, dtype=np.float64), _EPS, 1.0 - _EPS))


@renamed_params(seed="random_state")
def meta_model(kind: str = "logreg", task: str = "binary", random_state: int = 0, C: float = 1.0) -> Any:
    """An unfitted level-2 model for :class:`~workbench.stacking.Stack`.

    - ``"logreg"``: logistic regression (L2, inverse strength ``C``) on the log-odds of the
      members' probabilities; a regression target gets ridge regression (``alpha = 1 / C``) on
      the predicted values. Original features (``restack=True``) are one-hot encoded and
      standardised as in :func:`~workbench.models.default_logreg`.
    - ``"lgbm"``: a small LightGBM (100 trees of 4 leaves, at least 100 rows per leaf) that can
      model interactions, also with original features; it needs many more rows than the linear
      model to pay off (on Telco's 5,000 rows the linear meta model scores higher).

    Parameters
    ----------
    kind : {"logreg", "lgbm"}, default "logreg"
        The model, as above.
    task : {"binary", "multiclass", "regression"}, default "binary"
        The task of the stack.
    random_state : int, default 0
        Seed of the model.
    C : float, default 1.0
        Inverse regularisation strength of ``"logreg"``.

    Returns
    -------
    estimator
        Unfitted scikit-learn compatible estimator.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> from workbench.features import build
    >>> from workbench.models import default_logreg
    >>> from workbench.stacking import Stack
    >>> df = load_telco()
    >>> X, y = build(df, target="Churn").fit_transform(df), df["Churn"]
    >>> members = [("lgbm", LGBMClassifier(n_estimators=50, verbose=-1)), ("logreg", default_logreg())]
    >>> Stack([members, [("meta", meta_model("logreg", "binary"))]], folds=3, progress=False).fit(X, y)
    Stack(2 → 1 models, auc=0.84...)
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from ..models.presets import default_lgbm, linear_preprocessor

    if kind not in META_MODELS:
        raise ValueError(f"unknown meta model {kind!r}; choose one of {META_MODELS}")
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"unknown task {task!r}; use 'binary', 'multiclass' or 'regression'")
    if kind == "lgbm":
        return default_lgbm(
            task,
            random_state=random_state,
            n_estimators=100,
            learning_rate=0.05,
            num_leaves=4,
            min_child_samples=100,
            colsample_bytree=1.0,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
        )
    if not C > 0:
        raise ValueError(f"C must be a positive number (inverse regularisation strength), got {C!r}")
    members = FunctionTransformer(None if task == "regression" else log_odds, feature_names_out="one-to-one")
    inputs = ColumnTransformer(
        [("members", members, _member_columns), ("features", linear_preprocessor(), _feature_columns)],
        verbose_feature_names_out=False,
    )
    model = (
        Ridge(alpha=1.0 / C)
        if task == "regression"
        else LogisticRegression(C=C, max_iter=2000, random_state=random_state)
    )
    return Pipeline([("inputs", inputs), ("model", model)])


__all__ = ["META_MODELS", "log_odds", "meta_model"]
