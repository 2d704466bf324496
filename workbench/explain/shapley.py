"""SHAP values for tree models: ``shap_values``.

LightGBM, XGBoost and CatBoost models use their library's own TreeSHAP
(:mod:`workbench.explain._native_shap`: ``pred_contrib``, ``pred_contribs``, ``ShapValues``; the
numbers shap's ``TreeExplainer`` returns for them) and, for LightGBM's interaction values, the
compiled TreeSHAP of :mod:`workbench.explain._treeshap` (which, unlike shap's, follows LightGBM's
categorical splits); scikit-learn's tree models go through ``shap.TreeExplainer``.
``ShapValues.engine`` names the one used. Values are on the raw scale (log-odds for
classifiers), where they add up exactly: ``base_value + values.sum(axis=1)`` is the raw score.
Large data is subsampled (seeded) to ``max_rows`` and the result says so. Interaction values are
opt-in; their memory (rows × features² × 8 bytes) is checked before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind
from ..data.validation import Interval, validate_params, warn_renamed
from . import _inputs
from .model_info import ModelInfo, describe, resolve_class

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_MAX_ROWS = 5_000
DEFAULT_MAX_MEMORY = 1 << 30


@dataclass
class ShapValues(Result):
    """SHAP values of the explained rows: ``values[i, j]`` is feature ``j``'s push on row ``i``.

    ``data`` holds the explained rows (a subsample of ``n_total`` when the input was larger;
    ``rows`` are their positions in it). ``base_value + values[i].sum()`` is row ``i``'s raw
    score. ``interactions`` (opt-in) is ``(n, features, features)``, its rows summing to ``values``.
    ``to_frame()`` has the values, ``plot(kind=...)`` draws a beeswarm, bar, dependence or waterfall.
    """

    values: np.ndarray
    base_value: float
    data: pd.DataFrame
    rows: np.ndarray
    n_total: int
    target: str
    engine: str
    interactions: np.ndarray | None = None
    random_state: int | None = 0

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.data.columns]

    @property
    def sampled(self) -> bool:
        return len(self.rows) < self.n_total

    @property
    def sample_note(self) -> str:
        """Which rows are explained, e.g. ``"SHAP values for 5,000 of 50,000 rows (random sample, seed 0)"``."""
        if not self.sampled:
            return f"SHAP values for all {self.n_total:,} rows"
        return f"SHAP values for {len(self.rows):,} of {self.n_total:,} rows (random sample, seed {self.random_state})"

    def to_frame(self) -> pd.DataFrame:
        """The values as a DataFrame indexed like the explained rows, one column per feature."""
        return pd.DataFrame(self.values, index=self.data.index, columns=self.data.columns)

    def importance(self) -> pd.Series:
        """Mean absolute SHAP value per feature, largest first (the bar summary)."""
        return pd.Series(np.abs(self.values).mean(axis=0), index=self.feature_names, name="mean |SHAP|").sort_values(
            ascending=False
        )

    def raw_prediction(self) -> np.ndarray:
        """``base_value + values.sum(axis=1)``: each explained row's raw score."""
        return self.base_value + self.values.sum(axis=1)

    def to_explanation(self) -> Any:
        """A ``shap.Explanation`` of the same numbers, for shap's own plots."""
        import shap

        return shap.Explanation(
            values=self.values,
            base_values=np.full(len(self.values), self.base_value),
            data=self.data.to_numpy(),
            feature_names=self.feature_names,
        )

    def plot(self, kind: str = "beeswarm", ax: Any = None, **kwargs: Any) -> Figure:
        """A figure of these values: ``"beeswarm"`` or ``"bar"`` (:func:`~workbench.explain.plot_shap_summary`),
        ``"dependence"`` (give ``feature=``; :func:`~workbench.explain.plot_shap_dependence`) or
        ``"waterfall"`` (``row=``; :func:`~workbench.explain.plot_shap_waterfall`); drawn on ``ax`` when given.
        """
        from .plots import plot_shap_dependence, plot_shap_summary, plot_shap_waterfall

        check_kind(kind, ("beeswarm", "bar", "dependence", "waterfall"), "ShapValues.plot")
        if kind == "dependence":
            if "feature" not in kwargs:
                raise ValueError("ShapValues.plot(kind='dependence') needs feature=... (the feature to plot)")
            return plot_shap_dependence(self, ax=ax, **kwargs)
        if kind == "waterfall":
            return plot_shap_waterfall(self, ax=ax, **kwargs)
        return plot_shap_summary(self, kind=kind, ax=ax, **kwargs)

    def plot_summary(self, kind: str = "beeswarm", **kwargs: Any) -> Figure:
        """Former name of :meth:`plot` for ``"beeswarm"`` and ``"bar"`` (warns)."""
        warn_renamed("ShapValues", "plot_summary()", "plot()")
        return self.plot(kind=kind, **kwargs)

    def plot_dependence(self, feature: str, **kwargs: Any) -> Figure:
        """:func:`workbench.explain.plot_shap_dependence` of one feature."""
        from .plots import plot_shap_dependence

        return plot_shap_dependence(self, feature, **kwargs)

    def plot_waterfall(self, row: int = 0, **kwargs: Any) -> Figure:
        """:func:`workbench.explain.plot_shap_waterfall` of one explained row (by position)."""
        from .plots import plot_shap_waterfall

        return plot_shap_waterfall(self, row, **kwargs)

    def __repr__(self) -> str:
        top = ", ".join(self.importance().index[:3])
        extra = ", with interactions" if self.interactions is not None else ""
        return f"ShapValues({self.sample_note}, {len(self.feature_names)} features, {self.target}; top: {top}{extra})"

    def _repr_html_(self) -> str:
        import html

        table = self.importance().head(20).to_frame().to_html(float_format=lambda v: f"{v:.5g}")
        return f"<div class='workbench-shapvalues'><p>{html.escape(repr(self))}</p>{table}</div>"


