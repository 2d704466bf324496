"""Real estimators that log every ``fit`` to a file, so tests can count fits across processes.

Set ``WORKBENCH_FIT_LOG`` to a file path: each fit appends one line with the class name.
``WORKBENCH_FIT_DELAY`` (seconds) makes each fit sleep first, so a test can kill a stack mid-run.
"""

from __future__ import annotations

import os
import time

from lightgbm import LGBMClassifier
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

LOG_ENV = "WORKBENCH_FIT_LOG"
DELAY_ENV = "WORKBENCH_FIT_DELAY"


def _record(name: str) -> None:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(name + "\n")


def fit_count(path, name: str | None = None) -> int:
    """Number of fits logged in ``path`` (of class ``name`` only, when given)."""
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        lines = [line.strip() for line in fh if line.strip()]
    return len(lines) if name is None else sum(line == name for line in lines)


class CountingLogisticRegression(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        _record(type(self).__name__)
        return super().fit(X, y, sample_weight=sample_weight)


class CountingExtraTrees(ExtraTreesClassifier):
    def fit(self, X, y, sample_weight=None):
        _record(type(self).__name__)
        return super().fit(X, y, sample_weight=sample_weight)


class CountingKNN(KNeighborsClassifier):
    def fit(self, X, y):
        _record(type(self).__name__)
        return super().fit(X, y)


class CountingLGBM(LGBMClassifier):
    def fit(self, X, y, **kwargs):
        _record(type(self).__name__)
        return super().fit(X, y, **kwargs)
