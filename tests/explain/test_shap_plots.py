"""SHAP figures: right content, and non-blank PNGs when saved headless (shap#153)."""

import lightgbm as lgb
import numpy as np
import pytest
from _explain_figures import ink, pixels, run_headless, share_near

from workbench.explain import plot_shap_dependence, plot_shap_summary, plot_shap_waterfall, shap_values
from workbench.explain.plots import NEGATIVE, POSITIVE


@pytest.fixture(scope="module")
def sv(telco_xy):
    X, y = telco_xy
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1).fit(X, y)
    return shap_values(model, X, max_rows=600)


def test_summary_orders_features_by_mean_abs_shap(sv):
    for kind in ("beeswarm", "bar"):
        ax = plot_shap_summary(sv, kind=kind, top=8).axes[0]
        ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True), reverse=True)
        assert [label for _, label in ticks] == list(sv.importance().index[:8])  # most important on top
        assert sv.sample_note in ax.get_title(loc="left")
    bars = plot_shap_summary(sv, kind="bar", top=5).axes[0].patches
    np.testing.assert_allclose(sorted(p.get_width() for p in bars)[::-1], sv.importance().to_numpy()[:5])
    with pytest.raises(ValueError, match="'beeswarm' or 'bar'"):
        plot_shap_summary(sv, kind="violin")


def test_waterfall_adds_up_to_the_raw_score(sv):
    for row in (0, 5):
        ax = plot_shap_waterfall(sv, row, top=6).axes[0]
        widths = [p.get_width() for p in ax.patches]
        assert len(widths) == 6 and "other features" in ax.get_yticklabels()[0].get_text()
        assert sum(widths) == pytest.approx(sv.values[row].sum())
        assert ax.patches[0].get_x() == pytest.approx(sv.base_value)
        last = ax.patches[-1]
        assert last.get_x() + last.get_width() == pytest.approx(sv.raw_prediction()[row])
    with pytest.raises(ValueError, match="row must be a position among the 600"):
        plot_shap_waterfall(sv, 600)


def test_dependence_plot(sv):
    fig = plot_shap_dependence(sv, "tenure", color_by="Contract")
    ax = fig.axes[0]
    points = np.vstack([c.get_offsets() for c in ax.collections])
    assert len(points) == 600
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(sv.to_frame()["tenure"].to_numpy()))
    assert fig.axes[1].get_ylabel() == "Contract"
    assert plot_shap_dependence(sv, "Contract").axes[1].get_ylabel() in sv.feature_names  # auto colouring
    with pytest.raises(ValueError, match="did you mean 'tenure'"):
        plot_shap_dependence(sv, "tenur")


def test_saved_headless_figures_are_not_blank(tmp_path):
    run_headless(
        """
        import lightgbm as lgb
        from workbench.datasets import load_telco
        from workbench.explain import shap_values
        df = load_telco()
        X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
        sv = shap_values(lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y), X, max_rows=500)
        sv.plot().savefig("beeswarm.png")
        sv.plot("bar").savefig("bar.png")
        sv.plot_dependence("tenure").savefig("dependence.png")
        sv.plot_waterfall(0).savefig("waterfall.png")
        """,
        tmp_path,
    )
    for name in ("beeswarm", "bar", "dependence", "waterfall"):
        image = pixels(tmp_path / f"{name}.png")
        assert ink(image) > 0.04, name
    beeswarm = pixels(tmp_path / "beeswarm.png")
    assert share_near(beeswarm, NEGATIVE) > 0.005 and share_near(beeswarm, POSITIVE) > 0.005  # low and high values
    waterfall = pixels(tmp_path / "waterfall.png")
    assert share_near(waterfall, NEGATIVE) + share_near(waterfall, POSITIVE) > 0.02
