"""Categorical encoders: out-of-fold target encoding, count/frequency encoding and ordinal codes.

Every encoder learns the categories of its columns in ``fit`` (pandas ``category``, ``str``,
``object`` and ``bool`` columns by default), replaces each encoded column in place and passes the
other columns through, so a DataFrame comes back with readable names. Categories are integer
codes internally and statistics are ``np.bincount`` over those codes, one pass per column.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..data.schema import is_categorical_like
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

UNSEEN = -1  # code of a category not seen in fit
MISSING = -2  # code of a missing value (NaN, None, pd.NA)

Encoded = dict[Hashable, np.ndarray]


def _factorize(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of ``s`` (``MISSING`` for missing values) and its categories.

    A ``category`` column keeps its declared categories in their order; other columns get their
    distinct values, sorted when they can be compared.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy().astype(np.int64)
        categories = s.cat.categories
    else:
        try:
            codes, uniques = pd.factorize(s, sort=True)
        except TypeError:  # values of mixed types cannot be sorted
            codes, uniques = pd.factorize(s, sort=False)
        codes = codes.astype(np.int64, copy=False)
        categories = pd.Index(uniques)
    codes[codes < 0] = MISSING
    return codes, categories


def _lookup(s: pd.Series, categories: pd.Index) -> np.ndarray:
    """Codes of ``s`` against the categories learned in fit: ``UNSEEN`` or ``MISSING`` otherwise."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        raw = s.cat.codes.to_numpy().astype(np.int64)
        own = s.cat.categories
        mapping = np.arange(len(own)) if own.equals(categories) else categories.get_indexer(own)
        codes = np.full(len(raw), MISSING, dtype=np.int64)
        present = raw >= 0
        codes[present] = mapping[raw[present]]
        return codes
    codes = categories.get_indexer(s).astype(np.int64, copy=False)
    codes[s.isna().to_numpy()] = MISSING
    return codes


