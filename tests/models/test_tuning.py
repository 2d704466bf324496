"""Tuning in a notebook: the trial hook of train_cv, pruning that stops the folds, search spaces,
and tune / tune_lgbm against independent references."""

import numpy as np
import optuna
import pytest
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score

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
    with trial_scope(lambda step, value, prune: seen.append((step, value, prune))):
        cv = train_cv(_model(), X, y, folds, progress=False)
    fold = np.asarray(folds)
    so_far = [roc_auc_score(y[fold <= k], cv.oof[fold <= k]) for k in range(4)]  # pooled, as cv.score is
    # the last fold is recorded but not judged (its work is done) and its value is the trial's score
    assert [step for step, _, _ in seen] == [0, 1, 2, 3] and [p for _, _, p in seen] == [True, True, True, False]
    assert np.allclose([v for _, v, _ in seen], so_far, rtol=0, atol=1e-12) and seen[-1][1] == cv.score
    assert seen[0][1] == cv.fold_scores[0] and seen[1][1] != np.mean(cv.fold_scores[:2])
    seen.clear()
    with trial_scope(lambda step, value, prune: seen.append((step, value, prune))):
        side = train_cv(_model(), X, y, folds, progress=False, n_jobs=2)
    assert [(k, p) for k, _, p in seen] == [(k, False) for k in range(4)]  # all folds ran already
    assert np.allclose([v for _, v, _ in seen], so_far, rtol=0, atol=1e-12) and seen[-1][1] == side.score
    seen.clear()
    train_cv(_model(), X, y, folds, progress=False)
    workbench.report(0, 0.5)  # outside a trial: nothing to report to, no error
    assert seen == []


def test_a_pruned_trial_stops_train_cv_after_the_fold_that_was_judged(small):
    X, y, folds = small
    fitted = []

    def prune_at_1(step, value, prune):
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
    assert (table.loc[table["state"] == "pruned", "step"] < 3).all()  # never after the last of 4 folds
    assert (table.loc[table["state"] == "complete", "step"] == 3).all()
    assert set(result.best_params) == {"learning_rate", "num_leaves", "min_child_samples", "colsample_bytree",
                                       "subsample", "reg_lambda"}  # fmt: skip


def _study_with_completed(values_of_trials, direction="maximize", **pruner_options):
    from workbench.models.pruning import FoldMedianPruner

    study = optuna.create_study(direction=direction, pruner=FoldMedianPruner(**pruner_options))
    for values in values_of_trials:
        study.add_trial(optuna.trial.create_trial(value=values[-1], intermediate_values=dict(enumerate(values))))
    return study


def _judged(study, values, pruner=None):
    """Whether the pruner stops a new trial reporting ``values`` step by step, at each step."""
    if pruner is not None:
        study.pruner = pruner
    trial = study.ask()
    verdicts = []
    for step, value in enumerate(values):
        trial.report(value, step)
        verdicts.append(trial.should_prune())
    return verdicts


# Scores so far of three completed trials: fold 0 is easy for every model (medians 0.86, then 0.84).
COMPLETED = [[0.86, 0.84, 0.845], [0.85, 0.84, 0.85], [0.87, 0.835, 0.84]]


@pytest.mark.parametrize(
    "values, ours, optunas",
    [
        # 0.83 < 0.84 on folds 0-1; Optuna keeps it: its best so far (0.87) beats the step's median
        ([0.87, 0.83, 0.83], [False, True, True], [False, False, False]),
        ([0.855, 0.85, 0.85], [True, False, False], [True, False, False]),
        ([0.86, 0.845, 0.844], [False, False, True], [False, False, False]),
    ],
)
def test_the_median_pruner_compares_the_latest_value_with_the_median_at_the_same_step(values, ours, optunas):
    assert _judged(_study_with_completed(COMPLETED), values) == ours
    assert _judged(_study_with_completed(COMPLETED), values, optuna.pruners.MedianPruner(0, 0)) == optunas


def test_the_median_pruner_minimizes_waits_for_its_startup_trials_and_warmup_steps():
    losses = [[0.40, 0.45], [0.42, 0.44], [0.38, 0.46]]  # medians 0.40 then 0.45
    assert _judged(_study_with_completed(losses, "minimize"), [0.41, 0.46]) == [True, True]
    assert _judged(_study_with_completed(losses, "minimize"), [0.39, 0.445]) == [False, False]
    assert _judged(_study_with_completed(losses, "minimize", n_startup_trials=4), [0.41, 0.60]) == [False, False]
    assert _judged(_study_with_completed(losses, "minimize", n_warmup_steps=1), [0.41, 0.46]) == [False, True]
    with pytest.raises(ValueError, match="n_startup_trials must be a whole number >= 0"):
        _study_with_completed([], n_startup_trials=-1)


def test_one_list_of_samplers_serves_notebook_studies_and_in_process_tuning(small):
    from workbench.cli import build_parser
    from workbench.jobs import tune as jobs_tune
    from workbench.models.space import parse_space
    from workbench.models.trial import PRUNERS, SAMPLERS, make_sampler

    assert jobs_tune.SAMPLERS is SAMPLERS == ("tpe", "cmaes", "random", "grid")
    tune_command = build_parser()._subparsers._group_actions[0].choices["tune"]  # its choices are literal: fast
    flags = {a.dest: tuple(a.choices) for a in tune_command._actions if a.dest in ("sampler", "pruner")}
    assert flags == {"sampler": SAMPLERS, "pruner": PRUNERS}
    expected = {"tpe": "TPESampler", "cmaes": "CmaEsSampler", "random": "RandomSampler", "grid": "GridSampler"}
    space = parse_space({"num_leaves": "choice(4,8)"})
    assert {name: type(make_sampler(name, 0, space)).__name__ for name in SAMPLERS} == expected
    with pytest.raises(ValueError, match="unknown sampler 'bayes'; choose one of tpe, cmaes, random, grid"):
        make_sampler("bayes", 0)
    with pytest.raises(ValueError, match="grid sampler needs the search space"):
        make_sampler("grid", 0)
    X, y, folds = small
    result = tune(_model(), X, y, folds, {"num_leaves": "choice(4,8)"}, n_trials=2, sampler="grid", progress=False)
    assert sorted(result.to_frame()["param.num_leaves"]) == [4, 8]  # each point of the grid once
