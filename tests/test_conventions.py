"""One convention per concept: the validation layer, renamed parameters, n_jobs, folds=int, the result protocol."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from workbench.data import (
    Interval,
    InvalidParameterError,
    Options,
    as_folds,
    check_params,
    check_X_y,
    column_names,
    default_column_names,
    effective_n_jobs,
    make_folds,
    renamed_params,
    validate_params,
)
from workbench.data.results import Result
from workbench.explain import (
    cv_permutation_importance,
    drop_noisy_features,
    partial_dependence,
    permutation_importance,
    plot_shap_summary,
    plot_shap_waterfall,
    shap_values,
)
from workbench.features import CFFeatures, FeaturePipeline, TargetEncoder, TextNgramFeatures
from workbench.models import CVResult, default_extratrees, default_lgbm, default_logreg, train_cv
from workbench.stacking import Stack, blend, meta_model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "d": rng.integers(0, 4, n).astype(float),
        }
    )
    logit = 1.5 * X["a"] - X["b"] + 0.5 * X["d"] + rng.normal(scale=0.5, size=n)
    y = pd.Series((logit > 0.7).astype(int), name="target")
    return X, y


def lgbm(**kw):
    return LGBMClassifier(n_estimators=25, num_leaves=7, learning_rate=0.1, verbose=-1, random_state=0, **kw)


@pytest.fixture(scope="module")
def cv(data):
    X, y = data
    return train_cv(lgbm(n_jobs=1), X, y, make_folds(y, n_splits=3, random_state=0), X_test=X.iloc[:50], progress=False)


# ----------------------------------------------------------------------------- validation layer


def _where(fn, **params):
    """The error message of ``fn``'s constraints for ``params``."""
    with pytest.raises(InvalidParameterError) as info:
        fn(**params)
    return str(info.value)


@pytest.mark.parametrize(
    ("constraint", "bad", "accepted"),
    [
        (Interval(int, 2, None), 1, "an int in the range [2, inf)"),
        (Interval(int, 2, None), 2.5, "an int in the range [2, inf)"),
        (Interval(float, 0, 1, closed="neither"), 1.0, "a number in the range (0, 1)"),
        (Interval(float, 0, 1, closed="right"), 0, "a number in the range (0, 1]"),
        (Options(("bar", "box")), "pie", "one of 'bar', 'box'"),
        (dict, [1], "an instance of dict"),
        ("boolean", 1, "a bool"),
        ("random_state", -1, "an int in [0, 2**32), a numpy RandomState or None"),
        ("n_jobs", 0, "None (one worker), a positive int or a negative int (-1: every core)"),
        ("array-like", 3, "an array-like"),
        ("callable", "f", "a callable"),
        ("folds", 1, "a number of folds (int >= 2)"),
    ],
)
def test_each_constraint_kind_names_the_parameter_and_what_it_accepts(constraint, bad, accepted):
    with pytest.raises(InvalidParameterError) as info:
        check_params("f()", {"p": bad}, {"p": [constraint]})
    message = str(info.value)
    assert message.startswith("the 'p' parameter of f() must be ")
    assert accepted in message and message.endswith(f"got {bad!r}")
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_alternatives_and_good_values_pass():
    constraints = {"p": [Interval(int, 1, None), None], "q": [Options(("a", "b"))], "r": ["folds"]}
    check_params("f()", {"p": None, "q": "a", "r": KFoldLike()}, constraints)
    check_params("f()", {"p": 3, "q": "b", "r": np.zeros(4, dtype=int)}, constraints)
    with pytest.raises(InvalidParameterError, match=r"must be an int in the range \[1, inf\) or None; got 0"):
        check_params("f()", {"p": 0}, constraints)
    with pytest.raises(InvalidParameterError, match="must be an int"):  # a bool is not an int here
        check_params("f()", {"p": True}, constraints)


class KFoldLike:
    def split(self, X, y=None, groups=None):
        return iter(())


def test_validate_params_checks_at_the_door_and_knows_the_signature():
    @validate_params({"n": [Interval(int, 1, None)]})
    def f(x, n=1):
        return x * n

    assert f(2, n=3) == 6
    assert (
        "the 'n' parameter of test_validate_params_checks_at_the_door_and_knows_the_signature.<locals>.f()"
        in _where(f, x=1, n=0)
    )
    with pytest.raises(TypeError, match="does not take"):
        validate_params({"m": [int]})(lambda x: x)


