"""Stacking the runs of a training notebook: pick them, check they describe the same rows and folds, load them.

A run of ``notebooks/train.ipynb`` keeps its :class:`~workbench.models.CVResult` in
``artifacts/cv`` and its out-of-fold predictions, ids and target in ``artifacts/oof.csv``
(test predictions in ``artifacts/test_pred.csv``). Those results enter a :class:`Stack` as
level-1 models as they are, so nothing is refitted; what must hold is that every run was
cross-validated on the same rows with the same folds, which :func:`load_stack_runs` checks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import warn_renamed
from ..jobs.context import current_runs_dir
from ..models import CVResult
from ..runs.layout import current_owner
from ..runs.records import ARTIFACTS_DIR, CV_ARTIFACT, OOF_ARTIFACT, TEST_PRED_ARTIFACT, RunRecord
from ..runs.registry import find_run, iter_runs

TRAIN_NOTEBOOK = "train.ipynb"
DATA_PARAMS: tuple[str, ...] = ("train_path", "test_path", "target", "id_column")
FOLD_PARAMS: tuple[str, ...] = ("n_splits", "seed")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]+")
_SWEEP_HINT = "workbench sweep notebooks/train.ipynb -p model lgbm,logreg,extratrees"


def _cv_dir(run: RunRecord) -> Path:
    return run.path / ARTIFACTS_DIR / CV_ARTIFACT


def _has_cv(run: RunRecord) -> bool:
    return (_cv_dir(run) / "result.json").is_file()


def model_name(run: RunRecord) -> str:
    """What a run trained: its ``model`` parameter, else its run name."""
    return _UNSAFE.sub("-", str(run.params.get("model") or run.name)).strip("-") or "model"


def _setup(run: RunRecord) -> str:
    return json.dumps({k: run.params.get(k) for k in (*DATA_PARAMS, *FOLD_PARAMS)}, sort_keys=True)


def find_train_runs(
    train_runs: Sequence[str | os.PathLike[str]] = (),
    sweep: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    notebook: str = TRAIN_NOTEBOOK,
) -> list[RunRecord]:
    """The training runs to stack, oldest first.

    ``train_runs`` names them (run directories, folder names, run ids or run names, as
    :func:`~workbench.runs.find_run` reads them); ``sweep`` takes every successful run of that
    sweep (the latest one per grid point). With neither: the latest successful run of ``notebook`` that saved a ``CVResult``,
    plus the latest run of each other ``model`` made with the same data, ``n_splits`` and
    ``seed``. A sweep or the latest runs are taken from the caller's own runs
    (:func:`~workbench.runs.current_owner`) when there are any, else from everyone's.
    ``runs_dir`` defaults to :func:`~workbench.jobs.current_runs_dir` (in a job, the runs root
    its own run is in).

    Parameters
    ----------
    train_runs : sequence of str or path, default ()
        The runs, as above.
    sweep : str, optional
        A sweep whose successful runs are taken.
    runs_dir : path, optional
        The runs root.
    notebook : str, default "train.ipynb"
        The training notebook whose latest runs are taken.

    Returns
    -------
    list of RunRecord
        Oldest first.

    Raises
    ------
    ValueError
        When no run fits (with the command that makes some), a named run did not succeed or is
        named twice, or both ``train_runs`` and ``sweep`` are given.

    In a notebook after ``workbench sweep`` (finished training runs are needed):

    .. code-block:: python

        find_train_runs(sweep="train-sweep")
    """
    folder = Path(runs_dir) if runs_dir is not None else current_runs_dir()
    if isinstance(train_runs, str | os.PathLike):
        train_runs = [train_runs]
    if train_runs and sweep:
        raise ValueError("give the runs to stack either as train_runs or as a sweep name, not both")
    if train_runs:
        runs: list[RunRecord] = []
        for ref in train_runs:
            run = find_run(ref, folder)
            if run.state != "succeeded":
                raise ValueError(f"run {run.path.name} {run.state}; only succeeded training runs can be stacked")
            if any(r.path.resolve() == run.path.resolve() for r in runs):
                raise ValueError(f"run {run.path.name} is listed twice (as {ref!r}); name each run once")
            runs.append(run)
        return runs
    everything = iter_runs(folder)
    if sweep:
        points: dict[str, RunRecord] = {}
        for run in _own_first(everything, lambda r: r.sweep == sweep and r.state == "succeeded" and _has_cv(r)):
            key = json.dumps(run.params, sort_keys=True)
            points.pop(key, None)
            points[key] = run  # a sweep run twice: its latest run of each grid point
        if not points:
            known = sorted({r.sweep for r in everything if r.sweep})
            raise ValueError(
                f"no successful run of sweep {sweep!r} with a saved CVResult in {folder}; "
                f"sweeps there: {known or 'none'}"
            )
        return list(points.values())
    candidates = _own_first(
        everything, lambda r: r.state == "succeeded" and Path(r.notebook).name == notebook and _has_cv(r)
    )
    if not candidates:
        raise ValueError(
            f"no successful {notebook} run with a saved CVResult (artifacts/cv) in {folder}; train the "
            f"members first, e.g. `{_SWEEP_HINT} --runs-dir {folder}`"
        )
    setup = _setup(candidates[-1])
    latest: dict[str, RunRecord] = {}
    for run in candidates:
        if _setup(run) == setup:
            latest.pop(model_name(run), None)
            latest[model_name(run)] = run  # the latest run of each model, in the order they ran
    runs = list(latest.values())
    if len(runs) < 2:
        raise ValueError(
            f"only one model ({model_name(runs[0])}, run {runs[0].path.name}) was trained with the data and "
            f"folds of the latest {notebook} run in {folder}; a stack needs two or more, e.g. "
            f"`{_SWEEP_HINT} --runs-dir {folder}`"
        )
    return runs


def _own_first(runs: list[RunRecord], keep: Callable[[RunRecord], bool]) -> list[RunRecord]:
    """The runs ``keep`` selects among the caller's own, or among everyone's when the caller has none."""
    selected = [r for r in runs if keep(r)]
    me = current_owner()
    return [r for r in selected if r.owner == me] or selected


@dataclass
class RunMember:
    """One training run as a level-1 model: its name in the stack, its record and its result (no fold models)."""

    name: str
    run: RunRecord
    result: CVResult

    @property
    def cv_path(self) -> Path:
        return _cv_dir(self.run)


@dataclass
class StackRuns:
    """Training runs checked to share rows, target, folds and test set, ready for a :class:`Stack`.

    ``y`` and ``ids`` are the training rows' target and ids (from ``oof.csv``), ``test_ids`` the
    test rows' ids (from ``test_pred.csv``; ``None`` without test predictions); ``params`` the
    data parameters of the first run (``train_path``, ``test_path``, ``target``, ``id_column``).
    """

    members: list[RunMember]
    y: pd.Series
    ids: pd.Series
    test_ids: pd.Series | None
    params: dict[str, Any]

    @property
    def folds(self) -> np.ndarray:
        return self.members[0].result.folds

    @property
    def metric(self) -> str:
        return self.members[0].result.metric

    @property
    def task(self) -> str:
        return self.members[0].result.task

    def level(self) -> list[tuple[str, str]]:
        """Level 1 of a stack: ``(name, path of the saved CVResult)`` per run; none is refitted."""
        return [(m.name, str(m.cv_path)) for m in self.members]

    def table(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("StackRuns", "table()", "to_frame()")
        return self.to_frame()

    def to_frame(self) -> pd.DataFrame:
        """One row per member: name, run folder, model, CV score and its fold spread, folds, seed."""
        rows = [
            {
                "member": m.name,
                "run": m.run.path.name,
                "model": m.run.params.get("model", ""),
                self.metric: m.result.score,
                f"{self.metric}_std": m.result.score_std,
                "n_splits": m.result.n_splits,
                "seed": m.run.params.get("seed"),
            }
            for m in self.members
        ]
        return pd.DataFrame(rows)


def _read_run(run: RunRecord) -> tuple[CVResult, pd.DataFrame, pd.DataFrame | None]:
    where = run.path / ARTIFACTS_DIR
    if not _has_cv(run):
        raise ValueError(
            f"run {run.path.name} saved no CVResult ({_cv_dir(run) / 'result.json'} is missing); "
            f"stack runs of {TRAIN_NOTEBOOK}, which save one with cv.save(workbench.artifact_path('cv'))"
        )
    if not (where / OOF_ARTIFACT).is_file():
        raise ValueError(
            f"run {run.path.name} has no {where / OOF_ARTIFACT} (ids, out-of-fold predictions and target); "
            f"stack runs of {TRAIN_NOTEBOOK}"
        )
    result = CVResult.load(_cv_dir(run), models=False)
    oof = pd.read_csv(where / OOF_ARTIFACT)
    test = pd.read_csv(where / TEST_PRED_ARTIFACT) if (where / TEST_PRED_ARTIFACT).is_file() else None
    if len(oof) != len(result.oof):
        raise ValueError(
            f"run {run.path.name}: {OOF_ARTIFACT} has {len(oof)} rows but its CVResult {len(result.oof)}; "
            "the artifacts do not belong together"
        )
    return result, oof, test


def _target_column(run: RunRecord, oof: pd.DataFrame) -> str:
    target = run.params.get("target")
    return target if isinstance(target, str) and target in oof.columns else str(oof.columns[-1])


def _differ(a: pd.Series, b: pd.Series) -> int:
    return int(np.sum(a.astype(str).to_numpy() != b.astype(str).to_numpy()))


def _names(runs: Sequence[RunRecord]) -> list[str]:
    base = [model_name(r) for r in runs]
    return [n if base.count(n) == 1 else f"{n}_{r.run_id or r.path.name[-6:]}" for n, r in zip(base, runs)]


def load_stack_runs(runs: Sequence[RunRecord]) -> StackRuns:
    """Load the results of ``runs`` and check they can be stacked; a ``ValueError`` says why not.

    Every run must have been cross-validated for the same task and metric, on the same training
    rows (ids, in the same order) with the same target and the same folds, and predict the same
    test rows. Members are named for their ``model`` parameter (``lgbm``, ``logreg``, ...),
    with the run id appended where two runs trained the same model.

    In a notebook after ``workbench sweep`` (finished training runs are needed):

    .. code-block:: python

        stack_runs = load_stack_runs(find_train_runs(sweep="train-sweep"))
        Stack([stack_runs.level(), [("meta", meta_model())]]).fit(X, stack_runs.y)
    """
    runs = list(runs)
    if len(runs) < 2:
        raise ValueError(f"a stack needs two or more training runs, got {len(runs)}; e.g. `{_SWEEP_HINT}`")
    members: list[RunMember] = []
    first: tuple[RunRecord, CVResult, pd.DataFrame, pd.DataFrame | None] | None = None
    for name, run in zip(_names(runs), runs):
        result, oof, test = _read_run(run)
        if first is None:
            first = (run, result, oof, test)
        else:
            _check_compatible(first, (run, result, oof, test))
        members.append(RunMember(name=name, run=run, result=result))
    assert first is not None
    run0, _, oof0, test0 = first
    target = _target_column(run0, oof0)
    return StackRuns(
        members=members,
        y=oof0[target].rename(target),
        ids=oof0.iloc[:, 0],
        test_ids=None if test0 is None else test0.iloc[:, 0],
        params={k: run0.params.get(k) for k in DATA_PARAMS},
    )


def _check_compatible(first: tuple, other: tuple) -> None:
    run0, cv0, oof0, test0 = first
    run, cv, oof, test = other
    problems = []
    if cv.task != cv0.task:
        problems.append(f"a {cv.task} target instead of {cv0.task}")
    if cv.metric != cv0.metric:
        problems.append(f"metric {cv.metric} instead of {cv0.metric}")
    n0, n = len(oof0), len(oof)
    if n != n0:
        problems.append(f"{n} training rows instead of {n0}")
    else:
        if (k := _differ(oof.iloc[:, 0], oof0.iloc[:, 0])) > 0:
            problems.append(f"other training rows ({k} of {n} ids differ, or come in another order)")
        elif (k := _differ(oof[_target_column(run, oof)], oof0[_target_column(run0, oof0)])) > 0:
            problems.append(f"another target ({k} of {n} rows differ)")
        theirs, ours = np.asarray(cv.folds), np.asarray(cv0.folds)
        if not np.array_equal(theirs, ours):
            count = f"{cv.n_splits} folds instead of {cv0.n_splits}, " if cv.n_splits != cv0.n_splits else ""
            problems.append(f"other folds ({count}{int(np.sum(theirs != ours))} of {n} rows in another fold)")
    if (test is None) != (test0 is None):
        problems.append("no test predictions" if test is None else "test predictions where the first run has none")
    elif test is not None and (len(test) != len(test0) or _differ(test.iloc[:, 0], test0.iloc[:, 0]) > 0):
        problems.append(f"another test set ({len(test)} rows instead of {len(test0)}, or other ids)")
    if not problems:
        return
    changed = [
        k
        for k in (*DATA_PARAMS, *FOLD_PARAMS)
        if k in run.params and k in run0.params and run.params[k] != run0.params[k]
    ]
    differing = (
        "; parameters " + ", ".join(f"{k} {run.params[k]!r} instead of {run0.params[k]!r}" for k in changed)
        if changed
        else ""
    )
    fix = " ".join(f"-p {k} {run0.params[k]}" for k in changed if k in FOLD_PARAMS)
    if fix and set(changed) <= set(FOLD_PARAMS):
        remedy = f"Re-run {model_name(run)} with {fix}"
    else:
        remedy = "Stack runs made with the same data, n_splits and seed"
    raise ValueError(
        f"cannot stack run {run.path.name} with {run0.path.name}: it has {'; '.join(problems)}{differing}. {remedy}: "
        "the members of a stack must be cross-validated on the same rows with the same folds, or the stack would "
        "score rows with models that saw them"
    )


__all__ = ["DATA_PARAMS", "FOLD_PARAMS", "RunMember", "StackRuns", "find_train_runs", "load_stack_runs", "model_name"]
