"""Multi-level stacking on out-of-fold predictions, cached per model and resumable; weighted blending."""

from .blend import BlendResult, blend
from .cache import CacheEntry, OOFCache
from .fingerprint import data_digest, estimator_fingerprint
from .members import StackModel
from .meta import META_MODELS, log_odds, meta_model
from .report import plot_stack, prediction_correlation, summary_table
from .stack import FittedModel, Stack

__all__ = [
    "META_MODELS",
    "BlendResult",
    "CacheEntry",
    "FittedModel",
    "OOFCache",
    "Stack",
    "StackModel",
    "blend",
    "data_digest",
    "estimator_fingerprint",
    "log_odds",
    "meta_model",
    "plot_stack",
    "prediction_correlation",
    "summary_table",
]
