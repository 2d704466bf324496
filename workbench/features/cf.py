"""Collaborative filtering, the textbook way: similarities over co-rated items, weighted scores.

A user–item rating matrix (users as rows, NaN where a user did not rate an item) gives
user–user or item–item similarities, computed on the items (users) both have rated:

- ``"euclidean"``: ``1 / (1 + d)`` with ``d`` the Euclidean distance over co-rated items;
- ``"pearson"``: Pearson's correlation over co-rated items (NaN with fewer than two, or no spread).

A user's score for an item is the similarity-weighted sum of the ratings the most similar raters
gave it, divided by the number of those raters (``normalize="raters"``) or by the sum of their
similarities (``normalize="similarity"``). Raters count when their similarity is above
``min_similarity`` (default 0: unrelated or opposite users are left out).

Everything is dense NumPy: fine for thousands of users and items (``users x users`` matrices).
:class:`CFFeatures` turns the scores into leak-free model features.

Examples
--------
>>> import pandas as pd
>>> ratings = pd.DataFrame(
...     {
...         "user": ["ann"] * 4 + ["bob"] * 4 + ["cat"] * 3 + ["dan"] * 2,
...         "movie": list("wxyz") + list("wxyz") + list("wxz") + list("wx"),
...         "stars": [5, 3, 4, 1, 4, 2, 5, 1, 1, 5, 4, 5, 3],
...     }
... )
>>> R = rating_matrix(ratings, user="user", item="movie", rating="stars")
>>> similarity(R, method="pearson").round(2)  # user x user
user   ann   bob   cat  dan
user
ann   1.00  0.86 -0.72  1.0
bob   0.86  1.00 -0.84  1.0
cat  -0.72 -0.84  1.00 -1.0
dan   1.00  1.00 -1.00  1.0
>>> recommend(R, "dan", n=2, method="pearson")  # best unrated movies for dan
movie
y    4.5
z    1.0
Name: dan, dtype: float64
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..data.validation import renamed_params
from ._frame import (
    FrameTransformer,
    as_list,
    check_columns,
    check_feature_names_arg,
    check_input,
    cross_fit_splits,
    input_names,
    output,
)

Method = Literal["pearson", "euclidean"]
Kind = Literal["user", "item"]
METHODS = ("pearson", "euclidean")
KINDS = ("user", "item")
NORMALIZE = ("raters", "similarity")


def rating_matrix(
    ratings: pd.DataFrame,
    user: Hashable = "user",
    item: Hashable = "item",
    rating: Hashable = "rating",
    agg: str = "mean",
) -> pd.DataFrame:
    """Users x items matrix from long data (one row per rating); NaN where there is no rating.

    Repeated ``(user, item)`` pairs are combined with ``agg`` (``"mean"``, ``"last"``, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> rating_matrix(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [1, 3, 4]}))
    item    x    y
    user
    a     1.0  3.0
    b     4.0  NaN
    """
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"rating_matrix needs a DataFrame of ratings, got {type(ratings).__name__}")
    check_columns(ratings, [user, item, rating], "rating_matrix")
    if not pd.api.types.is_numeric_dtype(ratings[rating].dtype):
        raise ValueError(f"rating_matrix: ratings column {rating!r} must be numeric, got {ratings[rating].dtype}")
    rated = ratings.dropna(subset=[user, item, rating])
    matrix = rated.pivot_table(index=user, columns=item, values=rating, aggfunc=agg, observed=True, sort=True)
    return matrix.astype(np.float64)


def _as_matrix(matrix: pd.DataFrame, kind: str) -> pd.DataFrame:
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"expected a users x items DataFrame (see rating_matrix), got {type(matrix).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return matrix if kind == "user" else matrix.T


def _co_rated_sums(R: np.ndarray) -> tuple[np.ndarray, ...]:
    """For every pair of rows ``(a, b)``, sums over the columns both rated.

    Returns ``n`` (count), ``sa`` (sum of a's ratings), ``saa`` (of their squares) and ``sab``
    (of products); b's sums are the transposes.
    """
    rated = ~np.isnan(R)
    M = rated.astype(np.float64)
    Z = np.where(rated, R, 0.0)
    return M @ M.T, Z @ M.T, (Z * Z) @ M.T, Z @ Z.T


def euclidean_distance(matrix: pd.DataFrame, kind: Kind = "user", min_common: int = 1) -> pd.DataFrame:
    """Euclidean distance between users (or items) over their co-rated items; NaN with fewer
    than ``min_common`` in common.

    Examples
    --------
    >>> import pandas as pd
    >>> R = pd.DataFrame(
    ...     {"w": [5, 4, 1, 5], "x": [3, 2, 5, 3], "y": [4, 5, None, None], "z": [1, 1, 4, None]},
    ...     index=["ann", "bob", "cat", "dan"],
    ... )
    >>> round(float(euclidean_distance(R).loc["ann", "bob"]), 3)
    1.732
    """
    m = _as_matrix(matrix, kind)
    n, sa, saa, sab = _co_rated_sums(m.to_numpy(dtype=np.float64))
    d2 = np.maximum(saa + saa.T - 2.0 * sab, 0.0)
    dist = np.where(n >= max(min_common, 1), np.sqrt(d2), np.nan)
    return pd.DataFrame(dist, index=m.index, columns=m.index)


def similarity(
    matrix: pd.DataFrame, method: Method = "pearson", kind: Kind = "user", min_common: int = 1
) -> pd.DataFrame:
    """User–user (``kind="user"``) or item–item similarity over co-rated entries.

    ``"euclidean"``: ``1 / (1 + distance)``; ``"pearson"``: correlation (NaN when fewer than two
    co-rated items or no variation). Pairs with fewer than ``min_common`` co-rated entries get NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> R = pd.DataFrame(
    ...     {"w": [5, 4, 1, 5], "x": [3, 2, 5, 3], "y": [4, 5, None, None], "z": [1, 1, 4, None]},
    ...     index=["ann", "bob", "cat", "dan"],
    ... )
    >>> round(float(similarity(R, "pearson").loc["ann", "bob"]), 2)
    0.86
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "euclidean":
        dist = euclidean_distance(matrix, kind, min_common)
        return 1.0 / (1.0 + dist)
    m = _as_matrix(matrix, kind)
    n, sa, saa, sab = _co_rated_sums(m.to_numpy(dtype=np.float64))
    sb, sbb = sa.T, saa.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sab - sa * sb / n
        var_a = saa - sa * sa / n
        var_b = sbb - sb * sb / n
        den = np.sqrt(np.maximum(var_a, 0.0) * np.maximum(var_b, 0.0))
        scale = np.maximum(saa, sbb)
        tiny = den <= 1e-12 * np.maximum(scale, 1.0)
        r = np.clip(cov / den, -1.0, 1.0)
    r[(n < max(min_common, 2)) | tiny] = np.nan
    return pd.DataFrame(r, index=m.index, columns=m.index)


def _scores(
    R: np.ndarray,
    sim: np.ndarray,
    normalize: str,
    min_similarity: float,
) -> np.ndarray:
    """Row ``u``, column ``i``: weighted ratings of ``i`` by rows similar to ``u`` (not ``u`` itself)."""
    rated = ~np.isnan(R)
    use = ~np.isnan(sim) & (np.nan_to_num(sim, nan=-np.inf) > min_similarity)
    np.fill_diagonal(use, False)
    W = np.where(use, sim, 0.0)
    total = W @ np.where(rated, R, 0.0)
    den = (use.astype(np.float64) @ rated) if normalize == "raters" else (W @ rated)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, total / den, np.nan)