def _format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def interaction_bytes(n_rows: int, n_features: int, n_outputs: int = 1) -> int:
    """Memory for SHAP interaction values: ``rows × (features + 1)² × outputs × 8`` bytes.

    Parameters
    ----------
    n_rows, n_features : int
        Rows and features explained.
    n_outputs : int, default 1
        Classes explained at once.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> interaction_bytes(5000, 19)  # 16 MB
    16000000
    """
    return n_rows * (n_features + 1) ** 2 * n_outputs * 8


def _check_interaction_memory(n_rows: int, n_features: int, n_outputs: int, max_memory: int) -> None:
    need = interaction_bytes(n_rows, n_features, n_outputs)
    if need <= max_memory:
        return
    fits = max(1, max_memory // max(1, interaction_bytes(1, n_features, n_outputs)))
    outputs = f" × {n_outputs} classes" if n_outputs > 1 else ""
    raise ValueError(
        f"SHAP interaction values for {n_rows:,} rows × {n_features} × {n_features} features{outputs} need about "
        f"{_format_bytes(need)}, above max_memory={_format_bytes(max_memory)}; pass max_rows={fits:,} or fewer "
        "(a random sample), or raise max_memory if the machine has the room"
    )


def _explained_output(values: np.ndarray, info: ModelInfo, cls: int | None) -> np.ndarray:
    """Per-output blocks ``(..., outputs, k)`` to the explained class.

    A binary model with one output (log-odds of class 1) explains class 0 by negation.
    """
    if info.task == "binary" and values.shape[-2] == 1:
        return -values[..., 0, :] if cls == 0 else values[..., 0, :]
    return values[..., 0 if info.task == "regression" else cls, :]


def _tree_explainer(model: Any, data: Any, interactions: bool) -> tuple[np.ndarray, np.ndarray]:
    """shap's TreeExplainer as ``(n, outputs, features[, features])`` values and ``(outputs,)`` bases."""
    import shap

    try:
        explainer = shap.TreeExplainer(model)
    except Exception as exc:  # shap raises bare Exceptions for unsupported models
        raise ValueError(
            f"shap_values explains tree models (LightGBM, XGBoost, CatBoost, scikit-learn trees); "
            f"shap's TreeExplainer cannot read {type(model).__name__} ({exc}); use shap.Explainer for other models"
        ) from exc
    if interactions:
        values = np.asarray(explainer.shap_interaction_values(data), dtype=np.float64)
        values = values[:, None] if values.ndim == 3 else np.moveaxis(values, -1, 1)
    else:
        values = np.asarray(explainer.shap_values(data), dtype=np.float64)
        values = values[:, None] if values.ndim == 2 else np.moveaxis(values, -1, 1)
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))


def _interaction_values(model: Any, data: Any, n_features: int) -> np.ndarray:
    """Interaction values ``(n, outputs, features, features)``: our TreeSHAP for LightGBM, the
    library's own for XGBoost and CatBoost, shap's otherwise."""
    from ._native_shap import contributions, library, native_engine

    if library(model) == "lightgbm":
        from ._trees import to_matrix
        from ._treeshap import tree_shap_interactions
        from .model_info import lightgbm_ensemble

        ensemble = lightgbm_ensemble(model)
        return tree_shap_interactions(ensemble, to_matrix(ensemble, data))
    if native_engine(model) is not None:
        return contributions(model, data, n_features, interactions=True)[..., :-1, :-1]
    values, _ = _tree_explainer(model, data, interactions=True)
    return values


