"""CatBoost models as a :class:`~workbench.explain._trees.TreeEnsemble`, from the JSON model.

CatBoost's trees are oblivious: every node at depth ``l`` tests split ``l`` of the tree, and the
leaf is ``sum(bit_l << l)``. The reader unfolds each into a full binary tree (the last split at
the root; the ``1`` bit goes right). A float split's bit is ``x > border`` on ``x`` cast to float32
(``x <= border`` goes left, the engine's rule); NaN is below every border under nan mode
``Min`` ("AsFalse") and above under ``Max`` ("AsTrue"). A one-hot split's bit is "the category is
the split's value": CatBoost compares hashes of the category's text, so :class:`CatBoostInput`
learns which split value each category of ``X`` has by asking the model which leaves a probe row
reaches, and codes the category as that value's number (0: none of them). Splits on target
statistics of categories (CTRs) depend on tables the engine does not compute: such models are
not read. The raw score is the float64 sum of the trees' leaf values in order, then
``scale * sum + bias``; the bias is added as a last one-leaf tree per output, so the sum's order
is CatBoost's own. The engine reads the unfolded trees back as oblivious ones
(:mod:`workbench.explain._oblivious`): a permuted feature or a grid value changes only the bits
of the levels that test it.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._read_common import NodeTree, assemble

if TYPE_CHECKING:
    from ._trees import TreeEnsemble

_IDENTITY = ("RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile")
_OBJECTIVE = {"Logloss": "binary", "CrossEntropy": "binary", "MultiClass": "multiclass"}
_OBJECTIVE.update({name: "regression" for name in _IDENTITY})


def _model_json(model: Any) -> dict[str, Any]:
    if not model.is_fitted():
        raise ValueError(f"this {type(model).__name__} is not fitted yet; call fit before explaining it")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.json")
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def catboost_stamp(model: Any) -> tuple[Any, ...]:
    """What changes when the model is refitted: its tree count and model GUID (new at every fit)."""
    if not model.is_fitted():
        return (None,)
    return model.tree_count_, model.get_metadata().get("model_guid")


def _loss(model: Any, info: dict[str, Any]) -> str:
    params = info.get("params", {})
    loss = params.get("loss_function", {}).get("type") if isinstance(params, dict) else None
    if loss is None:
        loss = model.get_all_params().get("loss_function", "")
    return str(loss).split(":")[0]


class CatBoostInput:
    """``X`` as the engine's matrix: float features cast to float32, one-hot features coded.

    ``onehot[column]`` lists ``(tree, level, code)`` for every one-hot split on that column: a
    category whose probe row sets that level's bit in that tree has that code (0: none). Codes are
    learned once per category; the model is held weakly, so a cached ensemble does not keep it alive.
    """

    def __init__(
        self, model: Any, n_features: int, float_cols: list[int], onehot: dict[int, list[tuple[int, int, int]]]
    ) -> None:
        self._model = weakref.ref(model)
        self.n_features = n_features
        self.float_cols = float_cols
        self.onehot = onehot
        self._codes: dict[int, dict[Any, int]] = {c: {} for c in onehot}

    def __call__(self, X: Any) -> np.ndarray:
        if len(self.float_cols) == self.n_features and not isinstance(X, pd.DataFrame):
            arr = np.asarray(X, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != self.n_features:
                raise ValueError(f"X has shape {arr.shape} but the model was trained on {self.n_features} features")
            return np.ascontiguousarray(arr, dtype=np.float64)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        if frame.ndim != 2 or frame.shape[1] != self.n_features:
            raise ValueError(f"X has {frame.shape[1]} columns but the model was trained on {self.n_features}")
        M = np.zeros(frame.shape, dtype=np.float64)
        for c in self.float_cols:
            M[:, c] = pd.to_numeric(frame.iloc[:, c]).to_numpy(dtype=np.float32, na_value=np.nan)
        for c, splits in self.onehot.items():
            values = frame.iloc[:, c].astype(object).to_numpy()
            codes = self._codes[c]
            new = [v for v in pd.unique(values) if v not in codes]
            if new:
                codes.update(zip(new, self._learn(X, c, new, splits), strict=True))
            M[:, c] = [codes[v] for v in values]
        return M

    def _learn(self, X: Any, column: int, values: list[Any], splits: list[tuple[int, int, int]]) -> list[int]:
        """Each value's code, from the leaves a probe row with that value reaches."""
        model = self._model()
        if model is None:
            raise ValueError("the CatBoost model this ensemble was read from is gone")
        first = np.zeros(len(values), dtype=np.intp)
        if isinstance(X, pd.DataFrame):
            probe = X.iloc[first].copy()
            if isinstance(probe.iloc[:, column].dtype, pd.CategoricalDtype):
                probe.isetitem(column, pd.Series(values, index=probe.index, dtype=object))
            else:
                probe.isetitem(column, pd.Series(values, index=probe.index, dtype=probe.iloc[:, column].dtype))
        else:
            probe = np.asarray(X, dtype=object)[first].copy()
            probe[:, column] = values
        leaves = np.asarray(model.calc_leaf_indexes(probe), dtype=np.int64).reshape(len(values), -1)
        codes = np.zeros(len(values), dtype=np.int64)
        for tree, level, code in splits:
            codes[(leaves[:, tree] >> level) & 1 == 1] = code
        return codes.tolist()


