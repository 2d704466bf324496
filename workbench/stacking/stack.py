"""Multi-level stacking on out-of-fold predictions, cached per model and resumable: ``Stack``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import (
    Interval,
    Options,
    renamed_params,
    validate_params,
    warn_renamed,
)
from ..models import TASKS, CVResult, Metric
from ..models.parallel import n_workers
from .fit_run import FitRun, FittedModel, as_input, level_frames
from .members import resolve_levels


class Stack:
    """A StackNet-style stack: each level trains on the out-of-fold predictions of the level below.

    ``levels`` is a list of levels, each a list of models: estimators, :class:`StackModel` (own
    ``fit_params``, early stopping, feature subset), ``(name, model)`` pairs, and at level 1 also
    already computed :class:`~workbench.models.CVResult` objects or paths of saved ones. Every
    level is trained with :func:`~workbench.models.train_cv` on the same ``folds`` (an integer,
    :func:`~workbench.data.make_folds` output, or a scikit-learn splitter: group and time folds
    included); with ``restack=True`` the original features are passed up too. Test predictions
    flow up from the fold-averaged test predictions, so no model is ever refitted on full data.
    With ``cache_dir`` every model's result is stored under a fingerprint of its estimator,
    features, data, folds and random_state: a re-run trains only what changed, and a killed run resumes.
    ``random_state`` makes the folds (when ``folds`` is an integer) and fills unset ``random_state``
    parameters of the models (``seed`` is its former name, still accepted with a warning).

    Fitted attributes end in an underscore (``oof_``, ``score_``, ``models_``...), as on any
    scikit-learn estimator; the result objects it holds (:class:`~workbench.models.CVResult`)
    use plain names.

    ``n_jobs`` threads (joblib's meaning: ``-1``, the default, is every core) fit the folds of a
    level's models side by side; the results are bit for bit those of ``n_jobs=1``, which trains
    one model after another as :func:`~workbench.models.train_cv` does. While folds run side by
    side, each may use ``cores // threads`` threads: a model left at "every core" (a negative
    ``n_jobs``, or ``None`` for LightGBM and XGBoost) gets that share instead, and OpenMP and BLAS
    pools are limited to it, so the machine is never oversubscribed; explicit thread counts stay.

    .. code-block:: python

        stack = Stack([[lgbm, logreg, extra_trees], [LogisticRegression()]], folds=5, cache_dir="runs/cache")
        stack.fit(X, y, X_test=X_test)
        stack.score_, stack.test_pred_, stack.level_oof(1).head()
        stack.to_frame(); stack.plot()
    """

    @renamed_params(seed="random_state")
    @validate_params(
        {
            "folds": ["folds", None],
            "restack": ["boolean"],
            "task": [Options(TASKS), None],
            "random_state": [Interval(int, 0, 2**32, closed="left")],
            "progress": ["boolean"],
            "n_jobs": ["n_jobs"],
        }
    )
    def __init__(
        self,
        levels: Sequence[Sequence[Any]],
        folds: Any = None,
        restack: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        metric: str | Metric | Callable[..., float] | None = None,
        task: str | None = None,
        random_state: int = 0,
        progress: bool = True,
        n_jobs: int | None = -1,
    ) -> None:
        n_workers(n_jobs, "Stack()")  # a bad value is an error now, not after the first level has trained
        self.levels = levels
        self.folds = folds
        self.restack = restack
        self.cache_dir = cache_dir
        self.metric = metric
        self.task = task
        self.random_state = random_state
        self.progress = progress
        self.n_jobs = n_jobs
        self._members = resolve_levels(levels)

    @property
    def seed(self) -> int:
        """Former name of ``random_state`` (reading it warns)."""
        warn_renamed("Stack", "seed", "random_state")
        return self.random_state

    def __repr__(self) -> str:
        shape = " → ".join(str(len(level)) for level in self._members)
        fitted = f", {self.metric_.name}={self.score_:.5f}" if hasattr(self, "score_") else ""
        return f"Stack({shape} models{', restack' if self.restack else ''}{fitted})"

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, X_test: Any = None, groups: Any = None) -> Stack:
        """Train (or load from the cache) every model, level by level; returns ``self``."""
        run = FitRun(
            self._members,
            folds=self.folds,
            restack=self.restack,
            cache_dir=self.cache_dir,
            metric=self.metric,
            task=self.task,
            random_state=self.random_state,
            progress=self.progress,
            n_jobs=self.n_jobs,
        ).fit(X, y, X_test=X_test, groups=groups)
        self.task_, self.metric_, self.folds_, self.classes_ = run.task, run.metric, run.folds, run.classes
        self._train_index, self._test_index = run.index, run.test_index
        self.models_: list[FittedModel] = run.models
        self._inputs = run.inputs
        self.oof_, self.test_pred_, self.score_, self.n_fits_ = run.oof, run.test_pred, run.score, run.n_fits
        return self

    # ------------------------------------------------------------ introspection
    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise ValueError("this Stack is not fitted yet; call stack.fit(X, y, X_test=...) first")

    def _level(self, level: int) -> int:
        self._check_fitted()
        n_levels = len(self._members)
        k = level + n_levels + 1 if level < 0 else level
        if not 1 <= k <= n_levels:
            raise ValueError(f"level must be 1..{n_levels} (or negative from the top), got {level}")
        return k

    @property
    def n_levels(self) -> int:
        return len(self._members)

    @property
    def results_(self) -> dict[str, CVResult]:
        """``{"level1/lgbm": CVResult, ...}`` for every model of the fitted stack."""
        self._check_fitted()
        return {m.label: m.result for m in self.models_}

    def level_oof(self, level: int = 1) -> pd.DataFrame:
        """Out-of-fold predictions of one level, one column per model (per class for multiclass).

        Column names read ``level1/lgbm``; rows a time-fold level never validated are NaN.
        """
        k = self._level(level)
        frame, _ = level_frames([m for m in self.models_ if m.level == k], self._train_index, None)
        return frame

    def level_test(self, level: int = 1) -> pd.DataFrame | None:
        """Fold-averaged test predictions of one level (``None`` when fitted without a test set)."""
        k = self._level(level)
        fitted = [m for m in self.models_ if m.level == k]
        if any(m.test_pred is None for m in fitted):
            return None
        _, frame = level_frames(fitted, self._train_index, self._test_index)
        return frame

    def level_inputs(self, level: int = 1) -> list[str]:
        """Column names the models of ``level`` could use (all, before any ``features`` selection)."""
        k = self._level(level)
        return list(self._inputs.get(k, []))

    def summary(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("Stack", "summary()", "to_frame()")
        return self.to_frame()

    def to_frame(self) -> pd.DataFrame:
        """Per-model CV score (± std over folds), where it came from this run and how long it took."""
        from .report import summary_table

        self._check_fitted()
        return summary_table(self)

    def correlation(self, level: int = 1, method: str = "pearson") -> pd.DataFrame:
        """Correlation between the out-of-fold predictions of the models of ``level``."""
        from .report import prediction_correlation

        return prediction_correlation(self.level_oof(level), method=method)

    def plot(self, kind: str = "both", ax: Any = None, level: int = 1) -> Any:
        """Figure: CV score of every model (by level) and the correlation of ``level``'s predictions.

        ``kind``: ``"both"`` (two panels), ``"scores"`` or ``"correlation"`` (one panel, drawn on
        ``ax`` when given).
        """
        from .report import plot_stack

        if isinstance(kind, int) and not isinstance(kind, bool):  # the former plot(level)
            warn_renamed("Stack.plot", "plot(level)", "plot(level=...)")
            kind, level = "both", kind
        return plot_stack(
            self.to_frame(),
            self.correlation(level),
            self.metric_,
            title=f"level {self._level(level)} correlation",
            kind=kind,
            ax=ax,
        )

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for new rows: every level's fold models averaged, flowing up like ``test_pred_``."""
        self._check_fitted()
        X = as_input(X, "X")
        prev: pd.DataFrame | None = None
        out: list[np.ndarray] = []
        for level in range(1, self.n_levels + 1):
            fitted = [m for m in self.models_ if m.level == level]
            if level == 1:
                inputs = X
            else:
                inputs = pd.concat([X.reset_index(drop=True), prev], axis=1) if self.restack else prev
            cols: dict[str, np.ndarray] = {}
            out = []
            for m in fitted:
                usable = isinstance(inputs, pd.DataFrame) and all(f in inputs.columns for f in m.features)
                data = inputs[m.features] if usable else inputs
                pred = m.with_models().predict(data)
                out.append(pred)
                for j, col in enumerate(m.columns):
                    cols[col] = pred.reshape(len(pred), -1)[:, j]
            prev = pd.DataFrame(cols)
        return np.mean(out, axis=0) if len(out) > 1 else out[0]

    def _repr_html_(self) -> str:
        if not hasattr(self, "models_"):
            return f"<pre>{self!r} (not fitted)</pre>"
        return (
            f"<div class='workbench-stack'><b>Stack</b> — {self.n_levels} levels, {self.metric_.name} "
            f"{self.score_:.5f}, {self.n_fits_} models trained this run"
            f"{self.to_frame().to_html(index=False, float_format=lambda v: f'{v:.5f}')}</div>"
        )


__all__ = ["FittedModel", "Stack"]