def test_public_functions_validate_their_parameters(data):
    X, y = data
    assert "the 'kind' parameter of make_folds() must be one of 'stratified', 'kfold', 'group', 'time'" in _where(
        make_folds, y=y, kind="random"
    )
    assert "the 'n_splits' parameter of make_folds() must be an int in the range [2, inf); got 1" in _where(
        make_folds, y=y, n_splits=1
    )
    assert "the 'folds' parameter of train_cv() must be a number of folds (int >= 2)" in _where(
        train_cv, estimator=lgbm(), X=X, y=y, folds=1
    )
    assert "the 'n_jobs' parameter of train_cv()" in _where(train_cv, estimator=lgbm(), X=X, y=y, folds=3, n_jobs=0)
    assert "the 'task' parameter of train_cv() must be one of 'binary', 'multiclass', 'regression' or None" in _where(
        train_cv, estimator=lgbm(), X=X, y=y, folds=3, task="ranking"
    )
    assert "the 'folds' parameter of Stack() must be a number of folds" in _where(Stack, levels=[[lgbm()]], folds=1)
    assert "the 'restack' parameter of Stack() must be a bool; got 'yes'" in _where(
        Stack, levels=[[lgbm()]], restack="yes"
    )
    assert "the 'kind' parameter of partial_dependence() must be one of 'average', 'individual', 'both'" in _where(
        partial_dependence, model=lgbm(), X=X, features="a", kind="ice"
    )
    assert (
        "the 'feature_groups' parameter of permutation_importance() must be an instance of Mapping or None"
        in _where(permutation_importance, model=lgbm(), X=X, y=y, feature_groups=[["a", "b"]])
    )


def test_renamed_params_maps_warns_and_refuses_both():
    @renamed_params(old="new")
    def f(new=0):
        return new

    with pytest.warns(FutureWarning, match=r"f\(\): 'old' is renamed 'new'; use new=\.\.\."):
        assert f(old=3) == 3
    with pytest.raises(TypeError, match="got both 'old' and its new name 'new'"):
        f(old=1, new=2)


def test_one_x_y_check_and_one_column_naming_rule(data):
    X, y = data
    assert check_X_y(X, y) == len(X)
    with pytest.raises(ValueError, match="X has 400 rows but y has 399; they must describe the same rows"):
        check_X_y(X, y[:-1])
    with pytest.raises(ValueError, match="X has 400 rows but sample_weight has 3"):
        check_X_y(X, [1, 2, 3], "sample_weight")
    assert default_column_names(3) == ["x0", "x1", "x2"]
    assert column_names(X) == ["a", "b", "c", "d"] and column_names(X.to_numpy()) == ["x0", "x1", "x2", "x3"]
    # every layer names unnamed columns the same way
    assert train_cv(lgbm(n_jobs=1), X.to_numpy(), y, 3, progress=False).feature_names == ["x0", "x1", "x2", "x3"]
    assert list(TargetEncoder(folds=3).fit(X.to_numpy()[:, :1].astype(int), y).get_feature_names_out()) == ["x0"]
    fitted = Stack([[("lr", LogisticRegression())]], folds=3, progress=False, n_jobs=1).fit(X.to_numpy(), y)
    assert fitted.results_["level1/lr"].feature_names == ["x0", "x1", "x2", "x3"]


def test_n_jobs_means_what_joblib_means():
    assert effective_n_jobs(None) == 1
    assert effective_n_jobs(2) == 2
    assert effective_n_jobs(-1) == joblib.cpu_count()
    with joblib.parallel_config(n_jobs=3):
        assert effective_n_jobs(None) == 3
    with pytest.raises(InvalidParameterError, match="'n_jobs'"):
        effective_n_jobs(0)


# ---------------------------------------------------------------------------------- folds=int


