"""Column roles, fold assignment and the checks at the door of the public API."""

from .folds import FOLD_KINDS, FoldIds, as_folds, fold_splits, make_folds
from .results import Result
from .schema import ROLES, Schema, infer_schema, is_categorical_like
from .validation import (
    Interval,
    InvalidParameterError,
    Options,
    check_params,
    check_whole_number,
    check_X_y,
    column_names,
    default_column_names,
    effective_n_jobs,
    renamed_params,
    validate_params,
)

__all__ = [
    "FOLD_KINDS",
    "ROLES",
    "FoldIds",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Result",
    "Schema",
    "as_folds",
    "check_X_y",
    "check_params",
    "check_whole_number",
    "column_names",
    "default_column_names",
    "effective_n_jobs",
    "fold_splits",
    "infer_schema",
    "is_categorical_like",
    "make_folds",
    "renamed_params",
    "validate_params",
]
