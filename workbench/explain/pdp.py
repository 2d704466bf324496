"""Partial dependence and individual conditional expectation (ICE): ``partial_dependence``.

``method="exact"`` gives what scikit-learn's ``partial_dependence(method="brute")`` gives (the
model's predictions with the feature set to each grid value, averaged over the rows of ``X``),
on the same default grid. For LightGBM it walks each tree once per row for all grid points
(see :mod:`workbench.explain._pdp_trees`); other models are predicted on stacked copies of ``X``,
a few large ``predict`` calls instead of one per grid point.

``method="recursion"`` is Friedman's weighted tree walk over LightGBM's training counts: it does
not look at ``X`` beyond building the grid, so it is instant, but it answers a different
question when features are correlated (it averages over the training distribution of the other
features *as the trees split it*, not over the rows), and it is on the raw scale only. See
scikit-learn issue #27441 for how far the two can differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind
from ..data.validation import Options, validate_params
from . import _inputs
from ._pdp_trees import ice_raw, recursion_raw
from ._trees import TreeEnsemble, raw_to_output, to_matrix
from .model_info import ModelInfo, describe, resolve_class

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Kind = Literal["average", "individual", "both"]
Method = Literal["exact", "recursion"]
Scale = Literal["auto", "probability", "raw"]

_ROWS_PER_PREDICT = 1 << 18  # rows per predict call on stacked copies (generic models)
_MAX_ICE_VALUES = 1 << 28  # ICE cells kept in memory at most (2 GiB of float64)


@dataclass
class PartialDependence(Result):
    """Partial dependence of one feature (or a pair) and, on request, the ICE curves.

    ``grid[j]`` are the values of ``features[j]`` (numbers, or category labels); ``average`` has
    shape ``(len(grid[0]),)`` or ``(len(grid[0]), len(grid[1]))``; ``individual`` (ICE, with
    ``kind="individual"`` or ``"both"``) has one leading axis more, one entry per row of ``X``.
    ``feature_values`` are the features' values in ``X``, for the distribution under the plot.
    """

    features: tuple[str, ...]
    grid: tuple[np.ndarray, ...]
    average: np.ndarray
    individual: np.ndarray | None
    feature_values: tuple[np.ndarray, ...]
    categorical: tuple[bool, ...]
    kind: str
    method: str
    scale: str
    target: str
    n_rows: int

    @property
    def is_2d(self) -> bool:
        return len(self.features) == 2

    def to_frame(self) -> pd.DataFrame:
        """One row per grid point: the feature value(s) and the ``average``."""
        if not self.is_2d:
            return pd.DataFrame({self.features[0]: self.grid[0], "average": self.average})
        a, b = np.meshgrid(np.arange(len(self.grid[0])), np.arange(len(self.grid[1])), indexing="ij")
        return pd.DataFrame(
            {
                self.features[0]: self.grid[0][a.ravel()],
                self.features[1]: self.grid[1][b.ravel()],
                "average": self.average.ravel(),
            }
        )

    def plot(self, kind: str = "auto", ax: Any = None, **kwargs: Any) -> Figure:
        """:func:`workbench.explain.plot_partial_dependence` of this result, drawn on ``ax`` when given.

        ``kind``: ``"auto"`` (the average, over ICE lines when the result has them), ``"average"``
        (the average only) or ``"both"`` (needs ICE: computed with ``kind="both"``).
        """
        from .plots import plot_partial_dependence

        check_kind(kind, ("auto", "average", "both"), "PartialDependence.plot")
        if kind == "both" and self.individual is None:
            raise ValueError("this partial dependence has no ICE curves; compute it with kind='both' to plot them")
        if kind != "auto":
            kwargs["ice"] = kind == "both"
        return plot_partial_dependence(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        sizes = " × ".join(str(len(g)) for g in self.grid)
        ice = "" if self.individual is None else f", ICE for {self.n_rows} rows"
        return f"PartialDependence({' × '.join(self.features)}, {sizes} grid points, {self.method}, {self.target}{ice})"


# ---------------------------------------------------------------------------------------- grid


def _numeric_grid(name: str, values: np.ndarray, resolution: int, percentiles: tuple[float, float]) -> np.ndarray:
    from scipy.stats.mstats import mquantiles

    finite = values[~np.isnan(values)]
    if finite.size == 0:
        raise ValueError(f"feature {name!r} has no non-missing values in X, so it has no grid; pass grid values")
    uniques = np.unique(finite)
    if uniques.size < resolution:
        return uniques
    low, high = mquantiles(finite, prob=percentiles, axis=0)
    if np.allclose(low, high):
        raise ValueError(
            f"the {percentiles} percentiles of {name!r} are both {low:g}, so the grid would be one point; "
            "choose percentiles further apart (e.g. (0, 1)) or pass grid values"
        )
    return np.linspace(low, high, num=resolution, endpoint=True)


def _categorical_grid(col: pd.Series | np.ndarray) -> np.ndarray:
    series = pd.Series(col)
    present = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        seen = set(present.unique().tolist())
        return np.asarray([c for c in series.cat.categories if c in seen], dtype=object)
    return np.asarray(sorted(present.unique().tolist()), dtype=object)


def _custom_grid(name: str, col: pd.Series | np.ndarray, values: Any, categorical: bool) -> np.ndarray:
    grid = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid values for {name!r} must be a non-empty one-dimensional list, got shape {grid.shape}")
    if categorical:
        known = set(_categorical_grid(col).tolist())
        if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
            known = set(col.cat.categories.tolist())
        unknown = [v for v in grid.tolist() if v not in known]
        if unknown:
            raise ValueError(
                f"grid values {unknown[:5]} are not categories of {name!r}; known: {sorted(map(str, known))[:10]}"
            )
        return grid.astype(object)
    try:
        grid = grid.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"grid values for the numeric feature {name!r} must be numbers, got {grid[:3].tolist()}"
        ) from exc
    if np.isnan(grid).any():
        raise ValueError(
            f"grid values for {name!r} contain NaN; partial dependence is defined on values, leave NaN out"
        )
    data = np.asarray(col, dtype=np.float64)
    lo, hi = np.nanmin(data), np.nanmax(data)
    if grid.min() < lo or grid.max() > hi:
        warnings.warn(
            f"the grid for {name!r} spans [{grid.min():g}, {grid.max():g}] but X ranges over [{lo:g}, {hi:g}]; "
            "beyond the data the model extrapolates (trees stay flat past their last split)",
            UserWarning,
            stacklevel=3,
        )
    return grid


def _grids(
    X: pd.DataFrame | np.ndarray,
    positions: list[int],
    names: list[str],
    categorical: list[bool],
    grid: int | Any | Mapping[Any, Any],
    percentiles: tuple[float, float],
) -> list[np.ndarray]:
    if not (len(percentiles) == 2 and 0 <= percentiles[0] < percentiles[1] <= 1):
        raise ValueError(f"percentiles must be two increasing numbers in [0, 1], like (0.05, 0.95); got {percentiles}")
    custom: dict[str, Any] = {}
    resolution = 100
    if isinstance(grid, Mapping):
        custom = {str(k): v for k, v in grid.items()}
        unknown = set(custom) - set(names)
        if unknown:
            raise ValueError(f"grid names features {sorted(unknown)} that are not among the features {names}")
    elif isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        resolution = int(grid)
        if resolution < 2:
            raise ValueError(f"grid resolution must be at least 2 points, got {resolution}")
    elif len(names) == 1:
        custom = {names[0]: grid}
    else:
        raise ValueError("for two features pass grid as an int (resolution) or a dict {feature: values}")
    out = []
    for pos, name, cat in zip(positions, names, categorical, strict=True):
        col = _inputs.column(X, pos)
        if name in custom:
            out.append(_custom_grid(name, col, custom[name], cat))
        elif cat:
            out.append(_categorical_grid(col))
        else:
            out.append(_numeric_grid(name, np.asarray(col, dtype=np.float64), resolution, percentiles))
    return out


# ---------------------------------------------------------------------------- model outputs


def _target_label(info: ModelInfo, cls: int | None, scale: str) -> str:
    if info.task == "regression":
        return "raw score" if scale == "raw" else "prediction"
    label = (info.classes or ())[cls] if cls is not None else cls
    return f"raw score of class {label}" if scale == "raw" else f"P(class={label})"


def _select(out: np.ndarray, info: ModelInfo, cls: int | None, raw: bool) -> np.ndarray:
    """Pick the explained column from ``(..., num_class)`` scores or probabilities."""
    if info.task == "binary":
        col = out[..., 0]
        if cls == 0:
            return -col if raw else 1.0 - col
        return col
    return out[..., cls if info.task == "multiclass" else 0]


def _model_space(ensemble: TreeEnsemble, X: pd.DataFrame | np.ndarray, pos: int, values: np.ndarray) -> np.ndarray:
    """Grid values as LightGBM's ``predict`` sees them in column ``pos`` (category codes, casts)."""
    if isinstance(X, pd.DataFrame):
        small = X.iloc[np.zeros(len(values), dtype=np.intp)].copy()
        name = X.columns[pos]
        if isinstance(X[name].dtype, pd.CategoricalDtype):
            small[name] = pd.Categorical(values, categories=X[name].cat.categories, ordered=X[name].cat.ordered)
        else:
            small[name] = values
        return to_matrix(ensemble, small)[:, pos]
    cast = np.asarray(values).astype(X.dtype)
    return to_matrix(ensemble, np.broadcast_to(cast[:, None], (len(values), X.shape[1])).copy())[:, pos]


