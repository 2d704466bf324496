"""Cross-validated training: out-of-fold predictions, fold models, scores."""

from .cv import take_rows, train_cv
from .metrics import DEFAULT_METRIC, METRICS, TASKS, Metric, get_metric, infer_task
from .presets import default_lgbm
from .result import CVResult

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "TASKS",
    "CVResult",
    "Metric",
    "default_lgbm",
    "get_metric",
    "infer_task",
    "take_rows",
    "train_cv",
]

from .importance import mean_importance
from .presets import MODEL_FAMILIES, default_extratrees, default_logreg, linear_preprocessor
from .space import Dimension, parse_space
from .trial import report
from .tuning import LGBM_SPACE, TuneResult, tune, tune_lgbm

__all__ += ["MODEL_FAMILIES", "default_extratrees", "default_logreg", "linear_preprocessor", "mean_importance"]

__all__ += ["LGBM_SPACE", "Dimension", "TuneResult", "parse_space", "report", "tune", "tune_lgbm"]