class _CategoricalEncoder(FrameTransformer):
    """Shared machinery: pick columns, learn categories, encode them in place, name the output."""

    def _select(self, frame: pd.DataFrame, was_frame: bool) -> list[Hashable]:
        if self.columns is None:
            if not was_frame:
                return list(frame.columns)
            return [c for c in frame.columns if is_categorical_like(frame[c])]
        columns = as_list(self.columns)
        check_columns(frame, columns, type(self).__name__)
        return columns

    def _fit_codes(self, X: Any) -> tuple[pd.DataFrame, bool, dict[Hashable, np.ndarray]]:
        frame, was_frame = check_input(self, X, reset=True)
        self.columns_ = self._select(frame, was_frame)
        self.categories_: dict[Hashable, pd.Index] = {}
        codes = {}
        for col in self.columns_:
            codes[col], self.categories_[col] = _factorize(frame[col])
        return frame, was_frame, codes

    def _transform_codes(self, X: Any) -> tuple[pd.DataFrame, bool, dict[Hashable, np.ndarray]]:
        check_is_fitted(self, "categories_")
        frame, was_frame = check_input(self, X, reset=False)
        return frame, was_frame, {col: _lookup(frame[col], self.categories_[col]) for col in self.columns_}

    def _learn(self, codes: dict[Hashable, np.ndarray], n: int) -> None:
        """Statistics of each column from its fit codes (subclasses)."""

    def _encode(self, col: Hashable, codes: np.ndarray) -> Encoded:
        """Output columns replacing ``col`` (subclasses)."""
        raise NotImplementedError

    def _output_names(self, col: Hashable) -> list[str]:
        return [str(col)]

    def _assemble(self, frame: pd.DataFrame, was_frame: bool, encoded: dict[Hashable, Encoded]) -> Any:
        data: dict[Hashable, Any] = {}
        for col in frame.columns:
            if col in encoded:
                data.update(encoded[col])
            else:
                data[col] = frame[col]
        return output(pd.DataFrame(data, index=frame.index), was_frame)

    def fit(self, X: Any, y: Any = None) -> _CategoricalEncoder:
        frame, _, codes = self._fit_codes(X)
        self._learn(codes, len(frame))
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        frame, was_frame, codes = self._fit_codes(X)
        self._learn(codes, len(frame))
        return self._assemble(frame, was_frame, {col: self._encode(col, codes[col]) for col in self.columns_})

    def transform(self, X: Any) -> Any:
        """Encode the learned columns of ``X``; the other columns pass through unchanged."""
        frame, was_frame, codes = self._transform_codes(X)
        return self._assemble(frame, was_frame, {col: self._encode(col, codes[col]) for col in self.columns_})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names: encoded columns keep their name (or one per class), others pass."""
        check_is_fitted(self, "categories_")
        check_feature_names_arg(self, input_features)
        encoded = {str(c): c for c in self.columns_}
        names: list[str] = []
        for name in input_names(self):
            names += self._output_names(encoded[name]) if name in encoded else [name]
        return np.asarray(names, dtype=object)


class CountEncoder(_CategoricalEncoder):
    """Replace each category by how often it occurs in the training data (or its frequency).

    Unseen categories count 0; missing values count as often as values were missing in fit.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"city": ["Oslo", "Oslo", "Rome", None]})
    >>> test = pd.DataFrame({"city": ["Rome", "Paris", None]})
    >>> CountEncoder(columns=["city"], normalize=True).fit(train).transform(test)
       city
    0  0.25
    1  0.00
    2  0.25
    """

    def __init__(self, columns: Sequence[Hashable] | Hashable | None = None, normalize: bool = False) -> None:
        self.columns = columns
        self.normalize = normalize

    def _learn(self, codes: dict[Hashable, np.ndarray], n: int) -> None:
        self.n_samples_fit_ = n
        self.counts_ = {}
        for col, c in codes.items():
            k = len(self.categories_[col])
            slots = np.where(c == MISSING, k, c)  # the last slot counts missing values
            self.counts_[col] = np.bincount(slots, minlength=k + 1)

    def _encode(self, col: Hashable, codes: np.ndarray) -> Encoded:
        counts = self.counts_[col]
        k = len(counts) - 1
        slots = np.where(codes == MISSING, k, codes)
        out = np.where(slots >= 0, counts[np.maximum(slots, 0)], 0)
        if self.normalize:
            return {col: out / max(self.n_samples_fit_, 1)}
        return {col: out.astype(np.int64)}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [] if not self.normalize else ["float64"]
        return tags


class OrdinalEncoder(_CategoricalEncoder):
    """Replace each category by its integer code: ``0..k-1`` in category order.

    A ``category`` column keeps its declared order, other columns are sorted. Categories unseen
    in fit get ``unknown_value``, missing values ``missing_value`` (both negative).

    Parameters
    ----------
    columns : column name or list of them, optional
        The columns encoded (default: every category, text or bool column).
    unknown_value : int, default -1
        Code of categories unseen in fit.
    missing_value : int, default -2
        Code of missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"city": ["Oslo", "Oslo", "Rome", None]})
    >>> test = pd.DataFrame({"city": ["Rome", "Paris", None]})
    >>> OrdinalEncoder(columns=["city"]).fit(train).transform(test)  # unseen -1, missing -2
       city
    0     1
    1    -1
    2    -2
    """

    def __init__(
        self,
        columns: Sequence[Hashable] | Hashable | None = None,
        unknown_value: int = UNSEEN,
        missing_value: int = MISSING,
    ) -> None:
        self.columns = columns
        self.unknown_value = unknown_value
        self.missing_value = missing_value

    def _learn(self, codes: dict[Hashable, np.ndarray], n: int) -> None:
        for name in ("unknown_value", "missing_value"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value >= 0:
                raise ValueError(
                    f"OrdinalEncoder: {name} must be a negative integer (codes 0..k-1 are the categories), got {value!r}"
                )

    def _encode(self, col: Hashable, codes: np.ndarray) -> Encoded:
        out = codes.copy()
        out[codes == UNSEEN] = self.unknown_value
        out[codes == MISSING] = self.missing_value
        return {col: out}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # integer codes, whatever the input dtype
        return tags


class AsCategory(_CategoricalEncoder):
    """Cast columns to pandas ``category`` with the categories seen in fit, in a fixed order.

    LightGBM reads ``category`` columns natively but maps categories by their codes; fixing the
    categories at fit time gives training and test data the same codes. Categories unseen in fit
    and missing values become missing (NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"city": ["Oslo", "Oslo", "Rome", None]})
    >>> test = pd.DataFrame({"city": ["Rome", "Paris", None]})
    >>> cats = AsCategory(columns=["city"]).fit(train)
    >>> cats.transform(test)["city"].cat.categories.tolist()  # the training categories
    ['Oslo', 'Rome']
    """

    def __init__(self, columns: Sequence[Hashable] | Hashable | None = None) -> None:
        self.columns = columns

    def _encode(self, col: Hashable, codes: np.ndarray) -> Encoded:
        categories = self.categories_[col]
        return {col: pd.Categorical.from_codes(np.where(codes >= 0, codes, -1), categories=categories)}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # pandas category, whatever the input dtype
        return tags


class _Target:
    """The encoded target ``Y`` (``(n, t)`` floats) and its squares ``Y2`` (``Y`` itself for 0/1 indicators)."""

    def __init__(self, Y: np.ndarray, indicator: bool) -> None:
        self.Y = Y
        self.indicator = indicator
        self.Y2 = Y if indicator else Y**2

    def rows(self, idx: np.ndarray) -> _Target:
        """The target of rows ``idx`` (positions or a boolean mask)."""
        return _Target(self.Y[idx], self.indicator)


def _sums(slot: np.ndarray, size: int, target: _Target) -> tuple[np.ndarray, ...]:
    """Row counts, target sums and sums of squares per ``slot`` value: ``(size,)``, ``(size, t)``, ``(size, t)``."""
    t = target.Y.shape[1]
    counts = np.bincount(slot, minlength=size).astype(np.float64)
    sums = np.column_stack([np.bincount(slot, weights=target.Y[:, j], minlength=size) for j in range(t)])
    if target.indicator:
        return counts, sums, sums
    sumsq = np.column_stack([np.bincount(slot, weights=target.Y2[:, j], minlength=size) for j in range(t)])
    return counts, sums, sumsq


def _category_sums(codes: np.ndarray, k: int, target: _Target) -> tuple[np.ndarray, ...]:
    """Per category: row count, target sums and sums of squares, shapes ``(k,)``, ``(k, t)``, ``(k, t)``."""
    known = codes >= 0
    if known.all():
        return _sums(codes, k, target)
    return _sums(codes[known], k, target.rows(known))


def _smoothed(
    counts: np.ndarray,
    sums: np.ndarray,
    sumsq: np.ndarray,
    prior: np.ndarray,
    prior_var: np.ndarray,
    smooth: float | str,
) -> np.ndarray:
    """Encodings shrunk towards ``prior``; ``counts[..., None]`` broadcasts over target columns.

    ``smooth`` a number ``m``: ``(sum + m * prior) / (count + m)``. ``"auto"``: the empirical
    Bayes weight ``lam = n * var / (n * var + var_in_category)`` (scikit-learn's rule),
    ``lam * category_mean + (1 - lam) * prior``. Empty categories get the prior.
    """
    n = counts[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if smooth == "auto":
            mean = sums / n
            var_in = np.maximum(sumsq / n - mean**2, 0.0)
            lam = prior_var * n / (prior_var * n + var_in)
            enc = np.where(np.isnan(lam), prior, lam * mean + (1.0 - lam) * prior)
        else:
            enc = (sums + smooth * prior) / (n + smooth)
    return np.where(n > 0, enc, prior)


def _moments(target: _Target) -> tuple[np.ndarray, np.ndarray]:
    """Target mean and variance (ddof 0) per target column: the prior and its spread."""
    mean = target.Y.mean(axis=0)
    return mean, np.maximum(target.Y2.mean(axis=0) - mean**2, 0.0)


def _is_complement(splits: list[tuple[np.ndarray, np.ndarray]], n: int) -> bool:
    return all(len(train) + len(val) == n for train, val in splits)


def _out_of_fold_complement(
    codes: np.ndarray, k: int, target: _Target, fold_of_row: np.ndarray, n_folds: int, smooth: float | str
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold encodings when every fold trains on all other rows, and the full-data table.

    The training statistics of fold ``f`` are the totals minus fold ``f``'s own, so one
    ``bincount`` over ``fold * k + code`` serves every fold.
    """
    n, t = target.Y.shape
    rows, fold_y, fold_y2 = _sums(fold_of_row, n_folds, target)
    train_rows = (n - rows)[:, None]
    prior = (fold_y.sum(0) - fold_y) / train_rows  # (F, t)
    prior_var = np.maximum((fold_y2.sum(0) - fold_y2) / train_rows - prior**2, 0.0)
    known = codes >= 0
    every = bool(known.all())
    slot = fold_of_row * k + codes if every else fold_of_row[known] * k + codes[known]
    per_fold = _sums(slot, n_folds * k, target if every else target.rows(known))
    counts, sums, sumsq = (a.reshape(n_folds, k, *a.shape[1:]) for a in per_fold)
    total = counts.sum(0), sums.sum(0), sumsq.sum(0)
    table = _smoothed(
        total[0] - counts, total[1] - sums, total[2] - sumsq, prior[:, None, :], prior_var[:, None, :], smooth
    )
    flat = table.reshape(n_folds * k, t)
    if every:
        out = flat[slot]
    else:
        out = np.empty((n, t))
        out[known] = flat[slot]
        out[~known] = prior[fold_of_row[~known]]
    full_prior, full_var = _moments(target)
    return out, _smoothed(*total, full_prior, full_var, smooth)


def _out_of_fold_splits(
    codes: np.ndarray, k: int, target: _Target, splits: list[tuple[np.ndarray, np.ndarray]], smooth: float | str
) -> np.ndarray:
    """Out-of-fold encodings fold by fold, each from its own training rows (time folds, any splits).

    Rows no fold validates (the warm-up of time folds) stay NaN: nothing before them can encode them.
    """
    out = np.full(target.Y.shape, np.nan)
    for train, val in splits:
        part = target.rows(train)
        prior, prior_var = _moments(part)
        table = _smoothed(*_category_sums(codes[train], k, part), prior, prior_var, smooth)
        c = codes[val]
        known = c >= 0
        out[val[known]] = table[c[known]]
        out[val[~known]] = prior
    return out


_TARGET_TYPES = ("auto", "binary", "multiclass", "regression")


class TargetEncoder(_CategoricalEncoder):
    """Replace each category by the smoothed mean of the target, without leaking it.

    ``fit_transform(X, y)`` is **out-of-fold**: each row is encoded with statistics of the rows
    its fold trains on, using the same folds as training (``folds``: a number of folds made with
    :func:`~workbench.data.make_folds`, fold numbers per row such as ``make_folds(...)`` output
    including group and time folds, or any scikit-learn splitter). ``fit`` then ``transform``
    encode new data with the statistics of the whole training set. Categories unseen in fit and
    missing values get the prior (the target mean of the rows that encode them). With time folds
    a row is encoded from earlier rows only, and the warm-up rows no fold validates get NaN.
    Inside a scikit-learn ``Pipeline`` that is itself cross-validated, give ``folds`` as a number:
    fold numbers per row describe one particular training set.

    Binary targets give one column per encoded column (mean of the second class in sorted order),
    multiclass targets one column per class named ``<column>_<class>``, regression targets the
    mean value. ``smooth`` is ``"auto"`` (empirical Bayes weight, as scikit-learn's) or a number
    ``m`` of prior pseudo-rows: ``(sum + m * prior) / (count + m)``.

    Parameters
    ----------
    columns : column name or list of them, optional
        The columns encoded (default: every category, text or bool column).
    folds : int, fold numbers per row or splitter, default 5
        The folds of the out-of-fold ``fit_transform``.
    smooth : "auto" or float, default "auto"
        As above.
    target_type : {"auto", "binary", "multiclass", "regression"}, default "auto"
        Inferred from ``y`` when ``"auto"``.
    random_state : int, default 0
        Seed of the folds made when ``folds`` is an int.

    Examples
    --------
    >>> from workbench.data import make_folds
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> y = df["Churn"]
    >>> folds = make_folds(y, n_splits=5, random_state=0)
    >>> te = TargetEncoder(columns=["PaymentMethod"], folds=folds, smooth=10)
    >>> X_train = te.fit_transform(df, y)  # out-of-fold, same folds as train_cv
    >>> X_train["PaymentMethod"].head(3).round(3).tolist()
    [0.451, 0.184, 0.192]
    >>> te.transform(df.head(3))["PaymentMethod"].round(3).tolist()  # full-train statistics
    [0.452, 0.192, 0.192]
    """

    @renamed_params(seed="random_state")
    def __init__(
        self,
        columns: Sequence[Hashable] | Hashable | None = None,
        folds: Any = 5,
        smooth: float | str = "auto",
        target_type: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.columns = columns
        self.folds = folds
        self.smooth = smooth
        self.target_type = target_type
        self.random_state = random_state

    def _check_params(self) -> None:
        if not (
            self.smooth == "auto"
            or (
                isinstance(self.smooth, int | float | np.number)
                and not isinstance(self.smooth, bool)
                and self.smooth >= 0
            )
        ):
            raise ValueError(f"TargetEncoder: smooth must be 'auto' or a number >= 0, got {self.smooth!r}")
        if self.target_type not in _TARGET_TYPES:
            raise ValueError(f"TargetEncoder: target_type must be one of {_TARGET_TYPES}, got {self.target_type!r}")

    def _target(self, y: Any, n: int) -> tuple[np.ndarray, _Target]:
        """The target checked, and as floats ``Y`` (one 0/1 column per class for multiclass)."""
        from ..models.cv import check_target
        from ..models.metrics import infer_task

        if y is None:
            raise ValueError(
                "TargetEncoder requires y to be passed, but the target y is None; "
                "call fit(X, y) or fit_transform(X, y) with the training target"
            )
        y_arr = check_target(y, n)
        if pd.unique(y_arr).size < 2:
            raise ValueError("the target has one class (a single distinct value); target encoding needs at least two")
        task = infer_task(y_arr) if self.target_type == "auto" else self.target_type
        self.target_type_ = task
        if task == "regression":
            if y_arr.dtype.kind not in "iufb":
                raise ValueError(f"target_type='regression' needs a numeric target, got dtype {y_arr.dtype}")
            self.classes_ = None
            return y_arr, _Target(y_arr.astype(np.float64)[:, None], indicator=False)
        self.classes_ = np.unique(y_arr)
        if task == "binary":
            if len(self.classes_) != 2:
                raise ValueError(f"target_type='binary' needs exactly two classes, the target has {len(self.classes_)}")
            return y_arr, _Target((y_arr == self.classes_[1]).astype(np.float64)[:, None], indicator=True)
        return y_arr, _Target((y_arr[:, None] == self.classes_[None, :]).astype(np.float64), indicator=True)

    def _learn_target(self, codes: dict[Hashable, np.ndarray], target: _Target) -> None:
        self.target_mean_, prior_var = _moments(target)
        self.encodings_ = {}
        for col, c in codes.items():
            stats = _category_sums(c, len(self.categories_[col]), target)
            self.encodings_[col] = _smoothed(*stats, self.target_mean_, prior_var, self.smooth)
        self._check_name_clashes()

    def _check_name_clashes(self) -> None:
        if self.target_type_ != "multiclass":
            return
        names = list(self.get_feature_names_out())
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(
                f"TargetEncoder: per-class output columns {clashes} clash with existing columns; rename them"
            )

    def _output_names(self, col: Hashable) -> list[str]:
        if getattr(self, "target_type_", None) == "multiclass":
            return [f"{col}_{cls}" for cls in self.classes_]
        return [str(col)]

    def _columns_of(self, col: Hashable, values: np.ndarray) -> Encoded:
        if self.target_type_ == "multiclass":
            return dict(zip(self._output_names(col), values.T, strict=True))
        return {col: values[:, 0]}

    def _encode(self, col: Hashable, codes: np.ndarray) -> Encoded:
        table = self.encodings_[col]
        values = table[np.maximum(codes, 0)]
        values[codes < 0] = self.target_mean_
        return self._columns_of(col, values)

    def fit(self, X: Any, y: Any = None) -> TargetEncoder:
        """Learn full-training-set encodings (for ``transform`` on new data)."""
        self._check_params()
        frame, _, codes = self._fit_codes(X)
        _, target = self._target(y, len(frame))
        self._learn_target(codes, target)
        return self

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> Any:
        """Fit on ``X, y`` and return the **out-of-fold** encoding of ``X`` (see the class doc).

        ``groups`` goes to a scikit-learn group splitter given as ``folds``.
        """
        self._check_params()
        frame, was_frame, codes = self._fit_codes(X)
        y_arr, target = self._target(y, len(frame))
        kind = "kfold" if self.target_type_ == "regression" else "stratified"
        splits, fold_of_row = cross_fit_splits(self.folds, frame, y_arr, groups, kind, self.random_state)
        encoded = {}
        if _is_complement(splits, len(frame)):
            self.target_mean_, _ = _moments(target)
            self.encodings_ = {}
            for col in self.columns_:
                k = len(self.categories_[col])
                oof, self.encodings_[col] = _out_of_fold_complement(
                    codes[col], k, target, fold_of_row, len(splits), self.smooth
                )
                encoded[col] = self._columns_of(col, oof)
            self._check_name_clashes()
        else:
            self._learn_target(codes, target)
            for col in self.columns_:
                oof = _out_of_fold_splits(codes[col], len(self.categories_[col]), target, splits, self.smooth)
                encoded[col] = self._columns_of(col, oof)
        return self._assemble(frame, was_frame, encoded)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


__all__ = ["AsCategory", "CountEncoder", "OrdinalEncoder", "TargetEncoder"]