_Level = tuple[int, float, bool, "np.ndarray | None"]  # feature, border, NaN goes left, one-hot bitset


def _unfold(tree: dict[str, Any], dim: int, levels: list[_Level]) -> list[NodeTree]:
    """One oblivious tree as ``dim`` node trees (one per output).

    The last split is at the root, as CatBoost's leaf index reads (its most significant bit):
    node ``i`` at depth ``l`` tests split ``depth - 1 - l``, its children are ``2i+1`` (bit 0) and
    ``2i+2`` (bit 1), and the leaves in heap order are CatBoost's leaves in index order. The order
    matters only to the weighted walks (recursion, TreeSHAP), which then match CatBoost's.
    """
    depth = len(levels)
    n_internal = (1 << depth) - 1
    n = n_internal + (1 << depth)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    feature = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n, dtype=np.float64)
    default_left = np.zeros(n, dtype=bool)
    categories: dict[int, np.ndarray] = {}
    for i in range(n_internal):
        f, border, nan_left, bits = levels[depth - (i + 1).bit_length()]
        left[i], right[i], feature[i], threshold[i], default_left[i] = 2 * i + 1, 2 * i + 2, f, border, nan_left
        if bits is not None:
            categories[i] = bits
    values = np.asarray(tree["leaf_values"], dtype=np.float64).reshape(1 << depth, dim)
    count = np.zeros(n, dtype=np.float64)
    count[n_internal:] = np.asarray(tree.get("leaf_weights") or np.ones(1 << depth), dtype=np.float64)
    for i in range(n_internal - 1, -1, -1):
        count[i] = count[2 * i + 1] + count[2 * i + 2]
    out = []
    for k in range(dim):
        value = np.zeros(n, dtype=np.float64)
        value[n_internal:] = values[:, k]
        out.append(NodeTree(left, right, feature, threshold, default_left, value, count, k, dict(categories)))
    return out


