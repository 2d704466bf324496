"""A tune worker: ask the study for a trial, run the notebook with its parameters as a recorded run,
tell the study the outcome; until the study holds its number of trials or the time is up.

Every worker (local processes, pods of an Indexed Job) runs this same loop against the shared
storage; the storage hands out trial numbers, so none is lost or given twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._checks import is_finite_number
from ...models.space import Dimension, suggest
from ...models.trial import (
    PRUNER_ENV,
    STORAGE_ENV,
    STUDY_ENV,
    TRIAL_ENV,
    make_pruner,
    make_sampler,
    open_storage,
    trial_id,
)
from ...runs.layout import owner_dirname
from ..inputs import check_inputs, declared_inputs
from ..params import inspect_notebook, read_notebook, validate_params
from ..runner import PreparedRun, execute_run, run_seed
from ..warm import discard_spare, start_warm_kernel, wait_for_exiting_kernels
from .storage import SURPLUS_ATTR, counts, fail_stale, heartbeat, is_surplus

MAX_FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class TuneConfig:
    """Everything a worker needs (plain data: it travels to worker processes and pods)."""

    notebook: str
    space: dict[str, Dimension]
    metric: str
    direction: str
    study: str
    storage: str
    runs_dir: str
    n_trials: int
    params: dict[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    deadline: float | None = None  # time.time() after which no new trial starts
    trial_timeout: float | None = None
    heartbeat_interval: float = 5.0
    grace_period: float = 30.0
    workers: int = 1


def worker_sampler(config: TuneConfig, worker: int, existing: int) -> Any:
    """The study's sampler, seeded per worker and per resume (so no two draw the same random points)."""
    import numpy as np

    seed = int(np.random.SeedSequence([config.seed, worker, existing]).generate_state(1)[0])
    return make_sampler(config.sampler, seed, config.space)


def load_study(config: TuneConfig, worker: int = 0) -> tuple[Any, Any]:
    """The study of ``config`` (created by the tune command) with this worker's sampler, and its storage."""
    import optuna

    worker += config.workers * _pod_index()  # pods of an Indexed Job draw apart too
    storage = open_storage(config.storage)
    probe = optuna.load_study(study_name=config.study, storage=storage)
    sampler = worker_sampler(config, worker, len(probe.get_trials(deepcopy=False)))
    study = optuna.load_study(
        study_name=config.study, storage=storage, sampler=sampler, pruner=make_pruner(config.pruner)
    )
    return study, storage


def _pod_index() -> int:
    """This pod's index in an Indexed Job (0 elsewhere)."""
    try:
        return int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
    except ValueError:
        return 0


def _done(study: Any, config: TuneConfig) -> bool | None:
    """True: enough trials; None: enough once the running ones end (wait); False: ask for another."""
    n = counts(study)
    finished = n.get("complete", 0) + n.get("pruned", 0)
    if finished >= config.n_trials:
        return True
    if finished + n.get("running", 0) >= config.n_trials:
        return None
    return False


