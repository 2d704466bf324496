"""Tuning in a notebook: the trial hook of train_cv, pruning that stops the folds, search spaces,
and tune / tune_lgbm against independent references."""

import optuna
import pytest
from lightgbm import LGBMClassifier

import workbench
from workbench.data import make_folds
from workbench.models import train_cv, tune, tune_lgbm
from workbench.models.space import parse_dimension, parse_space, suggest
from workbench.models.trial import report, trial_scope


@pytest.fixture(scope="module")
def small(telco_xy):
    X, y = telco_xy
    X, y = X.head(1500), y.head(1500)
    return X, y, make_folds(y, n_splits=4, random_state=0)


def _model():
    return LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1, random_state=0)


def test_train_cv_reports_each_folds_score_inside_a_trial_and_nothing_outside(small):
    X, y, folds = small
    seen = []
    with trial_scope(lambda step, value: seen.append((step, value))):
        cv = train_cv(_model(), X, y, folds, progress=False)
    assert seen == list(enumerate(cv.fold_scores))
    seen.clear()
    train_cv(_model(), X, y, folds, progress=False)
    workbench.report(0, 0.5)  # outside a trial: nothing to report to, no error
    assert seen == []


def test_a_pruned_trial_stops_train_cv_after_the_fold_that_was_judged(small):
    X, y, folds = small
    fitted = []

    def prune_at_1(step, value):
        fitted.append(step)
        if step == 1:
            raise optuna.TrialPruned(f"pruned at step {step}")

    with pytest.raises(optuna.TrialPruned, match="step 1"), trial_scope(prune_at_1):
        train_cv(_model(), X, y, folds, progress=False)
    assert fitted == [0, 1]  # folds 2 and 3 never ran


def test_report_checks_its_step():
    with pytest.raises(ValueError, match="step must be a whole number >= 0"):
        report(-1, 0.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("int(10,5)", "is empty"),
        ("loguniform(-1,1)", "positive low bound"),
        ("choice()", "choice() is empty"),
        ("uniform(a,1)", "'a' is not a number"),
        ("int(1.5,4)", "whole numbers"),
        ("normal(0,1)", "unknown kind 'normal'"),
        ("0.1..0.3", "cannot read"),
    ],
)
def test_bad_dimensions_are_errors_naming_them(text, message):
    with pytest.raises(ValueError) as info:
        parse_dimension("lr", text)
    assert message in str(info.value) and "lr" in str(info.value)


def test_suggest_stays_inside_the_space():
    space = parse_space({"lr": "loguniform(0.01,0.3)", "leaves": "int(8,64,8)", "kind": ["a", 1, True]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        point = suggest(study.ask(), space)
        assert 0.01 <= point["lr"] <= 0.3 and point["leaves"] in range(8, 65, 8) and point["kind"] in ("a", 1, True)


def test_tune_keeps_the_best_trials_cv_and_repeats_with_its_seed(small):
    X, y, folds = small
    space = {"num_leaves": "int(4,32)", "learning_rate": "loguniform(0.05,0.3)"}
    a = tune(_model(), X, y, folds, space, n_trials=8, progress=False, random_state=3)
    b = tune(_model(), X, y, folds, space, n_trials=8, progress=False, random_state=3)
    table = a.to_frame()
    assert len(table) == 8 and table["auc"].iloc[0] == table["auc"].max() == a.best_score
    assert a.best_params == b.best_params and a.best_score == b.best_score
    refit = train_cv(_model().set_params(**a.best_params), X, y, folds, progress=False)
    assert refit.score == a.best.score  # the kept CVResult is the best trial's own
    for kind in ("history", "importance", "parallel"):
        assert a.plot(kind).axes
    assert "TuneResult(LGBMClassifier" in a._repr_html_()


def test_tune_lgbm_prunes_with_the_median_pruner(small):
    X, y, folds = small
    result = tune_lgbm(X, y, folds, n_trials=12, n_estimators=60, early_stopping_rounds=10, progress=False)
    table = result.to_frame()
    assert set(table["state"]) <= {"complete", "pruned"} and (table["state"] == "pruned").any()
    assert set(result.best_params) == {"learning_rate", "num_leaves", "min_child_samples", "colsample_bytree",
                                       "subsample", "reg_lambda"}  # fmt: skip