def _bits(codes: list[int]) -> np.ndarray:
    words = np.zeros(max(codes, default=0) // 32 + 1, dtype=np.uint32)
    for c in codes:
        words[c // 32] |= np.uint32(1) << np.uint32(c % 32)
    return words


def _levels(
    model_json: dict[str, Any],
) -> tuple[list[list[_Level]], dict[int, list[tuple[int, int, int]]], list[int], int]:
    """Per tree, its levels; the one-hot probe layout per column; the float columns; the column count."""
    info = model_json["features_info"]
    floats = {f["feature_index"]: f for f in info.get("float_features", [])}
    cats = {f["feature_index"]: f for f in info.get("categorical_features", [])}
    for key in ("text_features", "embedding_features"):
        if info.get(key):
            raise ValueError(f"CatBoost {key.replace('_', ' ')} are not read by the tree engine")
    n_features = 1 + max([f["flat_feature_index"] for f in (*floats.values(), *cats.values())], default=-1)
    trees = model_json.get("oblivious_trees")
    if trees is None:
        raise ValueError("only CatBoost's oblivious (symmetric) trees are read by the tree engine")
    hashes: dict[int, list[int]] = {}  # column -> its one-hot split values, in first-seen order
    for tree in trees:
        for split in tree["splits"]:
            kind = split["split_type"]
            if kind == "OneHotFeature":
                column = cats[split["cat_feature_index"]]["flat_feature_index"]
                hashes.setdefault(column, [])
                if split["value"] not in hashes[column]:
                    hashes[column].append(split["value"])
            elif kind != "FloatFeature":
                raise ValueError(
                    f"CatBoost {kind} splits (target statistics of categorical features) are not read by the tree "
                    "engine; set one_hot_max_size above the categories' count to make them one-hot splits"
                )
    levels_per_tree: list[list[_Level]] = []
    onehot: dict[int, list[tuple[int, int, int]]] = {c: [] for c in hashes}
    for t, tree in enumerate(trees):
        levels: list[_Level] = []
        for level, split in enumerate(tree["splits"]):
            if split["split_type"] == "FloatFeature":
                feature = floats[split["float_feature_index"]]
                nan_left = feature.get("nan_value_treatment", "AsIs") != "AsTrue"
                levels.append((feature["flat_feature_index"], float(np.float32(split["border"])), nan_left, None))
            else:
                column = cats[split["cat_feature_index"]]["flat_feature_index"]
                code = 1 + hashes[column].index(split["value"])
                onehot[column].append((t, level, code))
                others = [c for c in range(len(hashes[column]) + 1) if c != code]
                levels.append((column, 0.0, False, _bits(others)))
        levels_per_tree.append(levels)
    float_cols = [f["flat_feature_index"] for f in floats.values()]
    return levels_per_tree, onehot, float_cols, n_features


def read_catboost(model: Any) -> TreeEnsemble:
    """A fitted CatBoost model as the engine's arrays; ValueError with the reason if not readable."""
    model_json = _model_json(model)
    loss = _loss(model, model_json.get("model_info", {}))
    if loss not in _OBJECTIVE:
        raise ValueError(f"CatBoost loss {loss!r} is not reproduced by the tree engine")
    scale, bias = model_json.get("scale_and_bias", [1.0, [0.0]])
    if scale != 1.0:
        raise ValueError(f"this CatBoost model scales its sum of trees by {scale} (sum_models?); not read exactly")
    bias = np.atleast_1d(np.asarray(bias, dtype=np.float64))
    levels_per_tree, onehot, float_cols, n_features = _levels(model_json)
    trees = model_json["oblivious_trees"]
    dim = len(trees[0]["leaf_values"]) >> len(trees[0]["splits"]) if trees else len(bias)
    node_trees = [nt for tree, levels in zip(trees, levels_per_tree, strict=True) for nt in _unfold(tree, dim, levels)]
    if bias.any():  # added after the trees, as CatBoost adds it
        node_trees += _bias_trees(np.broadcast_to(bias, (dim,)))
    names = list(model.feature_names_ or [f"x{i}" for i in range(n_features)])
    return assemble(
        node_trees,
        names,
        dim,
        _OBJECTIVE[loss],
        "catboost",
        base_score=np.zeros(dim),
        float32_input=True,
        prepare=CatBoostInput(model, n_features, float_cols, onehot),
        compare=same_output,
    )


def same_output(method: str, ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Whether CatBoost's output of ``method`` is ours: bit for bit, but for two differences of form.

    A multiclass model's ``predict`` gives its labels as one column, and its ``predict_proba``
    uses CatBoost's own vectorised exp in the softmax: equal to 1e-12, not bit for bit.
    """
    if method == "predict" and theirs.ndim == 2 and theirs.shape[1] == 1:
        theirs = theirs[:, 0]
    if method == "predict_proba" and ours.ndim == 2 and ours.shape[1] > 2:
        return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, rtol=1e-12, atol=0.0))
    return np.array_equal(ours, theirs)


def _bias_trees(bias: np.ndarray) -> list[NodeTree]:
    one = np.ones(1)
    return [
        NodeTree(
            -one.astype(np.int64),
            -one.astype(np.int64),
            np.zeros(1, np.int64),
            np.zeros(1),
            np.zeros(1, bool),
            np.full(1, b),
            one,
            k,
        )
        for k, b in enumerate(bias)
    ]
