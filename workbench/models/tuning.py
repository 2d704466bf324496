"""Tuning a model inside a notebook: ``tune`` searches an estimator's parameters with Optuna,
each trial a ``train_cv`` whose folds report to the pruner; ``tune_lgbm`` brings a LightGBM space.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.results import check_kind, figure_and_axes
from .cv import train_cv
from .metrics import Metric, get_metric, infer_task
from .result import CVResult
from .space import parse_space, suggest
from .study_plots import plot_history, plot_importances, plot_parallel
from .trial import make_pruner, make_sampler, open_storage, optuna_reporter, trial_scope

LGBM_SPACE = {
    "learning_rate": "loguniform(0.01,0.2)",
    "num_leaves": "int(4,128)",
    "min_child_samples": "int(5,100)",
    "colsample_bytree": "uniform(0.3,1.0)",
    "subsample": "uniform(0.5,1.0)",
    "reg_lambda": "loguniform(0.001,10)",
}
"""The default search space of :func:`tune_lgbm`."""


def trial_row(trial: Any, metric: str, digits: int | None = None) -> dict[str, Any]:
    """An Optuna trial as a table row: ``trial``, ``state``, ``metric`` (completed trials only), ``step``
    (last reported), ``param.*`` and ``duration_s`` (rounded to ``digits`` when given)."""
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    if duration is not None and digits is not None:
        duration = round(duration, digits)
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        metric: trial.value if trial.state.name == "COMPLETE" else None,
        "step": trial.last_step,
        **{f"param.{k}": v for k, v in trial.params.items()},
        "duration_s": duration,
    }


def best_first(table: pd.DataFrame, study: Any, metric: str) -> pd.DataFrame:
    """Rows of :func:`trial_row` sorted best first in the study's direction (ties by trial number)."""
    if table.empty:
        return table
    ascending = study.direction.name == "MINIMIZE"
    return table.sort_values([metric, "trial"], ascending=[ascending, True], na_position="last").reset_index(drop=True)


@dataclass
class TuneResult:
    """A finished search: the best trial's :class:`CVResult`, its parameters and the Optuna study."""

    best: CVResult
    best_params: dict[str, Any]
    study: Any
    metric: str

    @property
    def best_score(self) -> float:
        return float(self.best.score)

    def to_frame(self) -> pd.DataFrame:
        """One row per trial, best first: ``trial``, ``state``, the metric, ``step``, ``param.*``, ``duration_s``."""
        rows = [trial_row(t, self.metric) for t in self.study.get_trials(deepcopy=False)]
        return best_first(pd.DataFrame(rows), self.study, self.metric)

    def plot(self, kind: str = "history", ax: Any = None) -> Any:
        """``kind="history"`` (values by trial, best so far), ``"importance"`` (fANOVA) or ``"parallel"``."""
        check_kind(kind, ("history", "importance", "parallel"), "TuneResult.plot")
        fig, ax = figure_and_axes(ax, 7 if kind == "parallel" else 6, 3.5)
        {"history": plot_history, "importance": plot_importances, "parallel": plot_parallel}[kind](self.study, ax=ax)
        return fig

    def __repr__(self) -> str:
        n = len(self.study.get_trials(deepcopy=False))
        return f"TuneResult({self.best.estimator}, best {self.metric}={self.best_score:.5f}, {n} trials)"

    def _repr_html_(self) -> str:
        params = ", ".join(
            f"{html.escape(str(k))}={html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}"
            for k, v in self.best_params.items()
        )
        table = self.to_frame().head(10).to_html(index=False, na_rep="", float_format=lambda v: f"{v:.5g}")
        return (
            f"<div class='workbench-tuneresult'><b>{html.escape(repr(self))}</b><br>best: {params}"
            f"<br>top trials:{table}</div>"
        )


