"""Each tree library's own TreeSHAP, as ``(n, outputs, features + 1)`` arrays (last column: the base).

LightGBM: ``predict(pred_contrib=True)``; XGBoost: ``Booster.predict(pred_contribs=True)`` (and
``pred_interactions``) on the iterations ``predict`` uses; CatBoost:
``get_feature_importance(type="ShapValues")`` (and ``"ShapInteractionValues"``). All are on the
raw scale (log-odds, margins) and add up to the raw prediction. :func:`native_engine` names the
library's method, or None when the model has none (shap's ``TreeExplainer`` is used then).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ENGINES = {
    "lightgbm": "LightGBM pred_contrib",
    "xgboost": "XGBoost pred_contribs",
    "catboost": "CatBoost ShapValues",
}


def library(model: Any) -> str:
    return type(model).__module__.split(".")[0]


def native_engine(model: Any) -> str | None:
    """The library's TreeSHAP for ``model`` (e.g. ``"XGBoost pred_contribs"``), or None."""
    lib = library(model)
    if lib == "xgboost" and not (hasattr(model, "get_booster") or type(model).__name__ == "Booster"):
        return None
    return _ENGINES.get(lib)


def _blocks(values: Any, n: int, width: int, interactions: bool) -> np.ndarray:
    """Contributions as ``(n, outputs, width[, width])`` float64."""
    arr = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    shape = (n, -1, width, width) if interactions else (n, -1, width)
    return arr.reshape(shape)


def _xgboost(model: Any, data: Any, interactions: bool) -> np.ndarray:
    import xgboost as xgb

    booster = model.get_booster() if hasattr(model, "get_booster") else model
    missing = getattr(model, "missing", np.nan)
    matrix = xgb.DMatrix(data, missing=missing, enable_categorical=True, feature_names=booster.feature_names)
    best = getattr(model, "best_iteration", None) if hasattr(model, "get_booster") else None
    iterations = (0, best + 1) if best is not None else (0, 0)
    key = "pred_interactions" if interactions else "pred_contribs"
    return booster.predict(matrix, iteration_range=iterations, **{key: True})


def _catboost(model: Any, data: Any, interactions: bool) -> np.ndarray:
    from catboost import Pool

    pool = data if isinstance(data, Pool) else Pool(data, cat_features=model.get_cat_feature_indices())
    kind = "ShapInteractionValues" if interactions else "ShapValues"
    return model.get_feature_importance(pool, type=kind)


def contributions(model: Any, data: Any, n_features: int, interactions: bool = False) -> np.ndarray:
    """The library's SHAP values ``(n, outputs, features + 1)``, or interaction values
    ``(n, outputs, features + 1, features + 1)`` (XGBoost, CatBoost), the base value last."""
    lib = library(model)
    n = len(data)
    if lib == "lightgbm" and not interactions:
        raw = model.predict(data, pred_contrib=True)
    elif lib == "xgboost":
        raw = _xgboost(model, data, interactions)
    elif lib == "catboost":
        raw = _catboost(model, data, interactions)
    else:
        raise ValueError(f"{type(model).__name__} has no native TreeSHAP here")
    return _blocks(raw, n, n_features + 1, interactions)
