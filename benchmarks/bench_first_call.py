"""Permutation importance in a fresh Python process, as on a new user's server, vs scikit-learn.

LightGBM 300 trees on Telco, 2,043 held-out rows, roc_auc, 5 repeats. The compile cache is warmed
first by ``python -m workbench.explain.warmup`` into its own folder (what the images do at build
time); then each side runs in a new process that loads the fitted model and data from disk and
computes the importances.

The headline compares the first call as a notebook pays it: from importing the inspection module
(workbench's or scikit-learn's) to the result, which includes loading the cached kernels, reading the
model into the tree engine and the check against its predictions. Interpreter start and unpickling
the user's model and data happen before the first call and cost both sides the same; the whole
process's wall time is printed beside it.
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
import pickle, sys, time
with open(sys.argv[1], "rb") as f:
    model, X, y = pickle.load(f)
start = time.perf_counter()
if sys.argv[2] == "workbench":
    from workbench.explain import permutation_importance
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=5, random_state=0, progress=False)
    assert result.engine == "tree", result.engine
else:
    from sklearn.inspection import permutation_importance
    permutation_importance(model, X, y, scoring="roc_auc", n_repeats=5, random_state=0)
print(time.perf_counter() - start)
"""


def _fresh(env: dict[str, str], data: Path, side: str) -> tuple[float, float]:
    """The first call's time and the whole process's, in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CALL, str(data), side], env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.split()[-1]), time.perf_counter() - start


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
        runs = 1 if args.quick else 2
        ours = min(_fresh(env, data, "workbench") for _ in range(runs))
        peer = min(_fresh(env, data, "sklearn") for _ in range(runs))
    report("fresh_process_first_call_permutation_importance_telco", ours[0], peer[0], "sklearn", target=">=3")
    report("fresh_process_whole_process_permutation_importance_telco", ours[1], peer[1], "sklearn")


if __name__ == "__main__":
    main()