def _values(model: Any, data: Any, n_features: int) -> tuple[np.ndarray, np.ndarray, str]:
    """SHAP values ``(n, outputs, features)``, base values ``(outputs,)`` and the engine that gave them."""
    from ._native_shap import contributions, native_engine

    engine = native_engine(model)
    if engine is None:
        return (*_tree_explainer(model, data, interactions=False), "shap TreeExplainer")
    contrib = contributions(model, data, n_features)
    return contrib[..., :-1], contrib[0, :, -1], engine


@validate_params(
    {
        "max_rows": [Interval(int, 1, None), None],
        "interactions": ["boolean"],
        "max_memory": [Interval(float, 0, None, closed="neither")],
        "random_state": [Interval(int, 0, None), None],
    }
)
def shap_values(
    model: Any,
    X: Any,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    *,
    class_index: int | None = None,
    interactions: bool = False,
    max_memory: int = DEFAULT_MAX_MEMORY,
    random_state: int = 0,
) -> ShapValues:
    """SHAP values of a tree model on the rows of ``X`` (raw scale: log-odds for classifiers).

    More than ``max_rows`` rows are subsampled without replacement (seeded by ``random_state``;
    ``max_rows=None`` explains every row); ``result.sample_note`` says which. Binary classifiers
    explain the positive class, multiclass ones need ``class_index``. ``interactions=True`` adds
    SHAP interaction values after checking they fit in ``max_memory`` bytes. A
    :class:`~workbench.models.CVResult` is explained as the mean raw score of its fold models.

    Parameters
    ----------
    model : fitted tree model or CVResult
        LightGBM, XGBoost, CatBoost or a scikit-learn tree ensemble.
    X : DataFrame
        The rows explained.
    max_rows : int or None, default 5000
        Most rows explained (a seeded sample).
    class_index : int, optional
        The class explained (required for multiclass).
    interactions : bool, default False
        Also compute SHAP interaction values.
    max_memory : int, default 1 GiB
        Bytes the interaction values may take.
    random_state : int, default 0
        Seed of the row sample.

    Returns
    -------
    ShapValues
        ``values``, ``base_value``, ``data`` and the plots.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> sv = shap_values(model, X_valid)
    >>> sv.sample_note
    'SHAP values for all 500 rows'
    >>> sv.importance().head(3).round(3)
    Contract           0.915
    tenure             0.256
    InternetService    0.221
    Name: mean |SHAP|, dtype: float64
    >>> fig = sv.plot(kind="waterfall", row=0)
    """
    info = describe(model, parse=False)
    X = _inputs.check_frame(X)
    cls = resolve_class(info, class_index)
    names = _inputs.feature_names(X, info.feature_names)
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=names)
    n_total = len(frame)
    rows = np.arange(n_total)
    if max_rows is not None and n_total > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(n_total, size=max_rows, replace=False))
    data = frame.iloc[rows]
    model_input = data if isinstance(X, pd.DataFrame) else X[rows]
    n_features = data.shape[1]
    n_outputs = max(1, info.n_classes if info.task == "multiclass" else 1)
    if interactions:
        _check_interaction_memory(len(rows), n_features, n_outputs * len(info.models), max_memory)

    values_sum = base_sum = inter_sum = None
    engines = []
    for fold_model in info.models:
        values, base, engine = _values(fold_model, model_input, n_features)
        engines.append(engine)
        values = _explained_output(values, info, cls)
        base = _explained_output(base[:, None], info, cls)[0]
        values_sum = values if values_sum is None else values_sum + values
        base_sum = base if base_sum is None else base_sum + base
        if interactions:
            inter = _interaction_values(fold_model, model_input, n_features)
            inter = _explained_output(inter.reshape(*inter.shape[:2], -1), info, cls).reshape(
                len(rows), n_features, n_features
            )
            inter_sum = inter if inter_sum is None else inter_sum + inter
    k = len(info.models)
    engine = " and ".join(dict.fromkeys(engines))
    return ShapValues(
        values=values_sum / k,
        base_value=float(base_sum / k),
        data=data,
        rows=rows,
        n_total=n_total,
        target=_target(info, cls, "shap TreeExplainer" not in engines),
        engine=engine + (f", mean of {k} fold models" if k > 1 else ""),
        interactions=None if inter_sum is None else inter_sum / k,
        random_state=random_state,
    )


def _target(info: ModelInfo, cls: int | None, native: bool) -> str:
    if not native:
        label = "" if cls is None else f" of class {(info.classes or ())[cls]}"
        return f"model output{label} (as shap's TreeExplainer explains it)"
    if info.task == "regression":
        return "raw prediction"
    label = (info.classes or ())[cls]
    return f"log-odds of class {label}" if info.task == "binary" else f"raw score of class {label}"
