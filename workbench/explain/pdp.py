"""Partial dependence and individual conditional expectation (ICE): ``partial_dependence``.

``method="exact"`` gives what scikit-learn's ``partial_dependence(method="brute")`` gives (the
model's predictions with the feature set to each grid value, averaged over the rows of ``X``),
on the same default grid. For tree models the engine reads (LightGBM, XGBoost, CatBoost, scikit-learn's
trees and forests) it walks each tree once per row for all grid points (see
:mod:`workbench.explain._pdp_trees`); other models are predicted on stacked copies of ``X``,
a few large ``predict`` calls instead of one per grid point.

``method="recursion"`` is Friedman's weighted tree walk over the trees' training counts: it does
not look at ``X`` beyond building the grid, so it is instant, but it answers a different
question when features are correlated (it averages over the training distribution of the other
features *as the trees split it*, not over the rows), and it is on the raw scale only. See
scikit-learn issue #27441 for how far the two can differ.

Integer columns are computed in float: the column is set to the (float) grid values in a float
copy, so a grid point such as 12.25 is what the model sees (scikit-learn refuses integer columns
instead, because writing floats into an integer array would truncate them). Nullable pandas
integers (``Int64``) are numeric features too; ``bool``/``boolean``, ``category`` and text columns
are categorical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind
from ..data.validation import Options, validate_params
from . import _inputs
from ._pdp_grid import build_grids, check_percentiles, grid_specs
from ._pdp_ice import brute_ice, model_space, select, tree_ice
from .model_info import ModelInfo, describe, resolve_class

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Kind = Literal["average", "individual", "both"]
Method = Literal["exact", "recursion", "brute", "auto"]
Scale = Literal["auto", "probability", "raw"]

_MAX_ICE_VALUES = 1 << 28  # ICE cells kept in memory at most (2 GiB of float64)


@dataclass
class PartialDependence(Result):
    """Partial dependence of one or more features and, on request, the ICE curves.

    ``grid[j]`` are the values of ``features[j]`` (numbers, or category labels); ``average`` has
    shape ``(len(grid[0]), len(grid[1]), ...)``; ``individual`` (ICE, with ``kind="individual"``
    or ``"both"``) has one leading axis more, one entry per row of ``X``. When the result holds
    several outputs (every class of a multiclass model, every target of a multi-output
    regressor), both have a leading output axis more, labelled by ``outputs``; ``output(k)`` is
    the single-output result of one of them. ``feature_values`` are the features' values in
    ``X``, for the distribution under the plot. ``to_sklearn()`` is scikit-learn's ``Bunch``.
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
    outputs: tuple[Any, ...] | None = None

    @property
    def is_2d(self) -> bool:
        return len(self.features) == 2

    @property
    def n_outputs(self) -> int:
        return 1 if self.outputs is None else len(self.outputs)

    def output(self, k: int) -> PartialDependence:
        """The result for output ``k`` alone (class ``outputs[k]``, or target ``k``)."""
        if self.outputs is None:
            if k != 0:
                raise ValueError(f"this result has one output ({self.target}); output(0) is the only one")
            return self
        if not 0 <= k < len(self.outputs):
            raise ValueError(f"output must be in 0..{len(self.outputs) - 1} (outputs {list(self.outputs)}), got {k}")
        label = self.outputs[k]
        target = (
            f"P(class={label})"
            if self.target == "probability of each class"
            else self.target.replace("each class", f"class {label}").replace("each target", f"target {label}")
        )
        return replace(
            self,
            average=self.average[k],
            individual=None if self.individual is None else self.individual[k],
            target=target,
            outputs=None,
        )

    def to_sklearn(self) -> Any:
        """The ``Bunch`` of ``sklearn.inspection.partial_dependence``: ``grid_values`` and ``average``
        ``(n_outputs, *grid_shape)`` and/or ``individual`` ``(n_outputs, n_rows, *grid_shape)``."""
        from sklearn.utils import Bunch

        lead = self.outputs is None
        out = Bunch(grid_values=[_plain(g) for g in self.grid])
        if self.kind in ("average", "both"):
            out["average"] = self.average[None] if lead else self.average
        if self.kind in ("individual", "both") and self.individual is not None:
            out["individual"] = self.individual[None] if lead else self.individual
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per grid point (and output): the feature value(s) and the ``average``."""
        idx = np.meshgrid(*[np.arange(len(g)) for g in self.grid], indexing="ij")
        columns = {f: g[i.ravel()] for f, g, i in zip(self.features, self.grid, idx, strict=True)}
        if self.outputs is None:
            return pd.DataFrame({**columns, "average": self.average.ravel()})
        frames = [
            pd.DataFrame({"output": [label] * idx[0].size, **columns, "average": self.average[k].ravel()})
            for k, label in enumerate(self.outputs)
        ]
        return pd.concat(frames, ignore_index=True)

    def plot(self, kind: str = "auto", ax: Any = None, output: int | None = None, **kwargs: Any) -> Figure:
        """:func:`workbench.explain.plot_partial_dependence` of this result, drawn on ``ax`` when given.

        ``kind``: ``"auto"`` (the average, over ICE lines when the result has them), ``"average"``
        (the average only) or ``"both"`` (needs ICE: computed with ``kind="both"``). Plots show
        one output of one or two features: ``output=k`` picks output ``k`` of several.
        """
        from .plots import plot_partial_dependence

        if output is not None:
            return self.output(output).plot(kind, ax=ax, **kwargs)
        check_kind(kind, ("auto", "average", "both"), "PartialDependence.plot")
        if kind == "both" and self.individual is None:
            raise ValueError("this partial dependence has no ICE curves; compute it with kind='both' to plot them")
        if kind != "auto":
            kwargs["ice"] = kind == "both"
        return plot_partial_dependence(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        sizes = " × ".join(str(len(g)) for g in self.grid)
        ice = "" if self.individual is None else f", ICE for {self.n_rows} rows"
        outs = "" if self.outputs is None else f", {len(self.outputs)} outputs"
        return (
            f"PartialDependence({' × '.join(self.features)}, {sizes} grid points, {self.method}, "
            f"{self.target}{outs}{ice})"
        )


def _plain(grid: np.ndarray) -> np.ndarray:
    """A grid as scikit-learn reports it: numbers and booleans typed, text as ``object``."""
    if grid.dtype != object:
        return grid
    typed = np.asarray(grid.tolist())
    return grid if typed.dtype.kind in "USO" else typed


# ------------------------------------------------------------------------------------- inputs


def _check_model(model: Any) -> None:
    """scikit-learn's refusals: not a regressor or classifier, multiclass-multioutput."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if isinstance(model, BaseEstimator) and not (is_classifier(model) or is_regressor(model)):
        raise ValueError(
            f"'estimator' must be a fitted regressor or classifier; {type(model).__name__} is neither "
            "(partial dependence explains predictions of a target)."
        )
    classes = getattr(model, "classes_", None)
    if isinstance(classes, list) and classes and isinstance(classes[0], np.ndarray):
        raise ValueError(
            "Multiclass-multioutput estimators are not supported: explain one target at a time "
            "(e.g. fit one classifier per target column)."
        )


