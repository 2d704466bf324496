"""Multi-level stacking on out-of-fold predictions, cached per model and resumable: ``Stack``."""

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
from ..data.validation import (
    Interval,
    Options,
    column_names,
    default_column_names,
    renamed_params,
    validate_params,
    warn_renamed,
)
from ..models import TASKS, CVResult, Metric, get_metric, infer_task, take_rows, train_cv
from ..models.cv import CVRun, check_target, check_X_test, describe_estimator, slice_fit_params
from ..models.parallel import fit_side_by_side, limit_threads, n_workers, thread_share
from ..models.persist import UntrustedFileError
from ._folds import level_folds, stack_folds
from .cache import BackgroundWriter, CacheEntry, OOFCache
from .fingerprint import column_digests, data_digest, digest, fingerprint
from .members import Member, resolve_levels

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


def _as_input(X: Any, name: str) -> Any:
    if X is None or isinstance(X, pd.DataFrame) or (hasattr(X, "tocsr") and hasattr(X, "nnz")):
        return X
    if isinstance(X, pd.Series):
        raise ValueError(
            f"{name} must be two-dimensional (a DataFrame or a 2-D array); got a Series, use {name}.to_frame()"
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (a DataFrame or a 2-D array), got shape {arr.shape}")
    return pd.DataFrame(arr, columns=default_column_names(arr.shape[1]))


def _is_sparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


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
        from tqdm.auto import tqdm

        X = _as_input(X, "X")
        n = X.shape[0]
        y_arr = check_target(y, n)
        X_test = check_X_test(X, _as_input(X_test, "X_test"))
        if self.restack and _is_sparse(X):
            raise ValueError(
                "restack=True passes the original features up, which needs a DataFrame or dense X, not a sparse matrix"
            )
        task = self.task or infer_task(y_arr)
        metric = get_metric(self.metric, task)
        classes = np.unique(y_arr) if task != "regression" else None
        y_enc = np.searchsorted(classes, y_arr) if classes is not None else y_arr.astype(np.float64)
        folds = self._resolve_folds(n, X, y_arr, groups, task)
        self._check_given(n, folds, y_enc, task, X_test)
        cache = OOFCache(self.cache_dir) if self.cache_dir is not None else None
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)
        test_index = (
            None
            if X_test is None
            else (X_test.index if isinstance(X_test, pd.DataFrame) else pd.RangeIndex(X_test.shape[0]))
        )

        self.task_, self.metric_, self.folds_, self.classes_ = (
            task,
            metric,
            folds,
            None if classes is None else classes.tolist(),
        )
        self._train_index, self._test_index = index, test_index
        self.models_: list[FittedModel] = []
        self._inputs: dict[int, list[str]] = {}
        prev_oof: pd.DataFrame | None = None
        prev_test: pd.DataFrame | None = None
        bar = tqdm(
            total=sum(len(level) for level in self._members), desc="stack", unit="model", disable=not self.progress
        )
        writer = BackgroundWriter(cache) if cache is not None else None
        memo: dict[str, tuple[CVResult, CacheEntry | None]] = {}  # identical models within a run train once
        try:
            for level, members in enumerate(self._members, start=1):
                if level == 1:
                    inputs, test_inputs, complete = X, X_test, np.ones(n, dtype=bool)
                else:
                    assert prev_oof is not None
                    complete = prev_oof.notna().all(axis=1).to_numpy()
                    inputs = pd.concat([X.reset_index(drop=True), prev_oof], axis=1) if self.restack else prev_oof
                    test_inputs = prev_test
                    if self.restack and prev_test is not None:
                        if X_test is None:
                            raise ValueError(
                                "restack=True passes the original features up: give X_test so the test "
                                "set can follow them"
                            )
                        test_inputs = pd.concat([X_test.reset_index(drop=True), prev_test], axis=1)
                rows, level_fold_ids = level_folds(folds, complete, level)
                sub = inputs if rows.size == n else take_rows(inputs, rows)
                context = _LevelContext(level, sub, test_inputs, rows, level_fold_ids, y_arr[rows], n, task, metric)
                if isinstance(inputs, pd.DataFrame):
                    self._inputs[level] = [str(c) for c in inputs.columns]
                fitted = self._fit_level(members, context, cache, writer, memo, bar)
                self.models_.extend(fitted)
                if level == 1:
                    fitted = self._drop_partial_test(fitted, X_test)
                prev_oof, prev_test = self._level_frames(fitted, pd.RangeIndex(n), None)
        finally:
            bar.close()
            if writer is not None:
                writer.close()  # every trained model is stored before fit returns, even on errors

        last = [m for m in self.models_ if m.level == len(self._members)]
        self.oof_ = np.mean([m.oof for m in last], axis=0) if len(last) > 1 else last[0].oof
        tests = [m.test_pred for m in last]
        self.test_pred_ = (
            None if any(t is None for t in tests) else (np.mean(tests, axis=0) if len(tests) > 1 else tests[0])
        )
        scored = ~np.isnan(self.oof_.reshape(n, -1)).any(axis=1)
        self.score_ = metric(y_enc[scored], self.oof_[scored])
        self.n_fits_ = sum(m.source == "fit" for m in self.models_)
        return self

    def _resolve_folds(self, n: int, X: Any, y: np.ndarray, groups: Any, task: str) -> FoldIds:
        folds = self.folds
        if folds is None:
            given = [m.result for m in self._members[0] if m.precomputed]
            folds = given[0].folds if given else 5
        return stack_folds(folds, n, X, y, groups, task, self.random_state)

    def _check_given(self, n: int, folds: FoldIds, y_enc: np.ndarray, task: str, X_test: Any) -> None:
        """Results computed elsewhere must describe these rows, this target and these folds."""
        from ..models import METRICS

        for m in self._members[0]:
            if not m.precomputed:
                continue
            r = m.result
            assert r is not None
            where = f"level 1 model {m.name!r}" + (f" ({m.source_path})" if m.source_path else "")
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
            if r.metric in METRICS and task in METRICS[r.metric].tasks:
                check = get_metric(r.metric, task)
                ok = ~np.isnan(np.asarray(r.oof).reshape(n, -1)).any(axis=1)
                again = check(y_enc[ok], np.asarray(r.oof)[ok])
                if not np.isclose(again, r.score, rtol=1e-9, atol=1e-9):
                    raise ValueError(
                        f"{where} records {r.metric}={r.score:.6f}, but its out-of-fold predictions score "
                        f"{again:.6f} on this target: it was trained on other rows, another row order or another "
                        "target; give it the same training frame (same rows, same order)"
                    )
            if X_test is not None:
                if r.test_pred is None:
                    raise ValueError(
                        f"{where} has no test predictions, but X_test was given; retrain it with "
                        "X_test=..., or fit the stack without X_test"
                    )
                if len(r.test_pred) != X_test.shape[0]:
                    raise ValueError(
                        f"{where} has test predictions for {len(r.test_pred)} rows, but X_test has {X_test.shape[0]}"
                    )

    def _drop_partial_test(self, fitted: list[FittedModel], X_test: Any) -> list[FittedModel]:
        """Without X_test, test predictions go up only when every level-1 result brings its own."""
        if X_test is None and any(m.test_pred is None for m in fitted) and any(m.test_pred is not None for m in fitted):
            lacking = [m.name for m in fitted if m.test_pred is None]
            warnings.warn(
                f"no test predictions: level-1 models {lacking} have none; pass X_test=... to fit() "
                "to predict the test set",
                UserWarning,
                stacklevel=3,
            )
            for m in fitted:
                m.test_pred = None
        return fitted

    def _level_frames(
        self, fitted: list[FittedModel], index: pd.Index, test_index: pd.Index | None
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
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

    def _columns(self, level: int, name: str, result: CVResult) -> list[str]:
        base = f"level{level}/{name}"
        if result.task == "multiclass":
            return [f"{base}/{str(c).translate(_LGBM_SPECIAL)}" for c in (result.classes or [])]
        return [base]

    def _fit_level(
        self,
        members: list[Member],
        ctx: _LevelContext,
        cache: OOFCache | None,
        writer: BackgroundWriter | None,
        memo: dict[str, tuple[CVResult, CacheEntry | None]],
        bar: Any,
    ) -> list[FittedModel]:
        """Every model of one level, in level order: given, loaded from the cache or trained."""
        workers = n_workers(self.n_jobs)
        if workers == 1:  # one model after another, each with its own fold progress bar
            fitted = []
            for member in members:
                bar.set_postfix_str(f"level{ctx.level}/{member.name}")
                planned = self._plan(member, ctx, cache, writer, memo)
                if isinstance(planned, _Pending):
                    result = self._train(planned, ctx)
                    planned = self._finish(planned, result, ctx, writer, memo, time.perf_counter() - planned.start)
                fitted.append(planned)
                bar.update(1)
            return fitted

        slots: list[FittedModel | _Pending | None] = []
        jobs: list[_Pending] = []
        for member in members:
            planned = self._plan(member, ctx, cache, writer, memo)
            if isinstance(planned, _Pending) and any(p.key == planned.key for p in jobs):
                planned = None  # the same model as one before it: trained once, taken from memory below
            elif isinstance(planned, _Pending):
                jobs.append(planned)
            else:
                bar.update(1)
            slots.append(planned)
        if jobs:
            workers = min(workers, len(jobs) * ctx.folds.n_splits)
            share = thread_share(workers)
            runs = [self._cv_run(p, ctx, share) for p in jobs]
            slot_of = [next(i for i, s in enumerate(slots) if s is p) for p in jobs]

            def done(j: int, result: CVResult, seconds: float) -> None:
                result.params = describe_estimator(jobs[j].estimator)[1]  # the model as given, not its thread share
                slots[slot_of[j]] = self._finish(jobs[j], result, ctx, writer, memo, seconds)
                bar.update(1)

            def running(in_progress: dict[str, tuple[int, int]], waiting: int) -> None:
                folds = ", ".join(
                    f"{label.split('/', 1)[1]} {done}/{total}" for label, (done, total) in in_progress.items()
                )
                bar.set_postfix_str(f"level{ctx.level}: {folds}" + (f" (+{waiting} waiting)" if waiting else ""))

            fit_side_by_side([(p.label, run) for p, run in zip(jobs, runs)], workers, done, running)
        for i, member in enumerate(members):
            if slots[i] is None:
                slots[i] = self._plan(member, ctx, cache, writer, memo)  # in memory now: source "cache"
                bar.update(1)
        return [s for s in slots if isinstance(s, FittedModel)]

    def _cv_run(self, pending: _Pending, ctx: _LevelContext, threads: int) -> CVRun:
        """The folds of a model to fit side by side, each fold using at most ``threads`` threads."""
        try:
            return CVRun(
                limit_threads(pending.estimator, threads),
                pending.X,
                ctx.y,
                ctx.folds,
                X_test=pending.X_test,
                metric=ctx.metric,
                early_stopping_rounds=pending.member.early_stopping_rounds,
                fit_params=pending.fit_params,
                task=ctx.task,
            )
        except Exception as exc:
            exc.add_note(f"raised while training {pending.label}")
            raise

    def _train(self, pending: _Pending, ctx: _LevelContext) -> CVResult:
        try:
            return train_cv(
                pending.estimator,
                pending.X,
                ctx.y,
                ctx.folds,
                X_test=pending.X_test,
                metric=ctx.metric,
                early_stopping_rounds=pending.member.early_stopping_rounds,
                fit_params=pending.fit_params,
                task=ctx.task,
                progress=self.progress,
            )
        except Exception as exc:
            exc.add_note(f"raised while training {pending.label}")
            raise

    def _plan(
        self,
        member: Member,
        ctx: _LevelContext,
        cache: OOFCache | None,
        writer: BackgroundWriter | None,
        memo: dict[str, tuple[CVResult, CacheEntry | None]],
    ) -> FittedModel | _Pending:
        """The model as given, from this run's memory or from the cache; otherwise what training it needs."""
        start = time.perf_counter()
        if member.precomputed:
            r = member.result
            assert r is not None
            return FittedModel(
                level=1,
                name=member.name,
                columns=self._columns(1, member.name, r),
                result=r,
                oof=np.asarray(r.oof),
                test_pred=r.test_pred,
                source="given",
                seconds=0.0,
                features=list(r.feature_names),
                source_path=member.source_path,
            )
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
        test_digest = None if T_m is None else ctx.test_digest_of(features)
        label = f"level{ctx.level}/{member.name}"
        entry = None if cache is None or key in memo else cache.get(key)
        if key in memo:
            result, entry = memo[key]
        elif entry is not None:
            result = entry.result
            if T_m is not None and entry.info.get("test_digest") != test_digest:
                # Same training data, new test set: predict it with the cached fold models, no refit.
                try:
                    result = entry.load_models()
                except UntrustedFileError as exc:  # another user's pickles in a shared cache: train our own
                    warnings.warn(
                        f"{label}: not loading the cached fold models ({exc}); training it again",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    return _Pending(
                        member=member,
                        label=label,
                        estimator=estimator,
                        X=X_m,
                        X_test=T_m,
                        fit_params=fit_params,
                        features=features,
                        key=key,
                        test_digest=test_digest,
                        start=start,
                    )
                result.test_pred = result.predict(T_m)
                assert writer is not None
                writer.put(label, key, result, {**entry.info, "test_digest": test_digest})
                entry = None  # the result in memory holds its models
        else:
            return _Pending(
                member=member,
                label=label,
                estimator=estimator,
                X=X_m,
                X_test=T_m,
                fit_params=fit_params,
                features=features,
                key=key,
                test_digest=test_digest,
                start=start,
            )
        memo[key] = (result, entry)
        return FittedModel(
            level=ctx.level,
            name=member.name,
            columns=self._columns(ctx.level, member.name, result),
            result=result,
            oof=_scatter(np.asarray(result.oof), ctx.rows, ctx.n_total),
            test_pred=None if T_m is None else result.test_pred,
            source="cache",
            seconds=time.perf_counter() - start,
            features=features,
            key=key,
            entry=entry,
        )

    def _finish(
        self,
        pending: _Pending,
        result: CVResult,
        ctx: _LevelContext,
        writer: BackgroundWriter | None,
        memo: dict[str, tuple[CVResult, CacheEntry | None]],
        seconds: float,
    ) -> FittedModel:
        """A model trained this run: queued for the cache and remembered for identical models."""
        if writer is not None:
            writer.put(
                pending.label,
                pending.key,
                result,
                {
                    "name": pending.member.name,
                    "level": ctx.level,
                    "features": pending.features,
                    "test_digest": pending.test_digest,
                    "seed": self.random_state,
                },
            )
        memo[pending.key] = (result, None)
        return FittedModel(
            level=ctx.level,
            name=pending.member.name,
            columns=self._columns(ctx.level, pending.member.name, result),
            result=result,
            oof=_scatter(np.asarray(result.oof), ctx.rows, ctx.n_total),
            test_pred=None if pending.X_test is None else result.test_pred,
            source="fit",
            seconds=seconds,
            features=pending.features,
            key=pending.key,
        )

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
        frame, _ = self._level_frames([m for m in self.models_ if m.level == k], self._train_index, None)
        return frame

    def level_test(self, level: int = 1) -> pd.DataFrame | None:
        """Fold-averaged test predictions of one level (``None`` when fitted without a test set)."""
        k = self._level(level)
        fitted = [m for m in self.models_ if m.level == k]
        if any(m.test_pred is None for m in fitted):
            return None
        _, frame = self._level_frames(fitted, self._train_index, self._test_index)
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
        X = _as_input(X, "X")
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


__all__ = ["FittedModel", "Stack"]
