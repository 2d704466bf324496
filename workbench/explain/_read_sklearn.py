"""scikit-learn tree models as a :class:`~workbench.explain._trees.TreeEnsemble`.

``DecisionTree*``, ``RandomForest*``, ``ExtraTrees*`` and ``GradientBoosting*`` compare ``X`` cast
to float32 against float64 thresholds (``x <= threshold`` goes left, NaN follows
``missing_go_to_left``), as the engine does once the matrix is rounded to float32. Forests sum
their trees' predictions in order and divide by the number of trees (``divisor``); a classifier's
tree predicts class proportions, so each tree appears once per class, adding its proportion of
that class to that output column (binary models too: both columns, as ``predict_proba``). Gradient boosting starts from the init estimator's raw
prediction (``base_score``) and adds ``learning_rate * value`` per tree, as ``predict_stages``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._read_common import NodeTree, assemble

if TYPE_CHECKING:
    from ._trees import TreeEnsemble

_FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")
_SINGLE = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor")
_BOOSTED = ("GradientBoostingClassifier", "GradientBoostingRegressor")
SUPPORTED = _FORESTS + _SINGLE + _BOOSTED


def _node_tree(tree: Any, column: np.ndarray, output: int, scale: float | None = None) -> NodeTree:
    """One fitted ``tree_`` adding ``column`` (a per-node value) to output ``output``."""
    missing_left = getattr(tree, "missing_go_to_left", None)
    n = tree.node_count
    value = np.asarray(column, dtype=np.float64)
    if scale is not None:
        value = scale * value
    return NodeTree(
        left=np.asarray(tree.children_left, dtype=np.int64),
        right=np.asarray(tree.children_right, dtype=np.int64),
        feature=np.maximum(np.asarray(tree.feature, dtype=np.int64), 0),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        default_left=np.zeros(n, dtype=bool) if missing_left is None else np.asarray(missing_left, dtype=bool),
        value=value,
        count=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
        output=output,
    )


def _per_class(tree: Any, n_classes: int) -> list[NodeTree]:
    """A classification tree once per class: its leaves' proportion of that class."""
    value = np.asarray(tree.value[:, 0, :n_classes], dtype=np.float64)
    return [_node_tree(tree, value[:, k], k) for k in range(n_classes)]


def _names(model: Any) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [f"x{i}" for i in range(model.n_features_in_)]


def read_sklearn(model: Any) -> TreeEnsemble:
    """A fitted scikit-learn tree model as the engine's arrays; ValueError with the reason if not readable."""
    name = type(model).__name__
    if name not in SUPPORTED:
        raise ValueError(f"{name} is not one of scikit-learn's tree models the engine reads")
    if getattr(model, "n_outputs_", 1) != 1:
        raise ValueError("multi-output tree models are not read by the tree engine")
    classifier = hasattr(model, "classes_")
    if name in _BOOSTED:
        return _read_boosted(model, classifier)
    estimators = model.estimators_ if name in _FORESTS else [model]
    trees: list[NodeTree] = []
    if classifier:
        k = len(model.classes_)
        for est in estimators:
            trees += _per_class(est.tree_, k)
        objective, num_class = "probability", k
    else:
        trees = [_node_tree(est.tree_, est.tree_.value[:, 0, 0], 0) for est in estimators]
        objective, num_class = "regression", 1
    divisor = float(len(estimators)) if name in _FORESTS else 1.0
    return assemble(
        trees,
        _names(model),
        num_class,
        objective,
        "sklearn",
        divisor=divisor,
        float32_input=True,
        base_score=np.zeros(num_class),
    )


def _read_boosted(model: Any, classifier: bool) -> TreeEnsemble:
    if model.init is not None and model.init != "zero":
        raise ValueError("a custom init estimator's raw prediction varies by row; the tree engine cannot add it")
    if model.init_ == "zero":
        base = np.zeros(model.estimators_.shape[1])
    else:
        probe = np.zeros((1, model.n_features_in_), dtype=np.float32)
        base = np.asarray(model._raw_predict_init(probe), dtype=np.float64)[0]
    trees = [
        _node_tree(stage[k].tree_, stage[k].tree_.value[:, 0, 0], k, scale=model.learning_rate)
        for stage in model.estimators_
        for k in range(len(stage))
    ]
    if not classifier:
        objective = "regression"
    elif len(model.classes_) == 2:
        objective = "binary"
    else:
        objective = "multiclass"
    return assemble(trees, _names(model), len(base), objective, "sklearn", base_score=base, float32_input=True)
