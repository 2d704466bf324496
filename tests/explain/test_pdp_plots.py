"""Partial dependence figures: what they draw, and never blank when saved headless."""

import lightgbm as lgb
import numpy as np
import pytest
from _explain_figures import ink, pixels, run_headless, share_near

from workbench.explain import partial_dependence, plot_partial_dependence
from workbench.explain.plots import ICE_COLOR, PD_COLOR


@pytest.fixture(scope="module")
def telco_model(telco_xy):
    X, y = telco_xy
    return lgb.LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1).fit(X, y), X


def test_pd_line_ice_lines_and_centring(telco_model):
    model, X = telco_model
    result = partial_dependence(model, X, "tenure", grid=15, kind="both")
    fig = plot_partial_dependence(result, n_ice=50)
    top, bottom = fig.axes
    lines = top.get_lines()
    pd_line = next(line for line in lines if line.get_label() == "average (PD)")
    np.testing.assert_allclose(pd_line.get_ydata(), result.average)
    assert sum(1 for line in lines if line.get_label().startswith("_")) == 50  # the sampled ICE curves
    assert sum(p.get_height() for p in bottom.patches) == X["tenure"].notna().sum()  # histogram of the data
    centred = plot_partial_dependence(result, centered=True, n_ice=50).axes[0]
    pd_line = next(line for line in centred.get_lines() if line.get_label() == "average (PD)")
    np.testing.assert_allclose(pd_line.get_ydata(), result.average - result.average[0])
    assert all(line.get_ydata()[0] == 0 for line in centred.get_lines() if len(line.get_ydata()))
    no_ice = plot_partial_dependence(partial_dependence(model, X, "tenure", grid=15), distribution=False)
    assert len(no_ice.axes) == 1 and len(no_ice.axes[0].get_lines()) == 1


def test_categorical_and_two_way_figures(telco_model):
    model, X = telco_model
    result = partial_dependence(model, X, "Contract", kind="both")
    fig = result.plot()
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == ["Month-to-month", "One year", "Two year"]
    assert [p.get_height() for p in fig.axes[1].patches] == X["Contract"].value_counts()[labels].tolist()
    two = partial_dependence(model, X, ("tenure", "Contract"), grid=6)
    heat = plot_partial_dependence(two)
    np.testing.assert_allclose(heat.axes[0].get_images()[0].get_array(), two.average)
    assert [t.get_text() for t in heat.axes[0].get_xticklabels()] == labels


def test_saved_headless_figures_are_not_blank(tmp_path):
    run_headless(
        """
        import lightgbm as lgb
        from workbench.datasets import load_telco
        from workbench.explain import partial_dependence
        df = load_telco()
        X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
        model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
        partial_dependence(model, X, "tenure", grid=20, kind="both").plot().savefig("pdp.png")
        partial_dependence(model, X, ("tenure", "MonthlyCharges"), grid=8).plot().savefig("pdp2d.png")
        """,
        tmp_path,
    )
    pdp = pixels(tmp_path / "pdp.png")
    assert pdp.shape[0] > 300 and ink(pdp) > 0.05
    assert share_near(pdp, PD_COLOR) > 0.002 and share_near(pdp, ICE_COLOR) > 0.01  # PD line and ICE lines drawn
    heat = pixels(tmp_path / "pdp2d.png")
    assert ink(heat) > 0.3 and len(np.unique(heat.reshape(-1, 3).round(2), axis=0)) > 50
