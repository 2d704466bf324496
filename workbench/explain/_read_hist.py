"""scikit-learn's ``HistGradientBoosting*`` as a :class:`~workbench.explain._trees.TreeEnsemble`.

The fitted predictors hold thresholds on raw values (``num_threshold``), so a numeric split sends
``x <= threshold`` left and NaN the ``missing_go_to_left`` way, in float64, as the engine does.
Categorical features are first encoded by the model's own preprocessor (an ``OrdinalEncoder``
that also puts them first: the reader maps the predictors' feature numbers back to the columns of
``X``). scikit-learn then sends a code left when it is in the split's bitset, right when it is a
known category, and the missing-value way otherwise (NaN, negative, unknown); the reader folds
those three cases into one bitset per split, with NaN and out-of-range codes mapped to the code
:data:`MISSING_CODE` by :class:`HistInput`. Raw scores start at ``_baseline_prediction`` and add
each iteration's trees in order in float64 (``_raw_predict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._read_common import NodeTree, assemble

if TYPE_CHECKING:
    from ._trees import TreeEnsemble

SUPPORTED = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
MISSING_CODE = 256  # NaN, negative or out-of-range category codes (a uint8 code is 0..255)
_WORDS = MISSING_CODE // 32 + 1
_IDENTITY_LOSSES = ("squared_error", "absolute_error", "quantile")
_LOG_LOSSES = ("poisson", "gamma")


@dataclass(frozen=True)
class HistInput:
    """``X`` as the engine's matrix: the model's preprocessor, its columns put back in ``X``'s order.

    Holds the fitted preprocessor (not the model), so an ensemble cached per model does not keep
    the model alive.
    """

    preprocessor: Any  # the fitted ColumnTransformer, or None when no feature is categorical
    source: np.ndarray  # int64[n_features]: the X column of each preprocessed column
    categorical: np.ndarray  # int64: the preprocessed positions of categorical features

    def __call__(self, X: Any) -> np.ndarray:
        from sklearn.utils import check_array

        if self.preprocessor is None:
            P = check_array(X, dtype=np.float64, ensure_all_finite=False, ensure_min_samples=0)
        else:
            P = np.asarray(self.preprocessor.transform(X), dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != len(self.source):
            raise ValueError(f"X has shape {P.shape} but the model was trained on {len(self.source)} features")
        M = np.empty_like(P, order="C")
        M[:, self.source] = P
        for j in self.categorical:
            col = M[:, self.source[j]]
            bad = ~((col >= 0) & (col < MISSING_CODE))  # NaN included
            col[bad] = MISSING_CODE
            col[~bad] = np.trunc(col[~bad])  # scikit-learn casts the code to uint8
        return M


def _bits(codes: np.ndarray) -> np.ndarray:
    """uint32 words with the bits of ``codes`` set (bit ``c % 32`` of word ``c // 32``)."""
    words = np.zeros(_WORDS, dtype=np.uint32)
    for c in codes:
        words[c // 32] |= np.uint32(1) << np.uint32(c % 32)
    return words


def _unpack(words: np.ndarray) -> np.ndarray:
    """The bits of 8 uint32 words as bool[256]."""
    flat = np.asarray(words, dtype=np.uint32)
    return ((flat[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(bool).ravel()


def _node_tree(predictor: Any, source: np.ndarray, known: np.ndarray, f_idx_map: np.ndarray, output: int) -> NodeTree:
    nodes = predictor.nodes
    is_leaf = nodes["is_leaf"].astype(bool)
    missing_left = nodes["missing_go_to_left"].astype(bool)
    categories: dict[int, np.ndarray] = {}
    for node in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~is_leaf):
        in_left = _unpack(predictor.raw_left_cat_bitsets[nodes["bitset_idx"][node]])
        is_known = _unpack(known[f_idx_map[nodes["feature_idx"][node]]])
        goes_left = in_left | (~is_known & missing_left[node])
        codes = np.flatnonzero(goes_left).tolist() + ([MISSING_CODE] if missing_left[node] else [])
        categories[int(node)] = _bits(np.asarray(codes, dtype=np.int64))
    return NodeTree(
        left=np.where(is_leaf, -1, nodes["left"].astype(np.int64)),
        right=np.where(is_leaf, -1, nodes["right"].astype(np.int64)),
        feature=source[nodes["feature_idx"].astype(np.int64)],
        threshold=nodes["num_threshold"].astype(np.float64),
        default_left=missing_left,
        value=nodes["value"].astype(np.float64),
        count=nodes["count"].astype(np.float64),
        output=output,
        categories=categories,
    )


def _objective(model: Any) -> str:
    if hasattr(model, "classes_"):
        return "binary" if len(model.classes_) == 2 else "multiclass"
    loss = model.loss if isinstance(model.loss, str) else type(model.loss).__name__
    if loss in _IDENTITY_LOSSES:
        return "regression"
    if loss in _LOG_LOSSES:
        return "poisson"  # an exp link, as the engine's poisson output
    raise ValueError(f"HistGradientBoostingRegressor loss {loss!r} is not reproduced by the tree engine")


def read_hist_gradient_boosting(model: Any) -> TreeEnsemble:
    """A fitted ``HistGradientBoosting*`` as the engine's arrays; ValueError with the reason if not readable."""
    name = type(model).__name__
    if name not in SUPPORTED:
        raise ValueError(f"{name} is not a HistGradientBoosting model")
    predictors = getattr(model, "_predictors", None)
    if predictors is None:
        raise ValueError(f"this {name} is not fitted yet; call fit before explaining it")
    objective = _objective(model)
    mask = getattr(model, "is_categorical_", None)
    n = model.n_features_in_
    if mask is None or model._preprocessor is None:
        source, categorical, preprocessor = np.arange(n), np.zeros(0, dtype=np.int64), None
    else:
        mask = np.asarray(mask, dtype=bool)
        source = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)]).astype(np.int64)
        categorical, preprocessor = np.arange(int(mask.sum()), dtype=np.int64), model._preprocessor
    known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    trees = [
        _node_tree(predictor, source, known, f_idx_map, k)
        for iteration in predictors
        for k, predictor in enumerate(iteration)
    ]
    names = getattr(model, "feature_names_in_", None)
    base = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    return assemble(
        trees,
        [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)],
        len(base),
        objective,
        "sklearn",
        base_score=base,
        prepare=HistInput(preprocessor, source, categorical),
    )
