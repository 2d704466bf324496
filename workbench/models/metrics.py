"""Evaluation metrics by name, with the task they apply to and their LightGBM equivalent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Metric:
    """A scoring function ``func(y_true, y_pred) -> float`` and whether higher is better.

    ``y_pred`` is what :func:`~workbench.models.train_cv` stores as out-of-fold predictions:
    the positive-class probability (binary), a probability matrix (multiclass) or values
    (regression). ``y_true`` is encoded: 0/1 for binary, class indices for multiclass.

    >>> from sklearn.metrics import matthews_corrcoef
    >>> mcc = Metric("mcc", lambda y, p: matthews_corrcoef(y, p > 0.5), greater_is_better=True)
    """

    name: str
    func: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool = True
    tasks: tuple[str, ...] = TASKS
    lightgbm: str | None = None  # LightGBM's built-in metric name, used for early stopping

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(self.func(y_true, y_pred))

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b``."""
        return a > b if self.greater_is_better else a < b


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if p.ndim == 2:
        return roc_auc_score(y, p, multi_class="ovr", labels=np.arange(p.shape[1]))
    return roc_auc_score(y, p)


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return log_loss(y, p, labels=np.arange(p.shape[1]) if p.ndim == 2 else [0, 1])


def _labels(p: np.ndarray) -> np.ndarray:
    return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(_labels(p) == y))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return f1_score(y, _labels(p), average="macro" if p.ndim == 2 else "binary")


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - p) ** 2)))


def _rmsle(y: np.ndarray, p: np.ndarray) -> float:
    if (np.asarray(y) < 0).any() or (p < 0).any():
        raise ValueError("rmsle needs non-negative targets and predictions; use rmse instead")
    return _rmse(np.log1p(y), np.log1p(p))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - p)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return r2_score(y, p)


_CLASSIFICATION = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", _auc, True, _CLASSIFICATION, "auc"),
        Metric("logloss", _logloss, False, _CLASSIFICATION, "logloss"),
        Metric("accuracy", _accuracy, True, _CLASSIFICATION, None),
        Metric("f1", _f1, True, _CLASSIFICATION, None),
        Metric("rmse", _rmse, False, ("regression",), "rmse"),
        Metric("rmsle", _rmsle, False, ("regression",), None),
        Metric("mae", _mae, False, ("regression",), "l1"),
        Metric("r2", _r2, True, ("regression",), None),
    )
}
_ALIASES = {
    "roc_auc": "auc",
    "log_loss": "logloss",
    "binary_logloss": "logloss",
    "multi_logloss": "logloss",
    "acc": "accuracy",
    "l2_root": "rmse",
    "l1": "mae",
}
DEFAULT_METRIC = {"binary": "auc", "multiclass": "logloss", "regression": "rmse"}
_LIGHTGBM_NAMES = {
    ("logloss", "binary"): "binary_logloss",
    ("logloss", "multiclass"): "multi_logloss",
    ("auc", "multiclass"): None,
}


def lightgbm_metric_name(metric: Metric, task: str) -> str | None:
    """LightGBM's name for ``metric`` on ``task``, or ``None`` when it has no built-in one."""
    return _LIGHTGBM_NAMES.get((metric.name, task), metric.lightgbm)


def get_metric(metric: str | Metric | Callable[..., float] | None, task: str) -> Metric:
    """Resolve a metric name (``"auc"``, ``"rmse"``, ...), a :class:`Metric` or a callable.

    A bare callable is taken as higher-is-better; wrap it in :class:`Metric` to say otherwise.

    Parameters
    ----------
    metric : str, Metric, callable or None
        A name from :data:`METRICS`, a :class:`Metric`, a ``f(y_true, y_pred)`` callable, or
        ``None`` for the task's default.
    task : {"binary", "multiclass", "regression"}
        The task the metric must support.

    Returns
    -------
    Metric

    Raises
    ------
    ValueError
        On an unknown name or a metric that does not fit ``task``.

    Examples
    --------
    >>> m = get_metric("auc", "binary")
    >>> m.name, m.greater_is_better
    ('auc', True)
    """
    if metric is None:
        metric = DEFAULT_METRIC[task]
    if isinstance(metric, Metric):
        resolved = metric
    elif isinstance(metric, str):
        key = _ALIASES.get(metric.lower(), metric.lower())
        if key not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)} or pass a Metric")
        resolved = METRICS[key]
    elif callable(metric):
        resolved = Metric(getattr(metric, "__name__", "custom"), metric, True)
    else:
        raise TypeError(f"metric must be a name, a Metric or a callable, got {type(metric).__name__}")
    if task not in resolved.tasks:
        valid = sorted(name for name, m in METRICS.items() if task in m.tasks)
        raise ValueError(f"metric {resolved.name!r} does not apply to a {task} target; for {task} use one of {valid}")
    return resolved


def infer_task(y: Sequence[Any] | np.ndarray | pd.Series, max_classes: int = 30) -> Task:
    """``binary`` for two distinct values, ``multiclass`` for up to ``max_classes`` labels,
    ``regression`` for a numeric target with non-integer values or more distinct values.

    Parameters
    ----------
    y : array-like
        The target.
    max_classes : int, default 30
        Most labels of a multiclass target.

    Returns
    -------
    {"binary", "multiclass", "regression"}

    Examples
    --------
    >>> infer_task([0, 1, 1, 0]), infer_task(["a", "b", "c"]), infer_task([0.5, 1.2, 3.0])
    ('binary', 'multiclass', 'regression')
    """
    arr = np.asarray(y)
    values = pd.unique(arr[~pd.isna(arr)]) if arr.dtype.kind in "fO" else np.unique(arr)
    n = len(values)
    if n <= 1:
        raise ValueError(f"the target has {n} distinct value(s); cross-validation needs at least two")
    if arr.dtype.kind in "fiu" and not isinstance(getattr(y, "dtype", None), pd.CategoricalDtype):
        integral = arr.dtype.kind in "iu" or bool(np.all(np.mod(values.astype(float), 1) == 0))
        if n == 2:
            return "binary"
        return "multiclass" if integral and n <= max_classes else "regression"
    return "binary" if n == 2 else "multiclass"