def _lightgbm_ice(
    ensemble: TreeEnsemble,
    X: pd.DataFrame | np.ndarray,
    positions: list[int],
    grids: list[np.ndarray],
    info: ModelInfo,
    cls: int | None,
    raw: bool,
    progress: bool,
) -> np.ndarray:
    from tqdm.auto import tqdm

    M = to_matrix(ensemble, X)
    model_grids = [_model_space(ensemble, X, p, g) for p, g in zip(positions, grids, strict=True)]

    def explained(scores: np.ndarray) -> np.ndarray:
        shape = scores.shape
        if not raw:
            scores = raw_to_output(ensemble, scores.reshape(-1, shape[-1])).reshape(shape)
        return _select(scores, info, cls, raw)

    if len(positions) == 1:
        return explained(ice_raw(ensemble, M, positions[0], model_grids[0]))
    # Two features: walk all grid points of the longer axis at once, for each value of the shorter.
    outer = 0 if len(grids[0]) < len(grids[1]) else 1
    inner = 1 - outer
    out = np.empty((M.shape[0], len(grids[0]), len(grids[1])))
    work = M.copy()
    for k in tqdm(
        range(len(grids[outer])),
        desc=f"partial dependence {len(grids[0])}×{len(grids[1])}",
        disable=not progress,
        leave=False,
        delay=0.5,
    ):
        work[:, positions[outer]] = model_grids[outer][k]
        block = explained(ice_raw(ensemble, work, positions[inner], model_grids[inner]))
        if outer == 0:
            out[:, k, :] = block
        else:
            out[:, :, k] = block
    return out


