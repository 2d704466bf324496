"""Feature engineering: leak-free encoders, text n-grams, group aggregates, dates, collaborative filtering."""

from .encoders import CountEncoder, OrdinalEncoder, TargetEncoder

__all__ = ["CountEncoder", "OrdinalEncoder", "TargetEncoder"]
