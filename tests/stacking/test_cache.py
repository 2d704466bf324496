"""OOF cache: stable fingerprints, zero base refits when only the meta level changes, atomic entries,
and a stack killed with SIGKILL that resumes to the same predictions."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from stacking_counting import (
    LOG_ENV,
    CountingKNN,
    CountingLGBM,
    CountingLogisticRegression,
    fit_count,
)

from workbench.data import make_folds
from workbench.models import train_cv
from workbench.stacking import OOFCache, Stack, data_digest, estimator_fingerprint

TESTS = Path(__file__).resolve().parent
BASE_CLASSES = ("CountingLGBM", "CountingLogisticRegression", "CountingExtraTrees", "CountingKNN")


def base_fits(log) -> int:
    return sum(fit_count(log, name) for name in BASE_CLASSES)


def telco_small(telco_xy, n=2500):
    X, y = telco_xy
    return X.iloc[:n].reset_index(drop=True), y.iloc[:n].reset_index(drop=True)


def base_models(X):
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = ["tenure", "MonthlyCharges", "SeniorCitizen"]
    return [
        ("lgbm", CountingLGBM(n_estimators=40, num_leaves=15, random_state=0, n_jobs=1, verbose=-1)),
        (
            "logreg",
            make_pipeline(
                make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats), (StandardScaler(), nums)),
                CountingLogisticRegression(max_iter=500),
            ),
        ),
    ]


# ---------------------------------------------------------------- fingerprints
FINGERPRINT_SNIPPET = """
import json, sys
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from workbench.stacking import data_digest, estimator_fingerprint
df = pd.DataFrame({"x": [1.5, 2.0, float("nan")], "c": pd.Categorical(["a", "b", "a"]), "s": ["u", "v", "w"]})
print(json.dumps([
    estimator_fingerprint(make_pipeline(StandardScaler(), LogisticRegression(C=0.3))),
    estimator_fingerprint(LGBMClassifier(n_estimators=7, callbacks=None)),
    data_digest(df),
]))
"""


def test_fingerprints_are_the_same_in_another_process():
    proc = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_SNIPPET],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    from lightgbm import LGBMClassifier

    df = pd.DataFrame({"x": [1.5, 2.0, float("nan")], "c": pd.Categorical(["a", "b", "a"]), "s": ["u", "v", "w"]})
    ours = [
        estimator_fingerprint(make_pipeline(StandardScaler(), LogisticRegression(C=0.3))),
        estimator_fingerprint(LGBMClassifier(n_estimators=7, callbacks=None)),
        data_digest(df),
    ]
    assert theirs == ours


class _Opaque:
    """A parameter value whose repr carries a memory address, like many callbacks."""

    def __init__(self, k):
        self.k = k

    def __repr__(self):
        return f"<_Opaque k={self.k} at {hex(id(self))}>"


def test_fingerprint_tracks_what_matters():
    base = make_pipeline(StandardScaler(), LogisticRegression(C=0.3))
    assert estimator_fingerprint(base) == estimator_fingerprint(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.3))
    )
    assert estimator_fingerprint(base) != estimator_fingerprint(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.4))
    )
    assert estimator_fingerprint(base) != estimator_fingerprint(
        make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.3))
    )
    assert estimator_fingerprint(LogisticRegression(C=1.0)) != estimator_fingerprint(CountingLogisticRegression(C=1.0))
    assert estimator_fingerprint(LogisticRegression(class_weight=_Opaque(1))) == estimator_fingerprint(
        LogisticRegression(class_weight=_Opaque(1))
    )
    assert estimator_fingerprint(LogisticRegression(class_weight=_Opaque(1))) != estimator_fingerprint(
        LogisticRegression(class_weight=_Opaque(2))
    )

    df = pd.DataFrame({"x": [1.5, 2.0, 3.0], "c": pd.Categorical(["a", "b", "a"])})
    same = df.copy()
    assert data_digest(df) == data_digest(same)
    changed = df.copy()
    changed.loc[2, "x"] = 3.0000001
    assert data_digest(df) != data_digest(changed)
    assert data_digest(df) != data_digest(df.rename(columns={"x": "y"}))
    assert data_digest(df) != data_digest(df.assign(c=df["c"].astype(str)))  # dtype matters to LightGBM
    assert data_digest(df) != data_digest(df.assign(c=df["c"].cat.set_categories(["b", "a"])))  # category codes too
    assert data_digest(df) == data_digest(df.set_index(pd.Index([7, 8, 9])))  # the index is not data
    assert data_digest(np.arange(6.0).reshape(2, 3)) != data_digest(np.arange(6.0).reshape(3, 2))


# ---------------------------------------------------------------- reuse
def test_changed_meta_model_needs_zero_base_fits(telco_xy, tmp_path, fit_log):
    X, y = telco_small(telco_xy)
    folds = make_folds(y, n_splits=5, random_state=0)
    cache = tmp_path / "cache"
    first = Stack([base_models(X), [("meta", LogisticRegression())]], folds=folds, cache_dir=cache, progress=False)
    first.fit(X, y, X_test=X.iloc[:300])
    assert base_fits(fit_log) == 2 * 5 and first.n_fits_ == 3

    second = Stack(
        [base_models(X), [("meta", LogisticRegression(C=0.05))]], folds=folds, cache_dir=cache, progress=False
    )
    second.fit(X, y, X_test=X.iloc[:300])
    print(
        f"\nre-run with a changed meta model: {base_fits(fit_log) - 10} base fits; sources "
        f"{dict(second.to_frame()[['column', 'source']].values)}"
    )
    assert base_fits(fit_log) == 10  # nothing new
    assert second.n_fits_ == 1
    assert [m.source for m in second.models_] == ["cache", "cache", "fit"]
    pd.testing.assert_frame_equal(second.level_oof(1), first.level_oof(1))
    pd.testing.assert_frame_equal(second.level_test(1), first.level_test(1))
    reference = train_cv(
        LogisticRegression(C=0.05), first.level_oof(1), y, folds, X_test=first.level_test(1), progress=False
    )
    np.testing.assert_array_equal(second.oof_, reference.oof)
    np.testing.assert_allclose(second.test_pred_, reference.test_pred, rtol=0, atol=1e-15)
    assert len(OOFCache(cache).entries()) == 4

    third = Stack(
        [
            [
                *base_models(X),
                (
                    "knn",
                    make_pipeline(
                        make_column_transformer((StandardScaler(), ["tenure", "MonthlyCharges"])),
                        CountingKNN(n_neighbors=50),
                    ),
                ),
            ],
            [("meta", LogisticRegression())],
        ],
        folds=folds,
        cache_dir=cache,
        progress=False,
    ).fit(X, y, X_test=X.iloc[:300])
    assert base_fits(fit_log) == 15 and fit_count(fit_log, "CountingKNN") == 5  # only the new model trained
    assert [m.source for m in third.models_] == ["cache", "cache", "fit", "fit"]


def test_new_test_set_reuses_cached_fold_models(telco_xy, tmp_path, fit_log):
    X, y = telco_small(telco_xy, 1500)
    folds = make_folds(y, n_splits=3, random_state=0)
    levels = lambda: [base_models(X), [("meta", LogisticRegression())]]  # noqa: E731
    Stack(levels(), folds=folds, cache_dir=tmp_path / "c", progress=False).fit(X, y, X_test=X.iloc[:100])
    fits = base_fits(fit_log)
    new_test = X.iloc[500:800]
    cached = Stack(levels(), folds=folds, cache_dir=tmp_path / "c", progress=False).fit(X, y, X_test=new_test)
    assert base_fits(fit_log) == fits  # the new test set was predicted by the stored fold models
    fresh = Stack(levels(), folds=folds, progress=False).fit(X, y, X_test=new_test)
    np.testing.assert_allclose(cached.test_pred_, fresh.test_pred_, rtol=0, atol=1e-12)
    again = Stack(levels(), folds=folds, cache_dir=tmp_path / "c", progress=False).fit(X, y, X_test=new_test)
    assert all(m.source == "cache" for m in again.models_)
    np.testing.assert_allclose(again.predict(new_test), fresh.test_pred_, rtol=0, atol=1e-12)


def test_what_invalidates_an_entry(telco_xy, tmp_path, fit_log):
    X, y = telco_small(telco_xy, 1200)
    folds = make_folds(y, n_splits=3, random_state=0)
    lgbm = lambda **kw: [("lgbm", CountingLGBM(n_estimators=20, verbose=-1, n_jobs=1, **kw))]  # noqa: E731

    def run(levels, **kw):
        return Stack(levels, cache_dir=tmp_path / "c", progress=False, **{"folds": folds, **kw}).fit(X, y)

    run([lgbm()])
    assert fit_count(fit_log) == 3
    run([lgbm()])
    assert fit_count(fit_log) == 3  # identical: loaded
    run([lgbm(num_leaves=7)])
    assert fit_count(fit_log) == 6  # a parameter changed
    run([lgbm()], folds=make_folds(y, n_splits=3, random_state=1))
    assert fit_count(fit_log) == 9  # other folds
    run([lgbm()], random_state=5)
    assert fit_count(fit_log) == 12  # other seed
    Stack([lgbm()], folds=folds, cache_dir=tmp_path / "c", progress=False).fit(X.assign(tenure=X["tenure"] + 1), y)
    assert fit_count(fit_log) == 15  # other data


# ---------------------------------------------------------------- atomicity
def test_a_failed_write_leaves_no_entry(telco_xy, tmp_path, monkeypatch):
    X, y = telco_small(telco_xy, 600)
    cv = train_cv(LogisticRegression(), X[["tenure", "MonthlyCharges"]], y, make_folds(y, n_splits=3), progress=False)
    cache = OOFCache(tmp_path / "c")
    real_dump = joblib.dump
    calls = {"n": 0}

    def dump_then_crash(obj, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first fold model is on disk, the second write dies
            raise OSError("disk full")
        return real_dump(obj, filename, *args, **kwargs)

    monkeypatch.setattr(joblib, "dump", dump_then_crash)
    with pytest.raises(OSError, match="disk full"):
        cache.put("ab12", cv, {"name": "lr"})
    monkeypatch.setattr(joblib, "dump", real_dump)
    assert cache.get("ab12") is None and "ab12" not in cache and cache.keys() == []
    assert [p.name for p in (tmp_path / "c").iterdir()] == []  # scratch removed too

    # What a SIGKILL mid-write leaves: a hidden scratch directory, never read as an entry.
    scratch = tmp_path / "c" / ".ab12.x7y.tmp"
    (scratch / "cv").mkdir(parents=True)
    np.save(scratch / "cv" / "oof.npy", cv.oof)
    assert cache.get("ab12") is None and cache.keys() == []
    assert cache.clean() == [scratch] and not scratch.exists()

    cache.put("ab12", cv, {"name": "lr"})
    back = cache.get("ab12")
    np.testing.assert_array_equal(back.result.oof, cv.oof)
    assert back.result.models == [] and len(back.load_models().models) == 3
    assert cache.entries()["name"].tolist() == ["lr"]
    with pytest.raises(ValueError, match="lowercase hex"):
        cache.get("../etc")


def test_a_damaged_entry_is_recomputed(telco_xy, tmp_path, fit_log):
    X, y = telco_small(telco_xy, 800)
    levels = [[("lr", CountingLogisticRegression(max_iter=300))]]
    X = X[["tenure", "MonthlyCharges"]]
    first = Stack(levels, folds=3, cache_dir=tmp_path / "c", progress=False).fit(X, y)
    (tmp_path / "c" / first.models_[0].key / "cv" / "oof.npy").unlink()
    with pytest.warns(RuntimeWarning, match="ignoring unreadable stacking cache entry"):
        second = Stack(levels, folds=3, cache_dir=tmp_path / "c", progress=False).fit(X, y)
    assert second.models_[0].source == "fit" and fit_count(fit_log) == 6
    np.testing.assert_array_equal(second.oof_, first.oof_)


# ---------------------------------------------------------------- resume
@pytest.mark.slow
def test_sigkill_mid_stack_then_resume_gives_the_uninterrupted_predictions(tmp_path):
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "WORKBENCH_FIT_DELAY": "0.3",
        LOG_ENV: str(tmp_path / "killed.log"),
    }
    job = [sys.executable, str(TESTS / "stacking_resume_job.py"), str(cache)]
    proc = subprocess.Popen([*job, str(tmp_path / "killed.npz")], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not OOFCache(cache).keys():
        assert proc.poll() is None, f"the stack process ended before caching anything: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no cache entry appeared within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()
    done = OOFCache(cache).keys()
    assert 1 <= len(done) < 4, f"{len(done)} of 4 level-1 models were cached when the process was killed"
    assert all(OOFCache(cache).get(k) is not None for k in done)  # whatever is there is complete

    env[LOG_ENV] = str(tmp_path / "resumed.log")
    env["WORKBENCH_FIT_DELAY"] = "0"
    subprocess.run([*job, str(tmp_path / "resumed.npz")], env=env, check=True, timeout=300)
    resumed = np.load(tmp_path / "resumed.npz")
    assert fit_count(tmp_path / "resumed.log") == (4 - len(done)) * 5  # only the unfinished models trained
    assert int(resumed["n_fits"]) == 4 - len(done) + 1  # ... plus the meta model

    sys.path.insert(0, str(TESTS))
    try:
        from stacking_resume_job import build
    finally:
        sys.path.remove(str(TESTS))
    stack, X, y, X_test = build(cache_dir=None)
    stack.fit(X, y, X_test=X_test)
    np.testing.assert_array_equal(resumed["oof"], stack.oof_)
    np.testing.assert_array_equal(resumed["test_pred"], stack.test_pred_)


def test_a_model_that_cannot_be_stored_still_counts(telco_xy, tmp_path, fit_log):
    from sklearn.preprocessing import FunctionTransformer

    X, y = telco_small(telco_xy, 600)
    X = X[["tenure", "MonthlyCharges"]]
    unpicklable = make_pipeline(FunctionTransformer(lambda v: v / 10), CountingLogisticRegression())
    stack = Stack(
        [[("lambda_lr", unpicklable), ("lr", CountingLogisticRegression())]],
        folds=3,
        cache_dir=tmp_path / "c",
        progress=False,
    )
    with pytest.warns(RuntimeWarning, match="level1/lambda_lr was trained but could not be cached"):
        stack.fit(X, y)
    assert stack.score_ > 0.6 and len(OOFCache(tmp_path / "c").keys()) == 1
    assert [p.name for p in (tmp_path / "c").iterdir() if p.name.startswith(".")] == []  # no scratch left behind


def test_identical_models_in_one_run_train_once(telco_xy, fit_log):
    X, y = telco_small(telco_xy, 600)
    X = X[["tenure", "MonthlyCharges"]]
    stack = Stack(
        [[("a", CountingLogisticRegression()), ("b", CountingLogisticRegression())]], folds=3, progress=False
    ).fit(X, y)
    assert fit_count(fit_log) == 3 and [m.source for m in stack.models_] == ["fit", "cache"]
    np.testing.assert_array_equal(stack.level_oof(1)["level1/a"], stack.level_oof(1)["level1/b"])
