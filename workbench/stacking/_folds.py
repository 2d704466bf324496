"""One fold assignment for the whole stack, and the rows and folds each level trains on."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import FoldIds, as_folds, fold_splits


def stack_folds(folds: Any, n: int, X: Any, y: np.ndarray, groups: Any, task: str, random_state: int) -> FoldIds:
    """Turn any fold description into fold numbers per row that every level can reuse.

    An integer makes that many folds (grouped when ``groups`` is given, stratified for
    classification, shuffled K-fold for regression). Splitters and ``(train, val)`` pairs must
    either partition the rows (each validated once, trained on all the others: K-fold, group,
    stratified...) or chain forward in time (``TimeSeriesSplit`` without gap or size cap).
    """
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        return as_folds(folds, y, groups=groups, random_state=random_state, task=task)
    splits, fold_of_row = fold_splits(folds, n, X, y, groups)
    kind = getattr(folds, "kind", None)
    everything = np.arange(n)
    partition = all(np.array_equal(np.sort(train), np.setdiff1d(everything, val)) for train, val in splits)
    if partition and (fold_of_row >= 0).all():
        return FoldIds(fold_of_row, kind if kind in ("stratified", "kfold", "group") else "kfold")
    forward = all(
        np.array_equal(np.sort(train), np.flatnonzero(fold_of_row < k)) for k, (train, _) in enumerate(splits)
    )
    if forward:
        return FoldIds(fold_of_row, "time")
    raise ValueError(
        "these folds cannot be reused level after level: each split must either train on all rows outside its "
        "validation fold (K-fold, group, stratified) or on all rows before it (forward-chaining time folds). "
        "TimeSeriesSplit with gap or max_train_size, and repeated or shuffle splits, do neither; use "
        "make_folds(kind='time') or a K-fold splitter"
    )


def level_folds(folds: FoldIds, complete: np.ndarray, level: int) -> tuple[np.ndarray, FoldIds]:
    """Rows a level trains on (those with every input present) and their fold numbers.

    With time folds, the first validated block of the level below has no out-of-fold input
    before it, so it becomes this level's warm-up: each level loses one block.
    """
    rows = np.flatnonzero(complete)
    ids = np.asarray(folds)[rows]
    if folds.kind != "time":
        if rows.size != len(folds):
            missing = np.flatnonzero(~complete)
            raise ValueError(
                f"level {level}: {missing.size} rows lack an out-of-fold input (first rows: {missing[:5].tolist()}); "
                "with non-time folds every row must be predicted at every level"
            )
        return rows, folds
    if level > 1:
        ids = ids - ids[ids >= 0].min() - 1
    n_splits = np.unique(ids[ids >= 0]).size
    if n_splits < 2:
        raise ValueError(
            f"level {level} would have {n_splits} time fold(s): time folds lose their first block at each level "
            f"above the first, so {folds.n_splits} folds allow at most {folds.n_splits - 1} levels; "
            "use more splits or fewer levels"
        )
    return rows, FoldIds(ids, "time")
