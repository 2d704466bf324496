"""Permutation importance that reproduces scikit-learn's numbers, fast for LightGBM.

``permutation_importance`` draws exactly the permutations (and the ``max_samples`` rows) that
``sklearn.inspection.permutation_importance`` draws for the same integer ``random_state``, and
scores them with the same scikit-learn scorer, so the two agree to rounding. Two engines:

- ``lightgbm``: fitted LightGBM scikit-learn models with a named scorer. A compiled tree walk
  re-evaluates only the trees, and within them only the rows, whose decision path meets a split
  on the permuted feature; predictions are bit-identical to ``predict`` (see
  ``_permutation_engine``), checked against the model on a sample of rows before use.
- ``generic``: any fitted estimator and any scorer; the repeats of a feature are stacked into one
  frame and predicted with one call per method.
"""

from __future__ import annotations

import difflib
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import Interval, Options, check_X_y, effective_n_jobs, renamed_params, validate_params
from .permutation_result import PermutationImportances

_RESPONSE_METHODS = ("predict", "predict_proba", "decision_function", "predict_log_proba")
_BINARY_ONLY = ("roc_auc", "average_precision", "neg_brier_score", "f1", "precision", "recall", "jaccard")
_GUARD_ROWS = 256
_MAX_BATCH_CELLS = 2**24  # generic engine: cells of the stacked permuted copies per predict call
_MAX_OUTPUT_VALUES = 2**25  # lightgbm engine: permuted scores held at once (float64)

Units = list[list[int]]


@renamed_params(groups="feature_groups")
@validate_params(
    {
        "n_repeats": [Interval(int, 1, None)],
        "feature_groups": [Mapping, None],
        "random_state": ["random_state"],
        "n_jobs": ["n_jobs"],
        "engine": [Options(("auto", "lightgbm", "generic"))],
        "progress": ["boolean"],
    }
)
def permutation_importance(
    model: Any,
    X: Any,
    y: Any,
    scoring: str | Callable[..., float] | None = None,
    n_repeats: int = 5,
    feature_groups: Mapping[str, Sequence[Any]] | None = None,
    max_samples: int | float | None = None,
    random_state: int | np.random.RandomState | None = 0,
    n_jobs: int | None = -1,
    sample_weight: Any = None,
    features: Sequence[Any] | None = None,
    engine: str = "auto",
    progress: bool = True,
) -> PermutationImportances:
    """Decrease of the score when each feature (or group of columns) is randomly permuted.

    Same arguments and numbers as ``sklearn.inspection.permutation_importance`` (``scoring``:
    a scorer name such as ``"roc_auc"``, ``"neg_log_loss"``, ``"r2"``, a scorer callable
    ``scorer(estimator, X, y)``, or None for the estimator's ``score``), plus:

    - ``feature_groups``: ``{"name": [columns...]}`` permutes those columns together with one row
      permutation (e.g. the one-hot columns of one category); other columns stay single
      (``groups``, its former name, still works with a warning).
    - ``features``: evaluate only these columns or group names.
    - ``engine``: ``"auto"`` (LightGBM fast path when it applies), ``"lightgbm"`` or ``"generic"``.
    - ``n_jobs``: threads of the compiled LightGBM engine, as joblib reads it (``-1``, the
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
    scorer, scoring_name, by_methods = _resolve_scorer(model, scoring)
    rows, perms = sklearn_permutations(len(X), int(n_repeats), random_state, max_samples)

    result = None
    if engine != "generic":
        try:
            reason = _lightgbm_unsupported(model, by_methods)
            if reason is not None:
                raise _Unsupported(reason)
            with _threads(n_jobs):
                result = _lightgbm_scores(model, X, y_arr, weights, scorer, scoring_name, units, rows, perms, progress)
        except _Unsupported as exc:
            if engine == "lightgbm":
                raise ValueError(
                    f"the LightGBM engine does not apply here: {exc}; use engine='auto' or 'generic'"
                ) from None
    used = "lightgbm"
    if result is None:
        used = "generic"
        result = _generic_scores(model, X, y_arr, weights, scorer, units, rows, perms, progress)
    baseline, scores = result
    importances = pd.DataFrame(
        baseline - scores,
        index=pd.Index(names, name="feature"),
        columns=[f"repeat_{r}" for r in range(n_repeats)],
    )
    return PermutationImportances(
        importances=importances,
        baseline_score=float(baseline),
        scoring=scoring_name,
        n_rows=perms.shape[1],
        random_state=random_state if not isinstance(random_state, np.random.RandomState) else "RandomState",
        feature_groups={name: [columns[i] for i in group_members[name]] for name in group_members},
        engine=used,
        elapsed_s=time.perf_counter() - start,
    )


def sklearn_permutations(
    n_rows: int, n_repeats: int, random_state: Any, max_samples: int | float | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The rows and permutations scikit-learn's ``permutation_importance`` applies to every feature.

    scikit-learn draws one seed from ``random_state``, then for each feature re-creates
    ``RandomState(seed)``, optionally samples ``max_samples`` rows without replacement, and
    shuffles a row index in place once per repeat, applying it to the already permuted column.
    Returns ``(rows, perms)``: the sampled rows (None for all) and ``perms[r, i]``, the position
    (within those rows) whose value row ``i`` holds in repeat ``r``.
    """
    from sklearn.utils import check_random_state
    from sklearn.utils.random import sample_without_replacement

    rs = check_random_state(random_state)
    seed = rs.randint(np.iinfo(np.int32).max + 1)
    m = _n_samples(max_samples, n_rows)
    rs = check_random_state(seed)
    rows = None
    if m < n_rows:
        rows = np.asarray(sample_without_replacement(n_rows, m, random_state=rs), dtype=np.int64)
    shuffling = np.arange(m)
    source = np.arange(m)
    perms = np.empty((n_repeats, m), dtype=np.int64)
    for r in range(n_repeats):
        rs.shuffle(shuffling)
        source = source[shuffling]
        perms[r] = source
    return rows, perms


