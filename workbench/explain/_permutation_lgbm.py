"""The tree permutation engine (``engine="tree"``): tree models the engine reads, with a named scorer.

A compiled tree walk (``_permutation_engine``) re-evaluates only the trees, and within them only
the rows, whose decision path meets a split on the permuted feature; its raw scores are
bit-identical to ``predict``, which is checked against the model on a sample of rows before use.
Outputs of the predict methods are derived from those raw scores and handed to the scikit-learn
scorer through :class:`~workbench.explain.scorers.Responses`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import effective_n_jobs
from ._permutation_sampling import sampled
from .scorers import Responses, score

_GUARD_ROWS = 256
_MAX_OUTPUT_VALUES = 2**25  # permuted scores held at once (float64)

Units = list[list[int]]


class Unsupported(Exception):
    """The tree engine cannot reproduce this model's or scorer's numbers; the generic one can."""


def lightgbm_unsupported(model: Any, by_methods: bool) -> str | None:
    """Why the tree engine cannot serve this call, or None when it can (the models :func:`tree_ensemble` reads)."""
    from .model_info import is_lightgbm

    reason = _lightgbm_reason(model) if is_lightgbm(model) else _other_reason(model)
    if reason is not None:
        return reason
    if not by_methods:
        return "the scorer is a custom callable (it may use X beyond the model's predictions)"
    return None


def _lightgbm_reason(model: Any) -> str | None:
    import lightgbm as lgb

    if not isinstance(model, lgb.LGBMClassifier | lgb.LGBMRegressor):
        return f"{type(model).__name__} is not an LGBMClassifier or LGBMRegressor"
    if callable(getattr(model, "objective", None)):
        return "the model has a custom objective function"
    params = model.get_params()
    if "rf" in (params.get("boosting_type"), params.get("boosting")):
        return "random-forest boosting averages its trees"
    return None


def _other_reason(model: Any) -> str | None:
    from .model_info import tree_ensemble

    if type(model).__module__.startswith("xgboost") and not hasattr(model, "get_booster"):
        return f"{type(model).__name__} is not an XGBoost scikit-learn estimator"
    engine = tree_ensemble(model)
    return engine if isinstance(engine, str) else None


@contextmanager
def numba_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the compiled engine on ``n_jobs`` threads (joblib's meaning), restoring numba's setting after."""
    import numba

    available = numba.config.NUMBA_NUM_THREADS
    wanted = min(effective_n_jobs(n_jobs, "permutation_importance()"), available)
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, wanted))
    try:
        yield
    finally:
        numba.set_num_threads(before)


class _LightGBMOutputs:
    """What a tree model's predict methods return, computed from raw scores."""

    def __init__(self, model: Any, ensemble: Any) -> None:
        self.model = model
        self.ensemble = ensemble
        self.classifier = hasattr(model, "classes_") and hasattr(model, "predict_proba")

    def compute(self, name: str, raw: np.ndarray) -> np.ndarray:
        from ._trees import raw_to_output

        e = self.ensemble
        if name == "decision_function":
            return raw[:, 0].copy() if raw.shape[1] == 1 else raw
        if name == "predict_proba" and self.classifier:
            if e.library == "sklearn":  # forests average probabilities; boosting uses its loss's link
                if e.objective == "probability":
                    return raw
                return self.model._loss.predict_proba(raw[:, 0] if raw.shape[1] == 1 else raw)
            out = raw_to_output(e, raw)
            if out.shape[1] == 1:
                p = out[:, 0]
                if e.library == "xgboost":  # in float32, as XGBoost
                    q = p.astype(np.float32)
                    return np.vstack((np.float32(1.0) - q, q)).transpose().astype(np.float64)
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
        method, library_raw = self._library_raw(head)
        if not np.array_equal(ours, np.asarray(library_raw).reshape(s, -1)):
            return False
        methods = ["predict_proba", "predict"] if self.classifier else ["predict"]
        if method == "predict_proba" and _forest_predict(self.model):
            methods = ["predict_proba"]  # its predict is the argmax of the probabilities just compared
        return all(  # a method whose output was the raw score (forests) is not called twice
            self._same(
                m, self.compute(m, ours), library_raw if m == method else np.asarray(getattr(self.model, m)(head))
            )
            for m in methods
        )

    def _library_raw(self, head: Any) -> tuple[str, np.ndarray]:
        """The model's raw output on ``head`` and the name of the method that gave it."""
        e, model = self.ensemble, self.model
        if e.library == "lightgbm":
            return "raw_score", model.predict(head, raw_score=True)
        if e.library == "xgboost":
            return "output_margin", model.predict(head, output_margin=True)
        if e.library == "catboost":
            return "RawFormulaVal", model.predict(head, prediction_type="RawFormulaVal")
        if type(model).__name__.startswith("HistGradientBoosting"):  # a log link's predict is not raw
            return "_raw_predict", model._raw_predict(head)
        if hasattr(model, "decision_function"):
            return "decision_function", model.decision_function(head)
        method = "predict_proba" if self.classifier else "predict"
        return method, np.asarray(getattr(model, method)(head))

    def _same(self, method: str, ours: np.ndarray, theirs: np.ndarray) -> bool:
        if self.ensemble.compare is not None:  # the reader knows how its library's outputs differ from ours
            return self.ensemble.compare(method, ours, theirs)
        return np.array_equal(ours, theirs)


