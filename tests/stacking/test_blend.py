"""blend: non-negative weights that optimise the metric on OOF, checked against a brute-force search."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from workbench.data import make_folds
from workbench.models import train_cv
from workbench.stacking import blend


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    n = 3000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (a + b + rng.normal(scale=0.7, size=n) > 0).astype(int)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    m1 = sigmoid(a + rng.normal(scale=0.8, size=n))  # sees a
    m2 = sigmoid(b + rng.normal(scale=0.8, size=n))  # sees b
    noise = rng.uniform(size=n)
    t = lambda: sigmoid(rng.normal(size=200))  # noqa: E731
    return y, [m1, m2, noise], [t(), t(), t()]


def test_weights_match_a_brute_force_search(binary):
    y, (m1, m2, _), (t1, t2, _) = binary
    result = blend({"m1": m1, "m2": m2}, y, metric="auc", test_list={"m1": t1, "m2": t2})
    grid = np.linspace(0, 1, 101)
    brute = [roc_auc_score(y, w * m1 + (1 - w) * m2) for w in grid]
    print(
        f"\nblend AUC {result.score:.5f} with weights {result.weights.round(3).to_dict()}; "
        f"grid optimum {max(brute):.5f} at w={grid[int(np.argmax(brute))]:.2f}; singles {roc_auc_score(y, m1):.5f}, "
        f"{roc_auc_score(y, m2):.5f}"
    )
    assert result.score >= max(brute) - 2e-4
    assert result.score > max(roc_auc_score(y, m1), roc_auc_score(y, m2)) + 0.02
    w = result.weights
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert result.score == pytest.approx(roc_auc_score(y, w["m1"] * m1 + w["m2"] * m2), abs=1e-12)
    np.testing.assert_allclose(result.test_pred, w["m1"] * t1 + w["m2"] * t2, atol=1e-15)
    table = result.to_frame()
    assert table.loc["blend", "auc"] == result.score and table.loc["m1", "weight"] == w["m1"]


def test_useless_model_gets_almost_no_weight_and_blend_never_loses(binary):
    y, preds, tests = binary
    result = blend(preds, y, metric="auc", test_list=tests)
    assert list(result.weights.index) == ["model0", "model1", "model2"]
    assert result.weights["model2"] < 0.05  # pure noise: at most a sliver fitted to chance
    assert result.weights["model0"] > 0.4 and result.weights["model1"] > 0.4
    assert result.score >= max(roc_auc_score(y, p) for p in preds)
    single = blend([preds[2], preds[0]], y, metric="auc", n_iter=1)
    assert single.weights.tolist() == [0.0, 1.0]  # one step: the best single model


def test_rank_blending_ignores_calibration(binary):
    y, (m1, m2, _), (t1, t2, _) = binary
    plain = blend([m1, m2], y, metric="auc", test_list=[t1, t2], rank=True)
    distorted = blend([m1, m2**6], y, metric="auc", test_list=[t1, t2**6], rank=True)
    np.testing.assert_array_equal(plain.weights.to_numpy(), distorted.weights.to_numpy())
    assert plain.score == distorted.score
    w = plain.weights.to_numpy()
    expected = w[0] * rankdata(t1) / len(t1) + w[1] * rankdata(t2) / len(t2)  # ranked within the test set
    np.testing.assert_allclose(plain.test_pred, expected, atol=1e-15)
    assert plain.oof.min() > 0 and plain.oof.max() <= 1


def test_multiclass_logloss_blend():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(900, 4)), columns=list("abcd"))
    y = np.digitize(X["a"] + X["b"] + rng.normal(scale=0.6, size=900), [-0.7, 0.7])
    folds = make_folds(y, n_splits=3, random_state=0)
    cvs = [
        train_cv(LogisticRegression(max_iter=500), X[cols], y, folds, X_test=X[cols].iloc[:20], progress=False)
        for cols in (["a", "c"], ["b", "d"], ["a", "b"])
    ]
    result = blend(cvs, y, metric="logloss")
    assert not result.greater_is_better
    assert result.score <= min(cv.score for cv in cvs)
    blended = np.tensordot(result.weights.to_numpy(), np.stack([cv.oof for cv in cvs]), axes=1)
    assert result.score == pytest.approx(log_loss(y, blended), abs=1e-12)
    expected_test = np.tensordot(result.weights.to_numpy(), np.stack([cv.test_pred for cv in cvs]), axes=1)
    np.testing.assert_allclose(result.test_pred, expected_test, atol=1e-15)  # CVResults bring their test_pred
    np.testing.assert_allclose(result.apply([cv.test_pred for cv in cvs]), expected_test, atol=1e-15)


def test_blend_rejects_bad_input(binary):
    y, (m1, m2, _), _ = binary
    with pytest.raises(ValueError, match="differ in shape"):
        blend([m1, m2[:-1]], y)
    with pytest.raises(ValueError, match="y has 2999 rows but the predictions have 3000"):
        blend([m1, m2], y[:-1])
    with pytest.raises(ValueError, match="rank=True averages ranks"):
        blend([m1, m2], m1 * 3.3, rank=True)
    with pytest.raises(ValueError, match=r"the 'n_iter' parameter of blend\(\) must be an int in the range \[1, inf\)"):
        blend([m1, m2], y, n_iter=0)
    with pytest.raises(ValueError, match="unknown metric 'auroc'"):
        blend([m1, m2], y, metric="auroc")
    with pytest.raises(ValueError, match="got 1 predictions for 2 blended models"):
        blend([m1, m2], y).apply([m1])
