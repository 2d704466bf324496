"""Smoke test of a built notebook image, run inside a container as the image's default user.

Checks the Docker Stacks contract (non-root notebook user, start-singleuser.sh on PATH), that
workbench imports and answers ``workbench --version``, and trains a tiny LightGBM ``train_cv``
whose CV AUC it recomputes with scikit-learn. ``--gpu`` also checks CUDA: PyTorch sees a device
and computes on it, XGBoost trains with ``device="cuda"``. Prints one JSON line of results and
exits non-zero on the first failed check.

    podman run --rm -v ./images/smoke_test.py:/tmp/smoke_test.py:ro IMAGE python /tmp/smoke_test.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from typing import Any


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SystemExit(f"smoke test failed: {message}")


def check_user() -> dict[str, Any]:
    uid, gid = os.getuid(), os.getgid()
    _check(uid != 0, "the image runs as root; it must run as the notebook user")
    _check(shutil.which("start-singleuser.sh") is not None, "start-singleuser.sh is not on PATH")
    return {"uid": uid, "gid": gid, "user": os.environ.get("NB_USER", ""), "home": os.environ.get("HOME", "")}


def check_workbench() -> dict[str, Any]:
    import workbench

    out = subprocess.run(["workbench", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    _check(out == f"workbench {workbench.__version__}", f"workbench --version printed {out!r}")
    return {"version": workbench.__version__, "cli": out}


def check_train_cv(seed: int = 0) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from workbench.data import make_folds
    from workbench.models import default_lgbm, train_cv

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(400, 5)), columns=[f"x{i}" for i in range(5)])
    y = pd.Series((X["x0"] + 0.5 * X["x1"] + rng.normal(scale=0.5, size=400) > 0).astype(int))
    folds = make_folds(y, kind="stratified", n_splits=3, seed=seed)
    cv = train_cv(default_lgbm("binary", seed=seed, n_estimators=50, learning_rate=0.1), X, y, folds, metric="auc")
    reference = roc_auc_score(y, cv.oof)
    _check(abs(cv.score - reference) < 1e-9, f"train_cv AUC {cv.score} differs from scikit-learn's {reference}")
    _check(cv.score > 0.8, f"train_cv AUC {cv.score} is too low on a learnable problem")
    return {"cv_auc": float(cv.score), "sklearn_auc": float(reference), "n_splits": cv.n_splits}


def check_explain_cache() -> dict[str, Any]:
    """The image compiled the explain kernels at build time: a first call loads them, compiles none."""
    import numpy as np
    from lightgbm import LGBMRegressor

    from workbench.explain import _permutation_forest as forest
    from workbench.explain import permutation_importance

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + rng.normal(size=200)
    model = LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y)
    permutation_importance(model, X, y, n_repeats=2, progress=False)
    stats = forest._forest_permuted.stats  # one output's numeric trees are walked tree by tree
    hits, misses = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
    _check(misses == 0, "permutation importance compiled its kernel: the image's numba cache is cold")
    return {"cache_hits": hits, "cache_misses": misses}


def check_cuda() -> dict[str, Any]:
    import numpy as np
    import torch
    import xgboost as xgb

    _check(torch.cuda.is_available(), "PyTorch sees no CUDA device")
    a = torch.arange(12.0, device="cuda").reshape(3, 4)
    product = (a @ a.T).cpu().numpy()
    expected = np.arange(12.0).reshape(3, 4) @ np.arange(12.0).reshape(3, 4).T
    _check(np.allclose(product, expected), "a matrix product on the GPU gave a wrong result")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 8))
    y = (X[:, 0] > 0).astype(int)
    booster = xgb.train(
        {"device": "cuda", "tree_method": "hist", "objective": "binary:logistic"},
        xgb.DMatrix(X, label=y),
        num_boost_round=20,
    )
    accuracy = float(((booster.predict(xgb.DMatrix(X)) > 0.5) == y).mean())
    _check(accuracy > 0.95, f"XGBoost on CUDA reached only {accuracy:.3f} training accuracy")
    config = json.loads(booster.save_config())
    return {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "xgboost": xgb.__version__,
        "xgboost_device": config["learner"]["generic_param"]["device"],
        "xgboost_accuracy": accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke test of a workbench notebook image.")
    parser.add_argument("--gpu", action="store_true", help="also check CUDA (PyTorch, XGBoost)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"python": sys.version.split()[0]}
    result["user"] = check_user()
    result["workbench"] = check_workbench()
    result["train_cv"] = check_train_cv()
    result["explain_cache"] = check_explain_cache()
    if args.gpu:
        result["cuda"] = check_cuda()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