def recommend_scores(
    matrix: pd.DataFrame,
    method: Method = "pearson",
    kind: Kind = "user",
    normalize: Literal["raters", "similarity"] = "raters",
    min_similarity: float = 0.0,
    min_common: int = 1,
) -> pd.DataFrame:
    """Predicted affinity of every user for every item (users x items, NaN where no one informs it).

    ``kind="user"``: ratings of the item by users similar to the user; ``kind="item"``: the user's
    ratings of items similar to the item. Weighted sums are divided by the number of contributing
    raters (``normalize="raters"``) or by their total similarity (``"similarity"``).

    Examples
    --------
    >>> import pandas as pd
    >>> R = pd.DataFrame(
    ...     {"w": [5, 4, 1, 5], "x": [3, 2, 5, 3], "y": [4, 5, None, None], "z": [1, 1, 4, None]},
    ...     index=["ann", "bob", "cat", "dan"],
    ... )
    >>> recommend_scores(R, "euclidean", normalize="similarity").loc["dan"].round(2)
    w    4.28
    x    2.97
    y    4.29
    z    1.34
    Name: dan, dtype: float64
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    m = _as_matrix(matrix, kind)
    sim = similarity(matrix, method, kind, min_common).to_numpy()
    scores = _scores(m.to_numpy(dtype=np.float64), sim, normalize, min_similarity)
    out = pd.DataFrame(scores, index=m.index, columns=m.columns)
    return out if kind == "user" else out.T


def recommend(
    matrix: pd.DataFrame,
    user: Hashable,
    n: int = 5,
    method: Method = "pearson",
    kind: Kind = "user",
    normalize: Literal["raters", "similarity"] = "raters",
    min_similarity: float = 0.0,
) -> pd.Series:
    """The ``n`` best-scored items ``user`` has not rated yet, highest first.

    Examples
    --------
    >>> import pandas as pd
    >>> R = pd.DataFrame(
    ...     {"w": [5, 4, 1, 5], "x": [3, 2, 5, 3], "y": [4, 5, None, None], "z": [1, 1, 4, None]},
    ...     index=["ann", "bob", "cat", "dan"],
    ... )
    >>> recommend(R, "dan", n=3)
    y    4.5
    z    1.0
    Name: dan, dtype: float64
    """
    if user not in matrix.index:
        raise ValueError(f"recommend: user {user!r} is not in the rating matrix ({len(matrix.index)} users)")
    scores = recommend_scores(matrix, method, kind, normalize, min_similarity).loc[user]
    unrated = matrix.loc[user].isna()
    return scores[unrated].dropna().sort_values(ascending=False, kind="stable").head(n)


class CFFeatures(FrameTransformer):
    """Collaborative-filtering scores as features: predicted affinity of each row's user for its item.

    ``X`` has a ``user`` and an ``item`` column, ``y`` the ratings (or 0/1 interactions). ``fit``
    builds the rating matrix of the training rows; ``transform`` looks up the scores of new
    ``(user, item)`` pairs (NaN for users or items not seen). ``fit_transform`` is **out-of-fold**
    like :class:`~workbench.features.TargetEncoder`: each row's score comes from the ratings of
    the other folds only (``folds``: a number, fold numbers per row or a scikit-learn splitter),
    so a row's own rating never reaches its feature.

    One column per ``kinds`` entry is appended, named ``cf_<kind>_<method>``; ``progress`` shows a
    bar over the folds.

    Parameters
    ----------
    user, item : hashable, default "user", "item"
        The columns of ``X`` naming the user and the item of each row.
    kinds : sequence of {"user", "item"}, default ("user", "item")
        One feature per entry: user–user or item–item scores.
    method : {"pearson", "euclidean"}, default "pearson"
        The similarity.
    normalize : {"raters", "similarity"}, default "raters"
        What weighted sums are divided by.
    min_similarity : float, default 0.0
        Raters count only above this similarity.
    min_common : int, default 1
        Fewest co-rated entries for a similarity.
    folds : int, fold numbers per row or splitter, default 5
        The folds of the out-of-fold ``fit_transform``.
    random_state : int, default 0
        Seed of the folds made when ``folds`` is an int.
    progress : bool, default True
        Show a progress bar over the folds.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> train = pd.DataFrame({"user_id": np.repeat(np.arange(30), 6), "movie_id": np.tile(np.arange(6), 30)})
    >>> rating = rng.integers(1, 6, len(train))
    >>> cf = CFFeatures(user="user_id", item="movie_id", method="pearson", folds=3, progress=False)
    >>> X_train = cf.fit_transform(train, rating)  # out-of-fold scores
    >>> X_train.columns.tolist()
    ['user_id', 'movie_id', 'cf_user_pearson', 'cf_item_pearson']
    """

    @renamed_params(seed="random_state")
    def __init__(
        self,
        user: Hashable = "user",
        item: Hashable = "item",
        kinds: Sequence[str] = KINDS,
        method: Method = "pearson",
        normalize: Literal["raters", "similarity"] = "raters",
        min_similarity: float = 0.0,
        min_common: int = 1,
        folds: Any = 5,
        random_state: int = 0,
        progress: bool = True,
    ) -> None:
        self.user = user
        self.item = item
        self.kinds = kinds
        self.method = method
        self.normalize = normalize
        self.min_similarity = min_similarity
        self.min_common = min_common
        self.folds = folds
        self.random_state = random_state
        self.progress = progress

    def _check(self, frame: pd.DataFrame) -> None:
        kinds = as_list(self.kinds)
        if not kinds or any(k not in KINDS for k in kinds):
            raise ValueError(f"CFFeatures: kinds must be a non-empty subset of {KINDS}, got {self.kinds!r}")
        if self.method not in METHODS:
            raise ValueError(f"CFFeatures: method must be one of {METHODS}, got {self.method!r}")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"CFFeatures: normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        check_columns(frame, [self.user, self.item], "CFFeatures")
        self.kinds_ = kinds

    def _ratings(self, frame: pd.DataFrame, y: Any) -> np.ndarray:
        from ..models.cv import check_target

        if y is None:
            raise ValueError("CFFeatures requires y to be passed, but the target y is None; pass the ratings as y")
        y_arr = check_target(y, len(frame))
        try:
            return pd.to_numeric(y_arr).astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"CFFeatures: ratings y must be numbers (Unknown label type: dtype {y_arr.dtype})"
            ) from exc

    def _tables(self, frame: pd.DataFrame, ratings: np.ndarray) -> dict[str, pd.DataFrame]:
        long = pd.DataFrame(
            {"user": frame[self.user].to_numpy(), "item": frame[self.item].to_numpy(), "rating": ratings}
        )
        matrix = rating_matrix(long)
        return {
            kind: recommend_scores(matrix, self.method, kind, self.normalize, self.min_similarity, self.min_common)
            for kind in self.kinds_
        }

    def _lookup(
        self, frame: pd.DataFrame, tables: dict[str, pd.DataFrame], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        part = frame if rows is None else frame.iloc[rows]
        out = {}
        for kind, table in tables.items():
            u = table.index.get_indexer(part[self.user].astype(object))
            i = table.columns.get_indexer(part[self.item].astype(object))
            ok = (u >= 0) & (i >= 0)
            values = np.full(len(part), np.nan)
            values[ok] = table.to_numpy()[u[ok], i[ok]]
            out[kind] = values
        return out

    def _names(self) -> list[str]:
        return [f"cf_{kind}_{self.method}" for kind in self.kinds_]

    def _assemble(self, frame: pd.DataFrame, was_frame: bool, values: dict[str, np.ndarray]) -> Any:
        new = pd.DataFrame(
            {name: values[kind] for name, kind in zip(self._names(), self.kinds_, strict=True)}, index=frame.index
        )
        return output(pd.concat([frame, new], axis=1), was_frame)

    def fit(self, X: Any, y: Any = None) -> CFFeatures:
        """Score tables from all training ratings (for ``transform`` on new rows)."""
        frame, _ = check_input(self, X, reset=True)
        self._check(frame)
        self.tables_ = self._tables(frame, self._ratings(frame, y))
        clashes = [n for n in self._names() if n in set(input_names(self))]
        if clashes:
            raise ValueError(f"CFFeatures: output columns {clashes} already exist in the data; rename them")
        return self

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> Any:
        """Fit on all rows; return the input with **out-of-fold** scores appended."""
        self.fit(X, y)
        frame, was_frame = check_input(self, X, reset=False)
        ratings = self._ratings(frame, y)
        splits, _ = cross_fit_splits(self.folds, frame, ratings, groups, "kfold", self.random_state)
        values = {kind: np.full(len(frame), np.nan) for kind in self.kinds_}
        from tqdm.auto import tqdm

        for train, val in tqdm(splits, desc="CFFeatures", unit="fold", disable=not self.progress, leave=False):
            tables = self._tables(frame.iloc[train], ratings[train])
            for kind, v in self._lookup(frame, tables, val).items():
                values[kind][val] = v
        return self._assemble(frame, was_frame, values)

    def transform(self, X: Any) -> Any:
        """The input columns followed by the score of each row's ``(user, item)`` pair."""
        check_is_fitted(self, "tables_")
        frame, was_frame = check_input(self, X, reset=False)
        return self._assemble(frame, was_frame, self._lookup(frame, self.tables_))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input columns, then ``cf_<kind>_<method>`` per kind."""
        check_is_fitted(self, "tables_")
        check_feature_names_arg(self, input_features)
        return np.asarray(input_names(self) + self._names(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


__all__ = [
    "CFFeatures",
    "euclidean_distance",
    "rating_matrix",
    "recommend",
    "recommend_scores",
    "similarity",
]