def _forest_predict(model: Any) -> bool:
    """Whether ``model.predict`` is scikit-learn's forest classifier ``predict``: the class of the
    largest ``predict_proba``, as :meth:`_LightGBMOutputs.compute` derives it (calling it would
    only walk the forest again)."""
    from sklearn.ensemble._forest import ForestClassifier

    return getattr(type(model), "predict", None) is ForestClassifier.predict and getattr(model, "n_outputs_", 1) == 1


def lightgbm_scores(
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
    """Baseline and permuted scores from the compiled engine; raises :class:`Unsupported` if it cannot."""
    run = _LightGBMRun(model, X, y, weights, scorer)
    raw = run.check_scorer(scoring_name)
    scores, raw_eval, last_only, kernel = run.permuted_scores(units, rows, perms, scoring_name, progress)
    if kernel is not None and rows is None:  # every row is in raw_eval: the compiled AUC scores it too
        baseline = float(kernel(raw_eval[None, None])[0, 0])
    else:
        if raw is None:  # the baseline scores all rows (not just the sampled ones) on every output
            if rows is not None:
                raw = run.raw_all()
            else:
                raw = run.raw_all(raw_eval) if last_only else raw_eval
        baseline = run.score_raw(raw)
    run.check_model(stacklevel=5)  # CatBoost's check comes last (see _LightGBMRun)
    return baseline, scores


class _LightGBMRun:
    """One model, data set and scorer, checked for the engine, scored from raw tree scores.

    A CatBoost model is checked after the compiled kernels have run, not before: its predict
    leaves CatBoost's threads busy for a few milliseconds, and a parallel kernel started then
    waits for them.
    """

    def __init__(self, model: Any, X: Any, y: np.ndarray, weights: np.ndarray | None, scorer: Callable) -> None:
        from ._trees import output_transform, predict_raw, to_matrix
        from .model_info import tree_ensemble

        ensemble = tree_ensemble(model)
        if isinstance(ensemble, str):  # e.g. linear trees
            raise Unsupported(ensemble)
        self.ensemble = ensemble
        if output_transform(self.ensemble) is None:
            raise Unsupported(f"the output of objective {self.ensemble.objective!r} is not reproduced")
        self.model, self.X, self.y, self.weights, self.scorer = model, X, y, weights, scorer
        self.M = to_matrix(self.ensemble, X)
        self.outputs = _LightGBMOutputs(model, self.ensemble)
        self.head_raw = predict_raw(self.ensemble, self.M[:_GUARD_ROWS])
        self.checked = False
        if self.ensemble.library != "catboost":
            self.check_model(stacklevel=6)

    def check_model(self, stacklevel: int) -> None:
        """Raise :class:`Unsupported` (with a warning) unless the engine's outputs are the model's own."""
        if self.checked:
            return
        if not self.outputs.matches_model(self.X, self.head_raw):
            warnings.warn(
                f"{type(self.model).__name__} predictions could not be reproduced bit for bit by the tree engine; "
                "computing permutation importance with the generic engine instead",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
            raise Unsupported("its predictions could not be reproduced bit for bit")
        self.checked = True

    def raw_all(self, last: np.ndarray | None = None) -> np.ndarray:
        """Raw scores of every row; ``last``: the last output's, already known (only the others are walked)."""
        from ._trees import predict_raw

        e = self.ensemble
        if last is None:
            return predict_raw(e, self.M)
        raw = np.empty((len(self.M), e.num_class), dtype=np.float64)
        raw[:, -1] = last[:, 0]
        for k in range(e.num_class - 1):
            raw[:, k] = predict_raw(e.one_output(k), self.M)[:, 0]
        return raw

    def score_raw(self, raw: np.ndarray) -> float:
        """The scorer on every row, the model's outputs derived from ``raw``."""
        return score(
            self.scorer, Responses(self.model, self.X, self.outputs.fetcher(raw)), self.X, self.y, self.weights
        )

    def check_scorer(self, scoring_name: str) -> np.ndarray | None:
        """Fail now, not after the long part, when the scorer cannot score this model.

        Returns the raw scores of every row when scoring them all was needed, else None. A binary
        ``roc_auc`` that the compiled kernel computes needs no check: the labels are the model's
        two classes and the positive class's score is always there.
        """
        X, y, w = self.X, self.y, self.weights
        if _fast_auc_labels(self.model, scoring_name, y, w) is not None:
            return None
        try:
            head = X.iloc[:_GUARD_ROWS] if isinstance(X, pd.DataFrame) else X[:_GUARD_ROWS]
            proxy = Responses(self.model, head, self.outputs.fetcher(self.head_raw))
            score(self.scorer, proxy, head, y[:_GUARD_ROWS], None if w is None else w[:_GUARD_ROWS])
        except Exception:  # noqa: BLE001 - maybe just these rows (one class only...): score them all
            raw = self.raw_all()
            self.score_raw(raw)
            return raw
        return None

    def permuted_scores(
        self, units: Units, rows: np.ndarray | None, perms: np.ndarray, scoring_name: str, progress: bool
    ) -> tuple[np.ndarray, np.ndarray, bool, Callable[[np.ndarray], np.ndarray] | None]:
        """``scores[unit, repeat]``, a chunk of units at a time, the unpermuted raw scores of the rows,
        whether those are the last output's alone, and the compiled scorer of such raw scores
        (``[unit, repeat, row, output]``) when it was the one used (None: the scorer per repeat)."""
        from tqdm.auto import tqdm

        from . import _permutation_engine as engine

        M_eval = self.M if rows is None else self.M[rows]
        n_repeats, m = perms.shape
        scorer, ensemble, compiled = self._chunk_scorer(rows, scoring_name)
        step = max(1, _MAX_OUTPUT_VALUES // (n_repeats * m * ensemble.num_class))
        scores = np.empty((len(units), n_repeats), dtype=np.float64)
        bar = tqdm(
            total=len(units) * m,
            desc=f"permutation importance ({len(units)} features)",
            unit="row",
            unit_scale=True,
            disable=not progress,
            leave=False,
        )
        raw = None
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
            scores[u0 : u0 + len(chunk)] = scorer(permuted)
        bar.close()
        return scores, raw, ensemble is not self.ensemble, scorer if compiled else None

    def _chunk_scorer(
        self, rows: np.ndarray | None, scoring_name: str
    ) -> tuple[Callable[[np.ndarray], np.ndarray], Any, bool]:
        """Scores of ``permuted[unit, repeat]`` raw scores (the compiled AUC kernel, or the scorer per
        repeat), the ensemble whose raw scores they take (for the AUC of a model whose outputs are
        transformed column by column, only the positive class's trees), and whether it is the kernel."""
        from . import _permutation_engine as engine
        from ._trees import output_transform, raw_to_output

        model, ensemble = self.model, self.ensemble
        X_eval, y_eval, w_eval = sampled(self.X, rows), sampled(self.y, rows), sampled(self.weights, rows)
        auc_labels = _fast_auc_labels(model, scoring_name, y_eval, w_eval)
        if auc_labels is not None and ensemble.num_class > 1 and output_transform(ensemble) != "softmax":
            ensemble = ensemble.one_output(ensemble.num_class - 1)

        def by_kernel(permuted: np.ndarray) -> np.ndarray:
            n_units, n_repeats, m = permuted.shape[:3]
            flat = permuted.reshape(-1, ensemble.num_class)
            if not hasattr(model, "decision_function"):  # LightGBM < 4.7 scores AUC on probabilities
                flat = raw_to_output(ensemble, flat)
            values = engine.roc_auc_many(flat[:, -1].reshape(n_units * n_repeats, m), auc_labels)
            return values.reshape(n_units, n_repeats)

        def by_scorer(permuted: np.ndarray) -> np.ndarray:
            out = np.empty(permuted.shape[:2], dtype=np.float64)
            for k in range(permuted.shape[0]):
                for r in range(permuted.shape[1]):
                    proxy = Responses(model, X_eval, self.outputs.fetcher(permuted[k, r]))
                    out[k, r] = score(self.scorer, proxy, X_eval, y_eval, w_eval)
            return out

        return (by_scorer, ensemble, False) if auc_labels is None else (by_kernel, ensemble, True)


def _fast_auc_labels(model: Any, scoring_name: str, y: np.ndarray, weights: np.ndarray | None) -> np.ndarray | None:
    """Positive-class mask when ``roc_auc`` can be computed by the compiled kernel, else None."""
    if scoring_name != "roc_auc" or weights is not None:
        return None
    classes = getattr(model, "classes_", None)
    labels = np.unique(y)
    if classes is None or len(classes) != 2 or len(labels) != 2 or not np.array_equal(np.sort(classes), labels):
        return None
    return y == labels[1]
