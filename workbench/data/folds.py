"""Fold assignment: one fold number per row, and the (train, validation) splits it defines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .validation import Interval, Options, check_X_y, renamed_params, validate_params

FoldKind = Literal["stratified", "kfold", "group", "time"]
FOLD_KINDS: tuple[str, ...] = ("stratified", "kfold", "group", "time")
WARMUP = -1  # rows of the first time block: always trained on, never validated


class FoldIds(np.ndarray):
    """Integer fold number per row, remembering how the folds were made.

    For ``kind="time"`` fold ``k`` trains only on rows of earlier folds (and the warm-up block,
    marked ``-1``), so no model sees the future; for every other kind it trains on all other rows.
    """

    kind: str

    def __new__(cls, ids: Any, kind: str = "kfold") -> FoldIds:
        obj = np.asarray(ids, dtype=np.int64).view(cls)
        obj.kind = kind
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.kind = getattr(obj, "kind", "kfold")

    def __reduce__(self):
        return (FoldIds, (np.asarray(self), self.kind))

    @property
    def n_splits(self) -> int:
        return int(np.unique(np.asarray(self)[np.asarray(self) >= 0]).size)


def _stratify_labels(y: np.ndarray, n_splits: int) -> np.ndarray:
    """Labels to stratify on: classes as they are, a continuous target in quantile bins."""
    if y.dtype.kind == "f" and np.unique(y).size > max(20, 2 * n_splits):
        edges = np.unique(np.quantile(y, np.linspace(0, 1, 11)[1:-1]))
        return np.searchsorted(edges, y, side="right")
    return y


@renamed_params(seed="random_state")
@validate_params(
    {
        "y": ["array-like"],
        "kind": [Options(FOLD_KINDS)],
        "n_splits": [Interval(int, 2, None)],
        "groups": ["array-like", None],
        "random_state": ["random_state"],
        "time": ["array-like", None],
    }
)
def make_folds(
    y: Sequence[Any] | np.ndarray | pd.Series,
    kind: FoldKind = "stratified",
    n_splits: int = 5,
    groups: Sequence[Any] | np.ndarray | pd.Series | None = None,
    random_state: int = 0,
    time: Sequence[Any] | np.ndarray | pd.Series | None = None,
) -> FoldIds:
    """Assign each row a fold number in ``0..n_splits-1``, the same for the same ``random_state``.

    - ``"stratified"``: class proportions kept per fold (a continuous ``y`` is stratified by deciles);
    - ``"kfold"``: shuffled K-fold;
    - ``"group"``: all rows of a group in the same fold (``groups`` required);
    - ``"time"``: rows ordered by ``time`` (or by position) cut into ``n_splits + 1`` contiguous
      blocks; the first is the warm-up (fold ``-1``, training only) and fold ``k`` trains on the
      rows before it.

    Parameters
    ----------
    y : array-like
        The target, one value per row (stratified folds balance its classes).
    kind : {"stratified", "kfold", "group", "time"}, default "stratified"
        How rows are assigned, as above.
    n_splits : int, default 5
        Number of validation folds (at least 2).
    groups : array-like, optional
        One group label per row; required by ``kind="group"``.
    random_state : int, default 0
        Seed of the shuffle (``seed`` is its former name, still accepted with a warning).
    time : array-like, optional
        One timestamp per row, ordering ``kind="time"`` (default: row order).

    Returns
    -------
    FoldIds
        One fold number per row (``-1``: warm-up rows of time folds).

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> folds = make_folds(df["Churn"], kind="stratified", n_splits=5, random_state=0)
    >>> folds[:8]
    FoldIds([0, 2, 1, 0, 0, 1, 2, 0])
    >>> np.bincount(folds)
    array([1409, 1409, 1409, 1408, 1408])
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    y_arr = np.asarray(y)
    n = len(y_arr)
    minimum = n_splits + 1 if kind == "time" else n_splits
    if n < minimum:
        raise ValueError(f"{n} rows cannot make {n_splits} {kind} folds; use fewer splits")
    folds = np.full(n, WARMUP, dtype=np.int64)
    if kind == "time":
        order = np.arange(n) if time is None else np.argsort(np.asarray(time), kind="stable")
        if time is not None:
            check_X_y(y_arr, order, "time", x_name="y")
        for k, block in enumerate(np.array_split(order, n_splits + 1)[1:]):
            folds[block] = k
        return FoldIds(folds, kind)
    if kind == "group":
        if groups is None:
            raise ValueError("kind='group' needs groups=...: one group label per row")
        groups_arr = np.asarray(groups)
        check_X_y(y_arr, groups_arr, "groups", x_name="y")
        if pd.isna(groups_arr).any():
            raise ValueError("groups contain missing values; give every row a group")
        n_groups = np.unique(groups_arr).size
        if n_groups < n_splits:
            raise ValueError(f"{n_groups} groups cannot make {n_splits} group folds; use fewer splits")
        splitter: Any = GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        splits = splitter.split(np.zeros(n), y_arr, groups_arr)
    elif kind == "stratified":
        if pd.isna(y_arr).any():
            raise ValueError("y contains missing values; stratified folds need a label for every row")
        labels = _stratify_labels(y_arr, n_splits)
        smallest = pd.Series(labels).value_counts().min()
        if smallest < n_splits:
            raise ValueError(
                f"the rarest class has {smallest} rows, fewer than n_splits={n_splits}; "
                "use fewer splits or kind='kfold'"
            )
        splits = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(n), labels)
    else:
        splits = KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(np.zeros(n))
    for k, (_, val_idx) in enumerate(splits):
        folds[val_idx] = k
    return FoldIds(folds, kind)


