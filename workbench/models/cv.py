"""Cross-validated training with out-of-fold predictions: ``train_cv``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass
class _FoldOutput:
    """What one fold's fit leaves: its model, validation and test predictions, score and timings."""

    model: Any
    val_pred: np.ndarray
    test_pred: np.ndarray | None
    score: float
    timing: dict[str, Any]
    gain: np.ndarray | None


class _CVRun:
    """``train_cv`` in two parts: independent fold fits and the assembly of their outputs.

    Checking the inputs happens once, in the constructor. :meth:`fit_fold` reads shared inputs
    only and fits its own clone, so folds may run in any order or side by side (the stack runs
    folds of several models in threads); :meth:`result` needs every fold's output, in fold order,
    and gives exactly what fitting the folds one after another gives.
    """

    def __init__(self, estimator: Any, X: Any, y: Any, folds: Any, X_test: Any = None,
                 metric: str | Metric | Callable[..., float] | None = None, early_stopping_rounds: int | None = None,
                 fit_params: Mapping[str, Any] | None = None, task: str | None = None, groups: Any = None) -> None:  # fmt: skip
        self.estimator, self.X, self.folds = estimator, X, folds
        self.n = n = _n_rows(X)
        y_arr = _check_target(y, n)
        self.X_test = _check_X_test(X, X_test)
        self.task = task = task or infer_task(y_arr)
        self.metric = get_metric(metric, task)
        classes = np.unique(y_arr) if task != "regression" else None
        if task == "binary" and classes is not None and len(classes) != 2:
            raise ValueError(f"task='binary' needs exactly two classes, the target has {len(classes)}")
        self.classes = classes
        # Classifiers learn class indices: every library accepts them, and fold models agree on order.
        self.y_enc = np.searchsorted(classes, y_arr) if classes is not None else y_arr.astype(np.float64)
        self.n_classes = 0 if classes is None else len(classes)
        self.splits, self.fold_of_row = fold_splits(folds, n, X, y_arr, groups)
        self.early_stopping_rounds = early_stopping_rounds
        self.fit_params = fit_params or {}

    @property
    def n_splits(self) -> int:
        return len(self.splits)

    def fit_fold(self, k: int) -> _FoldOutput:
        """Fit a fresh clone on fold ``k``'s training rows; predict its validation rows and the test set."""
        from sklearn.base import clone

        train_idx, val_idx = self.splits[k]
        model = clone(self.estimator)
        X_tr, X_val = take_rows(self.X, train_idx), take_rows(self.X, val_idx)
        y_tr, y_val = self.y_enc[train_idx], self.y_enc[val_idx]
        kwargs = _slice_fit_params(self.fit_params, train_idx, self.n)
        kwargs.update(_estimators.prepare_fit(model, X_val, y_val, self.metric, self.task, self.early_stopping_rounds))
        start = time.perf_counter()
        model.fit(X_tr, y_tr, **kwargs)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        val_pred = _estimators.predict(model, X_val, self.task, self.n_classes)
        test_pred = None if self.X_test is None else _estimators.predict(model, self.X_test, self.task, self.n_classes)
        predict_s = time.perf_counter() - start
        timing = {"fold": k, "n_train": len(train_idx), "n_val": len(val_idx), "fit_s": fit_s,
                  "predict_s": predict_s, "best_iteration": _estimators.best_iteration(model)}  # fmt: skip
        return _FoldOutput(model=model, val_pred=val_pred, test_pred=test_pred, score=self.metric(y_val, val_pred),
                           timing=timing, gain=_estimators.gain_importance(model))  # fmt: skip

    def result(self, outputs: list[_FoldOutput]) -> CVResult:
        """The :class:`CVResult` of all folds (``outputs[k]`` from ``fit_fold(k)``)."""
        if len(outputs) != self.n_splits:
            raise ValueError(f"result() needs the outputs of all {self.n_splits} folds, got {len(outputs)}")
        task, metric_ = self.task, self.metric
        oof_shape = (self.n, self.n_classes) if task == "multiclass" else (self.n,)
        oof = np.full(oof_shape, np.nan, dtype=np.float64)
        for (_, val_idx), out in zip(self.splits, outputs):
            oof[val_idx] = out.val_pred
        importances = [out.gain for out in outputs if out.gain is not None]
        test_preds = [out.test_pred for out in outputs if out.test_pred is not None]

        validated = self.fold_of_row >= 0
        overall = metric_(self.y_enc[validated], oof[validated])
        names = _feature_names(self.X)
        feature_importance = None
        if importances:
            fi = pd.DataFrame(np.column_stack(importances), index=pd.Index(names, name="feature"),
                              columns=[f"fold_{k}" for k in range(len(importances))])  # fmt: skip
            fi["mean"] = fi.mean(axis=1)
            fi["std"] = fi.iloc[:, : len(importances)].std(axis=1, ddof=0)
            feature_importance = fi.sort_values("mean", ascending=False)
        name, params = _describe(self.estimator)

        return CVResult(
            oof=oof,
            test_pred=np.mean(test_preds, axis=0) if test_preds else None,
            models=[out.model for out in outputs],
            fold_scores=[out.score for out in outputs],
            score=overall,
            metric=metric_.name,
            greater_is_better=metric_.greater_is_better,
            task=task,
            classes=None if self.classes is None else self.classes.tolist(),
            folds=FoldIds(self.fold_of_row, getattr(self.folds, "kind", "kfold")),
            feature_names=names,
            timings=pd.DataFrame([out.timing for out in outputs]),
            feature_importance=feature_importance,
            estimator=name,
            params=params,
        )


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
    from tqdm.auto import tqdm

    run = _CVRun(estimator, X, y, folds, X_test=X_test, metric=metric, early_stopping_rounds=early_stopping_rounds,
                 fit_params=fit_params, task=task, groups=groups)  # fmt: skip
    outputs: list[_FoldOutput] = []
    bar = tqdm(range(run.n_splits), desc=f"train_cv {type(estimator).__name__}", unit="fold", disable=not progress,
               leave=False)  # fmt: skip
    for k in bar:
        outputs.append(run.fit_fold(k))
        bar.set_postfix({run.metric.name: f"{outputs[-1].score:.4f}"})
    bar.close()
    return run.result(outputs)