def _set_column(frame: pd.DataFrame | np.ndarray, pos: int, values: np.ndarray, like: Any) -> None:
    if isinstance(frame, pd.DataFrame):
        name = frame.columns[pos]
        if isinstance(like.dtype, pd.CategoricalDtype):
            frame[name] = pd.Categorical(values, categories=like.cat.categories, ordered=like.cat.ordered)
        else:
            frame[name] = values
    else:
        frame[:, pos] = values


def _class_column(model: Any, info: ModelInfo, cls: int) -> int:
    """Position of the explained class in ``model.classes_`` (CVResult fold models know indices)."""
    classes = list(getattr(model, "classes_", range(info.n_classes)))
    for key in (info.classes[cls], cls):
        if key in classes:
            return classes.index(key)
    raise ValueError(f"class {info.classes[cls]!r} is not among this model's classes {classes}")


def _response(model: Any, info: ModelInfo, cls: int | None, scale: str):
    if info.task == "regression":
        return lambda data: np.asarray(model.predict(data), dtype=np.float64)
    if scale != "raw" and hasattr(model, "predict_proba"):
        col = _class_column(model, info, cls)
        return lambda data: np.asarray(model.predict_proba(data), dtype=np.float64)[:, col]
    if not hasattr(model, "decision_function"):
        raise ValueError(
            f"{type(model).__name__} has no decision_function, so it has no raw scale; use scale='probability'"
        )

    def decision(data: Any) -> np.ndarray:
        scores = np.asarray(model.decision_function(data), dtype=np.float64)
        if scores.ndim == 1:
            return -scores if cls == 0 else scores
        return scores[:, cls]

    return decision