# --- input checks -------------------------------------------------------------------------


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(model, "fit") or not any(hasattr(model, m) for m in _RESPONSE_METHODS):
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


def _n_samples(max_samples: int | float | None, n_rows: int) -> int:
    if max_samples is None:
        return n_rows
    if isinstance(max_samples, numbers.Integral) and not isinstance(max_samples, bool):
        if not 1 <= max_samples <= n_rows:
            raise ValueError(f"max_samples={max_samples} must be between 1 and the number of rows ({n_rows})")
        return int(max_samples)
    if isinstance(max_samples, numbers.Real) and 0 < max_samples <= 1:
        m = int(max_samples * n_rows)
        if m < 1:
            raise ValueError(f"max_samples={max_samples} of {n_rows} rows leaves no row; use a larger fraction")
        return m
    raise ValueError(f"max_samples must be an int in [1, n_rows] or a fraction in (0, 1], got {max_samples!r}")


def _not_found(kind: str, value: Any, choices: list[Any]) -> ValueError:
    near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3)
    hint = f"; did you mean {near}?" if near else f"; X has columns {choices[:20]}{' ...' if len(choices) > 20 else ''}"
    return ValueError(f"{kind} {value!r} is not a column of X{hint}")


def _units(
    columns: list[Any], groups: Mapping[str, Sequence[Any]] | None, features: Sequence[Any] | None
) -> tuple[list[Any], Units, dict[Any, list[int]]]:
    # ``groups`` here: the column groups of ``feature_groups``.
    """Names and column positions of what gets permuted: the groups, and every other column alone."""
    position = {c: i for i, c in enumerate(columns)}
    owner: dict[Any, Any] = {}
    members: dict[Any, list[int]] = {}
    if groups is not None:
        if not isinstance(groups, Mapping):
            raise TypeError(f"feature_groups must be a dict {{group name: [columns]}}, got {type(groups).__name__}")
        for name, cols in groups.items():
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
        asked = [features] if isinstance(features, str) else list(features)
        wanted, known = set(asked), set(names)
        for f in asked:
            if f not in known:
                if f in owner:
                    raise ValueError(f"column {f!r} is permuted as part of group {owner[f]!r}; ask for the group")
                raise _not_found("feature", f, columns)
        keep = [k for k, n in enumerate(names) if n in wanted]
        names, units = [names[k] for k in keep], [units[k] for k in keep]
    grouped = {n: members[n] for n in names if n in members}
    return names, units, grouped


