"""Pandas in, pandas out: shared input checks and column bookkeeping of the feature transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ..data.validation import default_column_names


def as_frame(X: Any, owner: str) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame (arrays get the columns ``x0, x1, ...``) and whether it was one.

    Sparse matrices and anything that is not two-dimensional are refused with the reason.
    """
    if isinstance(X, pd.DataFrame):
        return X, True
    import scipy.sparse as sp

    if sp.issparse(X):
        raise TypeError(f"{owner} does not take sparse input; pass a pandas DataFrame or a dense 2-D array")
    if isinstance(X, pd.Series):
        raise ValueError(
            f"{owner} needs 2-D input; got a Series. Select columns with df[[{X.name!r}]] "
            "(double brackets) to pass a one-column DataFrame"
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(
            f"{owner} needs 2-D input (a DataFrame or a 2-D array); got an array of shape {arr.shape}. "
            "Reshape your data with array.reshape(-1, 1) if it is a single feature"
        )
    return pd.DataFrame(arr, columns=default_column_names(arr.shape[1]), copy=False), False


def as_list(columns: Any) -> list[Any]:
    """A column name or a sequence of names as a list."""
    if columns is None:
        return []
    if isinstance(columns, str) or not isinstance(columns, Sequence | pd.Index | np.ndarray):
        return [columns]
    return list(columns)


def check_columns(frame: pd.DataFrame, columns: Sequence[Any], owner: str, what: str = "column") -> None:
    """Raise a ``ValueError`` naming every requested column that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = [str(c) for c in frame.columns[:20]]
        more = f" and {frame.shape[1] - 20} more" if frame.shape[1] > 20 else ""
        raise ValueError(
            f"{owner}: {what} {', '.join(repr(c) for c in missing)} not in the data, which has "
            f"{frame.shape[1]} feature(s): {shown}{more}; fix the name or add the column"
        )


def output(frame: pd.DataFrame, was_frame: bool) -> Any:
    """Return ``frame`` as is for DataFrame input, as a NumPy array for array input.

    ``category`` columns become arrays of their values (an array has no categorical dtype).
    """
    if was_frame:
        return frame
    cats = {c: frame[c].cat.categories.dtype for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    return (frame.astype(cats) if cats else frame).to_numpy()


def check_input(estimator: Any, X: Any, reset: bool) -> tuple[pd.DataFrame, bool]:
    """Record (``reset``) or check the number and names of input columns, sklearn's way.

    A transform on data whose columns differ from fit raises sklearn's ``ValueError`` that lists
    the unseen and the missing column names.
    """
    from sklearn.utils.validation import validate_data

    frame, was_frame = as_frame(X, type(estimator).__name__)
    if frame.shape[0] == 0:
        raise ValueError(f"{type(estimator).__name__}: found 0 sample(s) (shape={frame.shape}); the data is empty")
    if frame.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={frame.shape}) while a minimum of 1 is required.")
    complex_cols = [str(c) for c, dt in frame.dtypes.items() if getattr(dt, "kind", "") == "c"]
    if complex_cols:
        raise ValueError(f"Complex data not supported by {type(estimator).__name__} (columns {complex_cols})")
    if not frame.columns.is_unique:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ValueError(f"{type(estimator).__name__}: the data has duplicate columns {dupes}; rename them first")
    validate_data(estimator, frame if was_frame else np.asarray(X), reset=reset, skip_check_array=True)
    if not reset and frame.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {frame.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input"
        )
    return frame, was_frame


def input_names(estimator: Any) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(c) for c in names]
    return default_column_names(estimator.n_features_in_)


def check_feature_names_arg(estimator: Any, input_features: Any) -> None:
    """``get_feature_names_out(input_features)`` must name the columns seen in fit, if given."""
    if input_features is None:
        return
    given = [str(c) for c in input_features]
    if given != input_names(estimator):
        raise ValueError(f"input_features {given} do not match the columns seen in fit {input_names(estimator)}")


def cross_fit_splits(
    folds: Any, frame: pd.DataFrame, y: np.ndarray, groups: Any, kind: str, random_state: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The ``(train, validation)`` splits of an out-of-fold ``fit_transform`` and each row's fold.

    ``folds`` is a number of folds (made with :func:`~workbench.data.make_folds` of ``kind`` and
    ``random_state``) or anything :func:`~workbench.data.fold_splits` takes: the folds of training itself.
    """
    from ..data.folds import as_folds, fold_splits

    folds = as_folds(folds, y, kind=kind, random_state=random_state)
    return fold_splits(folds, len(frame), frame, y, groups)


class FrameTransformer(TransformerMixin, BaseEstimator):
    """Base of the feature transformers: DataFrames in and out, text columns and missing values welcome.

    ``categorical_input`` says whether the values are read as categories (scikit-learn's
    ``categorical`` input tag, which also shapes the data its estimator checks use).
    """

    categorical_input = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = self.categorical_input
        return tags
