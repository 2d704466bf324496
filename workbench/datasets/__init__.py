"""Bundled demo data sets."""

from .telco import TELCO_CATEGORICAL, CompetitionData, load_telco, score_telco_submission

__all__ = ["TELCO_CATEGORICAL", "CompetitionData", "load_telco", "score_telco_submission"]
