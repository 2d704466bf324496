"""Stack(n_jobs=2): folds of a level's models fit side by side in threads, with exactly the results,
cache entries and fit counts of n_jobs=1; thread pools limited to a share; failures named."""

import threading

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from stacking_counting import CountingExtraTrees, CountingLGBM, CountingLogisticRegression, fit_count
from threadpoolctl import ThreadpoolController

from workbench.data import make_folds
from workbench.models.parallel import limit_threads, thread_share
from workbench.stacking import OOFCache, Stack

COUNTED = ("CountingLGBM", "CountingLogisticRegression", "CountingExtraTrees")


def counts(log) -> dict[str, int]:
    return {name: fit_count(log, name) for name in COUNTED}


def three_levels(X):
    """LightGBM left at every core (n_jobs unset), a one-hot linear model and ExtraTrees; two levels above."""
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return [
        [
            (
                "lgbm",
                CountingLGBM(
                    n_estimators=30, num_leaves=15, subsample=0.8, subsample_freq=1, colsample_bytree=0.7, verbose=-1
                ),
            ),
            (
                "logreg",
                make_pipeline(
                    make_column_transformer(
                        (OneHotEncoder(handle_unknown="ignore"), cats), (StandardScaler(), ["tenure", "MonthlyCharges"])
                    ),
                    CountingLogisticRegression(max_iter=500),
                ),
            ),
            (
                "extratrees",
                make_pipeline(
                    make_column_transformer((StandardScaler(), ["tenure", "MonthlyCharges"])),
                    CountingExtraTrees(n_estimators=25, min_samples_leaf=5),
                ),
            ),
        ],
        [("lr", CountingLogisticRegression()), ("lgbm2", CountingLGBM(n_estimators=15, num_leaves=4, verbose=-1))],
        [("top", CountingLogisticRegression(C=0.5))],
    ]


def assert_same_stack(a: Stack, b: Stack) -> None:
    """Bit for bit: every level's OOF and test columns, the scores and the final predictions."""
    for level in range(1, a.n_levels + 1):
        pd.testing.assert_frame_equal(a.level_oof(level), b.level_oof(level), check_exact=True)
        if a.level_test(level) is not None or b.level_test(level) is not None:
            pd.testing.assert_frame_equal(a.level_test(level), b.level_test(level), check_exact=True)
    np.testing.assert_array_equal(a.oof_, b.oof_)
    if a.test_pred_ is not None or b.test_pred_ is not None:
        np.testing.assert_array_equal(a.test_pred_, b.test_pred_)
    assert a.score_ == b.score_
    for label, result in a.results_.items():
        assert result.fold_scores == b.results_[label].fold_scores and result.score == b.results_[label].score


def test_two_threads_give_the_serial_stack_bit_for_bit_with_the_same_fits(telco_xy, tmp_path, fit_log):
    X, y = telco_xy
    X, y = X.iloc[:1500].reset_index(drop=True), y.iloc[:1500].reset_index(drop=True)
    X_test = X.iloc[:200]
    folds = make_folds(y, n_splits=3, random_state=0)

    serial = Stack(three_levels(X), folds=folds, random_state=7, n_jobs=1, progress=False).fit(X, y, X_test=X_test)
    serial_fits = counts(fit_log)
    assert serial_fits == {"CountingLGBM": 6, "CountingLogisticRegression": 9, "CountingExtraTrees": 3}
    fit_log.unlink()

    cache = tmp_path / "cache"
    side = Stack(three_levels(X), folds=folds, random_state=7, n_jobs=2, cache_dir=cache, progress=False).fit(
        X, y, X_test=X_test
    )
    assert counts(fit_log) == serial_fits and side.n_fits_ == serial.n_fits_ == 6
    assert_same_stack(serial, side)
    # LightGBM left at every core trained with its share of the cores, the record shows it as given.
    lgbm = side.results_["level1/lgbm"]
    assert {m.n_jobs for m in lgbm.models} == {thread_share(2)} and lgbm.params["n_jobs"] is None
    assert {m.n_jobs for m in serial.results_["level1/lgbm"].models} == {None}

    # Every entry the parallel run wrote is complete, and serves a serial run without a single fit.
    keys = OOFCache(cache).keys()
    assert sorted(keys) == sorted(m.key for m in side.models_)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]
    fit_log.unlink()
    again = Stack(three_levels(X), folds=folds, random_state=7, n_jobs=1, cache_dir=cache, progress=False).fit(
        X, y, X_test=X_test
    )
    assert sum(counts(fit_log).values()) == 0 and {m.source for m in again.models_} == {"cache"}
    assert_same_stack(serial, again)
    np.testing.assert_array_equal(side.predict(X_test), serial.test_pred_)


def test_time_folds_and_multiclass_side_by_side():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = np.array(["x", "y", "z"])[np.digitize(X["a"] + 0.5 * X["b"] + rng.normal(scale=0.6, size=600), [-0.5, 0.5])]
    folds = make_folds(y, kind="time", n_splits=5)

    def levels():
        return [
            [
                LogisticRegression(max_iter=300),
                ("lgbm", LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=-1)),
                ("lr_c", LogisticRegression(C=0.1, max_iter=300)),
            ],
            [("meta", LogisticRegression(max_iter=300))],
            [("top", LogisticRegression(max_iter=300))],
        ]

    serial = Stack(levels(), folds=folds, n_jobs=1, progress=False).fit(X, y, X_test=X.iloc[:40])
    side = Stack(levels(), folds=folds, n_jobs=2, progress=False).fit(X, y, X_test=X.iloc[:40])
    assert side.oof_.shape == (600, 3) and np.isnan(side.oof_).any()  # time folds: early rows never validated
    assert_same_stack(serial, side)


