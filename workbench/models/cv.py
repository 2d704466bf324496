"""Cross-validated training with out-of-fold predictions: ``train_cv``.

Besides :func:`train_cv`, this module publishes the fold-run machinery the packages above
``models`` build on (an internal API, kept stable within the workbench): :class:`CVRun` (one
model's folds, fitted in any order), :class:`FoldOutput`, and the input checks
:func:`check_target`, :func:`check_X_test`, :func:`slice_fit_params` and :func:`describe_estimator`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.folds import FoldIds, as_folds, fold_splits
from ..data.validation import Interval, Options, check_X_y, column_names, effective_n_jobs, n_rows, validate_params
from . import _estimators
from .metrics import TASKS, Metric, get_metric, infer_task
from .result import CVResult
from .trial import in_trial, report


def take_rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame/Series (by position), array or sparse matrix."""
    if isinstance(X, pd.DataFrame | pd.Series):
        return X.iloc[idx]
    return X[idx]


def check_X_test(X: Any, X_test: Any) -> Any:
    """``X_test`` with the columns of ``X`` in their order (``None`` stays ``None``); an error if they differ."""
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


def check_target(y: Any, n: int) -> np.ndarray:
    """``y`` as a 1-D array of ``n`` values without NaN; an error naming the problem otherwise."""
    y_arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y_arr.shape}")
    check_X_y(n, y_arr)
    missing = pd.isna(y_arr)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"the target contains {rows.size} NaN value(s) (first rows: {rows[:5].tolist()}); "
            "drop those rows or fill the target before training"
        )
    return y_arr


def slice_fit_params(fit_params: Mapping[str, Any], idx: np.ndarray, n: int) -> dict[str, Any]:
    """Per-row fit parameters (``sample_weight``, ``group``...) follow the fold's rows."""
    out = {}
    for key, value in fit_params.items():
        if hasattr(value, "__len__") and not isinstance(value, str | bytes | dict) and len(value) == n:
            out[key] = take_rows(value, idx) if isinstance(value, pd.Series) else np.asarray(value)[idx]
        else:
            out[key] = value
    return out


def describe_estimator(estimator: Any) -> tuple[str, dict[str, Any]]:
    """The estimator's class name and its own (not nested) parameters."""
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return type(estimator).__name__, params


@dataclass
class FoldOutput:
    """What one fold's fit leaves: its model, validation and test predictions, score and timings."""

    model: Any
    val_pred: np.ndarray
    test_pred: np.ndarray | None
    score: float
    timing: dict[str, Any]
    gain: np.ndarray | None


