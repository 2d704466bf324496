"""What is being explained: the task, the classes, and for tree models the engine's tree ensemble.

Tree models (LightGBM, XGBoost, CatBoost, scikit-learn's trees and forests: :func:`tree_ensemble`) are read
once and cached per model (LightGBM per booster, keyed by the iterations ``predict`` uses), so
repeated explanations of one model skip the text dump. A :class:`~workbench.models.CVResult`
is explained through its fold models; their outputs are averaged as ``CVResult.predict`` does.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the tree engine (and numba) loads only when a tree model is read
    from ._trees import TreeEnsemble

_CACHE: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], TreeEnsemble]] = weakref.WeakKeyDictionary()
_BY_ID: dict[int, tuple[weakref.ref, tuple[Any, ...], TreeEnsemble]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """One model (or a CVResult's fold models) with what the explainers need to know."""

    models: tuple[Any, ...]
    task: str  # binary | multiclass | regression
    classes: tuple[Any, ...] | None
    ensembles: tuple[TreeEnsemble, ...] | None  # every model read by the tree engine; otherwise None
    is_lightgbm: bool = False
    feature_names: list[str] | None = None  # the model's own names, when it has them

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)


def is_lightgbm(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "lightgbm"


def lightgbm_ensemble(model: Any) -> TreeEnsemble:
    """:func:`~workbench.explain._trees.parse_lightgbm`, cached while the booster is unchanged."""
    from ._trees import _booster_and_iterations, parse_lightgbm

    booster, num_iteration = _booster_and_iterations(model)
    key = (num_iteration, booster.current_iteration(), booster.num_trees())
    hit = _CACHE.get(booster)
    if hit is not None and hit[0] == key:
        return hit[1]
    ensemble = parse_lightgbm(model)
    _CACHE[booster] = (key, ensemble)
    return ensemble


def tree_ensemble(model: Any) -> TreeEnsemble | str:
    """The fitted ``model`` as the tree engine's arrays, or a one-line reason why it cannot be read.

    LightGBM, XGBoost, CatBoost and scikit-learn's ``DecisionTree*``, ``RandomForest*``,
    ``ExtraTrees*``, ``GradientBoosting*`` and ``HistGradientBoosting*`` are read; the result is cached per model while its trees are unchanged.
    """
    library = type(model).__module__.split(".")[0]
    try:
        if library == "lightgbm":
            return lightgbm_ensemble(model)
        if library == "xgboost":
            from ._read_xgboost import read_xgboost, xgboost_stamp

            return _cached(model, read_xgboost, xgboost_stamp)
        if library == "catboost":
            from ._read_catboost import catboost_stamp, read_catboost

            return _cached(model, read_catboost, catboost_stamp)
        if library == "sklearn":
            from ._read_hist import SUPPORTED as HIST
            from ._read_hist import read_hist_gradient_boosting
            from ._read_sklearn import SUPPORTED, read_sklearn

            if type(model).__name__ in HIST:
                return _cached(model, read_hist_gradient_boosting)
            if type(model).__name__ not in SUPPORTED:
                return f"{type(model).__name__} is not a tree model the engine reads"
            return _cached(model, read_sklearn)
    except (ValueError, TypeError, AttributeError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(model).__name__} ({library}) is not a tree model the engine reads"


def _cached(model: Any, read: Any, stamp: Any = None) -> TreeEnsemble:
    """``read(model)``, reused while the model object holds the same fitted state (``stamp(model)``)."""
    key = (id(getattr(model, "estimators_", None)), getattr(model, "n_estimators", None), (stamp or _fit_stamp)(model))
    try:
        hit = _CACHE.get(model)
    except TypeError:  # unhashable (CatBoost compares models by value) or not weak-referenceable
        return _cached_by_id(model, read, key)
    if hit is not None and hit[0] == key:
        return hit[1]
    ensemble = read(model)
    _CACHE[model] = (key, ensemble)
    return ensemble


def _cached_by_id(model: Any, read: Any, key: tuple[Any, ...]) -> TreeEnsemble:
    """:func:`_cached` for models that cannot be dictionary keys: keyed by identity while alive."""
    entry = _BY_ID.get(id(model))
    if entry is not None and entry[0]() is model and entry[1] == key:
        return entry[2]
    ensemble = read(model)
    ident = id(model)
    try:
        ref = weakref.ref(model, lambda _: _BY_ID.pop(ident, None))
    except TypeError:  # not weak-referenceable: not cached
        return ensemble
    _BY_ID[ident] = (ref, key, ensemble)
    return ensemble


def _fit_stamp(model: Any) -> Any:
    predictors = getattr(model, "_predictors", None)  # HistGradientBoosting
    return id(getattr(model, "tree_", None)), id(predictors), id(getattr(model, "_baseline_prediction", None))


def _not_fitted(model: Any) -> ValueError:
    from sklearn.exceptions import NotFittedError  # a ValueError, as scikit-learn raises it

    return NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(X, y) before explaining it")


def _lightgbm_task(num_class: int, objective: str, model: Any) -> tuple[str, tuple[Any, ...] | None]:
    classes = getattr(model, "classes_", None)
    if num_class > 1:
        labels = tuple(classes) if classes is not None else tuple(range(num_class))
        return "multiclass", labels
    if objective in ("binary", "cross_entropy", "xentropy"):
        return "binary", tuple(classes) if classes is not None else (0, 1)
    return "regression", None


def _sklearn_task(model: Any) -> tuple[str, tuple[Any, ...] | None]:
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise _not_fitted(model) from exc
    except TypeError as exc:
        raise TypeError(f"expected a fitted estimator with predict/predict_proba, got {type(model).__name__}") from exc
    labels = getattr(model, "classes_", None)
    if is_classifier(model) or (labels is not None and len(labels) > 0):  # a CatBoostRegressor has empty classes_
        classes = tuple(np.asarray(model.classes_).tolist())
        return ("binary" if len(classes) == 2 else "multiclass"), classes
    return "regression", None


def _lightgbm_light(model: Any) -> ModelInfo | None:
    """Task and classes from the fitted estimator's attributes, without parsing the trees."""
    from ._trees import _booster_and_iterations

    booster, _ = _booster_and_iterations(model)
    objective = getattr(model, "objective_", None) or booster.params.get("objective")
    if not isinstance(objective, str):
        return None
    task, classes = _lightgbm_task(booster.num_model_per_iteration(), objective.split()[0], model)
    return ModelInfo((model,), task, classes, None, is_lightgbm=True, feature_names=booster.feature_name())


def describe(model: Any, parse: bool = True) -> ModelInfo:
    """Inspect ``model`` (estimator, LightGBM Booster or CVResult); unfitted models are a ValueError.

    ``parse=False`` skips parsing LightGBM trees when only the task is needed.
    """
    from ..models import CVResult

    if isinstance(model, CVResult):
        if not model.models:
            raise ValueError("this CVResult holds no fold models; train it with train_cv first")
        infos = [describe(m, parse) for m in model.models]
        classes = None if model.classes is None else tuple(model.classes)
        lightgbm = all(i.is_lightgbm for i in infos)
        readable = all(i.ensembles is not None for i in infos)
        ensembles = tuple(i.ensembles[0] for i in infos) if readable and parse else None
        return ModelInfo(tuple(model.models), model.task, classes, ensembles, lightgbm, infos[0].feature_names)
    if is_lightgbm(model):
        if getattr(model, "_Booster", True) is None:
            raise _not_fitted(model)
        light = None if parse else _lightgbm_light(model)
        if light is not None:
            return light
        ensemble = tree_ensemble(model)
        if isinstance(ensemble, str):  # e.g. linear trees: explained by the generic engine
            light = _lightgbm_light(model)
            if light is None:
                raise ValueError(f"this {type(model).__name__} cannot be explained: {ensemble}")
            return light
        task, classes = _lightgbm_task(ensemble.num_class, ensemble.objective, model)
        return ModelInfo((model,), task, classes, (ensemble,), True, ensemble.feature_names)
    if not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        raise TypeError(f"expected a fitted model with predict/predict_proba, got {type(model).__name__}")
    task, classes = _sklearn_task(model)
    names = getattr(model, "feature_names_in_", None)
    engine = tree_ensemble(model) if parse else None
    ensembles = None if engine is None or isinstance(engine, str) else (engine,)
    return ModelInfo((model,), task, classes, ensembles, False, None if names is None else [str(n) for n in names])


def resolve_class(info: ModelInfo, class_index: int | None, all_classes: bool = False) -> int | None:
    """The output column to explain: required for multiclass (None: every class, with
    ``all_classes``), optional (0 or 1) for binary."""
    if info.task == "regression":
        if class_index is not None:
            raise ValueError("class_index applies to classifiers only; this model is a regressor")
        return None
    n = info.n_classes
    if info.task == "multiclass" and class_index is None:
        if all_classes:
            return None
        raise ValueError(
            f"this classifier has {n} classes {list(info.classes or ())}; pass class_index=0..{n - 1} "
            "to choose which class's probability to explain"
        )
    if class_index is None:
        return 1
    if not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < n:
        raise ValueError(
            f"class_index must be an integer in 0..{n - 1} (one of the classes {list(info.classes or ())}), got {class_index!r}"
        )
    return int(class_index)