def test_folds_int_is_accepted_by_train_cv_and_means_make_folds(data):
    X, y = data
    by_int = train_cv(lgbm(n_jobs=1), X, y, folds=4, random_state=2, progress=False)
    explicit = make_folds(y, kind="stratified", n_splits=4, random_state=2)
    by_ids = train_cv(lgbm(n_jobs=1), X, y, folds=explicit, progress=False)
    np.testing.assert_array_equal(np.asarray(by_int.folds), np.asarray(explicit))
    np.testing.assert_array_equal(by_int.oof, by_ids.oof)
    assert by_int.folds.kind == "stratified" and by_int.n_splits == 4

    y_reg = X["a"] * 2 + X["b"]
    reg = train_cv(LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1), X, y_reg, folds=3, progress=False)
    assert reg.folds.kind == "kfold"
    np.testing.assert_array_equal(np.asarray(reg.folds), make_folds(y_reg, kind="kfold", n_splits=3))

    groups = np.arange(len(X)) % 20
    grouped = train_cv(lgbm(n_jobs=1), X, y, folds=4, groups=groups, progress=False)
    assert grouped.folds.kind == "group"
    assert all(np.unique(np.asarray(grouped.folds)[groups == g]).size == 1 for g in range(20))


def test_as_folds_is_the_one_helper(data):
    _, y = data
    np.testing.assert_array_equal(as_folds(5, y, random_state=1), make_folds(y, n_splits=5, random_state=1))
    ids = make_folds(y, n_splits=3)
    assert as_folds(ids, y) is ids
    assert as_folds(3, y, kind="kfold").kind == "kfold"


def test_train_cv_n_jobs_2_equals_n_jobs_1_bit_for_bit(data):
    X, y = data
    folds = make_folds(y, n_splits=4, random_state=0)
    # LightGBM left at "every core" (n_jobs=None): side by side each fold gets its share of the cores
    serial = train_cv(lgbm(), X, y, folds, X_test=X.iloc[:60], early_stopping_rounds=5, n_jobs=1, progress=False)
    side = train_cv(lgbm(), X, y, folds, X_test=X.iloc[:60], early_stopping_rounds=5, n_jobs=2, progress=False)
    assert serial.oof.tobytes() == side.oof.tobytes()
    assert serial.test_pred.tobytes() == side.test_pred.tobytes()
    assert serial.fold_scores == side.fold_scores and serial.score == side.score
    pd.testing.assert_frame_equal(serial.feature_importance, side.feature_importance)
    assert side.params == serial.params  # the model as given, not its thread share
    assert list(side.timings["fold"]) == [0, 1, 2, 3]
    with joblib.parallel_config(n_jobs=2):  # None follows the joblib context
        ctx = train_cv(default_logreg(), X, y, folds, progress=False)
    assert ctx.oof.tobytes() == train_cv(default_logreg(), X, y, folds, progress=False).oof.tobytes()


def test_train_cv_n_jobs_reports_the_failing_fold(data):
    X, y = data
    with pytest.raises(TypeError, match="unknown name") as info:
        train_cv(lgbm(), X, y, 3, fit_params={"categorical_feature": ["nope"]}, n_jobs=2, progress=False)
    assert any("raised while training LGBMClassifier (fold " in note for note in info.value.__notes__)


# ---------------------------------------------------------------------------- renamed parameters


def _assert_renamed_same(call_old, call_new, same):
    with pytest.warns(FutureWarning, match="is renamed"):
        old = call_old()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        new = call_new()
    assert same(old, new)


def _params_equal(a, b):
    return repr(a.get_params()) == repr(b.get_params())


def test_random_state_is_the_name_seed_still_works(data):
    X, y = data
    _assert_renamed_same(lambda: make_folds(y, seed=3), lambda: make_folds(y, random_state=3), np.array_equal)
    for preset in (default_lgbm, default_logreg, default_extratrees):
        _assert_renamed_same(
            lambda p=preset: p("binary", seed=4), lambda p=preset: p("binary", random_state=4), _params_equal
        )
    _assert_renamed_same(
        lambda: meta_model("logreg", "binary", seed=5),
        lambda: meta_model("logreg", "binary", random_state=5),
        _params_equal,
    )
    for cls in (TargetEncoder, TextNgramFeatures, FeaturePipeline, CFFeatures):
        _assert_renamed_same(lambda c=cls: c(seed=6), lambda c=cls: c(random_state=6), _params_equal)
        assert "seed" not in cls().get_params()
    _assert_renamed_same(
        lambda: Stack([[lgbm()]], seed=7).random_state,
        lambda: Stack([[lgbm()]], random_state=7).random_state,
        lambda a, b: a == b == 7,
    )
    with pytest.warns(FutureWarning, match="'seed' is renamed 'random_state'"):
        assert Stack([[lgbm()]], random_state=8).seed == 8
    from workbench.notebooks.explain_notebook import load_inputs

    with pytest.warns(FutureWarning, match="'seed' is renamed"), pytest.raises(ValueError, match="not both"):
        load_inputs(cv_dir="a", model_path="b", seed=1)


