"""LightGBM tree ensembles as flat arrays, with compiled traversal that matches LightGBM exactly.

A fitted model (``LGBMModel`` or ``Booster``) is parsed from its text dump, restricted to the
iterations its ``predict`` uses (``best_iteration_`` after early stopping). Node layout: internal
nodes are numbered globally across trees; a child code ``c >= 0`` is internal node ``c``, ``c < 0``
is leaf ``~c`` (global leaf numbering). Decisions replicate LightGBM's C++ ``NumericalDecision`` /
``CategoricalDecision`` (missing types None/Zero/NaN, default direction, category bitsets), and raw
scores are summed in tree order in float64 as LightGBM does, so results agree bit for bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numba
import numpy as np
import pandas as pd

from ._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()  # before the first kernel below: numba picks the cache folder at decoration

MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class TreeEnsemble:
    """Flat arrays of a LightGBM model (see module docstring for the layout)."""

    feature_names: list[str]
    num_class: int
    objective: str
    sigmoid: float
    root: np.ndarray  # int64[n_trees]: child code of each tree's root
    tree_class: np.ndarray  # int64[n_trees]: output column of each tree
    split_feature: np.ndarray  # int64[n_nodes]
    threshold: np.ndarray  # float64[n_nodes]
    is_categorical: np.ndarray  # bool[n_nodes]
    default_left: np.ndarray  # bool[n_nodes]
    missing_type: np.ndarray  # int8[n_nodes]
    left: np.ndarray  # int64[n_nodes], child codes
    right: np.ndarray  # int64[n_nodes]
    cat_start: np.ndarray  # int64[n_nodes]: offset of the node's bitset in cat_words (-1 if numeric)
    cat_len: np.ndarray  # int64[n_nodes]: bitset length in 32-bit words
    cat_words: np.ndarray  # uint32[...]
    node_count: np.ndarray  # float64[n_nodes]: training rows through the node
    node_tree: np.ndarray  # int64[n_nodes]
    leaf_value: np.ndarray  # float64[n_leaves]
    leaf_count: np.ndarray  # float64[n_leaves]
    leaf_tree: np.ndarray  # int64[n_leaves]
    pandas_categorical: list[list[Any]] | None = None
    categorical_features: tuple[int, ...] = field(default=())
    # How raw scores are formed from leaf values, for libraries other than LightGBM (whose raw score
    # is the plain float64 sum): the sum starts at ``base_score`` (float64[num_class]; e.g. an
    # init estimator's raw prediction), is divided by ``divisor`` after (averaging forests), and is
    # rounded to float32 after every addition when ``float32_sums`` (XGBoost's accumulator).
    base_score: np.ndarray | None = None
    divisor: float = 1.0
    float32_sums: bool = False
    float32_input: bool = False  # the library compares X cast to float32 (scikit-learn, XGBoost)
    library: str = "lightgbm"
    # The library's own input transform, X -> the engine's float64 matrix (HistGradientBoosting's
    # preprocessor, CatBoost's categorical codes); None: the casts of :func:`to_matrix`.
    prepare: Callable[[Any], np.ndarray] | None = None
    # How the library's own output of a predict method is compared with ours, (method, ours, theirs)
    # -> equal; None: bit for bit (CatBoost's: its label column, its softmax's own exp).
    compare: Callable[[str, np.ndarray, np.ndarray], bool] | None = None

    @property
    def sums_like_lightgbm(self) -> bool:
        """Whether raw scores are the plain float64 sum from zero (what every kernel assumes)."""
        return self.base_score is None and self.divisor == 1.0 and not self.float32_sums

    @property
    def n_trees(self) -> int:
        return len(self.root)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def one_output(self, k: int) -> TreeEnsemble:
        """The trees adding to output ``k`` alone, as a one-output ensemble (nodes and leaves shared).

        Its raw score is output ``k``'s, summed in the same order; for a transform that works per
        column (not softmax) so is its output.
        """
        trees = np.flatnonzero(self.tree_class == k)
        base = None if self.base_score is None else np.asarray(self.base_score, dtype=np.float64)[k : k + 1]
        return replace(
            self, num_class=1, root=self.root[trees], tree_class=np.zeros(len(trees), dtype=np.int64), base_score=base
        )

    def trees_using(self, feature: int) -> np.ndarray:
        """Indices of the trees with at least one split on ``feature``."""
        return np.unique(self.node_tree[self.split_feature == feature])


def _booster_and_iterations(model: Any) -> tuple[Any, int | None]:
    import lightgbm as lgb

    if isinstance(model, lgb.Booster):
        # Booster.predict uses the early-stopping iteration when there is one; so do we.
        best = getattr(model, "best_iteration", 0)
        return model, best if best and best > 0 else None
    if isinstance(model, lgb.LGBMModel):
        if getattr(model, "_Booster", None) is None:
            raise ValueError(f"this {type(model).__name__} is not fitted yet; call fit before explaining it")
        best = getattr(model, "best_iteration_", None)
        return model.booster_, best if best and best > 0 else None
    raise TypeError(f"expected a LightGBM model or Booster, got {type(model).__name__}")


def _parse_header(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        if line.startswith("Tree="):
            break
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def _array(block: dict[str, str], key: str, dtype: Any) -> np.ndarray:
    text = block.get(key, "").strip()
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


def parse_lightgbm(model: Any) -> TreeEnsemble:
    """Parse a fitted LightGBM model into a :class:`TreeEnsemble` (the iterations ``predict`` uses)."""
    booster, num_iteration = _booster_and_iterations(model)
    text = booster.model_to_string(num_iteration=num_iteration if num_iteration is not None else -1)
    header = _parse_header(text.splitlines())
    num_class = int(header.get("num_class", "1"))
    objective_parts = header.get("objective", "regression").split()
    objective = objective_parts[0]
    sigmoid = 1.0
    for part in objective_parts[1:]:
        if part.startswith("sigmoid:"):
            sigmoid = float(part.split(":", 1)[1])
    feature_names = header.get("feature_names", "").split()
    per_iteration = int(header.get("num_tree_per_iteration", "1"))

    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = {}
            blocks.append(current)
        elif line.startswith("end of trees"):
            break
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key] = value

    split_feature, threshold, dtype_, left, right, cat_start, cat_len, node_count, node_tree = ([] for _ in range(9))
    leaf_value, leaf_count, leaf_tree, cat_words, roots = [], [], [], [], []
    node_base = leaf_base = word_base = 0
    for t, block in enumerate(blocks):
        if block.get("is_linear", "0").strip() not in ("0", ""):
            raise ValueError("linear trees (linear_tree=True) are not supported by the tree engine")
        n_leaves = int(block["num_leaves"])
        values = _array(block, "leaf_value", np.float64)
        counts = _array(block, "leaf_count", np.float64)
        leaf_value.append(values)
        leaf_count.append(counts if counts.size else np.zeros(n_leaves))
        leaf_tree.append(np.full(n_leaves, t, dtype=np.int64))
        if n_leaves == 1:
            roots.append(~leaf_base)
        else:
            n_nodes = n_leaves - 1
            lc = _array(block, "left_child", np.int64)
            rc = _array(block, "right_child", np.int64)
            left.append(np.where(lc >= 0, lc + node_base, ~(~lc + leaf_base)))
            right.append(np.where(rc >= 0, rc + node_base, ~(~rc + leaf_base)))
            dt = _array(block, "decision_type", np.int64)
            thr = _array(block, "threshold", np.float64)
            categorical = (dt & 1).astype(bool)
            starts = np.full(n_nodes, -1, dtype=np.int64)
            lens = np.zeros(n_nodes, dtype=np.int64)
            if categorical.any():
                bounds = _array(block, "cat_boundaries", np.int64)
                words = _array(block, "cat_threshold", np.uint64).astype(np.uint32)
                idx = thr[categorical].astype(np.int64)
                starts[categorical] = bounds[idx] + word_base
                lens[categorical] = bounds[idx + 1] - bounds[idx]
                cat_words.append(words)
                word_base += len(words)
            split_feature.append(_array(block, "split_feature", np.int64))
            threshold.append(thr)
            dtype_.append(dt)
            cat_start.append(starts)
            cat_len.append(lens)
            counts_internal = _array(block, "internal_count", np.float64)
            node_count.append(counts_internal if counts_internal.size else np.zeros(n_nodes))
            node_tree.append(np.full(n_nodes, t, dtype=np.int64))
            roots.append(node_base)
            node_base += n_nodes
        leaf_base += n_leaves

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    dt_all = cat(dtype_, np.int64)
    pandas_categorical = None
    marker = "pandas_categorical:"
    pos = text.rfind(marker)
    if pos >= 0:
        pandas_categorical = json.loads(text[pos + len(marker) :].splitlines()[0])
    split_all = cat(split_feature, np.int64)
    is_cat = (dt_all & 1).astype(bool)
    return TreeEnsemble(
        feature_names=feature_names,
        num_class=num_class,
        objective=objective,
        sigmoid=sigmoid,
        root=np.asarray(roots, dtype=np.int64),
        tree_class=np.arange(len(blocks), dtype=np.int64) % per_iteration,
        split_feature=split_all,
        threshold=cat(threshold, np.float64),
        is_categorical=is_cat,
        default_left=((dt_all >> 1) & 1).astype(bool),
        missing_type=((dt_all >> 2) & 3).astype(np.int8),
        left=cat(left, np.int64),
        right=cat(right, np.int64),
        cat_start=cat(cat_start, np.int64),
        cat_len=cat(cat_len, np.int64),
        cat_words=cat(cat_words, np.uint32),
        node_count=cat(node_count, np.float64),
        node_tree=cat(node_tree, np.int64),
        leaf_value=cat(leaf_value, np.float64),
        leaf_count=cat(leaf_count, np.float64),
        leaf_tree=cat(leaf_tree, np.int64),
        pandas_categorical=pandas_categorical,
        categorical_features=tuple(sorted(set(split_all[is_cat].tolist()))),
    )


def to_matrix(ensemble: TreeEnsemble, X: Any) -> np.ndarray:
    """The float64 matrix LightGBM's ``predict`` would see for ``X``.

    pandas ``category`` columns become codes under the training categories (unseen → NaN), and
    dtypes are cast the way LightGBM casts them (e.g. non-float NumPy input goes through float32).
    """
    if ensemble.prepare is not None:
        return ensemble.prepare(X)
    if ensemble.float32_input:
        return _float32_matrix(ensemble, X)
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != ensemble.n_features:
            raise ValueError(f"X has {X.shape[1]} columns but the model was trained on {ensemble.n_features}")
        data = X.copy(deep=False)
        cat_cols = [c for c in data.columns if isinstance(data[c].dtype, pd.CategoricalDtype)]
        if cat_cols:
            categories = ensemble.pandas_categorical or []
            if len(categories) != len(cat_cols):
                raise ValueError(
                    f"X has {len(cat_cols)} category columns but the model was trained with {len(categories)}; "
                    "pass the features with the dtypes used in training"
                )
            for col, cats in zip(cat_cols, categories, strict=True):
                if list(data[col].cat.categories) != list(cats):
                    data[col] = data[col].cat.set_categories(cats)
            data[cat_cols] = data[cat_cols].apply(lambda s: s.cat.codes).replace({-1: np.nan})
        dtypes = [d.type for d in data.dtypes] + [np.float32]
        target = np.result_type(*dtypes)
        try:
            matrix = data.to_numpy(dtype=target)
        except (TypeError, ValueError):
            matrix = data.to_numpy(dtype=target, na_value=np.nan)
        return np.ascontiguousarray(matrix, dtype=np.float64)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be two-dimensional, got shape {arr.shape}")
    if arr.shape[1] != ensemble.n_features:
        raise ValueError(f"X has {arr.shape[1]} columns but the model was trained on {ensemble.n_features}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr, dtype=np.float64)


def _float32_matrix(ensemble: TreeEnsemble, X: Any) -> np.ndarray:
    """``X`` as the float32 values the library compares, held exactly in float64."""
    if isinstance(X, pd.DataFrame):
        data = X.copy(deep=False)
        for col in data.columns:
            if isinstance(data[col].dtype, pd.CategoricalDtype):
                data[col] = data[col].cat.codes.replace({-1: np.nan})
        arr = data.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        arr = np.asarray(X, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != ensemble.n_features:
        raise ValueError(f"X has shape {arr.shape} but the model was trained on {ensemble.n_features} features")
    return np.ascontiguousarray(arr, dtype=np.float64)


@numba.njit(cache=True, inline="always")
def _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, node, fval):
    """LightGBM's decision at internal ``node`` for feature value ``fval``: True means left."""
    if e_cat[node]:
        if math.isnan(fval):
            return False
        code = int(fval)
        if code < 0:
            return False
        word = code // 32
        if word >= e_clen[node]:
            return False
        return (e_words[e_cstart[node] + word] >> np.uint32(code % 32)) & np.uint32(1) == np.uint32(1)
    missing = e_miss[node]
    if math.isnan(fval) and missing != 2:
        fval = 0.0
    if (missing == 1 and abs(fval) <= 1e-35) or (missing == 2 and math.isnan(fval)):
        return e_defl[node]
    return fval <= e_thr[node]


