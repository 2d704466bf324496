"""scikit-learn scorers fed with precomputed predictions, for permutation importance.

A scorer calls the estimator's predict methods on ``X``; :class:`Responses` stands in for the
estimator and answers those calls from predictions computed elsewhere (permuted copies predicted
in one batch, or raw scores from the LightGBM tree engine), so the numbers are the scorer's own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

RESPONSE_METHODS = ("predict", "predict_proba", "decision_function", "predict_log_proba")
_BINARY_ONLY = ("roc_auc", "average_precision", "neg_brier_score", "f1", "precision", "recall", "jaccard")


def resolve_scorer(model: Any, scoring: Any) -> tuple[Callable[..., float], str, bool]:
    """The scikit-learn scorer, its display name, and whether it sees X only through predict methods.

    Parameters
    ----------
    model
        The fitted estimator to score.
    scoring
        A scorer name from ``sklearn.metrics.get_scorer_names()``, a callable
        ``scorer(estimator, X, y)``, or ``None`` for the estimator's ``score``.

    Returns
    -------
    tuple
        ``(scorer, name, by_methods)``.
    """
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import check_scoring

    if scoring is None:
        score = getattr(type(model), "score", None)
        if score is ClassifierMixin.score:  # accuracy_score(y, predict(X)), exactly the accuracy scorer
            scoring = "accuracy"
        elif score is RegressorMixin.score:
            scoring = "r2"
        else:
            return check_scoring(model, None), "score", False
    if isinstance(scoring, str):
        return _named_scorer(model, scoring), scoring, True
    if isinstance(scoring, list | tuple | set | dict):
        raise ValueError("several metrics: use resolve_scorers, which returns one scorer per metric")
    if callable(scoring):
        return scoring, getattr(scoring, "__name__", None) or repr(scoring), _is_method_scorer(scoring)
    raise TypeError(f"scoring must be a scorer name, a callable or None, got {type(scoring).__name__}")


def resolve_scorers(model: Any, scoring: Any) -> dict[str, tuple[Callable[..., Any], bool]] | None:
    """One ``(scorer, by_methods)`` per metric for several metrics (list, tuple, set or dict), else None.

    As scikit-learn's multi-metric ``scoring``: a list of unique scorer names, or a dict
    ``{name: scorer name or callable}``.
    """
    if not isinstance(scoring, list | tuple | set | dict):
        return None
    if not scoring:
        raise ValueError("scoring is empty; name at least one metric, e.g. ['r2', 'neg_mean_squared_error']")
    if isinstance(scoring, dict):
        items = list(scoring.items())
        bad = [k for k, _ in items if not isinstance(k, str)]
        if bad:
            raise ValueError(f"the keys of a scoring dict name the metrics and must be strings, got {bad}")
    else:
        names = list(scoring)
        bad = [k for k in names if not isinstance(k, str)]
        if bad:
            raise ValueError(
                f"a list of scorers holds scorer names (strings), got {bad}; pass a dict {{name: callable}} "
                "for callables"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"scoring names a metric more than once: {names}; list each once")
        items = [(k, k) for k in names]
    out: dict[str, tuple[Callable[..., Any], bool]] = {}
    for name, spec in items:
        if spec is None or isinstance(spec, list | tuple | set | dict):
            raise ValueError(f"scoring[{name!r}] must be a scorer name or a callable, got {spec!r}")
        scorer, _, by_methods = resolve_scorer(model, spec)
        out[name] = (scorer, by_methods)
    return out


def _named_scorer(model: Any, scoring: str) -> Callable[..., float]:
    from sklearn.metrics import get_scorer, get_scorer_names

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
    return get_scorer(scoring)


def _is_method_scorer(scorer: Any) -> bool:
    """scikit-learn's ``make_scorer`` objects use X only to call the estimator's predict methods."""
    try:
        from sklearn.metrics._scorer import _Scorer
    except ImportError:  # pragma: no cover - layout of a future scikit-learn
        return False
    return type(scorer) is _Scorer


class Responses:
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
        if name not in RESPONSE_METHODS or not callable(attr):
            return attr
        token, fetch = self._X, self._fetch

        def method(X: Any, *args: Any, **kwargs: Any) -> Any:
            if X is token and not args and not kwargs:
                return fetch(name)
            return attr(X, *args, **kwargs)

        method.__name__ = name
        return method


def score(scorer: Callable[..., Any], estimator: Any, X: Any, y: np.ndarray, weights: np.ndarray | None) -> Any:
    """``scorer(estimator, X, y)`` as a float (a dict of floats for a scorer returning several metrics),
    passing ``sample_weight`` only when there are weights."""
    value = scorer(estimator, X, y) if weights is None else scorer(estimator, X, y, sample_weight=weights)
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return float(value)


def combined(scorers: Mapping[str, Callable[..., Any]]) -> Callable[..., dict[str, float]]:
    """One scorer returning ``{name: score}``; through :class:`Responses` the predictions are shared."""

    def scorer(estimator: Any, X: Any, y: Any, **kwargs: Any) -> dict[str, float]:
        return {name: float(s(estimator, X, y, **kwargs)) for name, s in scorers.items()}

    return scorer


__all__ = ["RESPONSE_METHODS", "Responses", "combined", "resolve_scorer", "resolve_scorers", "score"]
