"""XGBoost models as a :class:`~workbench.explain._trees.TreeEnsemble`, from the JSON model.

XGBoost compares float32 features: ``x < split_condition`` goes left, which for float32 ``x`` is
``x <= `` the next float32 below the condition (the engine's rule); missing values follow
``default_left``. A categorical split sends the listed categories right. Margins start at the
intercept (``base_score``, turned into margin space by the objective's link: logit for logistic
objectives, log for count/gamma/tweedie, as given otherwise) and add leaf values in tree order,
rounded to float32 after every addition (``float32_sums``), as XGBoost's CPU predictor does.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ._read_common import NodeTree, assemble

if TYPE_CHECKING:
    from ._trees import TreeEnsemble

_LOGIT = ("binary:logistic", "reg:logistic", "binary:logitraw")
_LOG = ("count:poisson", "reg:gamma", "reg:tweedie")
_IDENTITY = (
    "reg:squarederror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
    "reg:quantileerror",
)
_OBJECTIVE = {"binary:logistic": "binary", "reg:logistic": "binary", "multi:softprob": "multiclass"}
_OBJECTIVE.update({name: "regression" for name in _IDENTITY + ("binary:logitraw",)})
_OBJECTIVE.update({name: "poisson" for name in _LOG})


def _booster(model: Any) -> Any:
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model
    if isinstance(model, xgb.XGBModel):
        return model.get_booster()  # raises NotFittedError when unfitted
    raise TypeError(f"expected an XGBoost model or Booster, got {type(model).__name__}")


def xgboost_stamp(model: Any) -> tuple[Any, ...]:
    """What the parse depends on: a digest of the booster's trees and parameters (its binary model,
    well under a millisecond for hundreds of trees) and the iteration ``predict`` stops at.

    Refitting, training on (``Booster.update``) or loading another model into the same object all
    change it, so a cached parse is never reused for other trees.
    """
    booster = _booster(model)
    digest = hashlib.blake2b(booster.save_raw("ubj"), digest_size=16).digest()
    return digest, getattr(model, "best_iteration", None) if hasattr(model, "get_booster") else None


def _logf(x: np.ndarray) -> np.ndarray:
    """The C library's correctly rounded float32 log (NumPy's float32 log may differ in the last bit)."""
    return np.log(np.asarray(x, dtype=np.float32).astype(np.float64)).astype(np.float32)


def _base_margin(objective: str, base_score: np.ndarray) -> np.ndarray:
    one = np.float32(1.0)
    if objective in ("binary:logistic", "reg:logistic"):
        return -_logf(one / base_score - one)
    if objective in _LOG:
        return _logf(base_score)
    return base_score


def _node_tree(tree: dict[str, Any], output: int) -> NodeTree:
    left = np.asarray(tree["left_children"], dtype=np.int64)
    cond = np.asarray(tree["split_conditions"], dtype=np.float32)
    below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)  # x < c  <=>  x <= below
    categories: dict[int, np.ndarray] = {}
    split_type = np.asarray(tree.get("split_type", [0] * len(left)))
    if (split_type == 1).any():
        cats = np.asarray(tree["categories"], dtype=np.int64)
        n_words = int(cats.max(initial=0)) // 32 + 2
        for node, start, size in zip(
            tree["categories_nodes"], tree["categories_segments"], tree["categories_sizes"], strict=True
        ):
            goes_left = np.ones(n_words * 32, dtype=bool)
            goes_left[cats[start : start + size]] = False  # listed categories go right
            bits = np.packbits(goes_left.reshape(-1, 32)[:, ::-1], axis=1).view(">u4").ravel()
            categories[int(node)] = bits.astype(np.uint32)
    return NodeTree(
        left=left,
        right=np.asarray(tree["right_children"], dtype=np.int64),
        feature=np.asarray(tree["split_indices"], dtype=np.int64),
        threshold=below,
        default_left=np.asarray(tree["default_left"], dtype=bool),
        value=cond.astype(np.float64),  # at leaves the condition field holds the leaf value
        count=np.asarray(tree["sum_hessian"], dtype=np.float64),
        output=output,
        categories=categories,
    )


def read_xgboost(model: Any) -> TreeEnsemble:
    """A fitted XGBoost model as the engine's arrays; ValueError with the reason if not readable."""
    booster = _booster(model)
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    if objective not in _OBJECTIVE:
        raise ValueError(f"XGBoost objective {objective!r} is not reproduced by the tree engine")
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise ValueError(f"XGBoost booster {gb.get('name')!r} is not read by the tree engine (gbtree only)")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) > 1:
        raise ValueError("multi-target XGBoost models are not read by the tree engine")
    base = np.asarray(json.loads(params["base_score"].replace("E", "e")), dtype=np.float32).ravel()
    num_class = max(1, int(params.get("num_class", "0")))
    margin = np.broadcast_to(_base_margin(objective, base), (num_class,)).astype(np.float32)
    trees = gb["model"]["trees"]
    info = gb["model"]["tree_info"]
    best = getattr(model, "best_iteration", None)
    if best is not None and hasattr(model, "get_booster"):  # XGBModel.predict stops at the best iteration
        stop = int(np.asarray(gb["model"]["iteration_indptr"])[best + 1])
        trees, info = trees[:stop], info[:stop]
    if not np.array_equal(np.asarray(info), np.arange(len(info)) % num_class):
        raise ValueError("XGBoost trees are not one per class in turn (num_parallel_tree > 1?); not read by the engine")
    node_trees = [_node_tree(tree, int(group)) for tree, group in zip(trees, info, strict=True)]
    names = booster.feature_names or [f"f{i}" for i in range(int(params["num_feature"]))]
    return assemble(
        node_trees,
        list(names),
        num_class,
        _OBJECTIVE[objective],
        "xgboost",
        base_score=margin.astype(np.float64),
        float32_sums=True,
        float32_input=True,
    )
