"""The compile cache: a writable folder chosen automatically, warmed by ``python -m workbench.explain.warmup``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from background import clean_env

from workbench.explain import _numba_cache


def test_read_only_package_uses_the_user_cache_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "site-packages"
    blocker.write_text("a file where the package folder's parent would be: nothing can be created below it")
    monkeypatch.setattr(_numba_cache, "_PACKAGE_DIR", blocker / "workbench" / "explain")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    folder = _numba_cache.configure()
    assert folder == tmp_path / "cache" / "workbench" / "numba"
    assert folder.is_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder)
    import numba

    assert numba.config.CACHE_DIR == str(folder)  # already imported: its copy of the setting follows


def test_explicit_setting_is_never_overridden(tmp_path, monkeypatch):
    blocker = tmp_path / "site-packages"
    blocker.write_text("")
    monkeypatch.setattr(_numba_cache, "_PACKAGE_DIR", blocker / "explain")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert _numba_cache.configure() == tmp_path / "mine"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_writable_package_keeps_numbas_default(monkeypatch, tmp_path):
    monkeypatch.setattr(_numba_cache, "_PACKAGE_DIR", tmp_path)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert _numba_cache.configure() == tmp_path / "__pycache__"
    assert "NUMBA_CACHE_DIR" not in os.environ


_PROBE = """
import json, numpy as np
from lightgbm import LGBMRegressor
from workbench.explain import permutation_importance
from workbench.explain import _permutation_engine as engine, _permutation_forest as forest
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3)); y = X[:, 0] + rng.normal(size=200)
model = LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y)
permutation_importance(model, X, y, n_repeats=2, progress=False)
stats = [engine._permuted_raw.stats, forest._forest_permuted.stats]  # numeric features: the second
print(json.dumps({k: sum(sum(getattr(s, f"cache_{k}").values()) for s in stats) for k in ("hits", "misses")}))
"""


@pytest.mark.slow
def test_warmup_populates_the_cache_and_a_fresh_process_finds_it_warm(warmed_cache):
    done, folder = warmed_cache.run, warmed_cache.folder  # the warm-up ran on an empty folder
    assert done.returncode == 0, done.stderr
    assert str(folder) in done.stdout
    indexes = {Path(p).name.split("-")[0] for p in warmed_cache.files if p.endswith(".nbi")}
    assert {"_trees._predict_leaves", "_permutation_engine._permuted_raw", "_pdp_trees._ice_intervals"} <= indexes
    if importlib.util.find_spec("catboost") is not None:  # the oblivious-tree kernels too
        assert {"_oblivious._leaf_indices", "_oblivious._permuted_oblivious", "_oblivious._ice_oblivious"} <= indexes
    assert "_permutation_forest._forest_permuted" in indexes  # one output's trees walked tree by tree
    assert any(p.endswith(".nbc") for p in warmed_cache.files)
    env = clean_env(NUMBA_CACHE_DIR=str(folder))
    probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    stats = json.loads(probe.stdout.strip().splitlines()[-1])
    assert stats == {"hits": 1, "misses": 0}