def test_feature_groups_is_the_name_for_column_groups(data, cv):
    X, y = data
    model = lgbm(n_jobs=1).fit(X, y)
    kw = {"scoring": "roc_auc", "n_repeats": 2, "progress": False}
    same = lambda a, b: a.to_frame().equals(b.to_frame()) and a.feature_groups == b.feature_groups  # noqa: E731
    _assert_renamed_same(
        lambda: permutation_importance(model, X, y, groups={"ab": ["a", "b"]}, **kw),
        lambda: permutation_importance(model, X, y, feature_groups={"ab": ["a", "b"]}, **kw),
        same,
    )
    _assert_renamed_same(
        lambda: cv_permutation_importance(cv, X, y, groups={"ab": ["a", "b"]}, **kw),
        lambda: cv_permutation_importance(cv, X, y, feature_groups={"ab": ["a", "b"]}, **kw),
        same,
    )
    with (
        pytest.warns(FutureWarning, match="'groups' is renamed 'feature_groups'"),
        pytest.raises(InvalidParameterError, match="'n_repeats'"),
    ):
        drop_noisy_features(lgbm(), X, y, groups={"ab": ["a", "b"]}, n_repeats=0)
    result = permutation_importance(model, X, y, feature_groups={"ab": ["a", "b"]}, **kw)
    with pytest.warns(FutureWarning, match="'groups' is renamed 'feature_groups'"):
        assert result.groups == {"ab": ["a", "b"]}


def test_top_is_the_name_for_every_top_k(data, cv):
    X, y = data
    model = lgbm(n_jobs=1).fit(X, y)
    sv = shap_values(model, X.iloc[:80])
    ticks = lambda a, b: (  # noqa: E731
        [t.get_text() for t in a.axes[0].get_yticklabels()] == [t.get_text() for t in b.axes[0].get_yticklabels()]
    )  # noqa: E731
    _assert_renamed_same(
        lambda: plot_shap_summary(sv, kind="bar", max_display=2),
        lambda: plot_shap_summary(sv, kind="bar", top=2),
        ticks,
    )
    _assert_renamed_same(
        lambda: plot_shap_waterfall(sv, 0, max_display=3), lambda: plot_shap_waterfall(sv, 0, top=3), ticks
    )
    _assert_renamed_same(lambda: cv.top_features(k=2), lambda: cv.top_features(top=2), lambda a, b: a.equals(b))
    pi = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=2, progress=False)
    _assert_renamed_same(lambda: pi.top(2), lambda: list(pi.top_features(top=2).index), lambda a, b: a == b)
    from workbench.notebooks.explain_notebook import explain_report

    with (
        pytest.warns(FutureWarning, match="'top_k' is renamed 'top'"),
        pytest.raises(InvalidParameterError, match=r"the 'top' parameter of explain_report\(\)"),
    ):
        explain_report(cv, X, y, top_k=0)


def test_to_frame_and_plot_are_the_names_old_ones_warn(data, cv):
    X, y = data
    model = lgbm(n_jobs=1).fit(X, y)
    pi = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=2, progress=False)
    equal = lambda a, b: a.equals(b)  # noqa: E731
    _assert_renamed_same(lambda: pi.frame, pi.to_frame, equal)
    _assert_renamed_same(cv.summary, cv.to_frame, equal)
    b = blend({"a": cv.oof, "b": cv.oof**2}, y)
    _assert_renamed_same(b.summary, b.to_frame, equal)
    stack = Stack([[("lr", LogisticRegression())]], folds=3, progress=False, n_jobs=1).fit(X, y)
    _assert_renamed_same(stack.summary, stack.to_frame, equal)
    _assert_renamed_same(
        lambda: stack.plot(1), lambda: stack.plot(level=1), lambda a, b: len(a.axes) == len(b.axes) == 3
    )
    sv = shap_values(model, X.iloc[:50])
    _assert_renamed_same(lambda: sv.plot_summary("bar"), lambda: sv.plot("bar"), lambda a, b: isinstance(a, Figure))


