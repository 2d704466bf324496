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
    from workbench.jobs.tune import run_tune

    header(f"notebook trials of train.ipynb vs the same train_cv in-process, {n_trials} trials, one worker")
    bare = measure(lambda: _in_process(params, cells=False), repeat=n_trials).best
    with tempfile.TemporaryDirectory(prefix="bench-tune-cells-") as out:
        cells = measure(lambda: _in_process(params, cells=True, out=Path(out)), repeat=n_trials).best
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        start = time.perf_counter()
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
        trials = _trial_seconds(table.attrs["study"], table.attrs["storage"])
    ours = whole / n_trials
    later = statistics.median(trials[1:] or trials)
    print(
        f"per trial (ask to tell): {', '.join(f'{t:.2f}' for t in trials)} s; the study's own work (checks, "
        f"journal, study report) {whole - sum(trials):.2f} s; in-process best: train_cv {bare:.2f} s, "
        f"all of train.ipynb's cells {cells:.2f} s"
    )
    ok = report("notebook trial vs in-process train_cv (whole study / trials)", ours, bare, "in-process", "<=1.3")
    report("notebook trial vs in-process train_cv (trials after the first, median)", later, bare, "in-process")
    report(
        "pure notebook overhead: notebook trial vs train.ipynb's cells in-process (trials after the first, median)",
        later,
        cells,
        "in-process-cells",
    )
    return ok


def _in_process(params: dict, cells: bool, out: Path | None = None) -> None:
    """The ``train_cv`` call of ``train.ipynb``; with ``cells``, everything its cells do (data, features,
    training, metrics, the importance plot rendered as the inline backend does, the artifacts)."""
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

    train, test, _ = load_telco(split="competition")
    schema = infer_schema(train, target="Churn", overrides={"customerID": "id"})
    features = build(train, schema).fit(train)
    X, y, X_test = features.transform(train), train[schema.target], features.transform(test)
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
    if not cells or out is None:
        return
    cv.to_frame()
    importance = mean_importance(cv).head(15)
    ax = importance.sort_values().plot.barh(figsize=(6, 4), title=f"lgbm: {importance.name}, mean over folds")
    ax.set_xlabel(importance.name)
    plt.tight_layout()
    ax.figure.savefig(io.BytesIO(), format="png", bbox_inches="tight")  # what the inline backend shows
    plt.close(ax.figure)
    cv.save(out / CV_ARTIFACT)
    X.assign(Churn=y.to_numpy()).to_parquet(out / TRAINING_DATA_ARTIFACT)
    pd.DataFrame({"customerID": train["customerID"], "oof": cv.oof, "Churn": y}).to_csv(out / OOF_ARTIFACT, index=False)
    pd.DataFrame({"customerID": test["customerID"], "Churn": cv.test_pred}).to_csv(
        out / TEST_PRED_ARTIFACT, index=False
    )


def _trial_seconds(study: str, storage: str) -> list[float]:
    """Each trial's wall time, from the study asking for it to being told its value."""
    import optuna

    from workbench.models.trial import open_storage

    done = optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(deepcopy=False)
    return [(t.datetime_complete - t.datetime_start).total_seconds() for t in sorted(done, key=lambda t: t.number)]


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
        else:
            overhead(4, {"n_splits": 5, "n_estimators": 2000})


if __name__ == "__main__":
    main()
