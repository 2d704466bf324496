"""ICE values of partial dependence: ``float64[n_outputs, n_rows, *grid_shape]``.

The leading axis holds the outputs explained: one (a regressor, the positive class of a binary
classifier, or one chosen class), every class of a multiclass model, or every target of a
multi-output regressor. Tree models the engine reads go through the compiled tree walk, one feature's whole
grid per walk (:func:`~workbench.explain._pdp_trees.ice_raw`); other models are predicted on
stacked copies of ``X``, a few large ``predict`` calls instead of one per grid point.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _inputs
from .model_info import ModelInfo

if TYPE_CHECKING:  # the tree engine (and numba) loads only when a tree model is walked
    from ._trees import TreeEnsemble

_ROWS_PER_PREDICT = 1 << 18  # rows per predict call on stacked copies (generic models)


def select(out: np.ndarray, info: ModelInfo, cls: int | None, raw: bool) -> np.ndarray:
    """The explained outputs of ``(..., num_class)`` tree-engine scores, as a leading axis."""
    if info.task == "binary":
        col = out[..., -1]  # the positive class: LightGBM's one column, a forest's second
        if cls == 0:
            col = -col if raw else 1.0 - col
        return col[None]
    if info.task == "multiclass":
        return np.moveaxis(out, -1, 0) if cls is None else out[..., cls][None]
    return out[..., 0][None]


def model_space(ensemble: TreeEnsemble, X: pd.DataFrame | np.ndarray, pos: int, values: np.ndarray) -> np.ndarray:
    """Grid values as the model's ``predict`` sees them in column ``pos`` (category codes, casts)."""
    from ._trees import to_matrix

    if isinstance(X, pd.DataFrame):
        small = X.iloc[np.zeros(len(values), dtype=np.intp)].copy()
        set_column(small, pos, values, X.iloc[:, pos])
        return to_matrix(ensemble, small)[:, pos]
    cast = np.asarray(values).astype(X.dtype)
    return to_matrix(ensemble, np.broadcast_to(cast[:, None], (len(values), X.shape[1])).copy())[:, pos]


def tree_ice(
    ensemble: TreeEnsemble,
    X: pd.DataFrame | np.ndarray,
    positions: list[int],
    grids: list[np.ndarray],
    info: ModelInfo,
    cls: int | None,
    raw: bool,
    progress: bool,
) -> np.ndarray:
    """The tree walk sets the longest grid in one pass; the other features loop over their points."""
    from tqdm.auto import tqdm

    from ._pdp_trees import ice_output, ice_raw
    from ._trees import to_matrix

    M = to_matrix(ensemble, X)
    walked, column = _explained_trees(ensemble, info, cls)
    model_grids = [model_space(ensemble, X, p, g) for p, g in zip(positions, grids, strict=True)]
    sizes = [len(g) for g in grids]
    inner = int(np.argmax(sizes))
    outer = [j for j in range(len(sizes)) if j != inner]
    work = M.copy() if outer else M
    out: np.ndarray | None = None
    n_outer = int(np.prod([sizes[j] for j in outer]))
    passes = product(*[range(sizes[j]) for j in outer])
    if progress and n_outer > 1:  # one pass needs no bar (and not its cost)
        passes = tqdm(
            passes, total=n_outer, desc=f"partial dependence {'×'.join(map(str, sizes))}", leave=False, delay=0.5
        )
    for idx in passes:
        where: list[Any] = [slice(None), slice(None)] + [slice(None)] * len(sizes)
        for j, k in zip(outer, idx, strict=True):
            work[:, positions[j]] = model_grids[j][k]
            where[2 + j] = k
        scores = (ice_raw if raw else ice_output)(walked, work, positions[inner], model_grids[inner])
        if walked is not ensemble:  # the one output computed, in its column
            full = np.zeros((*scores.shape[:-1], ensemble.num_class))
            full[..., column] = scores[..., 0]
            scores = full
        block = select(scores, info, cls, raw)
        if not outer:  # one pass: its values are the result
            return np.ascontiguousarray(block)
        if out is None:
            out = np.empty((block.shape[0], M.shape[0], *sizes))
        out[tuple(where)] = block
    assert out is not None
    return out