Split = tuple[np.ndarray, np.ndarray]


def as_folds(
    folds: Any,
    y: Any,
    kind: str = "auto",
    groups: Any = None,
    random_state: int = 0,
    task: str | None = None,
) -> Any:
    """Turn a number of folds into fold numbers per row; leave any other fold description as it is.

    Every function that takes ``folds`` accepts an int through this helper.

    Parameters
    ----------
    folds : int, array-like, splitter or iterable of (train, val) pairs
        An int makes that many folds with :func:`make_folds`; anything else is returned unchanged
        (for :func:`fold_splits` to read).
    y : array-like
        The target the folds are made for.
    kind : str, default "auto"
        The :func:`make_folds` kind for an int; ``"auto"`` is ``"group"`` when ``groups`` is
        given, ``"kfold"`` for regression and ``"stratified"`` otherwise.
    groups : array-like, optional
        Row groups (group folds keep each group in one fold).
    random_state : int, default 0
        Seed of the folds made for an int.
    task : str, optional
        ``"regression"`` makes ``kind="auto"`` shuffle plainly instead of stratifying.

    Returns
    -------
    FoldIds or the given ``folds``
    """
    if not isinstance(folds, int | np.integer) or isinstance(folds, bool):
        return folds
    if kind == "auto":
        kind = "group" if groups is not None else ("kfold" if task == "regression" else "stratified")
    return make_folds(
        y, kind=kind, n_splits=int(folds), groups=groups if kind == "group" else None, random_state=random_state
    )


def _is_fold_numbers(folds: Any) -> bool:
    if isinstance(folds, np.ndarray | pd.Series | pd.Index):
        return True
    return isinstance(folds, list | tuple) and len(folds) > 0 and isinstance(folds[0], int | np.integer)


def _is_time_splitter(folds: Any) -> bool:
    """scikit-learn's ``TimeSeriesSplit`` never validates its first block, like ``kind="time"``."""
    from sklearn.model_selection import TimeSeriesSplit

    return isinstance(folds, TimeSeriesSplit)


