"""The tuning trial a piece of code runs in: intermediate values, pruning, and Optuna storage.

:func:`report` sends an intermediate value (a fold's score, an epoch's loss) to the current
trial; when the trial's pruner judges it hopeless, :func:`report` raises
:class:`optuna.TrialPruned`, which stops the notebook or the ``train_cv`` call at once. Outside
a trial it does nothing.

A trial is current in two ways: in-process (:func:`trial_scope`, used by
:func:`workbench.models.tune`), or in a notebook kernel that a tune worker started with the
environment variables :data:`STORAGE_ENV`, :data:`STUDY_ENV`, :data:`TRIAL_ENV` (the trial number) and
:data:`PRUNER_ENV`; the kernel then opens the study's storage itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..data.validation import check_whole_number
from .space import Dimension

STORAGE_ENV = "WORKBENCH_TRIAL_STORAGE"
STUDY_ENV = "WORKBENCH_TRIAL_STUDY"
TRIAL_ENV = "WORKBENCH_TRIAL_ID"
PRUNER_ENV = "WORKBENCH_TRIAL_PRUNER"
TRIAL_ENVS = (STORAGE_ENV, STUDY_ENV, TRIAL_ENV, PRUNER_ENV)
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "cmaes", "random", "grid")

Reporter = Callable[[int, float, bool], None]
"""``reporter(step, value, prune)``: record ``value`` at ``step``; when ``prune``, raise ``TrialPruned``
if the pruner says so."""
_reporter: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("workbench_trial_reporter", default=None)
_env_trial: dict[str, Any] = {}


def open_storage(spec: str | os.PathLike[str]) -> Any:
    """The Optuna storage ``spec`` names: a database URL (``postgresql://...``, ``sqlite:///x.db``) or
    the path of a journal file (created when missing; safe for several processes and machines
    sharing one file system).

    Examples
    --------
    >>> import tempfile, os
    >>> storage = open_storage(os.path.join(tempfile.mkdtemp(), "s.journal"))
    >>> type(storage).__name__
    'JournalStorage'
    """

    text = str(spec)
    if "://" in text:
        return _database(text)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    Path(text).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(text))


def _database(url: str) -> Any:
    """Optuna's storage in the database at ``url``, or ``ValueError`` saying why not (never its password)."""
    import optuna
    import sqlalchemy.exc

    from .._redact import redact, redact_url

    where = redact_url(url, keep_path=True)
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError:
        raise ValueError(
            f"cannot open the study storage {where}: the database driver for {where.split(':')[0]!r} is not "
            "installed (e.g. pip install psycopg2-binary for postgresql, pymysql for mysql+pymysql)"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ValueError(f"cannot open the study storage {where}: {redact(reason)}") from None


def trial_id(storage: Any, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of ``study_name``."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def make_pruner(name: str | None) -> Any:
    """The pruner for ``median`` (:class:`~workbench.models.pruning.FoldMedianPruner`: the value at the
    latest step against the completed trials' median there, after 3 completed trials), ``hyperband``
    (Optuna's) or ``none``.

    Examples
    --------
    >>> type(make_pruner("median")).__name__
    'FoldMedianPruner'
    """
    import optuna

    name = (name or "none").lower()
    if name == "median":
        from .pruning import FoldMedianPruner

        return FoldMedianPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


def make_sampler(name: str, seed: int, space: Mapping[str, Dimension] | None = None) -> Any:
    """Optuna's sampler called ``name`` (one of :data:`SAMPLERS`), seeded with ``seed``.

    ``tpe`` starts with 10 random trials (Optuna's default); ``grid`` walks every point of
    ``space`` (its ``choice`` and ``int`` dimensions), in an order ``seed`` shuffles.

    Examples
    --------
    >>> type(make_sampler("tpe", seed=0)).__name__
    'TPESampler'
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if not space:
            raise ValueError("the grid sampler needs the search space to walk; pass space=")
        return optuna.samplers.GridSampler({k: d.grid() for k, d in space.items()}, seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


@contextlib.contextmanager
def trial_scope(reporter: Reporter | None) -> Iterator[None]:
    """Within the block, :func:`report` calls ``reporter(step, value, prune)`` (it may raise ``TrialPruned``)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def optuna_reporter(trial: Any) -> Reporter:
    """A reporter for an Optuna ``trial``: report the value, raise ``TrialPruned`` when the pruner says so."""

    def report_to(step: int, value: float, prune: bool = True) -> None:
        import optuna

        trial.report(value, step)
        if prune and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (value {value:.6g})")

    return report_to


def _kernel_trial() -> Any:
    """The trial named by the environment (a notebook run by a tune worker), opened once; else None."""
    key = "|".join(os.environ.get(k, "") for k in TRIAL_ENVS)
    if not os.environ.get(STORAGE_ENV) or not os.environ.get(TRIAL_ENV):
        return None
    if key not in _env_trial:
        import optuna

        storage = open_storage(os.environ[STORAGE_ENV])
        pruner = make_pruner(os.environ.get(PRUNER_ENV))
        study = optuna.load_study(study_name=os.environ.get(STUDY_ENV), storage=storage, pruner=pruner)
        _env_trial.clear()
        _env_trial[key] = optuna.trial.Trial(study, trial_id(storage, study.study_name, int(os.environ[TRIAL_ENV])))
    return _env_trial[key]


def in_trial() -> bool:
    """True when :func:`report` goes somewhere (a tuning trial is current)."""
    return _reporter.get() is not None or bool(os.environ.get(STORAGE_ENV) and os.environ.get(TRIAL_ENV))


def report(step: int, value: float, *, prune: bool = True) -> None:
    """Report an intermediate ``value`` at ``step`` to the current tuning trial (no-op outside one).

    Raises :class:`optuna.TrialPruned` when the trial's pruner stops it: let it propagate, the
    trial is then recorded ``pruned`` with the step it reached.

    Parameters
    ----------
    step
        A whole number that grows along the work (fold number, epoch).
    value
        The value at that step, in the direction of the study's objective.
    prune
        Ask the pruner (default). ``False`` records the value only: for the last step, whose work
        is done, so that the trial completes with its final value instead of being pruned.

    Examples
    --------
    >>> import workbench
    >>> workbench.report(0, 0.84)  # outside a trial: nothing happens
    """
    check_whole_number(step, "step", 0)
    value = float(value)
    if math.isnan(value):
        return
    reporter = _reporter.get()
    if reporter is not None:
        reporter(int(step), value, prune)
        return
    trial = _kernel_trial()
    if trial is not None:
        optuna_reporter(trial)(int(step), value, prune)
