"""``run_tune``: plan a study (every check before a kernel starts), run its workers, report it."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._redact import redact_url
from ...data.validation import check_whole_number
from ...models.space import Dimension, parse_space
from ...models.trial import SAMPLERS, make_pruner, open_storage
from ...runs.layout import default_runs_root
from ...runs.records import utcnow
from ..runner import prepare_run
from .report import render_study_report
from .space import check_metric, check_space
from .storage import check_study_name, counts, default_storage, study_dir
from .study import best_run, trials_table, write_study_record
from .worker import TuneConfig, work

if TYPE_CHECKING:
    import pandas as pd


def plan_tune(
    notebook: str | os.PathLike[str],
    space: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    text_params: Mapping[str, str] | None = None,
    metric: str | None = None,
    direction: str | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    workers: int = 1,
    sampler: str = "tpe",
    pruner: str = "median",
    study: str | None = None,
    storage: str | None = None,
    seed: int = 0,
    runs_dir: str | os.PathLike[str] | None = None,
    trial_timeout: float | None = None,
    heartbeat_interval: float = 5.0,
    grace_period: float = 30.0,
) -> TuneConfig:
    """Check everything about a study and return its :class:`TuneConfig`; no kernel starts, nothing is written.

    Raises ``ValueError`` naming the problem: an unknown parameter, a dimension the parameter's
    type does not take, an empty range, a metric the notebook does not record, a bad sampler,
    pruner or count.
    """
    n_trials = check_whole_number(n_trials, "n_trials=", 1)
    workers = check_whole_number(workers, "workers=", 1)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout= must be a positive number of seconds, got {timeout}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    make_pruner(pruner)
    dims: dict[str, Dimension] = parse_space(space)
    fixed = set(params or {}) | set(text_params or {})
    both = sorted(fixed & set(dims))
    if both:
        raise ValueError(f"{', '.join(both)} is both set (-p) and searched (-s); keep one")
    prepared = prepare_run(notebook, params, text_params)  # fixed parameters and input files
    check_space(prepared.spec, dims)
    if sampler == "grid":  # each point of the grid once at most
        n_trials = min(n_trials, math.prod(len(dim.grid()) for dim in dims.values()))
    metric = check_metric(prepared.spec, prepared.nb, metric)
    sort = prepared.spec.sort or ""
    direction = direction or ("minimize" if sort.startswith("-") and sort.lstrip("-") == metric else "maximize")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction= must be 'maximize' or 'minimize', got {direction!r}")
    name = check_study_name(study or f"{Path(notebook).stem}-tune")
    root = Path(runs_dir if runs_dir is not None else default_runs_root()).resolve()
    return TuneConfig(
        notebook=str(Path(notebook).resolve()),
        space=dims,
        metric=metric,
        direction=direction,
        study=name,
        storage=storage or default_storage(root, name),
        runs_dir=str(root),
        n_trials=n_trials,
        params={k: v for k, v in prepared.params.items() if k in fixed},  # validated, typed
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        deadline=time.time() + timeout if timeout else None,
        trial_timeout=trial_timeout,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        workers=workers,
    )


def open_study(config: TuneConfig) -> Any:
    """Create the study in its storage, or load it to continue (same metric and direction required)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(config.storage)
    study = optuna.create_study(
        study_name=config.study, storage=storage, direction=config.direction, load_if_exists=True
    )
    if study.direction.name.lower() != config.direction:
        raise ValueError(
            f"study {config.study!r} already {study.direction.name.lower()}s; pass direction="
            f"{study.direction.name.lower()} or a new study="
        )
    known = study.user_attrs.get("metric")
    if known is None:
        study.set_user_attr("metric", config.metric)
        study.set_user_attr("notebook", config.notebook)
        study.set_user_attr("space", {k: str(d) for k, d in config.space.items()})
    elif known != config.metric:
        raise ValueError(f"study {config.study!r} optimises {known!r}; pass metric={known} or a new study=")
    return study


def run_tune(
    notebook: str | os.PathLike[str], space: Mapping[str, Any], progress: bool = True, **options: Any
) -> pd.DataFrame:
    """Tune ``notebook`` over ``space``: every trial a recorded run; the trials as a table, best first.

    ``options`` are those of :func:`plan_tune`. Re-running with the same ``study`` continues it
    until it holds ``n_trials`` finished (complete or pruned) trials. The table's ``attrs`` hold
    ``study``, ``storage``, ``best_run`` and ``report`` (the study's HTML report).

    .. code-block:: python

        table = run_tune("notebooks/train.ipynb", {"num_leaves": "int(8,64)"}, n_trials=20, workers=2)
    """
    config = plan_tune(notebook, space, **options)
    study = open_study(config)
    start = utcnow()
    write_study_record(config.runs_dir, study, config.notebook, config.metric, "running", start)
    errors = _run_workers(config, study, progress)
    n = counts(study)  # the storage reads what the workers wrote
    finished = n.get("complete", 0) + n.get("pruned", 0)
    state = "succeeded" if finished >= config.n_trials or config.deadline else "failed"
    folder = study_dir(Path(config.runs_dir), config.study)
    write_study_record(config.runs_dir, study, config.notebook, config.metric, state, start)
    report = render_study_report(study, folder, config.metric, config.notebook)
    table = trials_table(study, config.metric)
    table.attrs.update(
        study=config.study, storage=config.storage, best_run=best_run(study), report=str(report), errors=errors
    )
    if errors and state == "failed":
        raise RuntimeError(
            f"study {config.study}: {finished} of {config.n_trials} trials finished; " + "; ".join(errors)
        )
    return table


def _run_workers(config: TuneConfig, study: Any, progress: bool) -> list[str]:
    """Run ``config.workers`` workers (here, or in worker processes) on ``study``; their errors as text."""
    from ..sweep import WorkerPool

    if config.workers == 1:
        try:
            work(config, 0)
        except Exception as exc:  # noqa: BLE001 - reported with the study's state
            return [f"{type(exc).__name__}: {exc}"]
        return []
    from tqdm.auto import tqdm

    errors: list[str] = []
    bar = tqdm(total=config.n_trials, desc=f"tune {config.study}", unit="trial", disable=not progress)
    with WorkerPool(Path(config.notebook), Path(config.runs_dir), config.workers) as pool:
        pending = {pool.pool.submit(work, config, i) for i in range(config.workers)}
        try:
            while pending:
                finished, pending = wait(pending, timeout=2, return_when=FIRST_COMPLETED)
                n = counts(study)
                bar.update(min(config.n_trials, n.get("complete", 0) + n.get("pruned", 0)) - bar.n)
                for future in finished:
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - one broken worker never stops the others
                        errors.append(f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            pool.stop()
            raise
        finally:
            bar.close()
    return errors


def show_study(study: str, storage: str | None = None, runs_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The trials of ``study`` best first (``attrs``: ``metric``, ``best_run``, ``direction``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(runs_dir if runs_dir is not None else default_runs_root()).resolve()
    spec = storage or default_storage(root, check_study_name(study))
    if "://" not in spec and not Path(spec).is_file():
        raise FileNotFoundError(f"no study {study!r} in {root} (no {spec}); pass storage= for a database")
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(spec))
    except KeyError:
        where = redact_url(spec, keep_path=True) if "://" in spec else spec
        raise FileNotFoundError(f"no study {study!r} in {where}") from None
    metric = loaded.user_attrs.get("metric", "value")
    table = trials_table(loaded, metric)
    table.attrs.update(metric=metric, best_run=best_run(loaded), direction=loaded.direction.name.lower())
    return table