class _Rendezvous(LogisticRegression):
    """Its first two fits wait for each other: they only get through if they run at the same time.

    Each fit also records the OpenMP and BLAS thread limits it runs under.
    """

    barrier = threading.Barrier(2, timeout=60)
    lock = threading.Lock()
    seen: list[dict] = []

    def fit(self, X, y, sample_weight=None):
        with self.lock:
            first_two = len(self.seen) < 2
            info = ThreadpoolController().info()
            self.seen.append(
                {"thread": threading.current_thread().name, **{lib["user_api"]: lib["num_threads"] for lib in info}}
            )
        if first_two:
            self.barrier.wait()
        return super().fit(X, y, sample_weight=sample_weight)


def test_folds_really_run_at_the_same_time_within_their_thread_share(capsys):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=list("abc"))
    y = (X["a"] + rng.normal(size=400) > 0).astype(int)
    _Rendezvous.seen.clear()
    before = {lib["filepath"]: lib["num_threads"] for lib in ThreadpoolController().info()}
    stack = Stack([[("one", _Rendezvous()), ("two", _Rendezvous(C=0.5))]], folds=3, n_jobs=2).fit(X, y)
    assert stack.n_fits_ == 2 and len(_Rendezvous.seen) == 6
    share = thread_share(2)
    assert {s["thread"].split("_")[0] for s in _Rendezvous.seen} == {"workbench-folds"}
    assert all(s.get("openmp", share) == share and s.get("blas", share) == share for s in _Rendezvous.seen)
    assert {lib["filepath"]: lib["num_threads"] for lib in ThreadpoolController().info()} == before  # restored

    err = capsys.readouterr().err
    assert "stack" in err and "level1: one" in err and "train_cv" not in err  # one bar, no interleaved fold bars


class _Broken(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        raise ValueError("cannot fit: the solver diverged")


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_error_names_its_model_and_leaves_only_complete_entries(n_jobs, telco_xy, tmp_path, fit_log):
    X, y = telco_xy
    X, y = X[["tenure", "MonthlyCharges"]].iloc[:600], y.iloc[:600]
    cache = tmp_path / "c"
    levels = [
        [("good", CountingLogisticRegression()), ("broken", _Broken()), ("other", CountingLogisticRegression(C=0.2))]
    ]
    with pytest.raises(ValueError, match="the solver diverged") as info:
        Stack(levels, folds=3, cache_dir=cache, n_jobs=n_jobs, progress=False).fit(X, y)
    assert any("level1/broken" in note for note in info.value.__notes__)
    cached = {OOFCache(cache).get(k).info["name"] for k in OOFCache(cache).keys()}
    assert cached <= {"good", "other"} and not [p for p in cache.iterdir() if p.name.startswith(".")]
    if n_jobs == 1:
        assert cached == {"good"}  # trained before the failure, as always
    fits_before = fit_count(fit_log)

    fixed = [[levels[0][0], ("broken", CountingLogisticRegression(C=3.0)), levels[0][2]]]
    stack = Stack(fixed, folds=3, cache_dir=cache, n_jobs=n_jobs, progress=False).fit(X, y)
    assert fit_count(fit_log) - fits_before == 3 * (3 - len(cached))  # what was stored is not trained again
    assert [m.source for m in stack.models_] == ["cache" if n in cached else "fit" for n in ("good", "broken", "other")]


def test_identical_models_side_by_side_train_once(telco_xy, fit_log):
    X, y = telco_xy
    X, y = X[["tenure", "MonthlyCharges"]].iloc[:600], y.iloc[:600]
    stack = Stack(
        [
            [
                ("a", CountingLogisticRegression()),
                ("b", CountingLogisticRegression()),
                ("c", CountingLogisticRegression(C=0.3)),
            ]
        ],
        folds=3,
        n_jobs=2,
        progress=False,
    ).fit(X, y)
    assert fit_count(fit_log) == 6 and [m.source for m in stack.models_] == ["fit", "cache", "fit"]
    np.testing.assert_array_equal(stack.level_oof(1)["level1/a"], stack.level_oof(1)["level1/b"])


def test_thread_limits_apply_only_to_every_core_settings():
    piped = make_pipeline(StandardScaler(), LGBMClassifier(verbose=-1))
    limited = limit_threads(piped, 3)
    assert limited is not piped and limited[-1].n_jobs == 3 and piped[-1].n_jobs is None  # a clone; original kept
    assert limit_threads(RandomForestClassifier(n_jobs=-1), 2).n_jobs == 2
    assert limit_threads(LGBMClassifier(n_jobs=-2), 2).n_jobs == 2
    for untouched in (RandomForestClassifier(), LGBMClassifier(n_jobs=4), LogisticRegression()):
        assert limit_threads(untouched, 2) is untouched  # sklearn's None is one thread; explicit counts stay


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_bad_n_jobs_is_named(bad):
    with pytest.raises(
        ValueError,
        match=r"the 'n_jobs' parameter of Stack\(\) must be None \(one worker\), a positive int or a negative int",
    ):
        Stack([[LogisticRegression()]], n_jobs=bad)