def work(config: TuneConfig, worker: int = 0) -> int:
    """Run trials of ``config``'s study until it is done or the deadline passes; the number run here."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = Path(config.notebook)
    nb = read_notebook(path)
    spec = inspect_notebook(path, nb)
    _first_kernel(config, spec, nb)
    try:
        study, storage = load_study(config, worker)
        return _trials(config, study, storage, spec, nb)
    finally:
        discard_spare()  # left when the time ran out; a killed worker's kernels exit with it
        wait_for_exiting_kernels()  # the last trials' kernels, left to exit while the next one ran


def _first_kernel(config: TuneConfig, spec: Any, nb: Any) -> None:
    """Start the first trial's kernel, importing the notebook's modules, while the worker gets ready.

    Only when the trial's seed is known ahead (it sets the kernel's hash seed, so a kernel started
    with another would not be adopted).
    """
    seed_dim = config.space.get("seed")
    if seed_dim is not None and not (seed_dim.kind == "choice" and len(seed_dim.choices) == 1):
        return
    try:
        values = validate_params(spec, {**config.params, **({"seed": seed_dim.choices[0]} if seed_dim else {})})
    except ValueError:
        return  # each trial says what is wrong
    start_warm_kernel(nb, spec.workdir, run_seed(values), Path(config.runs_dir))


def _trials(config: TuneConfig, study: Any, storage: Any, spec: Any, nb: Any) -> int:
    """The worker's loop: ask, run, tell; the number of trials run."""
    import optuna

    ran = failures = 0
    while config.deadline is None or time.time() < config.deadline:
        fail_stale(study, storage, config.grace_period)
        state = _done(study, config)
        if state is True:
            break
        if state is None:  # other workers' last trials: wait for them (or for their heartbeats to stop)
            time.sleep(min(config.heartbeat_interval, 2.0))
            continue
        trial = study.ask()
        tid = trial_id(storage, config.study, trial.number)
        if is_surplus(study, trial.number, config.n_trials):
            storage.set_trial_system_attr(tid, SURPLUS_ATTR, True)
            with contextlib.suppress(RuntimeError):  # the grid sampler's stop request
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        record = _run_trial(config, study, storage, tid, trial, spec, nb)
        failed = _tell(study, storage, tid, trial, record, config.metric)
        ran += 1
        failures = failures + 1 if failed else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            raise RuntimeError(
                f"{failures} trials in a row failed; the last: {record.path} ({(record.error or {}).get('summary')})"
            )
    return ran


def _run_trial(config: TuneConfig, study: Any, storage: Any, tid: int, trial: Any, spec: Any, nb: Any) -> Any:
    """The trial's notebook run (its record), with heartbeats while it runs."""
    import optuna

    try:
        values = validate_params(spec, {**config.params, **suggest(trial, config.space)})
        inputs = declared_inputs(spec, values)
        check_inputs(inputs)
    except (ValueError, FileNotFoundError) as exc:  # e.g. an input file removed since the study was planned
        storage.set_trial_user_attr(tid, "error", str(exc))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    prepared = PreparedRun(spec=spec, nb=nb, params=values, inputs=inputs, name=config.study, seed=run_seed(values))
    remaining = config.n_trials - sum(counts(study).get(s, 0) for s in ("complete", "pruned", "running"))
    with heartbeat(storage, tid, config.heartbeat_interval):
        return execute_run(
            prepared,
            config.runs_dir,
            progress=False,
            timeout=config.trial_timeout,
            prelaunch=remaining >= config.workers,
            study=config.study,
            trial=trial.number,
            kernel_env=_kernel_env(config, trial.number),
            quiet_exit=True,
        )


def _kernel_env(config: TuneConfig, number: int) -> dict[str, str]:
    return {STORAGE_ENV: config.storage, STUDY_ENV: config.study, TRIAL_ENV: str(number), PRUNER_ENV: config.pruner}


def _tell(study: Any, storage: Any, tid: int, trial: Any, record: Any, metric: str) -> bool:
    """Tell the study how the trial's run ended; True when the trial failed."""
    import optuna
    from optuna.trial import TrialState

    storage.set_trial_user_attr(tid, "run", f"{owner_dirname(record.owner)}/{record.path.name}")
    storage.set_trial_user_attr(tid, "run_state", record.state)
    value = record.metrics.get(metric)
    ok = is_finite_number(value)
    try:
        if record.state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        elif record.state in ("succeeded", "degraded") and ok:
            study.tell(trial, float(value))
        else:
            reason = (record.error or {}).get("summary") or f"the run recorded no number {metric!r}"
            storage.set_trial_user_attr(tid, "error", reason)
            study.tell(trial, state=TrialState.FAIL)
            return True
    except optuna.exceptions.UpdateFinishedTrialError:
        return True  # failed meanwhile as stale (the worker was paused past the grace period)
    except RuntimeError:  # the grid sampler asks to stop once its grid is exhausted; the tell went through
        return storage.get_trial(tid).state == TrialState.FAIL
    return False
