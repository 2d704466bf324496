"""Folds of one or more models fitted side by side in threads, with the results of a serial run.

An internal API of the workbench, documented for the packages above ``models``:
:func:`~workbench.models.train_cv` uses it for ``n_jobs``, :class:`~workbench.stacking.Stack`
for the folds of all the models of a level. The unit of work is a :class:`~workbench.models.cv.CVRun`
(one model's folds); :func:`fit_side_by_side` runs the folds of several of them.

LightGBM, scikit-learn's tree builders and BLAS release the GIL while they work, so threads
overlap the real work without copying data to other processes. Each fold fits its own clone
with its own seed and writes only its own output, so the order in which folds finish changes
nothing: every model's :class:`~workbench.models.CVResult` is assembled from its folds in fold
order, bit for bit what a serial :func:`~workbench.models.train_cv` gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import joblib

from ..data.validation import effective_n_jobs
from ._estimators import family
from .cv import CVRun, FoldOutput
from .result import CVResult

# Libraries whose ``n_jobs=None`` means every (physical) core rather than one thread.
_ALL_CORES_WHEN_NONE = ("lightgbm", "xgboost")


def n_workers(n_jobs: int | None, where: str = "this function") -> int:
    """Threads for ``n_jobs`` read as joblib does: ``-1`` every core, ``-2`` all but one, ``None`` one."""
    return effective_n_jobs(n_jobs, where)


def thread_share(workers: int) -> int:
    """Threads each of ``workers`` side-by-side fits may use so that together they fill the cores once."""
    return max(1, joblib.cpu_count() // workers)


def limit_threads(estimator: Any, threads: int) -> Any:
    """``estimator``, or a clone of it whose thread counts left at "every core" are ``threads``.

    A negative ``n_jobs`` means every core in every library, and LightGBM and XGBoost read
    ``None`` that way too; nested estimators (pipeline steps) are covered. Explicit positive
    counts are the user's choice and stay. Only how many threads a fit uses changes, never what
    it computes.
    """
    if not hasattr(estimator, "get_params"):
        return estimator
    from sklearn.base import clone

    params = estimator.get_params(deep=True)
    updates = {}
    for key, value in params.items():
        owner_key, _, name = key.rpartition("__")
        if name != "n_jobs" or isinstance(value, bool):
            continue
        owner = params.get(owner_key, estimator) if owner_key else estimator
        if (value is None and family(owner) in _ALL_CORES_WHEN_NONE) or (isinstance(value, int) and value < 0):
            updates[key] = threads
    if not updates:
        return estimator
    limited = clone(estimator)
    limited.set_params(**updates)
    return limited


def fit_side_by_side(
    jobs: Sequence[tuple[str, CVRun]],
    workers: int,
    on_model: Callable[[int, CVResult, float], None],
    on_fold: Callable[[dict[str, tuple[int, int]], int], None] | None = None,
) -> None:
    """Fit every fold of every job on ``workers`` threads.

    ``jobs`` are ``(label, run)`` pairs. As soon as all folds of job ``j`` are fitted,
    ``on_model(j, result, seconds)`` runs in the calling thread (``seconds``: from its first
    fold's start to now), so a finished model can be stored while others still train.
    ``on_fold({label: (folds_done, n_folds)}, n_waiting)`` reports, after each fold, the models
    in progress and how many have not started yet.

    When a fold raises, folds not yet started are cancelled, running ones finish, every model
    whose folds all finished still goes to ``on_model``, and the error is raised again with a
    note naming the model and fold. Ctrl-C does the same.
    """
    from threadpoolctl import ThreadpoolController

    threads = thread_share(workers)
    controller = ThreadpoolController()
    openmp = controller.select(user_api="openmp")

    begun: set[int] = set()

    def fit(j: int, run: CVRun, k: int) -> tuple[FoldOutput, float]:
        begun.add(j)
        start = time.perf_counter()
        # OpenMP thread limits belong to the calling thread: set them here, for this fold only.
        with openmp.limit(limits=threads):
            return run.fit_fold(k), start

    outputs: list[dict[int, FoldOutput]] = [{} for _ in jobs]
    started = [float("inf")] * len(jobs)
    where: dict[Future[tuple[FoldOutput, float]], tuple[int, int]] = {}
    failure: list[tuple[BaseException, int, int]] = []
    in_callback = False

    def collect(future: Future[tuple[FoldOutput, float]]) -> None:
        nonlocal in_callback
        j, k = where[future]
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            failure.append((exc, j, k))
            return
        outputs[j][k], start = future.result()
        started[j] = min(started[j], start)
        run = jobs[j][1]
        if len(outputs[j]) == run.n_splits:
            in_callback = True
            try:
                result = run.result([outputs[j][i] for i in range(run.n_splits)])
            except Exception as exc:  # scoring all out-of-fold predictions together failed
                exc.add_note(f"raised while training {jobs[j][0]}")
                raise
            on_model(j, result, time.perf_counter() - started[j])
            in_callback = False

    # BLAS pools are process-wide: limit them once, here, for the whole side-by-side stretch.
    with (
        controller.select(user_api="blas").limit(limits=threads),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workbench-folds") as pool,
    ):
        for j, (_, run) in enumerate(jobs):
            for k in range(run.n_splits):
                where[pool.submit(fit, j, run, k)] = (j, k)
        pending = set(where)
        try:
            while pending and not failure:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=where.__getitem__):
                    collect(future)
                if on_fold is not None and not failure:
                    unfinished = [j for j, (_, run) in enumerate(jobs) if len(outputs[j]) < run.n_splits]
                    on_fold(
                        {jobs[j][0]: (len(outputs[j]), jobs[j][1].n_splits) for j in unfinished if j in begun},
                        sum(j not in begun for j in unfinished),
                    )
        finally:
            # A failed fold or Ctrl-C: cancel what has not started, let running folds finish and
            # hand on the models they complete (unless handing on is what failed).
            for future in pending:
                future.cancel()
            wait(pending)
            if not in_callback:
                for future in sorted(pending, key=where.__getitem__):
                    collect(future)
    if failure:
        exc, j, k = failure[0]
        label, run = jobs[j]
        exc.add_note(
            f"raised while training {label} (fold {k + 1} of {run.n_splits}); the folds that had not "
            "started were cancelled"
        )
        raise exc


__all__ = ["fit_side_by_side", "limit_threads", "n_workers", "thread_share"]