def _scale_from(scale: str, response_method: str | None, info: ModelInfo) -> str:
    """``scale`` from scikit-learn's ``response_method`` when it is given."""
    if response_method is None or response_method == "auto":
        return scale
    if info.task == "regression":
        raise ValueError(
            f"The response_method parameter is ignored for regressors and must be 'auto'; got {response_method!r}."
        )
    if scale != "auto":
        raise ValueError("pass scale or response_method, not both (response_method is scikit-learn's spelling)")
    model = info.models[0]
    if response_method == "predict_proba" and not (info.is_lightgbm or hasattr(model, "predict_proba")):
        raise ValueError(f"response_method='predict_proba' but {type(model).__name__} has no predict_proba")
    return "probability" if response_method == "predict_proba" else "raw"


def _recursion_supported(info: ModelInfo) -> bool:
    """Whether the tree engine has Friedman's weighted walk for this model (its trees' counts are
    the training weights: not so for HistGradientBoosting fitted with sample_weight)."""
    return info.ensembles is not None and not any(getattr(m, "_fitted_with_sw", False) for m in info.models)


def _method_from(method: str, info: ModelInfo, kind: str, scale: str, weighted: bool) -> str:
    """``"brute"`` is ``"exact"``; ``"auto"`` is ``"recursion"`` where it gives the same quantity."""
    if method == "brute":
        return "exact"
    if method == "auto":
        same = info.task == "regression" or scale == "raw"
        usable = _recursion_supported(info) and kind == "average" and not weighted
        return "recursion" if usable and same else "exact"
    return method


