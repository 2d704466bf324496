"""One fit of a :class:`~workbench.stacking.Stack`: every level given, loaded from the cache or trained.

A :class:`FitRun` holds what one ``Stack.fit`` shares across its levels: the validated inputs,
the cache and its background writer, the models already trained this run (identical models
train once) and the progress bar. The estimator keeps only its parameters and fitted results.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import FoldIds
from ..data.validation import column_names, default_column_names
from ..models import CVResult, Metric, get_metric, infer_task, take_rows, train_cv
from ..models.cv import CVRun, check_target, check_X_test, describe_estimator, slice_fit_params
from ..models.parallel import fit_side_by_side, limit_threads, n_workers, thread_share
from ..models.persist import UntrustedFileError
from ._folds import level_folds, stack_folds
from .cache import BackgroundWriter, CacheEntry, OOFCache
from .fingerprint import column_digests, data_digest, digest, fingerprint
from .members import Member

_KEY_FORMAT = 1
_LGBM_SPECIAL = str.maketrans({c: "_" for c in '",:[]{}/'})


@dataclass
class FittedModel:
    """One trained (or loaded) model of a fitted stack.

    ``oof`` has one row per training row (NaN where the level validated nothing, time folds only);
    ``result`` is the :class:`CVResult` as trained, on the rows the level used. ``source`` says
    where it came from this run: ``"fit"`` (trained), ``"cache"`` (loaded) or ``"given"``
    (a precomputed result).
    """

    level: int
    name: str
    columns: list[str]
    result: CVResult
    oof: np.ndarray
    test_pred: np.ndarray | None
    source: str
    seconds: float
    features: list[str]
    key: str | None = None
    entry: CacheEntry | None = None
    source_path: Path | None = None

    @property
    def label(self) -> str:
        return f"level{self.level}/{self.name}"

    def with_models(self) -> CVResult:
        """The result with its fold models, read from the cache or the saved result when needed."""
        if self.result.models:
            return self.result
        if self.entry is not None:
            self.result = self.entry.load_models()
        elif self.source_path is not None:
            self.result = CVResult.load(self.source_path)
        else:
            raise ValueError(
                f"{self.label} was given without its fold models, so it cannot predict new data; "
                "give the path of the saved CVResult instead"
            )
        return self.result


@dataclass(eq=False)
class _Pending:
    """A model of the level that has to be trained: what its training and its cache entry need."""

    member: Member
    label: str
    estimator: Any
    X: Any
    X_test: Any
    fit_params: Any
    features: list[str]
    key: str
    test_digest: str | None
    start: float


_Memo = dict[str, tuple[CVResult, CacheEntry | None]]


# ---------------------------------------------------------------- helpers shared with Stack
def as_input(X: Any, name: str) -> Any:
    """``X`` as a DataFrame (or the sparse matrix / ``None`` given); a clear error when not 2-D."""
    if X is None or isinstance(X, pd.DataFrame) or is_sparse(X):
        return X
    if isinstance(X, pd.Series):
        raise ValueError(
            f"{name} must be two-dimensional (a DataFrame or a 2-D array); got a Series, use {name}.to_frame()"
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (a DataFrame or a 2-D array), got shape {arr.shape}")
    return pd.DataFrame(arr, columns=default_column_names(arr.shape[1]))


def is_sparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def level_frames(
    fitted: list[FittedModel], index: pd.Index, test_index: pd.Index | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Out-of-fold and (when every model has them) test predictions of a level, one column each."""
    oof_cols: dict[str, np.ndarray] = {}
    test_cols: dict[str, np.ndarray] = {}
    for m in fitted:
        oof = m.oof.reshape(len(m.oof), -1)
        for j, col in enumerate(m.columns):
            oof_cols[col] = oof[:, j]
            if m.test_pred is not None:
                test_cols[col] = m.test_pred.reshape(len(m.test_pred), -1)[:, j]
    oof_frame = pd.DataFrame(oof_cols, index=index)
    has_test = all(m.test_pred is not None for m in fitted)
    if not has_test:
        return oof_frame, None
    n_test = len(next(iter(test_cols.values())))
    return oof_frame, pd.DataFrame(test_cols, index=test_index if test_index is not None else pd.RangeIndex(n_test))


def _model_columns(level: int, name: str, result: CVResult) -> list[str]:
    base = f"level{level}/{name}"
    if result.task == "multiclass":
        return [f"{base}/{str(c).translate(_LGBM_SPECIAL)}" for c in (result.classes or [])]
    return [base]


