"""Column roles and fold assignment."""

from .folds import FOLD_KINDS, FoldIds, fold_splits, make_folds
from .schema import ROLES, Schema, infer_schema

__all__ = ["FOLD_KINDS", "ROLES", "FoldIds", "Schema", "fold_splits", "infer_schema", "make_folds"]
