"""Per-library fitting details: early stopping, prediction, importance."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import Metric, lightgbm_metric_name


def family(estimator: Any) -> str:
    """``lightgbm``, ``xgboost``, ``catboost`` or ``sklearn``, judged by the library that defines
    the class or one of its bases (so subclasses of ``LGBMClassifier`` count as LightGBM)."""
    for cls in type(estimator).__mro__:
        module = cls.__module__.split(".")[0]
        if module in ("lightgbm", "xgboost", "catboost"):
            return module
    return "sklearn"


def _lightgbm_feval(metric: Metric, task: str, classes: int):
    def feval(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[str, float, bool]:
        pred = y_pred.reshape(len(y_true), -1) if task == "multiclass" else y_pred
        return (
            metric.name,
            metric(np.asarray(y_true, int) if task != "regression" else y_true, pred),
            metric.greater_is_better,
        )

    return feval


def prepare_fit(
    estimator: Any,
    X_val: Any,
    y_val: np.ndarray,
    metric: Metric,
    task: str,
    early_stopping_rounds: int | None,
) -> dict[str, Any]:
    """Configure ``estimator`` (a fresh clone) for early stopping on the validation fold.

    Returns the extra keyword arguments for ``fit``.
    """
    if not early_stopping_rounds:
        return {}
    kind = family(estimator)
    if kind == "lightgbm":
        import lightgbm as lgb

        name = lightgbm_metric_name(metric, task)
        if name is None:
            estimator.set_params(metric="None")
            eval_metric: Any = _lightgbm_feval(metric, task, 0)
        else:
            eval_metric = name
        import inspect

        # LightGBM >= 4.7 names the validation data eval_X/eval_y and deprecates eval_set.
        if "eval_X" in inspect.signature(type(estimator).fit).parameters:
            eval_data: dict[str, Any] = {"eval_X": (X_val,), "eval_y": (y_val,)}
        else:
            eval_data = {"eval_set": [(X_val, y_val)]}
        return {
            **eval_data,
            "eval_metric": eval_metric,
            "callbacks": [lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)],
        }
    if kind == "xgboost":
        estimator.set_params(early_stopping_rounds=early_stopping_rounds)
        return {"eval_set": [(X_val, y_val)], "verbose": False}
    if kind == "catboost":
        return {"eval_set": (X_val, y_val), "early_stopping_rounds": early_stopping_rounds, "verbose": False}
    raise ValueError(
        f"early_stopping_rounds works with LightGBM, XGBoost and CatBoost estimators, not {type(estimator).__name__}; "
        "set early_stopping_rounds=None (or use the estimator's own option, e.g. n_iter_no_change)"
    )


def best_iteration(model: Any) -> int | None:
    for attr in ("best_iteration_", "best_iteration"):
        value = getattr(model, attr, None)
        if isinstance(value, (int, np.integer)) and value > 0:
            return int(value)
    return None


def predict(model: Any, X: Any, task: str, n_classes: int = 0) -> np.ndarray:
    """Binary: probability of class 1; multiclass: ``(n, n_classes)`` probabilities (a class
    missing from a fold's training rows gets 0); regression: values.

    Classifiers are fitted on class indices ``0..n_classes-1`` (see ``train_cv``).
    Without ``predict_proba`` they fall back to ``decision_function`` (fine for AUC).
    """
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    if hasattr(model, "predict_proba"):
        scores = np.asarray(model.predict_proba(X), dtype=np.float64)
    else:
        scores = np.asarray(model.decision_function(X), dtype=np.float64)
        if task == "binary":
            return scores.ravel()
    model_classes = np.asarray(getattr(model, "classes_", np.arange(scores.shape[1])), dtype=np.int64)
    if task == "binary":
        hit = np.flatnonzero(model_classes == 1)
        return scores[:, hit[0]] if hit.size else np.zeros(len(scores))
    out = np.zeros((scores.shape[0], n_classes), dtype=np.float64)
    out[:, model_classes] = scores
    return out


def gain_importance(model: Any) -> np.ndarray | None:
    """Total split gain per feature for LightGBM models, ``None`` for others."""
    if family(model) != "lightgbm":
        return None
    return np.asarray(model.booster_.feature_importance(importance_type="gain"), dtype=np.float64)