def _resolve_scorer(model: Any, scoring: Any) -> tuple[Callable[..., float], str, bool]:
    """The scikit-learn scorer, its display name, and whether it sees X only through predict methods."""
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import check_scoring, get_scorer, get_scorer_names

    if scoring is None:
        score = getattr(type(model), "score", None)
        if score is ClassifierMixin.score:  # accuracy_score(y, predict(X)), exactly the accuracy scorer
            scoring = "accuracy"
        elif score is RegressorMixin.score:
            scoring = "r2"
        else:
            return check_scoring(model, None), "score", False
    if isinstance(scoring, str):
        names = sorted(get_scorer_names())
        if scoring not in names:
            near = difflib.get_close_matches(scoring, names, n=3)
            raise ValueError(
                f"unknown scoring {scoring!r}"
                + (f"; did you mean {near}?" if near else "")
                + "; use a name from sklearn.metrics.get_scorer_names() or a callable scorer(estimator, X, y)"
            )
        classes = getattr(model, "classes_", None)
        if scoring in _BINARY_ONLY and classes is not None and len(classes) > 2:
            raise ValueError(
                f"scoring={scoring!r} applies to binary targets, but the model has {len(classes)} classes; "
                "use a multiclass scorer such as 'neg_log_loss', 'accuracy', 'roc_auc_ovr' or 'f1_macro'"
            )
        return get_scorer(scoring), scoring, True
    if isinstance(scoring, list | tuple | set | dict):
        raise ValueError("scoring must be one scorer (a name or a callable); call once per metric")
    if callable(scoring):
        return scoring, getattr(scoring, "__name__", None) or repr(scoring), _is_method_scorer(scoring)
    raise TypeError(f"scoring must be a scorer name, a callable or None, got {type(scoring).__name__}")


def _is_method_scorer(scorer: Any) -> bool:
    """scikit-learn's ``make_scorer`` objects use X only to call the estimator's predict methods."""
    try:
        from sklearn.metrics._scorer import _Scorer
    except ImportError:  # pragma: no cover - layout of a future scikit-learn
        return False
    return type(scorer) is _Scorer


@contextmanager
def _threads(n_jobs: int | None):
    import numba

    available = numba.config.NUMBA_NUM_THREADS
    wanted = min(effective_n_jobs(n_jobs, "permutation_importance()"), available)
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, wanted))
    try:
        yield
    finally:
        numba.set_num_threads(before)


# --- scoring through scikit-learn scorers with precomputed predictions ----------------------


class _Responses:
    """An estimator stand-in for scorers: predict methods called on ``X`` return ``fetch(name)``.

    Any other input, argument or attribute goes to the real model, so the scorer sees exactly
    what it would see from the model itself.
    """

    def __init__(self, model: Any, X: Any, fetch: Callable[[str], np.ndarray]) -> None:
        self._model = model
        self._X = X
        self._fetch = fetch

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        if name not in _RESPONSE_METHODS or not callable(attr):
            return attr
        token, fetch = self._X, self._fetch

        def method(X: Any, *args: Any, **kwargs: Any) -> Any:
            if X is token and not args and not kwargs:
                return fetch(name)
            return attr(X, *args, **kwargs)

        method.__name__ = name
        return method


