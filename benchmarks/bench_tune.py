"""Tuning: median pruning against no pruning on the same 40 trials of LightGBM on Telco (random and TPE samplers;
wall time, best CV AUC), and a notebook trial of ``notebooks/train.ipynb`` against the same
``train_cv`` in-process (what a kernel, the run records and the report cost per trial)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from _harness import header, measure, parser, report  # noqa: E402

from workbench.jobs.startup import skip_unused_optional_imports  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pruning(n_trials: int, n_estimators: int, sampler: str = "random") -> bool:
    """Both studies: the same trial count, seed, space and folds. The random sampler draws the same points
    whether trials are pruned or not, so only pruning differs; TPE (the default) learns from the pruned
    trials, so its two studies part after the first pruned trial."""
    from workbench.data import make_folds
    from workbench.datasets import load_telco
    from workbench.models import tune_lgbm

    df = load_telco()
    X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    folds = make_folds(y, n_splits=5, random_state=0)
    header(f"tune_lgbm on Telco: {n_trials} trials ({sampler}), 5 folds, median pruning vs none")
    results, cpu = {}, {}
    for pruner in ("none", "median"):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = tune_lgbm(
            X, y, folds, n_trials, n_estimators=n_estimators, pruner=pruner, sampler=sampler, progress=False
        )
        results[pruner] = (time.perf_counter() - start, result)
        cpu[pruner] = time.process_time() - start_cpu
    (t_none, r_none), (t_median, r_median) = results["none"], results["median"]
    table = r_median.to_frame()
    pruned = int((table["state"] == "pruned").sum())
    at_step = table.loc[table["state"] == "pruned", "step"].value_counts().sort_index().to_dict()
    gap = r_none.best_score - r_median.best_score
    print(
        f"wall time: no pruning {t_none:.1f}s, median pruning {t_median:.1f}s; CPU time (this process, unlike "
        f"wall time not slowed by other work on the machine): {cpu['none']:.1f}s, {cpu['median']:.1f}s, "
        f"ratio {cpu['median'] / cpu['none']:.3f}"
    )
    print(
        f"best CV AUC: no pruning {r_none.best_score:.5f}, median {r_median.best_score:.5f} (gap {gap:+.5f}, "
        f"target <= 0.002 {'PASS' if gap <= 0.002 else 'MISS'}); {pruned} of {n_trials} trials pruned "
        f"(step reached: count {at_step})"
    )
    return report("median pruning vs none (wall time)", t_median, t_none, "no-pruning", "<=0.6") and gap <= 0.002


def overhead(n_trials: int, params: dict) -> bool:
    """``n_trials`` notebook trials of ``train.ipynb`` (one worker, the same parameters each time) against
    as many calls of the same ``train_cv`` in one process; the headline compares means (the study's wall
    time per trial, the calls' mean time), as both sides pay their first call's imports once."""
    from workbench.jobs.tune import run_tune

    header(f"notebook trials of train.ipynb vs the same train_cv in-process, {n_trials} trials, one worker")
    cpu = time.process_time()
    bare = measure(lambda: _in_process(params, cells=False), repeat=n_trials)
    cpu_bare = (time.process_time() - cpu) / n_trials
    with tempfile.TemporaryDirectory(prefix="bench-tune-cells-") as out:
        cells = measure(lambda: _in_process(params, cells=True, out=Path(out)), repeat=n_trials)
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        start, used = time.perf_counter(), _cpu_seconds()
        table = run_tune(
            ROOT / "notebooks" / "train.ipynb",
            {"seed": "choice(0)"},
            params=params,
            n_trials=n_trials,
            pruner="none",
            runs_dir=tmp,
            progress=False,
        )
        whole = time.perf_counter() - start
        used = [now - before for now, before in zip(_cpu_seconds(), used, strict=True)]
        trials = _trials(table.attrs["study"], table.attrs["storage"], Path(tmp))
    seconds = [t["trial"] for t in trials]
    later = statistics.median(seconds[1:] or seconds)
    bare_mean, cells_mean = statistics.mean(bare.runs), statistics.mean(cells.runs)
    print(
        f"per trial (ask to tell): first {seconds[0]:.2f} s, then median {later:.2f} s (min {min(seconds):.2f}, "
        f"max {max(seconds):.2f}); the study's own work (checks, journal, study report) {whole - sum(seconds):.2f} s; "
        f"in-process: train_cv mean {bare_mean:.2f} s (first {bare.runs[0]:.2f}, median "
        f"{statistics.median(bare.runs):.2f}, best {bare.best:.2f}), all of train.ipynb's cells mean "
        f"{cells_mean:.2f} s (median {statistics.median(cells.runs):.2f})"
    )
    _phase_table(trials, cells.value)
    print(
        f"CPU time per trial (unlike wall time not slowed by other work on the machine): the study's process "
        f"{used[0] / n_trials:.2f} s and its kernels {used[1] / n_trials:.2f} s (with their fork server, which "
        f"imported the notebook's modules once); in-process train_cv {cpu_bare:.2f} s"
    )
    report(
        "CPU time: notebook trial (worker and kernels) vs in-process train_cv",
        sum(used) / n_trials,
        cpu_bare,
        "in-process-cpu",
    )
    ok = report(
        "notebook trial vs in-process train_cv (whole study / trials, mean)",
        whole / n_trials,
        bare_mean,
        "in-process",
        "<=1.3",
    )
    report(
        "notebook trial vs in-process train_cv (trials after the first, median)",
        later,
        statistics.median(bare.runs[1:] or bare.runs),
        "in-process",
    )
    report("the same against the best in-process call", later, bare.best, "in-process-best")
    report(
        "pure notebook overhead: notebook trial vs train.ipynb's cells in-process (trials after the first, median)",
        later,
        statistics.median(cells.runs[1:] or cells.runs),
        "in-process-cells",
    )
    return ok


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user and system) of this process, and of its children that have ended (the kernels)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _in_process(params: dict, cells: bool, out: Path | None = None) -> dict[int, float]:
    """The ``train_cv`` call of ``train.ipynb``; with ``cells``, everything its cells do (data, features,
    training, metrics, the importance plot rendered as the inline backend does, the artifacts).
    Returns the seconds spent per code cell of the notebook (its cell indices)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from workbench.data import infer_schema, make_folds
    from workbench.datasets import load_telco
    from workbench.features import build
    from workbench.models import default_lgbm, mean_importance, train_cv
    from workbench.runs import CV_ARTIFACT, OOF_ARTIFACT, TEST_PRED_ARTIFACT, TRAINING_DATA_ARTIFACT

    steps, clock = {}, [time.perf_counter()]

    def done(cell: int) -> None:
        now = time.perf_counter()
        steps[cell], clock[0] = now - clock[0], now

    train, test, _ = load_telco(split="competition")
    done(4)
    schema = infer_schema(train, target="Churn", overrides={"customerID": "id"})
    features = build(train, schema).fit(train)
    X, y, X_test = features.transform(train), train[schema.target], features.transform(test)
    done(6)
    folds = make_folds(y, kind="stratified", n_splits=params["n_splits"], random_state=0)
    model = default_lgbm(
        "binary",
        random_state=0,
        learning_rate=0.02,
        num_leaves=8,
        n_estimators=params["n_estimators"],
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
    )
    cv = train_cv(model, X, y, folds, X_test=X_test, early_stopping_rounds=200, progress=False)
    done(8)
    if not cells or out is None:
        return steps
    cv.to_frame()
    done(9)
    importance = mean_importance(cv).head(15)
    ax = importance.sort_values().plot.barh(figsize=(6, 4), title=f"lgbm: {importance.name}, mean over folds")
    ax.set_xlabel(importance.name)
    plt.tight_layout()
    ax.figure.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # what the inline backend shows
    plt.close(ax.figure)
    done(10)
    cv.save(out / CV_ARTIFACT)
    X.assign(Churn=y.to_numpy()).to_parquet(out / TRAINING_DATA_ARTIFACT)
    pd.DataFrame({"customerID": train["customerID"], "oof": cv.oof, "Churn": y}).to_csv(out / OOF_ARTIFACT, index=False)
    pd.DataFrame({"customerID": test["customerID"], "Churn": cv.test_pred}).to_csv(
        out / TEST_PRED_ARTIFACT, index=False
    )
    done(12)
    return steps


def _trials(study: str, storage: str, runs_dir: Path) -> list[dict]:
    """Each trial's phases in seconds, in trial order: ``trial`` (the study asking for it to being told its
    value), ``start`` (ask to its run folder), ``kernel`` (to its first cell starting), ``cell <i>`` (each code
    cell, from the kernel going busy to its reply), ``between cells`` (the rest between the first cell's start
    and the last cell's end), ``after cells`` (the last cell's end to the run's record being final: the kernel's
    exit, the executed notebook, the report, the record) and ``tell`` (reading the run back, telling the study)."""
    import json

    import optuna

    from workbench.models.trial import open_storage
    from workbench.runs import RunRecord

    done = optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(deepcopy=False)
    runs = {}
    for status in runs_dir.glob("*/*/status.json"):
        record = RunRecord.read(status.parent)
        runs[record.trial] = record
    out = []
    for t in sorted(done, key=lambda t: t.number):
        asked, told = t.datetime_start.timestamp(), t.datetime_complete.timestamp()  # local times
        phases = {"trial": told - asked}
        record = runs.get(t.number)
        if record is not None:
            nb = json.loads((record.path / Path(record.notebook).name).read_text())
            phases.update(_cell_phases(nb, asked, _stamp(record.start), _stamp(record.end), told))
        out.append(phases)
    return out


def _stamp(text: str) -> float:
    from datetime import datetime

    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _cell_phases(nb: dict, asked: float, started: float, ended: float, told: float) -> dict[str, float]:
    cells, shift = [], 0  # labelled by their index in the notebook as written (papermill adds a cell)
    for i, c in enumerate(nb["cells"]):
        injected = "injected-parameters" in c["metadata"].get("tags", [])
        if c["metadata"].get("execution"):
            cells.append(("injected" if injected else i - shift, c["metadata"]["execution"]))
        shift += injected
    if not cells:
        return {}
    first, last = _stamp(cells[0][1]["iopub.status.busy"]), _stamp(cells[-1][1]["iopub.status.idle"])
    phases = {"start": started - asked, "kernel": first - started}
    for i, e in cells:
        phases[f"cell {i}"] = _stamp(e["shell.execute_reply"]) - _stamp(e["iopub.status.busy"])
    phases["between cells"] = (last - first) - sum(v for k, v in phases.items() if k.startswith("cell "))
    phases["after cells"] = ended - last
    phases["tell"] = told - ended
    return phases


def _phase_table(trials: list[dict], in_process: dict[int, float]) -> None:
    """The median of each phase over the trials after the first, beside the same cells' time in-process."""
    steady = trials[1:] or trials
    names = list(dict.fromkeys(k for t in steady for k in t if k != "trial"))
    print(f"phases of a steady trial (median over {len(steady)} trials; in-process: the last call):")
    print(f"  {'phase':<16}{'notebook s':>11}{'in-process s':>14}")
    for name in names:
        values = [t[name] for t in steady if name in t]
        cell = name.split()[1] if name.startswith("cell ") else None
        cell = int(cell) if cell and cell.isdigit() else None
        peer = f"{in_process[cell]:.3f}" if cell in in_process else ""
        print(f"  {name:<16}{statistics.median(values):>11.3f}{peer:>14}")
    print(f"  {'trial':<16}{statistics.median(t['trial'] for t in steady):>11.3f}{sum(in_process.values()):>14.3f}")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--only", choices=("pruning", "overhead"), help="run one part of the benchmark")
    args = p.parse_args()
    skip_unused_optional_imports()  # as the tune command does
    if args.only in (None, "pruning"):
        for sampler in ("random",) if args.quick else ("random", "tpe"):
            pruning(4 if args.quick else 40, 30 if args.quick else 2000, sampler)
    if args.only in (None, "overhead"):
        if args.quick:
            overhead(1, {"n_splits": 2, "n_estimators": 30})
        else:  # the setting: the same 40 trials as the pruning comparison
            overhead(40, {"n_splits": 5, "n_estimators": 2000})


if __name__ == "__main__":
    main()
