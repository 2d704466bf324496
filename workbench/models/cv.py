"""Cross-validated training with out-of-fold predictions: ``train_cv``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..data.folds import FoldIds, fold_splits
from . import _estimators
from .metrics import Metric, get_metric, infer_task
from .result import CVResult


def _n_rows(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def take_rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame/Series (by position), array or sparse matrix."""
    if isinstance(X, pd.DataFrame | pd.Series):
        return X.iloc[idx]
    return X[idx]


def _feature_names(X: Any) -> list[str]:
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"f{i}" for i in range(X.shape[1])]


def _check_X_test(X: Any, X_test: Any) -> Any:
    if X_test is None:
        return None
    if isinstance(X, pd.DataFrame):
        if not isinstance(X_test, pd.DataFrame):
            raise ValueError(f"X is a DataFrame, so X_test must be one too (got {type(X_test).__name__})")
        missing = [c for c in X.columns if c not in X_test.columns]
        extra = [c for c in X_test.columns if c not in X.columns]
        if missing or extra:
            raise ValueError(
                f"X_test columns differ from X: missing from X_test {missing}, not in X {extra}; "
                "build both with the same feature pipeline"
            )
        return X_test[list(X.columns)]
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(f"X_test has {X_test.shape[1]} columns but X has {X.shape[1]}")
    return X_test


def _check_target(y: Any, n: int) -> np.ndarray:
    y_arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y_arr.shape}")
    if len(y_arr) != n:
        raise ValueError(f"X has {n} rows but y has {len(y_arr)}; they must describe the same rows")
    missing = pd.isna(y_arr)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"the target contains {rows.size} NaN value(s) (first rows: {rows[:5].tolist()}); "
            "drop those rows or fill the target before training"
        )
    return y_arr


def _slice_fit_params(fit_params: Mapping[str, Any], idx: np.ndarray, n: int) -> dict[str, Any]:
    """Per-row fit parameters (``sample_weight``, ``group``...) follow the fold's rows."""
    out = {}
    for key, value in fit_params.items():
        if hasattr(value, "__len__") and not isinstance(value, str | bytes | dict) and len(value) == n:
            out[key] = take_rows(value, idx) if isinstance(value, pd.Series) else np.asarray(value)[idx]
        else:
            out[key] = value
    return out


def _describe(estimator: Any) -> tuple[str, dict[str, Any]]:
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return type(estimator).__name__, params


def train_cv(
    estimator: Any,
    X: Any,
    y: Any,
    folds: Any,
    X_test: Any = None,
    metric: str | Metric | Callable[..., float] | None = None,
    early_stopping_rounds: int | None = None,
    fit_params: Mapping[str, Any] | None = None,
    task: str | None = None,
    groups: Any = None,
    progress: bool = True,
) -> CVResult:
    """Fit a clone of ``estimator`` per fold; return out-of-fold and fold-averaged test predictions.

    ``folds`` is one fold number per row (:func:`workbench.data.make_folds`), a scikit-learn
    splitter or ``(train_idx, val_idx)`` pairs; every row must be validated exactly once (time
    folds excepted). ``metric`` is a name from ``workbench.models.METRICS``, a :class:`Metric` or
    a callable; it defaults to AUC (binary), log loss (multiclass) or RMSE (regression).
    With ``early_stopping_rounds``, LightGBM/XGBoost/CatBoost stop on the validation fold by
    ``metric``. ``fit_params`` go to every ``fit``; per-row ones (e.g. ``sample_weight``) are sliced
    to the fold. LightGBM takes pandas ``category`` columns as they are.

    >>> from lightgbm import LGBMClassifier
    >>> df = load_telco(); X = df.drop(columns=["customerID", "Churn"])
    >>> cv = train_cv(LGBMClassifier(verbose=-1), X, df["Churn"], make_folds(df["Churn"]), metric="auc")
    >>> cv.score, cv.oof[:3]
    """
    from sklearn.base import clone
    from tqdm.auto import tqdm

    n = _n_rows(X)
    y_arr = _check_target(y, n)
    X_test = _check_X_test(X, X_test)
    task = task or infer_task(y_arr)
    metric_ = get_metric(metric, task)
    classes = np.unique(y_arr) if task != "regression" else None
    if task == "binary" and classes is not None and len(classes) != 2:
        raise ValueError(f"task='binary' needs exactly two classes, the target has {len(classes)}")
    # Classifiers learn class indices: every library accepts them, and fold models agree on order.
    y_enc = np.searchsorted(classes, y_arr) if classes is not None else y_arr.astype(np.float64)
    n_classes = 0 if classes is None else len(classes)
    splits, fold_of_row = fold_splits(folds, n, X, y_arr, groups)

    oof_shape = (n, len(classes)) if task == "multiclass" else (n,)
    oof = np.full(oof_shape, np.nan, dtype=np.float64)
    test_preds: list[np.ndarray] = []
    models, scores, timings, importances = [], [], [], []
    bar = tqdm(splits, desc=f"train_cv {type(estimator).__name__}", unit="fold", disable=not progress, leave=False)
    for k, (train_idx, val_idx) in enumerate(bar):
        model = clone(estimator)
        X_tr, X_val = take_rows(X, train_idx), take_rows(X, val_idx)
        y_tr, y_val = y_enc[train_idx], y_enc[val_idx]
        kwargs = _slice_fit_params(fit_params or {}, train_idx, n)
        kwargs.update(_estimators.prepare_fit(model, X_val, y_val, metric_, task, early_stopping_rounds))
        start = time.perf_counter()
        model.fit(X_tr, y_tr, **kwargs)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        oof[val_idx] = _estimators.predict(model, X_val, task, n_classes)
        if X_test is not None:
            test_preds.append(_estimators.predict(model, X_test, task, n_classes))
        predict_s = time.perf_counter() - start
        score = metric_(y_enc[val_idx], oof[val_idx])
        scores.append(score)
        models.append(model)
        timings.append({"fold": k, "n_train": len(train_idx), "n_val": len(val_idx), "fit_s": fit_s,
                        "predict_s": predict_s, "best_iteration": _estimators.best_iteration(model)})  # fmt: skip
        gain = _estimators.gain_importance(model)
        if gain is not None:
            importances.append(gain)
        bar.set_postfix({metric_.name: f"{score:.4f}"})
    bar.close()

    validated = fold_of_row >= 0
    overall = metric_(y_enc[validated], oof[validated])
    names = _feature_names(X)
    feature_importance = None
    if importances:
        fi = pd.DataFrame(np.column_stack(importances), index=pd.Index(names, name="feature"),
                          columns=[f"fold_{k}" for k in range(len(importances))])  # fmt: skip
        fi["mean"] = fi.mean(axis=1)
        fi["std"] = fi.iloc[:, : len(importances)].std(axis=1, ddof=0)
        feature_importance = fi.sort_values("mean", ascending=False)
    name, params = _describe(estimator)

    return CVResult(
        oof=oof,
        test_pred=np.mean(test_preds, axis=0) if test_preds else None,
        models=models,
        fold_scores=scores,
        score=overall,
        metric=metric_.name,
        greater_is_better=metric_.greater_is_better,
        task=task,
        classes=None if classes is None else classes.tolist(),
        folds=FoldIds(fold_of_row, getattr(folds, "kind", "kfold")),
        feature_names=names,
        timings=pd.DataFrame(timings),
        feature_importance=feature_importance,
        estimator=name,
        params=params,
    )