class CVRun:
    """``train_cv`` in two parts: independent fold fits and the assembly of their outputs.

    ``folds`` here is already a fold description :func:`~workbench.data.fold_splits` reads
    (turn an int into folds with :func:`~workbench.data.as_folds` first).

    Checking the inputs happens once, in the constructor. :meth:`fit_fold` reads shared inputs
    only and fits its own clone, so folds may run in any order or side by side (the stack runs
    folds of several models in threads); :meth:`result` needs every fold's output, in fold order,
    and gives exactly what fitting the folds one after another gives.
    """

    def __init__(
        self,
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
    ) -> None:
        self.estimator, self.X, self.folds = estimator, X, folds
        self.n = n = n_rows(X)
        y_arr = check_target(y, n)
        self.X_test = check_X_test(X, X_test)
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

    def fit_fold(self, k: int) -> FoldOutput:
        """Fit a fresh clone on fold ``k``'s training rows; predict its validation rows and the test set."""
        from sklearn.base import clone

        train_idx, val_idx = self.splits[k]
        model = clone(self.estimator)
        X_tr, X_val = take_rows(self.X, train_idx), take_rows(self.X, val_idx)
        y_tr, y_val = self.y_enc[train_idx], self.y_enc[val_idx]
        kwargs = slice_fit_params(self.fit_params, train_idx, self.n)
        kwargs.update(_estimators.prepare_fit(model, X_val, y_val, self.metric, self.task, self.early_stopping_rounds))
        start = time.perf_counter()
        model.fit(X_tr, y_tr, **kwargs)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        val_pred = _estimators.predict(model, X_val, self.task, self.n_classes)
        test_pred = None if self.X_test is None else _estimators.predict(model, self.X_test, self.task, self.n_classes)
        predict_s = time.perf_counter() - start
        timing = {
            "fold": k,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "fit_s": fit_s,
            "predict_s": predict_s,
            "best_iteration": _estimators.best_iteration(model),
        }
        return FoldOutput(
            model=model,
            val_pred=val_pred,
            test_pred=test_pred,
            score=self.metric(y_val, val_pred),
            timing=timing,
            gain=_estimators.gain_importance(model),
        )

    def empty_oof(self) -> np.ndarray:
        """An out-of-fold prediction array of NaN (rows × classes for multiclass)."""
        shape = (self.n, self.n_classes) if self.task == "multiclass" else (self.n,)
        return np.full(shape, np.nan, dtype=np.float64)

    def score_through(self, k: int, oof: np.ndarray) -> float:
        """The metric on the out-of-fold predictions of folds ``0..k`` pooled, as :meth:`result` pools
        every fold's: after the last fold it is the result's ``score``. ``oof`` needs those folds' rows only."""
        rows = (self.fold_of_row >= 0) & (self.fold_of_row <= k)
        return float(self.metric(self.y_enc[rows], oof[rows]))

    def result(self, outputs: list[FoldOutput]) -> CVResult:
        """The :class:`CVResult` of all folds (``outputs[k]`` from ``fit_fold(k)``)."""
        if len(outputs) != self.n_splits:
            raise ValueError(f"result() needs the outputs of all {self.n_splits} folds, got {len(outputs)}")
        task, metric_ = self.task, self.metric
        oof = self.empty_oof()
        for (_, val_idx), out in zip(self.splits, outputs):
            oof[val_idx] = out.val_pred
        importances = [out.gain for out in outputs if out.gain is not None]
        test_preds = [out.test_pred for out in outputs if out.test_pred is not None]

        validated = self.fold_of_row >= 0
        overall = metric_(self.y_enc[validated], oof[validated])
        names = column_names(self.X)
        feature_importance = None
        if importances:
            fi = pd.DataFrame(
                np.column_stack(importances),
                index=pd.Index(names, name="feature"),
                columns=[f"fold_{k}" for k in range(len(importances))],
            )
            fi["mean"] = fi.mean(axis=1)
            fi["std"] = fi.iloc[:, : len(importances)].std(axis=1, ddof=0)
            feature_importance = fi.sort_values("mean", ascending=False)
        name, params = describe_estimator(self.estimator)

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


