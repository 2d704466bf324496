"""Feature engineering: leak-free encoders, text n-grams, group aggregates, dates, collaborative filtering.

Scikit-learn transformers, pandas in and pandas out, fitted on training data and applied to new
data; the supervised ones (:class:`TargetEncoder`, :class:`CFFeatures`) are out-of-fold in
``fit_transform`` so the target never leaks into its own row's features.
"""

from . import cf
from .aggregates import AGGREGATIONS, GroupAggregates
from .cf import CFFeatures
from .dates import DateFeatures
from .encoders import AsCategory, CountEncoder, OrdinalEncoder, TargetEncoder
from .pipeline import FeaturePipeline, build
from .text import TextNgramFeatures

__all__ = [
    "AGGREGATIONS",
    "AsCategory",
    "CFFeatures",
    "CountEncoder",
    "DateFeatures",
    "FeaturePipeline",
    "GroupAggregates",
    "OrdinalEncoder",
    "TargetEncoder",
    "TextNgramFeatures",
    "build",
    "cf",
]