def _score(scorer: Callable[..., float], estimator: Any, X: Any, y: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(scorer(estimator, X, y))
    return float(scorer(estimator, X, y, sample_weight=weights))


def _take(data: Any, rows: np.ndarray | None) -> Any:
    if rows is None or data is None:
        return data
    return data.iloc[rows] if isinstance(data, pd.DataFrame | pd.Series) else data[rows]


# --- the generic engine ---------------------------------------------------------------------


def _generic_scores(
    model: Any,
    X: Any,
    y: np.ndarray,
    weights: np.ndarray | None,
    scorer: Callable[..., float],
    units: Units,
    rows: np.ndarray | None,
    perms: np.ndarray,
    progress: bool,
) -> tuple[float, np.ndarray]:
    from tqdm.auto import tqdm

    baseline = _score(scorer, model, X, y, weights)
    X_eval, y_eval, w_eval = _take(X, rows), _take(y, rows), _take(weights, rows)
    n_repeats, m = perms.shape
    per_copy = max(1, m * X_eval.shape[1])
    batch = max(1, min(n_repeats, _MAX_BATCH_CELLS // per_copy))
    frame = isinstance(X_eval, pd.DataFrame)
    scores = np.empty((len(units), n_repeats), dtype=np.float64)
    tiled: dict[int, Any] = {}
    for u, cols in enumerate(
        tqdm(units, desc="permutation importance", unit="feature", disable=not progress, leave=False)
    ):
        for r0 in range(0, n_repeats, batch):
            reps = list(range(r0, min(n_repeats, r0 + batch)))
            nb = len(reps)
            if nb not in tiled:
                tiled[nb] = pd.concat([X_eval] * nb, ignore_index=True) if frame else np.tile(X_eval, (nb, 1))
            if frame:
                big = tiled[nb].copy(deep=False)
                for c in cols:
                    col = X_eval.iloc[:, c]
                    big.isetitem(c, pd.concat([col.iloc[perms[r]] for r in reps], ignore_index=True))
                saved = None
            else:
                big = tiled[nb]
                saved = big[:, cols].copy()
                big[:, cols] = np.concatenate([X_eval[perms[r]][:, cols] for r in reps])
            cache: dict[str, np.ndarray] = {}
            for k, r in enumerate(reps):
                piece = big.iloc[k * m : (k + 1) * m] if frame else big[k * m : (k + 1) * m]
                if frame:
                    piece.index = X_eval.index

                def fetch(name: str, k: int = k, cache: dict = cache, big: Any = big) -> np.ndarray:
                    if name not in cache:
                        cache[name] = np.asarray(getattr(model, name)(big))
                    return cache[name][k * m : (k + 1) * m]

                scores[u, r] = _score(scorer, _Responses(model, piece, fetch), piece, y_eval, w_eval)
            if saved is not None:
                big[:, cols] = saved
    return baseline, scores


# --- the LightGBM engine --------------------------------------------------------------------


class _Unsupported(Exception):
    """The LightGBM engine cannot reproduce this model's or scorer's numbers; the generic one can."""


def _lightgbm_unsupported(model: Any, by_methods: bool) -> str | None:
    """Why the LightGBM engine cannot serve this call, or None when it can."""
    if not type(model).__module__.startswith("lightgbm"):
        return f"{type(model).__name__} is not a LightGBM model"
    import lightgbm as lgb

    if not isinstance(model, lgb.LGBMClassifier | lgb.LGBMRegressor):
        return f"{type(model).__name__} is not an LGBMClassifier or LGBMRegressor"
    if callable(getattr(model, "objective", None)):
        return "the model has a custom objective function"
    params = model.get_params()
    if "rf" in (params.get("boosting_type"), params.get("boosting")):
        return "random-forest boosting averages its trees"
    if not by_methods:
        return "the scorer is a custom callable (it may use X beyond the model's predictions)"
    return None


class _LightGBMOutputs:
    """What a LightGBM scikit-learn model's predict methods return, computed from raw scores."""

    def __init__(self, model: Any, ensemble: Any) -> None:
        import lightgbm as lgb

        self.model = model
        self.ensemble = ensemble
        self.classifier = isinstance(model, lgb.LGBMClassifier)

    def compute(self, name: str, raw: np.ndarray) -> np.ndarray:
        from ._trees import raw_to_output

        if name == "decision_function":
            return raw[:, 0].copy() if raw.shape[1] == 1 else raw
        if name == "predict_proba" and self.classifier:
            out = raw_to_output(self.ensemble, raw)
            if out.shape[1] == 1:
                p = out[:, 0]
                return np.vstack((1.0 - p, p)).transpose()
            return out
        if name == "predict":
            if self.classifier:
                return self.model.classes_[np.argmax(self.compute("predict_proba", raw), axis=1)]
            out = raw_to_output(self.ensemble, raw)
            return out[:, 0] if out.shape[1] == 1 else out
        raise AttributeError(name)

    def fetcher(self, raw: np.ndarray) -> Callable[[str], np.ndarray]:
        cache: dict[str, np.ndarray] = {}

        def fetch(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = self.compute(name, raw)
            return cache[name]

        return fetch

    def matches_model(self, X: Any, raw: np.ndarray) -> bool:
        """Whether these outputs equal the model's own, bit for bit, on the first rows of X."""
        s = min(_GUARD_ROWS, len(X))
        head = X.iloc[:s] if isinstance(X, pd.DataFrame) else X[:s]
        ours = raw[:s]
        theirs = np.asarray(self.model.predict(head, raw_score=True)).reshape(s, -1)
        if not np.array_equal(ours, theirs):
            return False
        methods = ["predict_proba", "predict"] if self.classifier else ["predict"]
        return all(np.array_equal(self.compute(m, ours), np.asarray(getattr(self.model, m)(head))) for m in methods)


def _lightgbm_scores(
    model: Any,
    X: Any,
    y: np.ndarray,
    weights: np.ndarray | None,
    scorer: Callable[..., float],
    scoring_name: str,
    units: Units,
    rows: np.ndarray | None,
    perms: np.ndarray,
    progress: bool,
) -> tuple[float, np.ndarray]:
    """Baseline and permuted scores from the compiled engine; raises ``_Unsupported`` if it cannot."""
    from tqdm.auto import tqdm

    from . import _permutation_engine as engine
    from ._trees import output_transform, parse_lightgbm, predict_raw, raw_to_output, to_matrix

    try:
        ensemble = parse_lightgbm(model)
    except ValueError as exc:  # e.g. linear trees
        raise _Unsupported(str(exc)) from None
    if output_transform(ensemble) is None:
        raise _Unsupported(f"the output of objective {ensemble.objective!r} is not reproduced")
    M = to_matrix(ensemble, X)
    outputs = _LightGBMOutputs(model, ensemble)
    head_raw = predict_raw(ensemble, M[:_GUARD_ROWS])
    if not outputs.matches_model(X, head_raw):
        warnings.warn(
            "LightGBM predictions could not be reproduced bit for bit by the tree engine; "
            "computing permutation importance with the generic engine instead",
            RuntimeWarning,
            stacklevel=3,
        )
        raise _Unsupported("its predictions could not be reproduced bit for bit")
    raw = None
    try:  # a scorer that cannot score this model should fail now, not after the long part
        head = X.iloc[:_GUARD_ROWS] if isinstance(X, pd.DataFrame) else X[:_GUARD_ROWS]
        _score(
            scorer,
            _Responses(model, head, outputs.fetcher(head_raw)),
            head,
            y[:_GUARD_ROWS],
            None if weights is None else weights[:_GUARD_ROWS],
        )
    except Exception:  # noqa: BLE001 - maybe just these rows (one class only...): score them all
        raw = predict_raw(ensemble, M)
        _score(scorer, _Responses(model, X, outputs.fetcher(raw)), X, y, weights)

    X_eval, y_eval, w_eval = _take(X, rows), _take(y, rows), _take(weights, rows)
    M_eval = M if rows is None else M[rows]
    n_repeats, m = perms.shape
    auc_labels = _fast_auc_labels(model, scoring_name, y_eval, w_eval)
    per_unit = n_repeats * m * ensemble.num_class
    step = max(1, _MAX_OUTPUT_VALUES // per_unit)
    scores = np.empty((len(units), n_repeats), dtype=np.float64)
    if raw is None and rows is not None:  # the baseline scores all rows, not just the sampled ones
        raw = predict_raw(ensemble, M)
    bar = tqdm(
        total=len(units) * m,
        desc=f"permutation importance ({len(units)} features)",
        unit="row",
        unit_scale=True,
        disable=not progress,
        leave=False,
    )
    for u0 in range(0, max(1, len(units)), step):
        chunk = units[u0 : u0 + step]
        permuted, raw_eval = engine.permuted_raw_scores(
            ensemble,
            M_eval,
            chunk,
            perms,
            on_rows=lambda k, n=len(chunk): bar.update(k * n),  # noqa: B008 - bound per chunk
        )
        raw = raw_eval if raw is None else raw
        if auc_labels is not None:
            flat = permuted.reshape(-1, ensemble.num_class)
            if not hasattr(model, "decision_function"):  # LightGBM < 4.7 scores AUC on probabilities
                flat = raw_to_output(ensemble, flat)
            values = engine.roc_auc_many(flat[:, 0].reshape(len(chunk) * n_repeats, m), auc_labels)
            scores[u0 : u0 + len(chunk)] = values.reshape(len(chunk), n_repeats)
        else:
            for k in range(len(chunk)):
                for r in range(n_repeats):
                    proxy = _Responses(model, X_eval, outputs.fetcher(permuted[k, r]))
                    scores[u0 + k, r] = _score(scorer, proxy, X_eval, y_eval, w_eval)
    bar.close()
    baseline = _score(scorer, _Responses(model, X, outputs.fetcher(raw)), X, y, weights)
    return baseline, scores


def _fast_auc_labels(model: Any, scoring_name: str, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray | None:
    """Positive-class mask when ``roc_auc`` can be computed by the compiled kernel, else None."""
    if scoring_name != "roc_auc" or weights is not None:
        return None
    classes = getattr(model, "classes_", None)
    labels = np.unique(y)
    if classes is None or len(classes) != 2 or len(labels) != 2 or not np.array_equal(np.sort(classes), labels):
        return None
    return y == labels[1]