def tune(
    estimator: Any,
    X: Any,
    y: Any,
    folds: Any,
    space: Mapping[str, Any],
    n_trials: int = 20,
    *,
    metric: str | Metric | Callable[..., float] | None = None,
    X_test: Any = None,
    early_stopping_rounds: int | None = None,
    fit_params: Mapping[str, Any] | None = None,
    task: str | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    random_state: int = 0,
) -> TuneResult:
    """Search ``estimator``'s parameters over ``space`` with ``train_cv``; each fold's score goes to the pruner.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
        Cloned per trial with the trial's parameters (``set_params``; ``step__name`` for pipelines).
    X, y, folds, X_test, early_stopping_rounds, fit_params, task, n_jobs
        As for :func:`~workbench.models.train_cv`.
    space : mapping
        Parameter name → ``"loguniform(0.01,0.3)"``, ``"int(8,64)"``, ``"choice(a,b)"`` (or a list).
    n_trials : int, default 20
        Trials to run.
    metric : str, Metric or callable, optional
        What ``train_cv`` scores (default: AUC, log loss or RMSE by task); its direction is the study's.
    sampler : {"tpe", "random", "cmaes", "grid"}, default "tpe"
        Optuna's sampler, seeded by ``random_state`` (``grid``: ``choice`` and ``int`` dimensions only).
    pruner : {"median", "hyperband", "none"}, default "median"
        Stops trials that fall behind. After fold ``k`` a trial reports the score of its
        out-of-fold predictions on folds ``0..k``; ``median`` prunes it when that is worse than the
        median of the completed trials' scores on the same folds (from the third completed trial on;
        never after the last fold, whose work is done): see
        :class:`~workbench.models.pruning.FoldMedianPruner`.
    timeout : float, optional
        Start no trial after this many seconds.
    storage, study_name : str, optional
        An Optuna storage (URL or journal file path) and study to continue; default in memory.
    progress : bool, default True
        A progress bar over the trials.
    random_state : int, default 0
        Seed of the sampler.

    Returns
    -------
    TuneResult
        ``best`` (the best trial's CVResult), ``best_params`` and the ``study``.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco().head(1500)
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> result = tune(LGBMClassifier(n_estimators=30, verbose=-1), X, y, 3, {"num_leaves": "int(4,32)"},
    ...               n_trials=3, progress=False)
    >>> len(result.to_frame()), result.best.n_splits
    (3, 3)
    """
    import optuna
    from sklearn.base import clone

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dims = parse_space(space)
    y_arr = np.asarray(y)
    resolved = get_metric(metric, task or infer_task(y_arr))
    study = optuna.create_study(
        storage=open_storage(storage) if storage else None,
        study_name=study_name,
        load_if_exists=storage is not None,
        direction="maximize" if resolved.greater_is_better else "minimize",
        sampler=make_sampler(sampler, random_state, dims),
        pruner=make_pruner(pruner),
    )
    kept: dict[str, Any] = {}

    def objective(trial: Any) -> float:
        params = suggest(trial, dims)
        model = clone(estimator).set_params(**params)
        with trial_scope(optuna_reporter(trial)):
            cv = train_cv(
                model,
                X,
                y,
                folds,
                X_test=X_test,
                metric=resolved,
                early_stopping_rounds=early_stopping_rounds,
                fit_params=fit_params,
                task=task,
                progress=False,
                n_jobs=n_jobs,
                random_state=random_state,
            )
        best = kept.get("cv")
        if best is None or (cv.score > best.score if resolved.greater_is_better else cv.score < best.score):
            kept.update(cv=cv, params=params)
        return float(cv.score)

    study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress_bar=progress)
    if "cv" not in kept:
        raise ValueError(f"no trial of {n_trials} completed (all pruned or failed); loosen the pruner or the space")
    return TuneResult(best=kept["cv"], best_params=kept["params"], study=study, metric=resolved.name)


def tune_lgbm(
    X: Any,
    y: Any,
    folds: Any,
    n_trials: int = 30,
    *,
    space: Mapping[str, Any] | None = None,
    task: str | None = None,
    early_stopping_rounds: int = 100,
    n_estimators: int = 2000,
    random_state: int = 0,
    **options: Any,
) -> TuneResult:
    """:func:`tune` a :func:`~workbench.models.default_lgbm` over :data:`LGBM_SPACE` (or ``space``)
    with early stopping; ``options`` go to :func:`tune`.

    .. code-block:: python

        result = tune_lgbm(X, y, folds, n_trials=40)
        result.best, result.best_params
    """
    from .presets import default_lgbm

    task = task or infer_task(np.asarray(y))
    estimator = default_lgbm(task, random_state=random_state, n_estimators=n_estimators, n_jobs=1)
    return tune(
        estimator,
        X,
        y,
        folds,
        space or LGBM_SPACE,
        n_trials,
        task=task,
        early_stopping_rounds=early_stopping_rounds,
        random_state=random_state,
        **options,
    )
