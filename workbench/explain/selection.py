"""Feature selection by permutation importance: drop what the model does not need, retrain, compare.

The importances come from each fold model on its own validation rows (no row is scored by a model
that saw it), pooled over folds and repeats; a feature is dropped on the mean of all those
repeats, never on a single one.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind, figure_and_axes
from ..data.validation import Interval, check_X_y, column_names, renamed_params, validate_params, warn_renamed
from ..models import CVResult, take_rows, train_cv
from .permutation import permutation_importance
from .permutation_result import PermutationImportances

# train_cv metric (and task) -> the scikit-learn scorer that computes the same number from a model.
_SCORER_FOR_METRIC = {
    ("auc", "binary"): "roc_auc",
    ("auc", "multiclass"): "roc_auc_ovr",
    ("logloss", "binary"): "neg_log_loss",
    ("logloss", "multiclass"): "neg_log_loss",
    ("accuracy", "binary"): "accuracy",
    ("accuracy", "multiclass"): "accuracy",
    ("f1", "binary"): "f1",
    ("f1", "multiclass"): "f1_macro",
    ("rmse", "regression"): "neg_root_mean_squared_error",
    ("rmsle", "regression"): "neg_root_mean_squared_log_error",
    ("mae", "regression"): "neg_mean_absolute_error",
    ("r2", "regression"): "r2",
}


def scorer_for(cv: CVResult) -> str:
    """The scikit-learn scorer name matching the metric ``cv`` was scored with."""
    name = _SCORER_FOR_METRIC.get((cv.metric, cv.task))
    if name is None:
        raise ValueError(
            f"no scikit-learn scorer is known for the custom metric {cv.metric!r}; pass scoring= "
            "(a scorer name such as 'roc_auc' or a callable scorer(estimator, X, y))"
        )
    return name


@renamed_params(groups="feature_groups")
def cv_permutation_importance(
    cv: CVResult,
    X: Any,
    y: Any,
    scoring: Any = None,
    n_repeats: int = 5,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    random_state: int | None = 0,
    progress: bool = True,
    **kwargs: Any,
) -> PermutationImportances:
    """Permutation importance of every fold model on its validation rows, pooled over the folds.

    ``X`` and ``y`` are the data ``cv`` was trained on; ``scoring`` defaults to the scorer of
    ``cv``'s metric (``auc`` -> ``roc_auc``, ``rmse`` -> ``neg_root_mean_squared_error``...).
    The result has ``n_folds * n_repeats`` repeats (columns ``fold{k}_repeat_{r}``) and the mean
    fold baseline. Fold ``k`` uses ``random_state + k``.

    Parameters
    ----------
    cv : CVResult
        A result holding its fold models.
    X, y : DataFrame, array-like
        The data ``cv`` was trained on.
    scoring : str or callable, optional
        As above.
    n_repeats : int, default 5
        Permutations per feature and fold.
    feature_groups : mapping of str to columns, optional
        Columns permuted together.
    random_state : int or None, default 0
        Seed of fold 0's permutations.
    progress : bool, default True
        Show a progress bar over the folds.
    **kwargs
        Passed to :func:`permutation_importance` (``n_jobs``, ``engine``...).

    Returns
    -------
    PermutationImportances
        Pooled over the folds.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> from workbench.models import train_cv
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> cv = train_cv(LGBMClassifier(n_estimators=30, verbose=-1), X, y, folds=3, progress=False)
    >>> result = cv_permutation_importance(cv, X, y, n_repeats=2, progress=False)
    >>> result.to_frame()[["mean", "std"]].head(3).round(3)
                      mean    std
    feature
    Contract         0.146  0.012
    tenure           0.048  0.009
    InternetService  0.022  0.003
    """
    start = time.perf_counter()
    names = column_names(X)
    if names != list(cv.feature_names):
        raise ValueError(
            "X must have the columns cv was trained on, in the same order "
            f"(cv has {len(cv.feature_names)} features: {cv.feature_names[:10]}...)"
        )
    scoring = scoring if scoring is not None else scorer_for(cv)
    y_arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
    check_X_y(X, y_arr)
    # Fold models of classifiers were fitted on class indices (see train_cv).
    y_fit = np.searchsorted(np.asarray(cv.classes), y_arr) if cv.classes is not None else y_arr
    folds = np.asarray(cv.folds)
    from tqdm.auto import tqdm

    parts = []
    for k, model in enumerate(
        tqdm(cv.models, desc="permutation importance", unit="fold", disable=not progress, leave=False)
    ):
        idx = np.flatnonzero(folds == k)
        seed = None if random_state is None else random_state + k
        parts.append(
            permutation_importance(
                model,
                take_rows(X, idx),
                y_fit[idx],
                scoring=scoring,
                n_repeats=n_repeats,
                feature_groups=feature_groups,
                random_state=seed,
                progress=False,
                **kwargs,
            )
        )
    importances = pd.concat([p.importances.add_prefix(f"fold{k}_") for k, p in enumerate(parts)], axis=1)
    return PermutationImportances(
        importances=importances,
        baseline_score=float(np.mean([p.baseline_score for p in parts])),
        scoring=parts[0].scoring,
        n_rows=int(sum(p.n_rows for p in parts)),
        random_state=random_state,
        feature_groups=parts[0].feature_groups,
        engine=parts[0].engine,
        elapsed_s=time.perf_counter() - start,
    )


def noisy_features(importances: PermutationImportances, noise: float = 0.0) -> list[Any]:
    """Features whose mean importance over all repeats is ``<= noise * std`` of those repeats.

    ``noise=0`` keeps every feature that helps on average; ``noise=1`` also drops those within
    one standard deviation of zero. A single bad repeat never decides: only the mean does.
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (a multiple of the repeats' std), got {noise}")
    if importances.n_repeats < 2:
        raise ValueError("telling signal from noise needs at least two repeats; raise n_repeats (or use more folds)")
    mean, std = importances.mean, importances.std
    return [name for name in mean.index if mean[name] <= noise * std[name]]


@dataclass
class FeatureSelection(Result):
    """Rounds of (cross-validate, permutation importance, drop the noisy features).

    ``cv_results[0]`` is the model on all features, ``cv_results[-1]`` on the ``kept`` ones;
    ``to_frame()`` has one row per round, ``plot()`` draws the CV score per round.
    """

    kept: list[Any]
    dropped: list[Any]
    cv_results: list[CVResult]
    importances: list[PermutationImportances]
    dropped_by_round: list[list[Any]] = field(default_factory=list)
    noise: float = 0.0

    @property
    def metric(self) -> str:
        return self.cv_results[0].metric

    @property
    def score_before(self) -> float:
        return float(self.cv_results[0].score)

    @property
    def score_after(self) -> float:
        return float(self.cv_results[-1].score)

    @property
    def improved(self) -> bool:
        """Whether the CV score on the kept features beats the score on all features."""
        return self.cv_results[0].get_metric().better(self.score_after, self.score_before)

    def summary(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("FeatureSelection", "summary()", "to_frame()")
        return self.to_frame()

    def plot(self, kind: str = "scores", ax: Any = None) -> Any:
        """Figure of the OOF score (± fold std) and the number of features, per round."""
        check_kind(kind, ("scores",), "FeatureSelection.plot")
        table = self.to_frame()
        fig, ax = figure_and_axes(ax, 6, 3.5)
        ax.errorbar(
            table.index,
            table[self.metric],
            yerr=table[f"{self.metric}_fold_std"],
            marker="o",
            color="#1A4E5D",
            capsize=3,
        )
        for k, row in table.iterrows():
            ax.annotate(
                f"{row['n_features']} features",
                (k, row[self.metric]),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
            )
        ax.set_xticks(table.index)
        ax.set_xlabel("round")
        ax.set_ylabel(self.metric)
        ax.set_title(f"Feature selection: {self.score_before:.5f} -> {self.score_after:.5f}", loc="left")
        return fig

    def to_frame(self) -> pd.DataFrame:
        """One row per trained model: features used, CV score (OOF and fold std), what was dropped next."""
        rows = []
        for k, cv in enumerate(self.cv_results):
            dropped = self.dropped_by_round[k] if k < len(self.dropped_by_round) else []
            rows.append(
                {
                    "round": k,
                    "n_features": len(cv.feature_names),
                    self.metric: cv.score,
                    f"{self.metric}_fold_std": cv.score_std,
                    "dropped_next": list(dropped),
                }
            )
        return pd.DataFrame(rows).set_index("round")

    def __repr__(self) -> str:
        return (
            f"FeatureSelection({self.metric}: {self.score_before:.5f} -> {self.score_after:.5f} "
            f"with {len(self.kept)} features, {len(self.dropped)} dropped)"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join(
            f"<tr><td>{k}</td><td>{r['n_features']}</td><td>{r[self.metric]:.5f}</td>"
            f"<td>{r[f'{self.metric}_fold_std']:.5f}</td><td>{esc(', '.join(map(str, r['dropped_next'])))}</td></tr>"
            for k, r in self.to_frame().iterrows()
        )
        verdict = "better" if self.improved else "not better"
        return (
            f"<div class='workbench-feature-selection'><b>{esc(self.metric)}</b> {self.score_before:.5f} &rarr; "
            f"{self.score_after:.5f} ({verdict}) with {len(self.kept)} of {len(self.kept) + len(self.dropped)} "
            "features<table><thead><tr><th>round</th><th>features</th><th>OOF score</th><th>fold std</th>"
            f"<th>dropped next</th></tr></thead><tbody>{body}</tbody></table></div>"
        )


@renamed_params(groups="feature_groups")
@validate_params(
    {
        "n_repeats": [Interval(int, 1, None)],
        "max_rounds": [Interval(int, 1, None)],
        "noise": [Interval(float, None, None)],
        "random_state": [Interval(int, 0, 2**32, closed="left")],
        "folds": ["folds", None],
        "progress": ["boolean"],
    }
)
def drop_noisy_features(
    estimator: Any,
    X: Any,
    y: Any,
    folds: Any = None,
    metric: Any = None,
    scoring: Any = None,
    n_repeats: int = 5,
    noise: float = 0.0,
    max_rounds: int = 1,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    early_stopping_rounds: int | None = None,
    fit_params: Mapping[str, Any] | None = None,
    random_state: int = 0,
    progress: bool = True,
) -> FeatureSelection:
    """Retrain without the features whose permutation importance is noise; report old vs new CV score.

    Each round cross-validates ``estimator`` with :func:`workbench.models.train_cv` (``folds``,
    ``metric``, ``early_stopping_rounds``, ``fit_params`` as there; default 5 stratified or plain
    folds), computes :func:`cv_permutation_importance` on the validation folds and drops every
    feature (or ``feature_groups`` entry) whose mean importance over all folds and repeats is
    ``<= noise * std``; then cross-validates again on the rest. Stops after ``max_rounds`` rounds
    or when nothing is dropped.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
        Cloned and cross-validated each round.
    X : DataFrame
        The features.
    y : array-like
        The target.
    folds : int, fold numbers per row or splitter, optional
        As in :func:`~workbench.models.train_cv` (default: 5).
    metric : str, Metric or callable, optional
        The CV metric, as in ``train_cv``.
    scoring : str or callable, optional
        The permutation scorer (default: the scorer of ``metric``).
    n_repeats : int, default 5
        Permutations per feature and fold.
    noise : float, default 0.0
        A feature is dropped when its mean importance is ``<= noise * std``.
    max_rounds : int, default 1
        Most drop-and-retrain rounds.
    feature_groups : mapping of str to columns, optional
        Columns permuted (and dropped) together.
    early_stopping_rounds : int, optional
        As in ``train_cv``.
    fit_params : mapping, optional
        As in ``train_cv``.
    random_state : int, default 0
        Seed of the folds and permutations.
    progress : bool, default True
        Show progress bars.

    Returns
    -------
    FeatureSelection
        ``score_before``, ``score_after``, ``dropped``, ``kept`` and the importances of each round.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> sel = drop_noisy_features(LGBMClassifier(n_estimators=30, verbose=-1), X, y, folds=3, progress=False)
    >>> round(sel.score_before, 4), round(sel.score_after, 4), sel.dropped
    (0.8422, 0.8423, ['Partner', 'PhoneService', 'DeviceProtection'])
    """
    from ..data import as_folds
    from ..models import infer_task

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    folds = as_folds(5 if folds is None else folds, y, random_state=random_state, task=infer_task(y))
    cv_kwargs = {
        "folds": folds,
        "metric": metric,
        "early_stopping_rounds": early_stopping_rounds,
        "fit_params": fit_params,
        "progress": progress,
    }
    columns = list(frame.columns)
    cv = train_cv(estimator, frame[columns], y, **cv_kwargs)
    if n_repeats * cv.n_splits < 2:
        raise ValueError("telling signal from noise needs at least two repeats in all; raise n_repeats")
    history, importances, dropped_by_round, dropped = [cv], [], [], []
    for _ in range(max_rounds):
        active_groups = None
        if feature_groups:
            active_groups = {g: [c for c in cols if c in columns] for g, cols in feature_groups.items()}
            active_groups = {g: cols for g, cols in active_groups.items() if cols}
        imp = cv_permutation_importance(
            cv,
            frame[columns],
            y,
            scoring=scoring,
            n_repeats=n_repeats,
            feature_groups=active_groups,
            random_state=random_state,
            progress=progress,
        )
        importances.append(imp)
        noisy = noisy_features(imp, noise)
        drop_cols = {c for name in noisy for c in (imp.feature_groups.get(name) or [name])}
        if not noisy:
            dropped_by_round.append([])
            break
        if len(drop_cols) >= len(columns):
            warnings.warn("every feature looks like noise at this threshold; nothing was dropped", stacklevel=2)
            dropped_by_round.append([])
            break
        dropped_by_round.append(noisy)
        dropped.extend(noisy)
        columns = [c for c in columns if c not in drop_cols]
        cv = train_cv(estimator, frame[columns], y, **cv_kwargs)
        history.append(cv)
    return FeatureSelection(
        kept=columns,
        dropped=dropped,
        cv_results=history,
        importances=importances,
        dropped_by_round=dropped_by_round,
        noise=noise,
    )