# ------------------------------------------------------------------------------ result protocol


def _results(X, y, cv):
    model = lgbm(n_jobs=1).fit(X, y)
    pi = permutation_importance(
        model, X, y, scoring="roc_auc", n_repeats=2, feature_groups={"ab": ["a", "b"]}, progress=False
    )
    selection = drop_noisy_features(lgbm(n_jobs=1), X, y, folds=3, n_repeats=2, progress=False)
    return {
        "CVResult": cv,
        "PermutationImportances": pi,
        "PartialDependence": partial_dependence(model, X, "a", grid=8, kind="both", progress=False),
        "PartialDependence2d": partial_dependence(model, X, ("a", "d"), grid=5, progress=False),
        "ShapValues": shap_values(model, X.iloc[:60]),
        "BlendResult": blend(
            {"lgbm": cv.oof, "square": cv.oof**2}, y, test_list={"lgbm": cv.test_pred, "square": cv.test_pred**2}
        ),
        "FeatureSelection": selection,
    }


@pytest.fixture(scope="module")
def results(data, cv):
    X, y = data
    return _results(X, y, cv)


@pytest.mark.parametrize(
    "name",
    [
        "CVResult",
        "PermutationImportances",
        "PartialDependence",
        "PartialDependence2d",
        "ShapValues",
        "BlendResult",
        "FeatureSelection",
    ],
)
def test_every_result_follows_the_protocol(results, name, tmp_path):
    from matplotlib.figure import Figure as MplFigure

    result = results[name]
    assert isinstance(result, Result)
    text = repr(result)
    assert text.startswith(type(result).__name__ + "(") and "\n" not in text
    html = result._repr_html_()
    assert html.startswith("<") and html.rstrip().endswith(">")
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    fig = result.plot()
    assert isinstance(fig, MplFigure) and fig.axes
    host = MplFigure()
    ax = host.subplots()
    assert result.plot(ax=ax) is host
    assert ax.has_data() or ax.images
    with pytest.raises(ValueError, match="kind must be one of"):
        result.plot(kind="no-such-kind")

    saved = result.save(tmp_path / "result")
    assert (saved / "result.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name != "result"]  # written atomically: no scratch left
    loaded = type(result).load(saved)
    assert type(loaded) is type(result)
    assert repr(loaded) == repr(result)
    pd.testing.assert_frame_equal(loaded.to_frame(), frame)
    for field in ("oof", "values", "average", "importances"):
        value = getattr(result, field, None)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(loaded, field), value)
        elif isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(getattr(loaded, field), value)


def test_load_refuses_another_kind_of_result(results, tmp_path):
    results["BlendResult"].save(tmp_path / "blend")
    with pytest.raises(ValueError, match="holds a BlendResult"):
        type(results["ShapValues"]).load(tmp_path / "blend")
    with pytest.raises(FileNotFoundError, match="no result.json"):
        type(results["ShapValues"]).load(tmp_path / "nothing")


def test_stack_shows_itself_like_a_result(data):
    X, y = data
    stack = Stack(
        [[("lr", LogisticRegression()), ("lgbm", lgbm(n_jobs=1))], [("meta", LogisticRegression())]],
        folds=3,
        progress=False,
        n_jobs=1,
    ).fit(X, y)
    assert isinstance(stack.to_frame(), pd.DataFrame) and "<table" in stack._repr_html_()
    assert len(stack.plot().axes) == 3  # scores, correlation and its colour bar
    host = Figure()
    ax = host.subplots()
    assert stack.plot(kind="scores", ax=ax) is host and ax.has_data()
    with pytest.raises(ValueError, match="cannot use one given ax"):
        stack.plot(kind="both", ax=ax)
    assert isinstance(CVResult.plot(stack.results_["level1/lgbm"], kind="importance"), Figure)