@validate_params(
    {
        "folds": ["folds"],
        "early_stopping_rounds": [Interval(int, 1, None), None],
        "task": [Options(TASKS), None],
        "progress": ["boolean"],
        "n_jobs": ["n_jobs"],
        "random_state": ["random_state"],
    }
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
    n_jobs: int | None = None,
    random_state: int = 0,
) -> CVResult:
    """Fit a clone of ``estimator`` per fold; return out-of-fold and fold-averaged test predictions.

    Inside a tuning trial (:func:`~workbench.models.tune`, a notebook that ``workbench tune`` runs)
    it reports after each fold ``k`` the score of the out-of-fold predictions of folds ``0..k``
    (:func:`~workbench.models.trial.report`), so the pruner can stop a hopeless trial; after the
    last fold the score is recorded without asking the pruner.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
        Cloned and fitted once per fold.
    X : DataFrame, array or sparse matrix
        The features; LightGBM takes pandas ``category`` columns as they are.
    y : array-like
        The target, one value per row of ``X``.
    folds : int, fold numbers per row, splitter or (train_idx, val_idx) pairs
        An int makes that many folds (group folds with ``groups``, plain K-fold for regression,
        stratified otherwise; seeded by ``random_state``); fold numbers come from
        :func:`workbench.data.make_folds`. Every row must be validated exactly once (time folds
        excepted).
    X_test : same kind as ``X``, optional
        Predicted by every fold model; ``test_pred`` is their average.
    metric : str, Metric or callable, optional
        A name from ``workbench.models.METRICS``, a :class:`Metric` or a callable; defaults to
        AUC (binary), log loss (multiclass) or RMSE (regression).
    early_stopping_rounds : int, optional
        LightGBM/XGBoost/CatBoost stop on the validation fold by ``metric``.
    fit_params : mapping, optional
        Go to every ``fit``; per-row ones (e.g. ``sample_weight``) are sliced to the fold.
    task : {"binary", "multiclass", "regression"}, optional
        Inferred from ``y`` when not given.
    groups : array-like, optional
        Row groups, for group folds and group splitters.
    progress : bool, default True
        Show a progress bar over the folds.
    n_jobs : int, optional
        Folds fitted side by side in threads, as joblib reads it (``None``: one, ``-1``: every
        core); the result is bit for bit that of ``n_jobs=1``.
    random_state : int, default 0
        Seed of the folds made when ``folds`` is an int.

    Returns
    -------
    CVResult
        Out-of-fold and test predictions, fold models, scores and timings.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.data import make_folds
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=50, verbose=-1)
    >>> cv = train_cv(model, X, y, make_folds(y, n_splits=3), metric="auc", progress=False)
    >>> cv
    CVResult(LGBMClassifier, auc=0.8395... ± 0.003..., 3 folds, task=binary)
    >>> round(cv.score, 3), cv.oof[:3].round(2)
    (0.84, array([0.8 , 0.03, 0.24]))
    """
    from tqdm.auto import tqdm

    workers = effective_n_jobs(n_jobs, "train_cv()")
    if isinstance(folds, int | np.integer):
        y_arr = check_target(y, n_rows(X))
        folds = as_folds(folds, y_arr, groups=groups, random_state=random_state, task=task or infer_task(y_arr))
    run = CVRun(
        estimator,
        X,
        y,
        folds,
        X_test=X_test,
        metric=metric,
        early_stopping_rounds=early_stopping_rounds,
        fit_params=fit_params,
        task=task,
        groups=groups,
    )
    if workers > 1 and run.n_splits > 1:
        return _fit_side_by_side(run, min(workers, run.n_splits), progress)
    outputs: list[FoldOutput] = []
    oof = run.empty_oof() if in_trial() else None
    bar = tqdm(
        range(run.n_splits), desc=f"train_cv {type(estimator).__name__}", unit="fold", disable=not progress, leave=False
    )
    for k in bar:
        outputs.append(run.fit_fold(k))
        bar.set_postfix({run.metric.name: f"{outputs[-1].score:.4f}"})
        if oof is not None:  # a tuning trial: the score so far, for the pruner to stop a hopeless trial
            oof[run.splits[k][1]] = outputs[-1].val_pred
            report(k, run.score_through(k, oof), prune=k < run.n_splits - 1)  # the last fold's work is done
    bar.close()
    return run.result(outputs)


def _fit_side_by_side(run: CVRun, workers: int, progress: bool) -> CVResult:
    """The folds of ``run`` on ``workers`` threads (each fold's estimator limited to its share of the cores)."""
    from tqdm.auto import tqdm

    from .parallel import fit_side_by_side, limit_threads, thread_share

    given = run.estimator
    run.estimator = limit_threads(given, thread_share(workers))
    results: list[CVResult] = []
    bar = tqdm(
        total=run.n_splits, desc=f"train_cv {type(given).__name__}", unit="fold", disable=not progress, leave=False
    )

    label = type(given).__name__

    def folds_done(in_progress: dict[str, tuple[int, int]], waiting: int) -> None:
        done = in_progress.get(label, (run.n_splits, run.n_splits))[0]
        bar.update(done - bar.n)

    try:
        fit_side_by_side([(label, run)], workers, lambda j, result, seconds: results.append(result), folds_done)
    finally:
        bar.close()
        run.estimator = given
    result = results[0]
    result.params = describe_estimator(given)[1]  # the model as given, not its thread share
    if in_trial():  # every fold is fitted already: record the scores so far, nothing is left to prune
        for k in range(run.n_splits):
            report(k, run.score_through(k, result.oof), prune=False)
    return result
