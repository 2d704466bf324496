"""Feature engineering: leak-free encoders, text n-grams, group aggregates, dates, collaborative filtering."""

from .encoders import CountEncoder, OrdinalEncoder, TargetEncoder
from .text import TextNgramFeatures

__all__ = ["CountEncoder", "OrdinalEncoder", "TargetEncoder", "TextNgramFeatures"]