def _check_recursion(info: ModelInfo, kind: str, scale: str, weighted: bool) -> None:
    """scikit-learn's refusals, in its order, then what the tree walk needs."""
    if kind != "average":
        raise ValueError(
            "The 'recursion' method only applies when 'kind' is set to 'average': it gives the average only "
            "(no rows, so no ICE); use method='exact' for ICE"
        )
    if weighted:
        raise ValueError(
            "The 'recursion' method can only be applied when sample_weight is None: it does not "
            "look at the rows; use method='exact' to weight them."
        )
    if scale == "probability":
        raise ValueError(
            "With the 'recursion' method, the response_method must be 'decision_function': it works on the "
            "raw scale only; use scale='raw' or method='exact'"
        )
    if info.ensembles is not None and not _recursion_supported(info):
        raise NotImplementedError(
            f"{type(info.models[0]).__name__} does not support partial dependence with the 'recursion' method when "
            "sample weights were given during fit time (its trees count rows, not weights); use method='exact'"
        )
    if not _recursion_supported(info):
        raise ValueError(
            "Only the following estimators support the 'recursion' method: LightGBM, XGBoost, CatBoost and "
            "scikit-learn tree models; "
            f"{type(info.models[0]).__name__} needs method='exact'. Try using method='brute'."
        )


def _listed(features: Any) -> list[Any]:
    """``features`` as a list: one feature (a name or a position) or several."""
    return list(features) if isinstance(features, (list, tuple, np.ndarray, pd.Index)) else [features]


def _features(X: pd.DataFrame | np.ndarray, features: Any, names_all: list[str]) -> list[int]:
    feats = _listed(features)
    if not feats:
        raise ValueError("features is empty; name at least one feature")
    if all(isinstance(f, (bool, np.bool_)) for f in feats):  # a boolean mask over the columns
        if len(feats) != X.shape[1]:
            raise ValueError(
                f"a boolean mask of features needs one entry per column of X ({X.shape[1]}), got {len(feats)}"
            )
        feats = [int(i) for i in np.flatnonzero(feats)]
    positions = [_inputs.feature_position(X, f, names_all) for f in feats]
    if len(set(positions)) != len(positions):
        raise ValueError(f"the features must differ, got {feats}")
    return positions


def _custom_positions(custom: dict[Any, Any], features: Any, positions: list[int], X: Any, names: list[str]) -> dict:
    """``{index in features: values}`` from keys naming features as ``features`` does (or by name)."""
    feats = _listed(features)
    out: dict[int, Any] = {}
    for key, values in custom.items():
        if key is None:
            out[0] = values
        elif key in feats:
            out[feats.index(key)] = values
        else:
            pos = _inputs.feature_position(X, key, names)
            if pos not in positions:
                raise ValueError(
                    f"grid values are given for {key!r}, which is not among the features {feats}; "
                    "give grid values only for the features computed"
                )
            out[positions.index(pos)] = values
    return out


def _weights(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}: one weight per row of X")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be finite and non-negative with a positive sum")
    return w


