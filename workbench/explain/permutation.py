"""Permutation importance that reproduces scikit-learn's numbers, fast for tree models.

``permutation_importance`` draws exactly the permutations (and the ``max_samples`` rows) that
``sklearn.inspection.permutation_importance`` draws for the same integer ``random_state``
(:func:`sklearn_permutations`), and scores them with the same scikit-learn scorer
(:mod:`~workbench.explain.scorers`), so the two agree to rounding. Two engines:

- ``tree`` (``_permutation_lgbm``; the compiled tree engine, ``"lightgbm"`` as an older name):
  fitted LightGBM, XGBoost and CatBoost scikit-learn models and scikit-learn's trees, forests and
  (histogram) gradient boosting, with a named scorer.
  A compiled tree walk re-evaluates only the trees, and within them only the rows, whose decision
  path meets a split on the permuted feature; predictions are bit-identical to ``predict`` (see
  ``_permutation_engine``, and ``_permutation_forest`` for one output's trees walked tree by tree
  when every unit is one numeric feature), checked against the model on a sample of rows before use.
- ``generic`` (``_permutation_generic``): any fitted estimator and any scorer; the repeats of a
  feature are stacked into one frame and predicted with one call per method.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import Interval, Options, check_X_y, renamed_params, validate_params
from ._permutation_generic import generic_scores
from ._permutation_lgbm import Unsupported, lightgbm_scores, lightgbm_unsupported, numba_threads
from ._permutation_sampling import sklearn_permutations
from .permutation_result import PermutationImportances, PermutationImportancesByMetric
from .scorers import RESPONSE_METHODS, combined, resolve_scorer, resolve_scorers

Units = list[list[int]]


@renamed_params(groups="feature_groups")
@validate_params(
    {
        "n_repeats": [Interval(int, 1, None)],
        "feature_groups": [Mapping, None],
        "random_state": ["random_state"],
        "n_jobs": ["n_jobs"],
        "engine": [Options(("auto", "tree", "lightgbm", "generic"))],
        "progress": ["boolean"],
    }
)
def permutation_importance(
    model: Any,
    X: Any,
    y: Any,
    scoring: str | Callable[..., Any] | Sequence[str] | Mapping[str, Any] | None = None,
    n_repeats: int = 5,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    max_samples: int | float | None = None,
    random_state: int | np.random.RandomState | None = 0,
    n_jobs: int | None = -1,
    sample_weight: Any = None,
    features: Sequence[Any] | None = None,
    engine: str = "auto",
    progress: bool = True,
) -> PermutationImportances | PermutationImportancesByMetric:
    """Decrease of the score when each feature (or group of columns) is randomly permuted.

    Same arguments and numbers as ``sklearn.inspection.permutation_importance`` (``scoring``:
    a scorer name such as ``"roc_auc"``, ``"neg_log_loss"``, ``"r2"``, a scorer callable
    ``scorer(estimator, X, y)``, or None for the estimator's ``score``; several metrics as a
    list/tuple of names, a dict ``{name: scorer}`` or a callable returning ``{name: score}``
    give a :class:`PermutationImportancesByMetric`, a dict of results with the same
    permutations, as scikit-learn), plus:

    - ``feature_groups``: ``{"name": [columns...]}`` permutes those columns together with one row
      permutation (e.g. the one-hot columns of one category); other columns stay single
      (``groups``, its former name, still works with a warning).
    - ``features``: evaluate only these columns or group names.
    - ``engine``: ``"auto"`` (the compiled tree engine when it applies), ``"tree"`` (that
      engine, for LightGBM, XGBoost, CatBoost and scikit-learn tree models; ``"lightgbm"`` is its
      older name) or ``"generic"``. The result's ``engine`` says which one computed it.
    - ``n_jobs``: threads of the compiled tree engine, as joblib reads it (``-1``, the
      default: every core; ``None``: one, unless inside ``joblib.parallel_config``); the
      generic engine leaves threading to the model's own predict.

    .. code-block:: python

        result = permutation_importance(model, X_valid, y_valid, scoring="roc_auc", n_repeats=5)
        result.to_frame().head()
        sklearn.inspection.permutation_importance(
            model, X_valid, y_valid, scoring="roc_auc", n_repeats=5, random_state=0
        ).importances_mean
    """
    start = time.perf_counter()
    _check_fitted(model)
    X = _check_X(X)
    y_arr = _check_y(y, len(X))
    weights = None if sample_weight is None else _check_y(sample_weight, len(X), "sample_weight")
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(X.shape[1]))
    names, units, group_members = _units(columns, feature_groups, features)
    metrics = resolve_scorers(model, scoring)
    several = metrics is not None
    if metrics is None:
        scorer, scoring_name, by_methods = resolve_scorer(model, scoring)
        metrics = {scoring_name: (scorer, by_methods)}
    rows, perms = sklearn_permutations(len(X), int(n_repeats), random_state, max_samples)
    data = (X, y_arr, weights)
    results = _metric_scores(model, data, metrics, units, rows, perms, engine, n_jobs, progress)
    several = several or set(results) != set(metrics)  # or one callable returned {metric: score}
    common = {
        "n_rows": perms.shape[1],
        "random_state": random_state if not isinstance(random_state, np.random.RandomState) else "RandomState",
        "feature_groups": {name: [columns[i] for i in group_members[name]] for name in group_members},
        "elapsed_s": time.perf_counter() - start,
    }
    out = {
        name: PermutationImportances(
            importances=pd.DataFrame(
                baseline - scores,
                index=pd.Index(names, name="feature"),
                columns=[f"repeat_{r}" for r in range(n_repeats)],
            ),
            baseline_score=float(baseline),
            scoring=name,
            engine=used,
            **common,
        )
        for name, (baseline, scores, used) in results.items()
    }
    return PermutationImportancesByMetric(out) if several else next(iter(out.values()))


def _metric_scores(
    model: Any,
    data: tuple[Any, np.ndarray, np.ndarray | None],
    metrics: dict[str, tuple[Callable[..., Any], bool]],
    units: Units,
    rows: np.ndarray | None,
    perms: np.ndarray,
    engine: str,
    n_jobs: int | None,
    progress: bool,
) -> dict[str, tuple[float, np.ndarray, str]]:
    """``{metric: (baseline, scores[unit, repeat], engine)}``: the tree engine per metric where it
    applies, the others in one generic pass (their scorers share the predictions)."""
    X, y, weights = data
    done: dict[str, tuple[float, np.ndarray, str]] = {}
    if engine != "generic":
        for name, (scorer, by_methods) in metrics.items():
            found = _lightgbm_metric(
                model, data, scorer, name, by_methods, units, rows, perms, engine, n_jobs, progress
            )
            if found is not None:
                done[name] = (*found, "tree")
    rest = {name: scorer for name, (scorer, _) in metrics.items() if name not in done}
    if len(rest) == 1:
        name, scorer = next(iter(rest.items()))
        baseline, scores = generic_scores(model, X, y, weights, scorer, units, rows, perms, progress)
        if isinstance(baseline, dict):  # a callable returning several metrics
            return {key: (baseline[key], scores[key], "generic") for key in baseline}
        done[name] = (baseline, scores, "generic")
    elif rest:
        baseline, scores = generic_scores(model, X, y, weights, combined(rest), units, rows, perms, progress)
        done.update({key: (baseline[key], scores[key], "generic") for key in rest})
    return {name: done[name] for name in metrics}


def _lightgbm_metric(
    model: Any,
    data: tuple[Any, np.ndarray, np.ndarray | None],
    scorer: Callable[..., Any],
    scoring_name: str,
    by_methods: bool,
    units: Units,
    rows: np.ndarray | None,
    perms: np.ndarray,
    engine: str,
    n_jobs: int | None,
    progress: bool,
) -> tuple[float, np.ndarray] | None:
    """Baseline and permuted scores from the tree engine, or None where it does not apply."""
    X, y, weights = data
    try:
        reason = lightgbm_unsupported(model, by_methods)
        if reason is not None:
            raise Unsupported(reason)
        with numba_threads(n_jobs):
            return lightgbm_scores(model, X, y, weights, scorer, scoring_name, units, rows, perms, progress)
    except Unsupported as exc:
        if engine in ("tree", "lightgbm"):
            raise ValueError(f"the tree engine does not apply here: {exc}; use engine='auto' or 'generic'") from None
    return None


# --- input checks -------------------------------------------------------------------------


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(model, "fit") or not any(hasattr(model, m) for m in RESPONSE_METHODS):
        raise TypeError(f"expected a fitted scikit-learn style estimator, got {type(model).__name__}")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(X, y) before computing permutation importance"
        ) from exc


def _check_X(X: Any) -> Any:
    if isinstance(X, pd.DataFrame):
        if X.columns.has_duplicates:
            dup = X.columns[X.columns.duplicated()].unique().tolist()
            raise ValueError(f"X has duplicated column names {dup}; give every column a unique name")
        return X
    from sklearn.utils import check_array

    return check_array(X, ensure_all_finite="allow-nan", dtype=None)


def _check_y(y: Any, n: int, what: str = "y") -> np.ndarray:
    if y is None:
        raise ValueError(f"{what} is required: permutation importance scores predictions against the true target")
    arr = y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else np.asarray(y)
    check_X_y(n, arr, what)
    return arr


def _not_found(kind: str, value: Any, choices: list[Any]) -> ValueError:
    near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3)
    hint = f"; did you mean {near}?" if near else f"; X has columns {choices[:20]}{' ...' if len(choices) > 20 else ''}"
    return ValueError(f"{kind} {value!r} is not a column of X{hint}")


def _units(
    columns: list[Any], feature_groups: Mapping[str, Sequence[Any]] | None, features: Sequence[Any] | None
) -> tuple[list[Any], Units, dict[Any, list[int]]]:
    """Names and column positions of what gets permuted: the groups, and every other column alone."""
    position = {c: i for i, c in enumerate(columns)}
    owner, members = _group_members(columns, position, feature_groups)
    names: list[Any] = []
    units: Units = []
    emitted: set[Any] = set()
    for c in columns:
        if c in owner:
            if owner[c] not in emitted:
                emitted.add(owner[c])
                names.append(owner[c])
                units.append(members[owner[c]])
        else:
            names.append(c)
            units.append([position[c]])
    if features is not None:
        names, units = _selected(names, units, features, owner, columns)
    grouped = {n: members[n] for n in names if n in members}
    return names, units, grouped


def _group_members(
    columns: list[Any], position: dict[Any, int], feature_groups: Mapping[str, Sequence[Any]] | None
) -> tuple[dict[Any, Any], dict[Any, list[int]]]:
    """The group of every grouped column, and the column positions of every group."""
    owner: dict[Any, Any] = {}
    members: dict[Any, list[int]] = {}
    if feature_groups is None:
        return owner, members
    if not isinstance(feature_groups, Mapping):
        raise TypeError(f"feature_groups must be a dict {{group name: [columns]}}, got {type(feature_groups).__name__}")
    for name, cols in feature_groups.items():
        cols = [cols] if isinstance(cols, str) or not isinstance(cols, Sequence | pd.Index | np.ndarray) else cols
        if len(cols) == 0:
            raise ValueError(f"group {name!r} has no columns; list the columns to permute together")
        idx = []
        for c in cols:
            if c not in position:
                raise _not_found(f"group {name!r} names column", c, columns)
            if c in owner:
                raise ValueError(
                    f"column {c!r} is in feature groups {owner[c]!r} and {name!r}; put it in one group only"
                )
            owner[c] = name
            idx.append(position[c])
        if name in position and not (len(idx) == 1 and columns[idx[0]] == name):
            raise ValueError(f"group name {name!r} is also a column of X; give the group another name")
        members[name] = idx
    return owner, members


def _selected(
    names: list[Any], units: Units, features: Sequence[Any], owner: dict[Any, Any], columns: list[Any]
) -> tuple[list[Any], Units]:
    """Only the units asked for by ``features`` (columns or group names), in column order."""
    asked = [features] if isinstance(features, str) else list(features)
    wanted, known = set(asked), set(names)
    for f in asked:
        if f not in known:
            if f in owner:
                raise ValueError(f"column {f!r} is permuted as part of group {owner[f]!r}; ask for the group")
            raise _not_found("feature", f, columns)
    keep = [k for k, n in enumerate(names) if n in wanted]
    return [names[k] for k in keep], [units[k] for k in keep]


__all__ = [
    "PermutationImportances",
    "PermutationImportancesByMetric",
    "permutation_importance",
    "sklearn_permutations",
]