def _explained_trees(ensemble: TreeEnsemble, info: ModelInfo, cls: int | None) -> tuple[TreeEnsemble, int]:
    """The trees to walk and the output column they give: when one column of a model whose outputs
    are transformed column by column is explained (a forest's positive class), that column's trees."""
    from ._trees import output_transform

    if ensemble.num_class == 1 or output_transform(ensemble) == "softmax":
        return ensemble, -1
    if info.task == "binary":
        return ensemble.one_output(ensemble.num_class - 1), ensemble.num_class - 1
    if info.task == "multiclass" and cls is not None:
        return ensemble.one_output(cls), cls
    return ensemble, -1


def set_column(frame: pd.DataFrame | np.ndarray, pos: int, values: np.ndarray, like: Any) -> None:
    """Write ``values`` into column ``pos``, keeping a pandas column's categories or boolean dtype."""
    if not isinstance(frame, pd.DataFrame):
        frame[:, pos] = values
        return
    dtype = like.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        frame.isetitem(pos, pd.Categorical(values, categories=like.cat.categories, ordered=like.cat.ordered))
    elif (
        pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
    ):
        frame.isetitem(pos, pd.Series(values, dtype=dtype, index=frame.index))
    else:
        frame.isetitem(pos, values)


def class_column(model: Any, info: ModelInfo, cls: int) -> int:
    """Position of the explained class in ``model.classes_`` (CVResult fold models know indices)."""
    classes = list(getattr(model, "classes_", range(info.n_classes)))
    for key in (info.classes[cls], cls):
        if key in classes:
            return classes.index(key)
    raise ValueError(f"class {info.classes[cls]!r} is not among this model's classes {classes}")


def _two_d(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(arr.shape[0], -1)


def response(model: Any, info: ModelInfo, cls: int | None, scale: str):
    """``predict(data) -> float64[n_rows, n_outputs]`` of the explained outputs."""
    if info.task == "regression":
        return lambda data: _two_d(model.predict(data))
    if scale != "raw" and hasattr(model, "predict_proba"):
        if cls is None:
            cols = [class_column(model, info, k) for k in range(info.n_classes)]
        else:
            cols = [class_column(model, info, cls)]
        return lambda data: np.asarray(model.predict_proba(data), dtype=np.float64)[:, cols]
    if not hasattr(model, "decision_function"):
        raise ValueError(
            f"{type(model).__name__} has no decision_function, so it has no raw scale; use scale='probability'"
        )

    def decision(data: Any) -> np.ndarray:
        scores = np.asarray(model.decision_function(data), dtype=np.float64)
        if scores.ndim == 1:
            return (-scores if cls == 0 else scores)[:, None]
        return scores if cls is None else scores[:, [cls]]

    return decision


def brute_ice(
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

    predict = response(model, info, cls, scale)
    n = X.shape[0]
    points = list(product(*[range(len(g)) for g in grids]))
    per_call = max(1, _ROWS_PER_PREDICT // n)
    out: np.ndarray | None = None
    originals = [_inputs.column(X, p) for p in positions]
    for start in tqdm(
        range(0, len(points), per_call), desc="partial dependence", disable=not progress, leave=False, delay=0.5
    ):
        batch = points[start : start + per_call]
        rows = np.tile(np.arange(n), len(batch))
        stacked = X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]
        for j, (pos, grid, like) in enumerate(zip(positions, grids, originals, strict=True)):
            set_column(stacked, pos, np.repeat(grid[[p[j] for p in batch]], n), like)
        pred = predict(stacked)
        if out is None:
            out = np.empty((pred.shape[1], n, len(points)))
        out[:, :, start : start + len(batch)] = pred.reshape(len(batch), n, -1).transpose(2, 1, 0)
    assert out is not None
    return out.reshape(out.shape[0], n, *[len(g) for g in grids])