def _brute_ice(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    positions: list[int],
    grids: list[np.ndarray],
    info: ModelInfo,
    cls: int | None,
    scale: str,
    progress: bool,
) -> np.ndarray:
    """Predictions on stacked copies of ``X`` (one per grid point), in batches of whole copies."""
    from tqdm.auto import tqdm

    predict = _response(model, info, cls, scale)
    n = X.shape[0]
    points = list(product(*[range(len(g)) for g in grids]))
    per_call = max(1, _ROWS_PER_PREDICT // n)
    out = np.empty((n, len(points)))
    originals = [_inputs.column(X, p) for p in positions]
    for start in tqdm(
        range(0, len(points), per_call), desc="partial dependence", disable=not progress, leave=False, delay=0.5
    ):
        batch = points[start : start + per_call]
        rows = np.tile(np.arange(n), len(batch))
        stacked = X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]
        for j, (pos, grid, like) in enumerate(zip(positions, grids, originals, strict=True)):
            _set_column(stacked, pos, np.repeat(grid[[p[j] for p in batch]], n), like)
        out[:, start : start + len(batch)] = predict(stacked).reshape(len(batch), n).T
    return out.reshape(n, *[len(g) for g in grids])


# ------------------------------------------------------------------------------------- public


@validate_params(
    {
        "kind": [Options(("average", "individual", "both"))],
        "method": [Options(("exact", "recursion"))],
        "scale": [Options(("auto", "probability", "raw"))],
        "progress": ["boolean"],
    }
)
def partial_dependence(
    model: Any,
    X: Any,
    features: Any,
    grid: int | Sequence[Any] | Mapping[Any, Any] = 100,
    *,
    kind: Kind = "average",
    method: Method = "exact",
    scale: Scale = "auto",
    class_index: int | None = None,
    percentiles: tuple[float, float] = (0.05, 0.95),
    categorical_features: Sequence[Any] | None = None,
    progress: bool = True,
) -> PartialDependence:
    """Partial dependence (and ICE) of ``model`` on one feature or a pair, over the rows of ``X``.

    ``features``: a column name (or position), or a pair of them for a 2-D dependence. ``grid``:
    the number of grid points (scikit-learn's grid: the unique values if there are fewer, else
    evenly spaced between the ``percentiles`` of the non-missing values), the values themselves
    (one feature), or ``{feature: values}``. Categorical features (pandas ``category``, text,
    bool, or named in ``categorical_features``) use their categories present in ``X``.

    ``scale="auto"`` explains probabilities for classifiers (the positive class for binary,
    ``class_index`` for multiclass, where it is required) and predictions for regressors;
    ``"raw"`` the raw score (log-odds). ``method="exact"`` equals scikit-learn's brute method;
    ``"recursion"`` (LightGBM, raw scale, ``kind="average"``) is Friedman's weighted tree walk,
    independent of the rows and different from ``exact`` when features are correlated.
    ``model`` may be a :class:`~workbench.models.CVResult`: its fold models' outputs are averaged.

    Parameters
    ----------
    model : fitted estimator or CVResult
        The model explained.
    X : DataFrame
        The rows the dependence is averaged over.
    features : column name or position, or a pair of them
        As above.
    grid : int, values or mapping, default 100
        As above.
    kind : {"average", "individual", "both"}, default "average"
        PD, ICE or both.
    method : {"exact", "recursion"}, default "exact"
        As above.
    scale : {"auto", "raw"}, default "auto"
        As above.
    class_index : int, optional
        The class explained (required for multiclass).
    percentiles : (float, float), default (0.05, 0.95)
        Range of a numeric grid.
    categorical_features : sequence, optional
        Columns treated as categorical beyond the inferred ones.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    PartialDependence
        ``grid``, ``average`` and, with ICE, ``individual``; ``plot()`` draws them.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> pd_ = partial_dependence(model, X_valid, "tenure", kind="both")
    >>> pd_
    PartialDependence(tenure, 73 grid points, exact, P(class=1), ICE for 500 rows)
    >>> pd_.average.shape, pd_.individual.shape
    ((73,), (500, 73))
    >>> fig = pd_.plot()  # PD line, ICE lines, feature distribution
    """
    info = describe(model)
    X = _inputs.check_frame(X)
    cls = resolve_class(info, class_index)
    if scale == "probability" and info.task == "regression":
        raise ValueError("scale='probability' needs a classifier; this model is a regressor (use scale='auto')")
    if method == "recursion":
        if not info.is_lightgbm:
            raise ValueError(
                f"method='recursion' walks LightGBM trees; {type(info.models[0]).__name__} needs method='exact'"
            )
        if kind != "average":
            raise ValueError(
                "method='recursion' gives the average only (no rows, so no ICE); use method='exact' for ICE"
            )
        if scale == "probability":
            raise ValueError("method='recursion' works on the raw scale only; use scale='raw' or method='exact'")
        scale = "raw"
    raw = scale == "raw"

    names_all = _inputs.feature_names(X, info.feature_names)
    feats = list(features) if isinstance(features, (list, tuple)) else [features]
    if not 1 <= len(feats) <= 2:
        raise ValueError(f"features must be one feature or a pair of features, got {len(feats)}: {feats}")
    positions = [_inputs.feature_position(X, f, names_all) for f in feats]
    if len(set(positions)) != len(positions):
        raise ValueError(f"the two features must differ, got {feats}")
    names = [names_all[p] for p in positions]
    declared = {str(c) for c in (categorical_features or ())}
    model_cats = set(info.ensembles[0].categorical_features) if info.is_lightgbm else set()
    categorical = [
        _inputs.is_categorical(_inputs.column(X, p)) or names_all[p] in declared or p in model_cats for p in positions
    ]
    grids = _grids(X, positions, names, categorical, grid, percentiles)
    n_cells = X.shape[0] * int(np.prod([len(g) for g in grids]))
    if method == "exact" and n_cells > _MAX_ICE_VALUES:
        raise ValueError(
            f"{X.shape[0]:,} rows × {' × '.join(str(len(g)) for g in grids)} grid points is {n_cells:,} predictions "
            f"(more than {_MAX_ICE_VALUES:,} held in memory); pass fewer rows (X.sample(...)) or a coarser grid"
        )

    if method == "recursion":
        per_model = []
        for ensemble in info.ensembles:
            model_grids = [_model_space(ensemble, X, p, g) for p, g in zip(positions, grids, strict=True)]
            points = np.array(list(product(*model_grids)), dtype=np.float64).reshape(-1, len(positions))
            per_model.append(_select(recursion_raw(ensemble, positions, points), info, cls, raw=True))
        average = np.mean(per_model, axis=0).reshape([len(g) for g in grids])
        individual = None
    else:
        ice = None
        for k, fold_model in enumerate(info.models):
            if info.is_lightgbm:
                part = _lightgbm_ice(info.ensembles[k], X, positions, grids, info, cls, raw, progress)
            else:
                part = _brute_ice(fold_model, X, positions, grids, info, cls, scale, progress)
            ice = part if ice is None else ice + part
        ice = ice / len(info.models) if len(info.models) > 1 else ice
        average = ice.mean(axis=0)
        individual = ice if kind != "average" else None

    return PartialDependence(
        features=tuple(names),
        grid=tuple(grids),
        average=average,
        individual=individual,
        feature_values=tuple(np.asarray(_inputs.column(X, p)) for p in positions),
        categorical=tuple(categorical),
        kind=kind,
        method=method,
        scale="raw" if raw else ("prediction" if info.task == "regression" else "probability"),
        target=_target_label(info, cls, "raw" if raw else "auto"),
        n_rows=int(X.shape[0]),
    )
