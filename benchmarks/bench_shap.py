"""SHAP values: workbench's shap_values vs shap's TreeExplainer on the same LightGBM model and rows.

LightGBM 300 trees x 31 leaves on 50k synthetic rows x 40 features; 2,000 held-out rows explained
(below shap_values' default max_rows, so no subsampling). Each side is timed cold, as a user calls it: ours
reads the model afresh (its cache cleared), shap builds its TreeExplainer. Runs alternate between
the two so that a busy machine slows both alike. Values must agree (<= 1e-9).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _explain_data import synthetic_lightgbm  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402


def main() -> None:
    args = parser(__doc__).parse_args()
    import shap

    from workbench.explain import model_info, shap_values

    model, X_test, _ = synthetic_lightgbm(args.quick)
    X_test = X_test[:2_000]
    header(f"SHAP values, {len(X_test)} rows x 40, LightGBM {model.n_estimators} trees x 31 leaves")

    def ours() -> np.ndarray:
        model_info._CACHE.clear()
        return shap_values(model, X_test, max_rows=None).values

    def peer() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(shap.TreeExplainer(model).shap_values(X_test))

    ours_t = peer_t = None
    for _ in range(1 if args.quick else 5):  # alternate: ours, peer, ours, peer...
        run_ours, run_peer = measure(ours, repeat=1), measure(peer, repeat=1)
        ours_t = run_ours if ours_t is None or run_ours.best < ours_t.best else ours_t
        peer_t = run_peer if peer_t is None or run_peer.best < peer_t.best else peer_t
    np.testing.assert_allclose(ours_t.value, peer_t.value, rtol=0, atol=1e-9)
    report("shap_values", ours_t.best, peer_t.best, "shap.TreeExplainer", target="<=1.0")


if __name__ == "__main__":
    main()