@numba.njit(cache=True)
def _leaf_of(e_feat, e_thr, e_cat, e_defl, e_miss, e_left, e_right, e_cstart, e_clen, e_words, root, row):
    node = root
    while node >= 0:
        if _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, node, row[e_feat[node]]):
            node = e_left[node]
        else:
            node = e_right[node]
    return ~node


@numba.njit(cache=True, parallel=True)
def _predict_leaves(e_feat, e_thr, e_cat, e_defl, e_miss, e_left, e_right, e_cstart, e_clen, e_words, roots, X):
    n, n_trees = X.shape[0], roots.shape[0]
    out = np.empty((n, n_trees), dtype=np.int64)
    block = 64  # rows walked tree by tree, so that a tree stays in cache for the block
    for b in numba.prange((n + block - 1) // block):
        i0 = b * block
        i1 = min(n, i0 + block)
        for t in range(n_trees):
            for i in range(i0, i1):
                out[i, t] = _leaf_of(
                    e_feat, e_thr, e_cat, e_defl, e_miss, e_left, e_right, e_cstart, e_clen, e_words, roots[t], X[i]
                )
    return out


def _node_arrays(e: TreeEnsemble) -> tuple[np.ndarray, ...]:
    return (
        e.split_feature,
        e.threshold,
        e.is_categorical,
        e.default_left,
        e.missing_type,
        e.left,
        e.right,
        e.cat_start,
        e.cat_len,
        e.cat_words,
    )


def predict_leaves(ensemble: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """Global leaf index reached by every row in every tree: ``int64[n_rows, n_trees]``."""
    return _predict_leaves(*_node_arrays(ensemble), ensemble.root, np.ascontiguousarray(X, dtype=np.float64))


@numba.njit(cache=True)
def _sum_leaves(leaves, leaf_value, tree_class, num_class):
    n, n_trees = leaves.shape
    out = np.zeros((n, num_class), dtype=np.float64)
    for i in range(n):
        for t in range(n_trees):
            out[i, tree_class[t]] += leaf_value[leaves[i, t]]
    return out


@numba.njit(cache=True)
def _sum_leaves_from(leaves, leaf_value, tree_class, base, float32_sums):
    n, n_trees = leaves.shape
    out = np.empty((n, base.shape[0]), dtype=np.float64)
    for i in range(n):
        for c in range(base.shape[0]):
            out[i, c] = base[c]
        for t in range(n_trees):
            c = tree_class[t]
            if float32_sums:
                out[i, c] = np.float32(np.float32(out[i, c]) + np.float32(leaf_value[leaves[i, t]]))
            else:
                out[i, c] += leaf_value[leaves[i, t]]
    return out


def predict_raw(ensemble: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """Raw scores ``float64[n_rows, num_class]``, summed in tree order as the model's library does."""
    from ._oblivious import fits, leaf_indices, oblivious_view

    e = ensemble
    view = oblivious_view(e)
    if fits(view, len(X)):  # oblivious trees: a leaf is the row's bits, one comparison per level
        leaves = view.leaf_base[None, :] + leaf_indices(view, e, X)
    else:
        leaves = predict_leaves(e, X)
    if e.sums_like_lightgbm:
        return _sum_leaves(leaves, e.leaf_value, e.tree_class, e.num_class)
    base = np.zeros(e.num_class) if e.base_score is None else np.asarray(e.base_score, dtype=np.float64)
    raw = _sum_leaves_from(leaves, e.leaf_value, e.tree_class, base, e.float32_sums)
    return raw if e.divisor == 1.0 else raw / e.divisor


# --- LightGBM's output transforms, bit for bit (numba's exp is the C library's, as in LightGBM) ---


@numba.njit(cache=True)
def _sigmoid(raw, scale):
    out = np.empty_like(raw)
    for i in range(raw.shape[0]):
        for c in range(raw.shape[1]):
            out[i, c] = 1.0 / (1.0 + math.exp(-scale * raw[i, c]))
    return out


@numba.njit(cache=True)
def _softmax(raw):
    n, k = raw.shape
    out = np.empty_like(raw)
    for i in range(n):
        w = raw[i, 0]
        for c in range(1, k):
            w = max(raw[i, c], w)
        s = 0.0
        for c in range(k):
            out[i, c] = math.exp(raw[i, c] - w)
            s += out[i, c]
        for c in range(k):
            out[i, c] /= s
    return out


@numba.njit(cache=True)
def _exp(raw):
    out = np.empty_like(raw)
    for i in range(raw.shape[0]):
        for c in range(raw.shape[1]):
            out[i, c] = math.exp(raw[i, c])
    return out


_IDENTITY = (
    "probability",  # averaged class proportions (scikit-learn forests)
    "regression",
    "regression_l2",
    "l2",
    "mean_squared_error",
    "mse",
    "regression_l1",
    "l1",
    "mean_absolute_error",
    "mae",
    "huber",
    "fair",
    "quantile",
    "mape",
    "mean_absolute_percentage_error",
)


def output_transform(ensemble: TreeEnsemble) -> str | None:
    """The transform LightGBM's ``predict`` applies to raw scores, or None if not reproduced here."""
    obj = ensemble.objective
    if obj in ("binary", "cross_entropy", "xentropy", "multiclassova", "multiclass_ova", "ova", "ovr"):
        return "sigmoid"
    if obj in ("multiclass", "softmax"):
        return "softmax"
    if obj in ("poisson", "gamma", "tweedie"):
        return "exp"
    if obj in _IDENTITY:
        return "identity"
    return None


@numba.njit(cache=True)
def _float32_transform(raw, kind):
    """XGBoost's output transforms in float32, with the C library's ``expf`` as XGBoost calls it
    (``kind``: 1 sigmoid, 2 softmax with a double sum, 3 exp, else identity)."""
    n, k = raw.shape
    out = np.empty((n, k), dtype=np.float64)
    one = np.float32(1.0)
    for i in range(n):
        if kind == 2:
            w = np.float32(raw[i, 0])
            for c in range(1, k):
                w = max(np.float32(raw[i, c]), w)
            total = 0.0
            for c in range(k):
                e = math.exp(np.float32(raw[i, c]) - w)
                out[i, c] = e
                total += e
            scale = np.float32(total)
            for c in range(k):
                out[i, c] = np.float32(out[i, c]) / scale
            continue
        for c in range(k):
            x = np.float32(raw[i, c])
            if kind == 1:
                out[i, c] = one / (math.exp(-x) + one)
            elif kind == 3:
                out[i, c] = math.exp(x)
            else:
                out[i, c] = x
    return out


_FLOAT32_KIND = {"sigmoid": 1, "softmax": 2, "exp": 3}


def _float32_output(kind: str | None, raw: np.ndarray) -> np.ndarray:
    """XGBoost's transforms, in float32 as its predictor computes them."""
    return _float32_transform(raw, _FLOAT32_KIND.get(kind or "", 0))


def sigmoid_scale(ensemble: TreeEnsemble) -> float | None:
    """The scale of the sigmoid :func:`raw_to_output` applies (``1 / (1 + exp(-scale * raw))``), or
    None where its transform is another one (or XGBoost's float32 one)."""
    if ensemble.library == "xgboost" or output_transform(ensemble) != "sigmoid":
        return None
    return ensemble.sigmoid if ensemble.objective not in ("cross_entropy", "xentropy") else 1.0


def raw_to_output(ensemble: TreeEnsemble, raw: np.ndarray) -> np.ndarray:
    """Raw scores ``(n, num_class)`` to ``predict``'s output (probabilities, exp, ...), bit-identical
    to LightGBM; objectives whose transform is not reproduced (:func:`output_transform` is None)
    are returned raw."""
    kind = output_transform(ensemble)
    raw = np.ascontiguousarray(raw, dtype=np.float64)
    if ensemble.library == "xgboost":
        return _float32_output(kind, raw)
    if ensemble.library == "sklearn" and kind == "exp":  # HistGradientBoosting's log link: NumPy's exp
        return np.exp(raw)
    if kind == "sigmoid":
        return _sigmoid(raw, sigmoid_scale(ensemble))
    if kind == "softmax":
        return _softmax(raw)
    if kind == "exp":
        return _exp(raw)
    return raw.copy()
