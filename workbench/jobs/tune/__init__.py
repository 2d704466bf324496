"""Tuning a notebook: Optuna studies whose trials are recorded notebook runs.

:func:`run_tune` checks the search space against the notebook's typed parameters and declared
metrics, creates (or continues) the study in its storage, and runs trials in worker processes
(or pods, see :mod:`workbench.jobs.tune.k8s`); :func:`show_study` reads a study back.
"""

from ...models.trial import SAMPLERS
from .driver import plan_tune, run_tune, show_study
from .space import check_metric, check_space, declared_metrics, load_space_file, parse_assignments
from .storage import JOURNAL_FILE, check_study_name, default_storage, study_dir
from .study import trials_table
from .worker import TuneConfig, work

__all__ = [
    "JOURNAL_FILE",
    "SAMPLERS",
    "TuneConfig",
    "check_metric",
    "check_space",
    "check_study_name",
    "declared_metrics",
    "default_storage",
    "load_space_file",
    "parse_assignments",
    "plan_tune",
    "run_tune",
    "show_study",
    "study_dir",
    "trials_table",
    "work",
]