def _as_float_ints(X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
    """Integer NumPy data in float64, so that grid values are set without truncation."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu":
        return X.astype(np.float64)
    return X


def _outputs(info: ModelInfo, cls: int | None, ice: np.ndarray) -> tuple[Any, ...] | None:
    if info.task == "multiclass" and cls is None:
        return tuple(info.classes or range(ice.shape[0]))
    if info.task == "regression" and ice.shape[0] > 1:
        return tuple(range(ice.shape[0]))
    return None


def _target_label(info: ModelInfo, cls: int | None, raw: bool, n_outputs: int) -> str:
    if info.task == "regression":
        what = "raw score" if raw else "prediction"
        return f"{what} of each target" if n_outputs > 1 else what
    label = "each class" if cls is None else f"class {(info.classes or ())[cls]}"
    if raw:
        return f"raw score of {label}"
    return "probability of each class" if cls is None else f"P(class={(info.classes or ())[cls]})"


# ------------------------------------------------------------------------------------- public


@validate_params(
    {
        "kind": [Options(("average", "individual", "both"))],
        "method": [Options(("exact", "recursion", "brute", "auto"))],
        "scale": [Options(("auto", "probability", "raw"))],
        "response_method": [Options(("auto", "predict_proba", "decision_function")), None],
        "progress": ["boolean"],
    }
)
def partial_dependence(
    model: Any,
    X: Any,
    features: Any,
    grid: int | Sequence[Any] | Mapping[Any, Any] | None = None,
    *,
    kind: Kind = "average",
    method: Method = "exact",
    scale: Scale = "auto",
    class_index: int | None = None,
    sample_weight: Any = None,
    percentiles: tuple[float, float] = (0.05, 0.95),
    grid_resolution: int | None = None,
    custom_values: Mapping[Any, Any] | None = None,
    categorical_features: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
    response_method: str | None = None,
    progress: bool = True,
) -> PartialDependence:
    """Partial dependence (and ICE) of ``model`` on one or more features, over the rows of ``X``.

    A drop-in for ``sklearn.inspection.partial_dependence`` (same arguments, ``to_sklearn()``
    gives its ``Bunch``) with a shorter spelling of the grid and a fast exact engine for tree models.

    ``features``: a column name or position, or a list of them, computed jointly (plots draw one
    or two). ``grid``: the number of grid points (scikit-learn's grid: the unique values if
    there are fewer, else evenly spaced between the ``percentiles`` of the non-missing values),
    the values themselves (one feature), or ``{feature: values}`` for some features, the others
    using ``grid_resolution`` (default 100; ``custom_values`` is scikit-learn's name for that
    mapping). Categorical features (pandas ``category``, text, bool, or named in
    ``categorical_features``: names, positions or a boolean mask) use their categories in ``X``.
    Integer columns are computed in float (see the module notes; scikit-learn refuses them).

    ``scale="auto"`` explains probabilities for classifiers (the positive class for binary,
    every class for multiclass unless ``class_index`` picks one) and predictions for regressors
    (every target of a multi-output regressor); ``"raw"`` the raw score (log-odds,
    ``decision_function``). ``response_method`` is scikit-learn's spelling of it. Several outputs
    come as a leading axis of ``average``/``individual``. ``sample_weight`` weights the rows in
    the average (ICE curves are unchanged). ``method="exact"`` (or ``"brute"``) equals
    scikit-learn's brute method; ``"recursion"`` (tree models, raw scale, ``kind="average"``) is
    Friedman's weighted tree walk, independent of the rows and different from ``exact`` when
    features are correlated; ``"auto"`` takes ``recursion`` only where it explains the same
    quantity (a tree model on the raw scale or a regressor, no weights, averages only). ``model``
    may be a :class:`~workbench.models.CVResult`: its fold models' outputs are averaged.

    Parameters
    ----------
    model : fitted estimator or CVResult
        The model explained.
    X : DataFrame or array
        The rows the dependence is averaged over.
    features : column name or position, or a list of them
        As above.
    grid : int, values or mapping, optional
        As above (default: ``grid_resolution`` points).
    kind : {"average", "individual", "both"}, default "average"
        PD, ICE or both.
    method : {"exact", "brute", "recursion", "auto"}, default "exact"
        As above.
    scale : {"auto", "probability", "raw"}, default "auto"
        As above.
    class_index : int, optional
        The one class explained (default: the positive class for binary, every class otherwise).
    sample_weight : array-like, optional
        Row weights of the average.
    percentiles : (float, float), default (0.05, 0.95)
        Range of a numeric grid.
    grid_resolution : int, optional
        Grid points of the features without given values (default 100).
    custom_values : mapping, optional
        scikit-learn's name for ``{feature: grid values}``.
    categorical_features : sequence, optional
        Columns treated as categorical beyond the inferred ones.
    feature_names : sequence of str, optional
        Names of the columns of an array ``X``.
    response_method : {"auto", "predict_proba", "decision_function"}, optional
        scikit-learn's spelling of ``scale`` (probability or raw).
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
    >>> pd_.to_sklearn()["average"].shape  # scikit-learn's Bunch: a leading output axis
    (1, 73)
    >>> fig = pd_.plot()  # PD line, ICE lines, feature distribution
    """
    _check_model(model)
    info = describe(model)
    X = _as_float_ints(_inputs.check_frame(X))
    cls = resolve_class(info, class_index, all_classes=True)
    scale = _scale_from(scale, response_method, info)
    if scale == "probability" and info.task == "regression":
        raise ValueError("scale='probability' needs a classifier; this model is a regressor (use scale='auto')")
    weights = _weights(sample_weight, X.shape[0])
    method = _method_from(method, info, kind, scale, weights is not None)
    if method == "recursion":
        _check_recursion(info, kind, scale, weights is not None)
        scale = "raw"
    raw = scale == "raw"

    names_all = _model_names(X, info, feature_names)
    positions = _features(X, features, names_all)
    names = [names_all[p] for p in positions]
    declared = _inputs.categorical_mask(categorical_features, X, names_all)
    model_cats = set(info.ensembles[0].categorical_features) if info.ensembles is not None else set()
    categorical = [_inputs.is_categorical(_inputs.column(X, p)) or declared[p] or p in model_cats for p in positions]
    resolution, custom = grid_specs(grid, grid_resolution, custom_values, len(positions))
    custom = _custom_positions(custom, features, positions, X, names_all)
    grids = build_grids(X, positions, names, categorical, resolution, custom, check_percentiles(percentiles))

    if method == "recursion":
        average, individual = _recursion(info, X, positions, grids, cls), None
    else:
        ice = _ice(model, info, X, positions, grids, cls, scale, progress)
        average = np.average(ice, axis=1, weights=weights)
        individual = ice if kind != "average" else None
    outputs = _outputs(info, cls, average)
    single = outputs is None
    return PartialDependence(
        features=tuple(names),
        grid=tuple(grids),
        average=average[0] if single else average,
        individual=None if individual is None else (individual[0] if single else individual),
        feature_values=tuple(_feature_values(X, p, c) for p, c in zip(positions, categorical, strict=True)),
        categorical=tuple(categorical),
        kind=kind,
        method=method,
        scale="raw" if raw else ("prediction" if info.task == "regression" else "probability"),
        target=_target_label(info, cls, raw, average.shape[0]),
        n_rows=int(X.shape[0]),
        outputs=outputs,
    )


def _model_names(X: Any, info: ModelInfo, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is None:
        return _inputs.feature_names(X, info.feature_names)
    names = [str(n) for n in feature_names]
    if len(names) != X.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names but X has {X.shape[1]} columns")
    if isinstance(X, pd.DataFrame) and names != [str(c) for c in X.columns]:
        raise ValueError("feature_names differ from the DataFrame's columns; leave feature_names out for a DataFrame")
    return names


def _feature_values(X: Any, pos: int, categorical: bool) -> np.ndarray:
    col = _inputs.column(X, pos)
    return np.asarray(col) if categorical else _inputs.as_float(col)


def _recursion(info: ModelInfo, X: Any, positions: list[int], grids: list[np.ndarray], cls: int | None) -> np.ndarray:
    from ._pdp_trees import recursion_raw

    per_model = []
    for ensemble in info.ensembles:
        model_grids = [model_space(ensemble, X, p, g) for p, g in zip(positions, grids, strict=True)]
        points = np.array(list(product(*model_grids)), dtype=np.float64).reshape(-1, len(positions))
        per_model.append(select(recursion_raw(ensemble, positions, points), info, cls, raw=True))
    average = np.mean(per_model, axis=0)
    return average.reshape(average.shape[0], *[len(g) for g in grids])


def _ice(
    model: Any,
    info: ModelInfo,
    X: Any,
    positions: list[int],
    grids: list[np.ndarray],
    cls: int | None,
    scale: str,
    progress: bool,
) -> np.ndarray:
    """``float64[n_outputs, n_rows, *grid_shape]``, averaged over a CVResult's fold models."""
    n_out = info.n_classes if info.task == "multiclass" and cls is None else 1
    n_cells = n_out * X.shape[0] * int(np.prod([len(g) for g in grids]))
    if n_cells > _MAX_ICE_VALUES:
        raise ValueError(
            f"{X.shape[0]:,} rows × {' × '.join(str(len(g)) for g in grids)} grid points × {n_out} outputs is "
            f"{n_cells:,} predictions (more than {_MAX_ICE_VALUES:,} held in memory); pass fewer rows "
            "(X.sample(...)), fewer features or a coarser grid"
        )
    ice = None
    for k, fold_model in enumerate(info.models):
        if info.ensembles is not None:
            part = tree_ice(info.ensembles[k], X, positions, grids, info, cls, scale == "raw", progress)
        else:
            part = brute_ice(fold_model, X, positions, grids, info, cls, scale, progress)
        ice = part if ice is None else ice + part
    return ice / len(info.models) if len(info.models) > 1 else ice
