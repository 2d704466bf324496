"""``workbench tune``: search a notebook's parameters with Optuna, each trial a recorded run;
``workbench tune show STUDY`` prints a study's trials best first."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import CommandError
from ._jobargs import add_params, add_progress, add_runs_dir, format_table, read_parameter_files, text_parameters

# Library parameters whose flag is spelled differently (the rest match their flag: metric → --metric).
PARAMETER_FLAGS = {
    "n_trials": "--trials",
    "text_params": "--parameter",
    "params": "--parameters-file",
    "space": "--search",
    "trial_timeout": "--trial-timeout",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="tune a notebook's parameters (Optuna; trials are recorded runs)",
        description="Search the notebook's parameters with Optuna: each trial runs the notebook as a recorded "
        "run tagged with the study and trial number; hopeless trials are pruned from the values the notebook "
        "reports (train_cv reports each fold). Re-running with the same --study continues it. "
        "`workbench tune show STUDY` prints a study's trials, best first.",
    )
    p.add_argument("notebook", help="the .ipynb to tune (or 'show', then the study name)")
    p.add_argument("show_study", nargs="?", metavar="STUDY", help=argparse.SUPPRESS)
    p.add_argument(
        "-s",
        "--search",
        action="append",
        default=[],
        metavar="NAME=EXPR",
        help="a dimension: uniform(a,b), loguniform(a,b), int(a,b[,step]), logint(a,b) or choice(x,y,...); repeatable",
    )
    p.add_argument("--space", type=Path, metavar="FILE", help="YAML/JSON file of NAME: EXPR (a list is a choice)")
    add_params(p)
    p.add_argument("--metric", help="metric to optimise, one the notebook records (default: its workbench.sort)")
    p.add_argument("--direction", choices=("maximize", "minimize"), help="default: maximize (minimize for '-metric')")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default: 20)")
    p.add_argument("--timeout", type=float, metavar="S", help="start no trial after S seconds")
    p.add_argument("--trial-timeout", type=float, metavar="S", help="time limit of each trial's run")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    p.add_argument("--sampler", choices=("tpe", "cmaes", "random", "grid"), default="tpe", help="default: tpe")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median", help="default: median")
    p.add_argument("--study", help="study name (default: <notebook>-tune); an existing study continues")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL, e.g. sqlite:///studies.db or postgresql://HOST/DB (default: $WORKBENCH_TUNE_STORAGE, "
        "else a journal file in your runs folder). With --backend k8s: a database URL without a password, or "
        "secret-ref:NAME[/KEY] for a Kubernetes Secret whose KEY (default: url) holds the URL; the Secret must be "
        "allowed on the profile (leave it out: the journal on the shared runs volume)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default: 0)")
    add_runs_dir(p)
    add_progress(p)
    k8s = p.add_argument_group("Kubernetes backend")
    k8s.add_argument("--backend", choices=("local", "k8s"), default="local", help="where workers run (default: local)")
    k8s.add_argument("--parallelism", type=int, default=1, help="pods of the Indexed Job (--backend k8s)")
    k8s.add_argument("--profile", help="hub profile whose image and resources the pods use")
    k8s.add_argument("--gpus", type=int, default=0, help="GPUs per pod (--backend k8s)")
    p.set_defaults(func=run)


def _space(args: argparse.Namespace) -> dict:
    from ..jobs.tune import load_space_file, parse_assignments

    space = load_space_file(args.space) if args.space else {}
    space.update(parse_assignments(args.search))
    if not space:
        raise ValueError("no search space: give -s NAME=EXPR (e.g. -s num_leaves=int(15,255)) or --space FILE")
    return space


def _storage(args: argparse.Namespace) -> str | None:
    """--storage, else $WORKBENCH_TUNE_STORAGE (how a study's pods receive a URL kept in a Secret)."""
    from ..jobs.tune.k8s_storage import STORAGE_ENV

    storage = args.storage or os.environ.get(STORAGE_ENV) or None
    if storage and storage.startswith("secret-ref:"):
        raise ValueError(
            "--storage secret-ref:NAME names a Kubernetes Secret for --backend k8s; here pass the storage URL itself "
            f"(or set ${STORAGE_ENV} to it, which keeps it off the command line)"
        )
    return storage


def run(args: argparse.Namespace) -> int:
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()
    if args.notebook == "show" and not Path("show").is_file():
        if not args.show_study:
            raise ValueError("name the study: workbench tune show STUDY")
        return show(args)
    if args.show_study:
        raise ValueError(f"unexpected argument {args.show_study!r}; `workbench tune show STUDY` shows a study")
    options = dict(
        params=read_parameter_files(args.parameters_file),
        text_params=text_parameters(args.parameter),
        metric=args.metric,
        direction=args.direction,
        n_trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        study=args.study,
        storage=args.storage if args.backend == "k8s" else _storage(args),
        seed=args.seed,
        runs_dir=args.runs_dir,
        trial_timeout=args.trial_timeout,
    )
    if args.backend == "k8s":
        from ..jobs.tune.k8s import submit_tune

        return submit_tune(
            Path(args.notebook),
            _space(args),
            parallelism=args.parallelism,
            workers=args.workers,
            profile=args.profile,
            gpus=args.gpus,
            **options,
        )
    from ..jobs.tune import run_tune

    try:
        table = run_tune(
            Path(args.notebook), _space(args), workers=args.workers, progress=not args.no_progress, **options
        )
    except RuntimeError as exc:  # the study could not finish: its workers' reasons
        raise CommandError(str(exc)) from None
    _print(table, table.attrs["study"])
    print(f"report: {table.attrs['report']}")
    for error in table.attrs.get("errors", []):
        print(f"workbench tune: a worker stopped: {error}", file=sys.stderr)
    return 0


def _print(table, study: str) -> None:  # noqa: ANN001 - a DataFrame
    counts = table["state"].value_counts().to_dict() if not table.empty else {}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no trials"
    print(f"study {study}: {summary}; best first")
    print(format_table(table.drop(columns=[c for c in ("error",) if c in table and not table[c].any()])))
    if table.attrs.get("best_run"):
        print(f"best trial's run: {table.attrs['best_run']} (workbench rerun {table.attrs['best_run'].split('/')[-1]})")


def show(args: argparse.Namespace) -> int:
    from ..jobs.tune import show_study

    table = show_study(args.show_study, storage=_storage(args), runs_dir=args.runs_dir)
    _print(table, args.show_study)
    return 0
