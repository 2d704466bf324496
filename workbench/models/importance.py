"""Which inputs a cross-validated model leans on, for any of the model families: ``mean_importance``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import default_column_names
from .result import CVResult


def _final_step(model: Any) -> tuple[Any, Any]:
    """The last estimator of a pipeline and the steps before it (``None`` for a bare estimator)."""
    steps = getattr(model, "steps", None)
    if steps:
        head = model[:-1] if len(steps) > 1 else None
        return steps[-1][1], head
    return model, None


def _importance(estimator: Any) -> tuple[np.ndarray, str] | None:
    values = getattr(estimator, "feature_importances_", None)
    if values is not None:
        return np.asarray(values, dtype=np.float64), "impurity decrease"
    coef = getattr(estimator, "coef_", None)
    if coef is not None:
        coef = np.abs(np.asarray(coef, dtype=np.float64))
        return (coef.mean(axis=0) if coef.ndim == 2 else coef), "|coefficient|"
    return None


def mean_importance(result: CVResult) -> pd.Series:
    """Importance of each model input averaged over the fold models, largest first.

    LightGBM: split gain (``result.feature_importance``). Other estimators and pipelines: the
    final step's ``feature_importances_`` (trees: mean impurity decrease) or ``|coef_|`` (linear
    models, averaged over classes; comparable across inputs when they are standardised, as in
    :func:`~workbench.models.default_logreg`), named by the preceding steps'
    ``get_feature_names_out`` (e.g. one-hot columns ``Contract_Two year``). The Series name says
    which measure it is; empty when the model has none.

    Parameters
    ----------
    result : CVResult
        A result that holds its fold models (or LightGBM's ``feature_importance``).

    Returns
    -------
    pandas.Series
        One value per model input, largest first.

    Raises
    ------
    ValueError
        When the result holds no fold models.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> from workbench.models import train_cv
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> cv = train_cv(LGBMClassifier(n_estimators=50, verbose=-1), X, y, folds=3, progress=False)
    >>> mean_importance(cv).head(3).index.tolist()
    ['Contract', 'tenure', 'MonthlyCharges']
    """
    if result.feature_importance is not None:
        return result.feature_importance["mean"].sort_values(ascending=False).rename("gain")
    if not result.models:
        raise ValueError(
            f"this {result.estimator} result holds no fold models; load it with CVResult.load(path) "
            "(models=True) to read their importances"
        )
    per_fold, measure = [], ""
    for model in result.models:
        estimator, head = _final_step(model)
        found = _importance(estimator)
        if found is None:
            return pd.Series(dtype=np.float64, name="importance")
        values, measure = found
        fold_names = [str(n) for n in head.get_feature_names_out()] if head is not None else list(result.feature_names)
        if len(fold_names) != len(values):
            fold_names = default_column_names(len(values))
        per_fold.append(pd.Series(values, index=fold_names))
    # Folds may see different categories (one-hot columns): a column a fold lacks counts as 0 there.
    table = pd.concat(per_fold, axis=1).fillna(0.0)
    return table.mean(axis=1).sort_values(ascending=False, kind="stable").rename(measure)


__all__ = ["mean_importance"]
