"""Bundled demo data sets."""

from .submission import check_submission
from .telco import TELCO_CATEGORICAL, CompetitionData, load_telco, score_telco_submission

__all__ = ["TELCO_CATEGORICAL", "CompetitionData", "check_submission", "load_telco", "score_telco_submission"]