def _seeded(estimator: Any, seed: int) -> Any:
    """A clone whose unset ``random_state`` parameters (nested ones too) take the stack's seed."""
    from sklearn.base import clone

    est = clone(estimator)
    if hasattr(est, "get_params"):
        params = est.get_params(deep=True)
        updates = {
            k: seed for k, v in params.items() if (k == "random_state" or k.endswith("__random_state")) and v is None
        }
        if updates:
            est.set_params(**updates)
    return est


def _metric_descriptor(metric: Metric) -> dict[str, Any]:
    return {"name": metric.name, "greater_is_better": metric.greater_is_better, "func": metric.func}


def _scatter(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    if rows.size == n:
        return values
    out = np.full((n, *values.shape[1:]), np.nan)
    out[rows] = values
    return out


def _mean(preds: list[np.ndarray]) -> np.ndarray:
    return np.mean(preds, axis=0) if len(preds) > 1 else preds[0]


# ---------------------------------------------------------------- results computed elsewhere
def _check_given(members: list[Member], n: int, folds: FoldIds, y_enc: np.ndarray, task: str, X_test: Any) -> None:
    """Results computed elsewhere must describe these rows, this target and these folds."""
    for m in members:
        if not m.precomputed:
            continue
        assert m.result is not None
        where = f"level 1 model {m.name!r}" + (f" ({m.source_path})" if m.source_path else "")
        _check_given_rows(m.result, where, n, folds, task)
        _check_given_score(m.result, where, n, y_enc, task)
        _check_given_test(m.result, where, X_test)


def _check_given_rows(r: CVResult, where: str, n: int, folds: FoldIds, task: str) -> None:
    if len(r.oof) != n:
        raise ValueError(f"{where} has out-of-fold predictions for {len(r.oof)} rows, but X has {n}")
    if r.task != task:
        raise ValueError(f"{where} was trained for a {r.task} target, but this target is {task}")
    theirs, ours = np.asarray(r.folds), np.asarray(folds)
    if not np.array_equal(theirs, ours):
        differ = int(np.sum(theirs != ours)) if theirs.shape == ours.shape else len(ours)
        raise ValueError(
            f"{where} was trained on other folds than the stack's ({differ} of {n} rows are in another fold); "
            "stacking it would leak, since its out-of-fold predictions were made by models that saw rows the "
            "stack validates on. Pass folds=<that result>.folds to the Stack, or retrain it with the stack's folds"
        )


def _check_given_score(r: CVResult, where: str, n: int, y_enc: np.ndarray, task: str) -> None:
    from ..models import METRICS

    if r.metric not in METRICS or task not in METRICS[r.metric].tasks:
        return
    check = get_metric(r.metric, task)
    ok = ~np.isnan(np.asarray(r.oof).reshape(n, -1)).any(axis=1)
    again = check(y_enc[ok], np.asarray(r.oof)[ok])
    if not np.isclose(again, r.score, rtol=1e-9, atol=1e-9):
        raise ValueError(
            f"{where} records {r.metric}={r.score:.6f}, but its out-of-fold predictions score "
            f"{again:.6f} on this target: it was trained on other rows, another row order or another "
            "target; give it the same training frame (same rows, same order)"
        )


def _check_given_test(r: CVResult, where: str, X_test: Any) -> None:
    if X_test is None:
        return
    if r.test_pred is None:
        raise ValueError(
            f"{where} has no test predictions, but X_test was given; retrain it with "
            "X_test=..., or fit the stack without X_test"
        )
    if len(r.test_pred) != X_test.shape[0]:
        raise ValueError(f"{where} has test predictions for {len(r.test_pred)} rows, but X_test has {X_test.shape[0]}")


def _drop_partial_test(fitted: list[FittedModel], X_test: Any) -> list[FittedModel]:
    """Without X_test, test predictions go up only when every level-1 result brings its own."""
    if X_test is None and any(m.test_pred is None for m in fitted) and any(m.test_pred is not None for m in fitted):
        lacking = [m.name for m in fitted if m.test_pred is None]
        warnings.warn(
            f"no test predictions: level-1 models {lacking} have none; pass X_test=... to fit() "
            "to predict the test set",
            UserWarning,
            stacklevel=5,  # the caller of Stack.fit
        )
        for m in fitted:
            m.test_pred = None
    return fitted


# ---------------------------------------------------------------- one level
class _LevelContext:
    """What every model of one level shares: its input rows, folds and their digests."""

    def __init__(
        self,
        level: int,
        X: Any,
        X_test: Any,
        rows: np.ndarray,
        folds: FoldIds,
        y: np.ndarray,
        n_total: int,
        task: str,
        metric: Metric,
    ) -> None:
        self.level, self.X, self.X_test, self.rows, self.folds = level, X, X_test, rows, folds
        self.y, self.n_total, self.task, self.metric = y, n_total, task, metric
        self.y_digest = data_digest(y)
        self.folds_digest = digest(np.asarray(folds, dtype=np.int64).tobytes(), folds.kind)
        self._digests: dict[str, str] | None = None
        self._test_digests: dict[str, str] | None = None

    def select(self, member: Member) -> tuple[Any, list[str]]:
        if not isinstance(self.X, pd.DataFrame):
            if member.features is not None:
                raise ValueError(f"level {self.level} model {member.name!r}: features=... needs a DataFrame input")
            return self.X, column_names(self.X)
        columns = [str(c) for c in self.X.columns]
        if member.features is None:
            return self.X, columns
        missing = [f for f in member.features if f not in columns]
        if missing:
            raise ValueError(
                f"level {self.level} model {member.name!r}: features {missing} are not among the "
                f"level's input columns {columns}"
            )
        return self.X[member.features], list(member.features)

    def select_test(self, member: Member, features: list[str]) -> Any:
        if self.X_test is None:
            return None
        if isinstance(self.X_test, pd.DataFrame) and member.features is not None:
            return self.X_test[features]
        return self.X_test

    def digest_of(self, features: list[str]) -> list[str]:
        if not isinstance(self.X, pd.DataFrame):
            return [data_digest(self.X)]
        if self._digests is None:
            self._digests = column_digests(self.X)
        return [self._digests[f] for f in features]

    def test_digest_of(self, features: list[str]) -> str:
        if not isinstance(self.X_test, pd.DataFrame):
            return data_digest(self.X_test)
        if self._test_digests is None:
            self._test_digests = column_digests(self.X_test)
        return digest(*(self._test_digests[f] for f in features))


# ---------------------------------------------------------------- the fit
class FitRun:
    """One fit of a stack, level by level; read its outcome from the attributes after :meth:`fit`.

    Parameters
    ----------
    members
        The stack's levels, resolved (:func:`~workbench.stacking.members.resolve_levels`).
    folds, restack, cache_dir, metric, task, random_state, progress, n_jobs
        As on :class:`~workbench.stacking.Stack`.

    After :meth:`fit`: ``task``, ``metric``, ``folds``, ``classes``, ``index``, ``test_index``,
    ``models`` (every :class:`FittedModel`, level order), ``inputs`` (each level's input
    columns), ``oof``, ``test_pred``, ``score`` and ``n_fits``.
    """

    def __init__(
        self,
        members: Sequence[list[Member]],
        *,
        folds: Any,
        restack: bool,
        cache_dir: str | os.PathLike[str] | None,
        metric: str | Metric | Callable[..., float] | None,
        task: str | None,
        random_state: int,
        progress: bool,
        n_jobs: int | None,
    ) -> None:
        self.members = list(members)
        self.restack, self.cache_dir, self.random_state = restack, cache_dir, random_state
        self.progress, self.n_jobs = progress, n_jobs
        self._given_folds, self._given_metric, self._given_task = folds, metric, task
        self.cache: OOFCache | None = None
        self.writer: BackgroundWriter | None = None
        self.memo: _Memo = {}  # identical models within a run train once
        self.bar: Any = None
        self.models: list[FittedModel] = []
        self.inputs: dict[int, list[str]] = {}

    def fit(self, X: Any, y: Any, X_test: Any = None, groups: Any = None) -> FitRun:
        """Validate the inputs, fit every level in order, then combine the top level."""
        self._prepare(X, y, X_test, groups)
        self._fit_levels()
        self._combine_top_level()
        return self

    # ------------------------------------------------------------ steps of fit
    def _prepare(self, X: Any, y: Any, X_test: Any, groups: Any) -> None:
        self.X = X = as_input(X, "X")
        self.n = n = X.shape[0]
        self.y = check_target(y, n)
        self.X_test = X_test = check_X_test(X, as_input(X_test, "X_test"))
        if self.restack and is_sparse(X):
            raise ValueError(
                "restack=True passes the original features up, which needs a DataFrame or dense X, not a sparse matrix"
            )
        self.task = task = self._given_task or infer_task(self.y)
        self.metric = get_metric(self._given_metric, task)
        classes = np.unique(self.y) if task != "regression" else None
        self.classes = None if classes is None else classes.tolist()
        self.y_enc = np.searchsorted(classes, self.y) if classes is not None else self.y.astype(np.float64)
        self.folds = self._resolve_folds(groups)
        _check_given(self.members[0], n, self.folds, self.y_enc, task, X_test)
        self.index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)
        self.test_index = (
            None
            if X_test is None
            else (X_test.index if isinstance(X_test, pd.DataFrame) else pd.RangeIndex(X_test.shape[0]))
        )

    def _resolve_folds(self, groups: Any) -> FoldIds:
        folds = self._given_folds
        if folds is None:
            given = [m.result for m in self.members[0] if m.precomputed]
            folds = given[0].folds if given else 5
        return stack_folds(folds, self.n, self.X, self.y, groups, self.task, self.random_state)

    def _fit_levels(self) -> None:
        from tqdm.auto import tqdm

        self.cache = OOFCache(self.cache_dir) if self.cache_dir is not None else None
        total = sum(len(level) for level in self.members)
        self.bar = tqdm(total=total, desc="stack", unit="model", disable=not self.progress)
        self.writer = BackgroundWriter(self.cache) if self.cache is not None else None
        try:
            prev_oof: pd.DataFrame | None = None
            prev_test: pd.DataFrame | None = None
            for level, members in enumerate(self.members, start=1):
                fitted = self._fit_level(members, self._level_context(level, prev_oof, prev_test))
                self.models.extend(fitted)
                if level == 1:
                    fitted = _drop_partial_test(fitted, self.X_test)
                prev_oof, prev_test = level_frames(fitted, pd.RangeIndex(self.n), None)
        finally:
            self.bar.close()
            if self.writer is not None:
                self.writer.close()  # every trained model is stored before fit returns, even on errors

    def _combine_top_level(self) -> None:
        last = [m for m in self.models if m.level == len(self.members)]
        self.oof = _mean([m.oof for m in last])
        tests = [m.test_pred for m in last]
        self.test_pred = None if any(t is None for t in tests) else _mean(tests)  # type: ignore[arg-type]
        scored = ~np.isnan(self.oof.reshape(self.n, -1)).any(axis=1)
        self.score = self.metric(self.y_enc[scored], self.oof[scored])
        self.n_fits = sum(m.source == "fit" for m in self.models)

    # ------------------------------------------------------------ one level
    def _level_context(
        self, level: int, prev_oof: pd.DataFrame | None, prev_test: pd.DataFrame | None
    ) -> _LevelContext:
        """The inputs of ``level``: X at level 1, the level below's predictions (and X with restack) above."""
        if level == 1:
            inputs, test_inputs, complete = self.X, self.X_test, np.ones(self.n, dtype=bool)
        else:
            assert prev_oof is not None
            complete = prev_oof.notna().all(axis=1).to_numpy()
            inputs, test_inputs = self._restacked(prev_oof, prev_test)
        rows, fold_ids = level_folds(self.folds, complete, level)
        sub = inputs if rows.size == self.n else take_rows(inputs, rows)
        context = _LevelContext(level, sub, test_inputs, rows, fold_ids, self.y[rows], self.n, self.task, self.metric)
        if isinstance(inputs, pd.DataFrame):
            self.inputs[level] = [str(c) for c in inputs.columns]
        return context

    def _restacked(self, prev_oof: pd.DataFrame, prev_test: pd.DataFrame | None) -> tuple[Any, Any]:
        if not self.restack:
            return prev_oof, prev_test
        inputs = pd.concat([self.X.reset_index(drop=True), prev_oof], axis=1)
        if prev_test is None:
            return inputs, None
        if self.X_test is None:
            raise ValueError(
                "restack=True passes the original features up: give X_test so the test set can follow them"
            )
        return inputs, pd.concat([self.X_test.reset_index(drop=True), prev_test], axis=1)

    def _fit_level(self, members: list[Member], ctx: _LevelContext) -> list[FittedModel]:
        """Every model of one level, in level order: given, loaded from the cache or trained."""
        workers = n_workers(self.n_jobs)
        if workers == 1:
            return self._fit_one_by_one(members, ctx)
        return self._fit_side_by_side(members, ctx, workers)

    def _fit_one_by_one(self, members: list[Member], ctx: _LevelContext) -> list[FittedModel]:
        """One model after another, each with its own fold progress bar."""
        fitted = []
        for member in members:
            self.bar.set_postfix_str(f"level{ctx.level}/{member.name}")
            planned = self._plan(member, ctx)
            if isinstance(planned, _Pending):
                result = self._train(planned, ctx)
                planned = self._finish(planned, result, ctx, time.perf_counter() - planned.start)
            fitted.append(planned)
            self.bar.update(1)
        return fitted

    def _fit_side_by_side(self, members: list[Member], ctx: _LevelContext, workers: int) -> list[FittedModel]:
        """The folds of every model to train, fitted side by side on ``workers`` threads."""
        slots: list[FittedModel | _Pending | None] = []
        jobs: list[_Pending] = []
        for member in members:
            planned = self._plan(member, ctx)
            if isinstance(planned, _Pending) and any(p.key == planned.key for p in jobs):
                planned = None  # the same model as one before it: trained once, taken from memory below
            elif isinstance(planned, _Pending):
                jobs.append(planned)
            else:
                self.bar.update(1)
            slots.append(planned)
        if jobs:
            self._train_side_by_side(jobs, slots, ctx, min(workers, len(jobs) * ctx.folds.n_splits))
        for i, member in enumerate(members):
            if slots[i] is None:
                slots[i] = self._plan(member, ctx)  # in memory now: source "cache"
                self.bar.update(1)
        return [s for s in slots if isinstance(s, FittedModel)]

    def _train_side_by_side(
        self, jobs: list[_Pending], slots: list[FittedModel | _Pending | None], ctx: _LevelContext, workers: int
    ) -> None:
        share = thread_share(workers)
        runs = [self._cv_run(p, ctx, share) for p in jobs]
        slot_of = [next(i for i, s in enumerate(slots) if s is p) for p in jobs]

        def done(j: int, result: CVResult, seconds: float) -> None:
            result.params = describe_estimator(jobs[j].estimator)[1]  # the model as given, not its thread share
            slots[slot_of[j]] = self._finish(jobs[j], result, ctx, seconds)
            self.bar.update(1)

        def running(in_progress: dict[str, tuple[int, int]], waiting: int) -> None:
            folds = ", ".join(f"{label.split('/', 1)[1]} {d}/{total}" for label, (d, total) in in_progress.items())
            self.bar.set_postfix_str(f"level{ctx.level}: {folds}" + (f" (+{waiting} waiting)" if waiting else ""))

        fit_side_by_side([(p.label, run) for p, run in zip(jobs, runs)], workers, done, running)

    # ------------------------------------------------------------ one model
    def _plan(self, member: Member, ctx: _LevelContext) -> FittedModel | _Pending:
        """The model as given, from this run's memory or from the cache; otherwise what training it needs."""
        start = time.perf_counter()
        if member.precomputed:
            return self._given(member)
        pending = self._pending(member, ctx, start)
        found = self._recall(pending)
        if found is None:
            return pending
        result, entry = found
        self.memo[pending.key] = (result, entry)
        return FittedModel(
            level=ctx.level,
            name=member.name,
            columns=_model_columns(ctx.level, member.name, result),
            result=result,
            oof=_scatter(np.asarray(result.oof), ctx.rows, ctx.n_total),
            test_pred=None if pending.X_test is None else result.test_pred,
            source="cache",
            seconds=time.perf_counter() - start,
            features=pending.features,
            key=pending.key,
            entry=entry,
        )

    def _given(self, member: Member) -> FittedModel:
        r = member.result
        assert r is not None
        return FittedModel(
            level=1,
            name=member.name,
            columns=_model_columns(1, member.name, r),
            result=r,
            oof=np.asarray(r.oof),
            test_pred=r.test_pred,
            source="given",
            seconds=0.0,
            features=list(r.feature_names),
            source_path=member.source_path,
        )

    def _pending(self, member: Member, ctx: _LevelContext, start: float) -> _Pending:
        """What training ``member`` on this level needs, with its cache key."""
        estimator = _seeded(member.estimator, self.random_state)
        X_m, features = ctx.select(member)
        T_m = ctx.select_test(member, features)
        fit_params = member.fit_params
        if ctx.rows.size != ctx.n_total and fit_params:
            fit_params = slice_fit_params(fit_params, ctx.rows, ctx.n_total)
        key = fingerprint(
            {
                "format": _KEY_FORMAT,
                "estimator": estimator,
                "features": features,
                "X": ctx.digest_of(features),
                "y": ctx.y_digest,
                "folds": ctx.folds_digest,
                "task": ctx.task,
                "metric": _metric_descriptor(ctx.metric),
                "early_stopping_rounds": member.early_stopping_rounds,
                "fit_params": dict(fit_params or {}),
                "seed": self.random_state,  # the key's field keeps its name: cached entries stay valid
            }
        )
        return _Pending(
            member=member,
            label=f"level{ctx.level}/{member.name}",
            estimator=estimator,
            X=X_m,
            X_test=T_m,
            fit_params=fit_params,
            features=features,
            key=key,
            test_digest=None if T_m is None else ctx.test_digest_of(features),
            start=start,
        )

    def _recall(self, pending: _Pending) -> tuple[CVResult, CacheEntry | None] | None:
        """The result trained earlier this run or stored in the cache; ``None`` when it must be trained."""
        if pending.key in self.memo:
            return self.memo[pending.key]
        entry = None if self.cache is None else self.cache.get(pending.key)
        if entry is None:
            return None
        if pending.X_test is None or entry.info.get("test_digest") == pending.test_digest:
            return entry.result, entry
        return self._predict_new_test(pending, entry)

    def _predict_new_test(self, pending: _Pending, entry: CacheEntry) -> tuple[CVResult, None] | None:
        """Same training data, new test set: predict it with the cached fold models, no refit."""
        try:
            result = entry.load_models()
        except UntrustedFileError as exc:  # another user's pickles in a shared cache: train our own
            warnings.warn(
                f"{pending.label}: not loading the cached fold models ({exc}); training it again",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        result.test_pred = result.predict(pending.X_test)
        assert self.writer is not None
        self.writer.put(pending.label, pending.key, result, {**entry.info, "test_digest": pending.test_digest})
        return result, None  # the result in memory holds its models

    @staticmethod
    def _cv_args(pending: _Pending, ctx: _LevelContext) -> dict[str, Any]:
        """What :class:`CVRun` and :func:`train_cv` take for ``pending`` besides the estimator."""
        return {
            "X": pending.X,
            "y": ctx.y,
            "folds": ctx.folds,
            "X_test": pending.X_test,
            "metric": ctx.metric,
            "early_stopping_rounds": pending.member.early_stopping_rounds,
            "fit_params": pending.fit_params,
            "task": ctx.task,
        }

    def _cv_run(self, pending: _Pending, ctx: _LevelContext, threads: int) -> CVRun:
        """The folds of a model to fit side by side, each fold using at most ``threads`` threads."""
        try:
            return CVRun(limit_threads(pending.estimator, threads), **self._cv_args(pending, ctx))
        except Exception as exc:
            exc.add_note(f"raised while training {pending.label}")
            raise

    def _train(self, pending: _Pending, ctx: _LevelContext) -> CVResult:
        try:
            return train_cv(pending.estimator, **self._cv_args(pending, ctx), progress=self.progress)
        except Exception as exc:
            exc.add_note(f"raised while training {pending.label}")
            raise

    def _finish(self, pending: _Pending, result: CVResult, ctx: _LevelContext, seconds: float) -> FittedModel:
        """A model trained this run: queued for the cache and remembered for identical models."""
        if self.writer is not None:
            info = {
                "name": pending.member.name,
                "level": ctx.level,
                "features": pending.features,
                "test_digest": pending.test_digest,
                "seed": self.random_state,
            }
            self.writer.put(pending.label, pending.key, result, info)
        self.memo[pending.key] = (result, None)
        return FittedModel(
            level=ctx.level,
            name=pending.member.name,
            columns=_model_columns(ctx.level, pending.member.name, result),
            result=result,
            oof=_scatter(np.asarray(result.oof), ctx.rows, ctx.n_total),
            test_pred=None if pending.X_test is None else result.test_pred,
            source="fit",
            seconds=seconds,
            features=pending.features,
            key=pending.key,
        )


__all__ = ["FitRun", "FittedModel", "as_input", "is_sparse", "level_frames"]