def fold_splits(
    folds: Any,
    n_rows: int,
    X: Any = None,
    y: Any = None,
    groups: Any = None,
) -> tuple[list[Split], np.ndarray]:
    """Normalise any fold description into ``(splits, fold_of_row)``.

    ``folds`` may be fold numbers per row (from :func:`make_folds` or any int array), a
    scikit-learn splitter (``split(X, y, groups)`` is called), or an iterable of
    ``(train_idx, val_idx)`` pairs. ``fold_of_row`` is ``-1`` for rows never validated, which is
    only allowed for the warm-up block of time folds (``make_folds(kind="time")`` or scikit-learn's
    ``TimeSeriesSplit``); otherwise it is an error naming the rows.

    Parameters
    ----------
    folds : fold numbers per row, splitter or iterable of (train_idx, val_idx)
        As above.
    n_rows : int
        Rows of the data.
    X, y, groups : optional
        Passed to a splitter's ``split``.

    Returns
    -------
    splits : list of (train_idx, val_idx)
        One pair per fold.
    fold_of_row : numpy.ndarray
        The validating fold of each row (``-1``: never validated).

    Raises
    ------
    ValueError
        When rows are validated twice, or never outside the warm-up of time folds.

    Examples
    --------
    >>> splits, fold_of_row = fold_splits([0, 1, 0, 1], n_rows=4)
    >>> [(train.tolist(), val.tolist()) for train, val in splits]
    [([1, 3], [0, 2]), ([0, 2], [1, 3])]
    """
    if hasattr(folds, "split") and callable(folds.split):
        splits = [(np.asarray(t), np.asarray(v)) for t, v in folds.split(X, y, groups)]
        kind = "time" if _is_time_splitter(folds) else "splitter"
    elif _is_fold_numbers(folds):
        ids = np.asarray(folds)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"fold numbers must be integers, got dtype {ids.dtype}")
        if len(ids) != n_rows:
            raise ValueError(
                f"folds has {len(ids)} entries but the data has {n_rows} rows; give one fold number per row"
            )
        kind = getattr(folds, "kind", "kfold")
        if kind != "time" and (ids < 0).any():
            bad = np.flatnonzero(ids < 0)
            raise ValueError(
                f"{bad.size} rows have a negative fold number (first rows: {bad[:5].tolist()}) and would be in no "
                "validation fold; give every row a fold in 0..n_splits-1 (negative numbers mark the warm-up of "
                "make_folds(kind='time') only)"
            )
        fold_numbers = np.unique(ids[ids >= 0])
        splits = []
        for k in fold_numbers:
            val = np.flatnonzero(ids == k)
            train = np.flatnonzero((ids < k) if kind == "time" else (ids != k))
            splits.append((train, val))
    elif isinstance(folds, Iterable):
        splits = [(np.asarray(t), np.asarray(v)) for t, v in folds]
        kind = "splits"
    else:
        raise TypeError(
            f"folds must be fold numbers per row, a scikit-learn splitter or (train, val) index pairs; got {type(folds).__name__}"
        )
    if len(splits) < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {len(splits)}")
    fold_of_row = np.full(n_rows, WARMUP, dtype=np.int64)
    for k, (train, val) in enumerate(splits):
        if len(val) == 0 or len(train) == 0:
            raise ValueError(f"fold {k} has an empty {'validation' if len(val) == 0 else 'training'} set")
        if val.max(initial=-1) >= n_rows or train.max(initial=-1) >= n_rows:
            raise ValueError(f"fold {k} indexes rows beyond the {n_rows} rows of the data")
        in_val = np.zeros(n_rows, dtype=bool)
        in_val[val] = True
        if in_val[train].any():
            raise ValueError(f"fold {k} has rows in both its training and its validation set")
        if (fold_of_row[val] >= 0).any():
            raise ValueError(
                f"fold {k} validates rows that another fold validates too; each row must be validated once"
            )
        fold_of_row[val] = k
    if kind != "time" and (fold_of_row < 0).any():
        missing = np.flatnonzero(fold_of_row < 0)
        raise ValueError(
            f"{missing.size} rows are in no validation fold (first rows: {missing[:5].tolist()}), so they would get "
            "no out-of-fold prediction; use folds that validate every row once, e.g. make_folds(...)"
        )
    return splits, fold_of_row
