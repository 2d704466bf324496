"""Multi-level stacking on out-of-fold predictions, cached per model and resumable; weighted blending."""

from .blend import BlendResult, blend
from .cache import CacheEntry, OOFCache
from .fingerprint import data_digest, estimator_fingerprint
from .members import StackModel
from .meta import META_MODELS, log_odds, meta_model
from .report import plot_stack, prediction_correlation, summary_table
from .runs import RunMember, StackRuns, find_train_runs, load_stack_runs
from .stack import FittedModel, Stack

__all__ = [
    "META_MODELS",
    "BlendResult",
    "CacheEntry",
    "FittedModel",
    "OOFCache",
    "RunMember",
    "Stack",
    "StackModel",
    "StackRuns",
    "blend",
    "data_digest",
    "estimator_fingerprint",
    "find_train_runs",
    "load_stack_runs",
    "log_odds",
    "meta_model",
    "plot_stack",
    "prediction_correlation",
    "summary_table",
]
