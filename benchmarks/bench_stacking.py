"""Stack vs mlxtend StackingCVClassifier and scikit-learn StackingClassifier on Telco.

Same three base models (LightGBM, one-hot logistic regression, ExtraTrees), same folds, a
logistic-regression meta model; timed from fit to test predictions. First run: an empty cache.
Re-run: the meta model changed (a new C each repetition), base models unchanged.

Two comparisons of the first run: (a) every stacker with its defaults (ours trains a level's
folds on every core, scikit-learn and mlxtend one fit after another), with the product target;
(b) equal parallelism, all three with ``n_jobs=2`` (the peers in joblib's worker processes).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _harness import Timing, header, measure, parser, report  # noqa: E402


def base_models(quick: bool) -> list[tuple[str, object]]:
    from lightgbm import LGBMClassifier
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from workbench.datasets import TELCO_CATEGORICAL

    cats = list(TELCO_CATEGORICAL)
    nums = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
    trees = 10 if quick else 200
    lgbm = LGBMClassifier(
        n_estimators=trees,
        learning_rate=0.03,
        num_leaves=15,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.6,
        random_state=0,
        n_jobs=1,
        verbose=-1,
    )
    logreg = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), cats), (make_pipeline(SimpleImputer(), StandardScaler()), nums)
        ),
        LogisticRegression(max_iter=1000),
    )
    extra = make_pipeline(
        make_column_transformer((OrdinalEncoder(), cats), (SimpleImputer(), nums)),
        ExtraTreesClassifier(n_estimators=trees, min_samples_leaf=10, max_features=0.5, random_state=0, n_jobs=1),
    )
    return [("lgbm", lgbm), ("logreg", logreg), ("extratrees", extra)]


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, Timing], dict[str, float]]:
    """Best-of-``repeat`` wall time per function, taking turns so load changes on a shared machine
    hit all alike; also the best CPU time of the process (all its threads), which other processes'
    load does not inflate."""
    runs: dict[str, list[Timing]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.process_time()
            runs[name].append(measure(fn, repeat=1))
            cpu[name].append(time.process_time() - start)
    walls = {
        name: Timing(best=min(t.best for t in ts), runs=[t.best for t in ts], value=ts[-1].value)
        for name, ts in runs.items()
    }
    return walls, {name: min(c) for name, c in cpu.items()}


def main() -> None:
    args = parser(__doc__).parse_args()
    from mlxtend.classifier import StackingCVClassifier
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit
    from threadpoolctl import threadpool_limits

    from workbench.data import make_folds
    from workbench.datasets import load_telco
    from workbench.models.parallel import n_workers
    from workbench.stacking import Stack

    train, test, _ = load_telco(split="competition")
    if args.quick:
        train, test = train.iloc[:500], test.iloc[:200]
    features = [c for c in train.columns if c not in ("customerID", "Churn")]
    X, y, X_test = train[features], train["Churn"].to_numpy(), test[features]
    folds = make_folds(y, n_splits=5, random_state=0)
    splitter = PredefinedSplit(np.asarray(folds))
    repeat = 1 if args.quick else 3
    header(
        f"stacking: {len(X)} train x {len(features)}, {len(X_test)} test rows, 3 base models + logistic meta, "
        f"5 folds, best of {repeat}"
    )

    calls = {"ours": 0, "sklearn": 0, "mlxtend": 0}

    def meta(who: str) -> LogisticRegression:
        calls[who] += 1  # a different meta model on every call: each re-run really changed the meta level
        return LogisticRegression(C=1.0 / calls[who])

    def ours(cache_dir: str, **n_jobs: int) -> np.ndarray:
        stack = Stack(
            [base_models(args.quick), [("meta", meta("ours"))]],
            folds=folds,
            cache_dir=cache_dir,
            progress=False,
            **n_jobs,
        )
        return stack.fit(X, y, X_test=X_test).test_pred_

    def sklearn_stack(**n_jobs: int) -> np.ndarray:
        model = StackingClassifier(
            base_models(args.quick),
            final_estimator=meta("sklearn"),
            cv=splitter,
            stack_method="predict_proba",
            **n_jobs,
        )
        return model.fit(X, y).predict_proba(X_test)[:, 1]

    def mlxtend_stack(**n_jobs: int) -> np.ndarray:
        model = StackingCVClassifier(
            [m for _, m in base_models(args.quick)],
            meta_classifier=meta("mlxtend"),
            cv=splitter,
            use_probas=True,
            drop_proba_col="last",
            random_state=0,
            **n_jobs,
        )
        return model.fit(X, y).predict_proba(X_test)[:, 1]

    # One thread per fit everywhere (models use n_jobs=1 too): on a busy machine spinning thread
    # pools would distort whichever stacker happens to run while another process holds the cores.
    # Parallel stackers run several such fits at once: ours in threads, the peers in processes.
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        fresh = iter(range(1000))
        warm = f"{tmp}/warm"
        ours(warm)  # fill the cache once; every timed re-run then changes only the meta model
        timings, cpu = interleaved(
            {
                "first": lambda: ours(f"{tmp}/first-{next(fresh)}"),
                "first2": lambda: ours(f"{tmp}/first-{next(fresh)}", n_jobs=2),
                "rerun": lambda: ours(warm),
                "sklearn": sklearn_stack,
                "sklearn2": lambda: sklearn_stack(n_jobs=2),
                "mlxtend": mlxtend_stack,
                "mlxtend2": lambda: mlxtend_stack(n_jobs=2),
            },
            repeat,
        )
    # The stacks agree closely: same base models and folds (peers' test predictions come from
    # full-data refits, ours from fold averages, so they are close, not equal).
    for name in ("sklearn", "sklearn2", "mlxtend", "mlxtend2"):
        corr = float(np.corrcoef(timings["first"].value, timings[name].value)[0, 1])
        print(f"test-prediction correlation with {name}: {corr:.4f}", flush=True)
        assert corr > 0.95, f"our stack disagrees with {name} (correlation {corr:.3f}): not the same work"
    best = {name: t.best for name, t in timings.items()}
    threads = n_workers(-1)
    sk, mx = "sklearn.StackingClassifier", "mlxtend.StackingCVClassifier"
    a = f"(a) defaults: stack first run, ours n_jobs=-1 ({threads} threads) vs serial peer"
    report(a, best["first"], best["sklearn"], sk, target="<=0.8")
    report(a, best["first"], best["mlxtend"], mx, target="<=0.8")
    b = "(b) equal parallelism: stack first run, all n_jobs=2"
    report(b, best["first2"], best["sklearn2"], f"{sk}(n_jobs=2)")
    report(b, best["first2"], best["mlxtend2"], f"{mx}(n_jobs=2)")
    report("stack re-run, meta changed", best["rerun"], best["sklearn"], sk, target="<=0.05")
    report("stack re-run, meta changed", best["rerun"], best["mlxtend"], mx)
    # CPU time of this process (all its threads): comparable only with the serial peers.
    report("(a) defaults: stack first run, CPU time", cpu["first"], cpu["sklearn"], sk)
    report("(a) defaults: stack first run, CPU time", cpu["first"], cpu["mlxtend"], mx)
    report("stack re-run, meta changed, CPU time", cpu["rerun"], cpu["sklearn"], sk)


if __name__ == "__main__":
    main()
