"""Shared fixtures. Tests needing a system tool call ``require_tool``: a skip locally, a failure in CI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import background
import pytest
from background import WarmedCache

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, *candidates: str) -> str:
    """Path of executable ``name`` (or the first of ``candidates`` found).

    Missing tool: skip with the reason, except in CI (``CI=true``) where it is a failure, since
    `.ci/run` installs every tool the suite needs.
    """
    for cand in (name, *candidates):
        path = shutil.which(cand)
        if path:
            return path
    reason = f"system tool {name!r} is not installed (`.ci/run` installs it)"
    if IN_CI:
        pytest.fail(f"{reason}; in CI every tool must be present", pytrace=False)
    print(f"SKIP: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def telco():
    from workbench.datasets import load_telco

    return load_telco()


@pytest.fixture(scope="session")
def telco_xy(telco):
    from workbench.data import infer_schema

    schema = infer_schema(telco, target="Churn")
    return telco[schema.features], telco[schema.target]


@pytest.fixture
def workbench_cli():
    """Argv prefix that runs the installed ``workbench`` command (falls back to ``python -m``)."""
    exe = shutil.which("workbench", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "workbench"]


@pytest.fixture(scope="session")
def accounts_ready():
    """Per-user system accounts can run the hub's Python: root, ``useradd``, and a reachable interpreter.

    Not root: a skip with the reason. Directories on the way to the interpreter that other users
    cannot enter (e.g. ``/root`` holding a pyenv) get the traverse bit (``o+x``, not read) for the
    session, and are restored after it; ``workbench hub`` itself refuses such a layout with the fix.
    """
    if os.geteuid() != 0:
        reason = "per-user system accounts need the hub to run as root (CI runs as root)"
        print(f"SKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
    require_tool("useradd")
    from workbench.hub.accounts import closed_to_others

    opened: list[tuple[Path, int]] = []
    for target in (sys.executable, sys.base_prefix, sys.prefix, ROOT):
        while (closed := closed_to_others(target)) is not None:
            mode = closed.stat().st_mode & 0o7777
            opened.append((closed, mode))
            closed.chmod(mode | 0o001)
    if opened:
        print(f"opened for traversal during the tests: {', '.join(str(p) for p, _ in opened)}", file=sys.stderr)
    yield
    for path, mode in reversed(opened):
        path.chmod(mode)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests waiting for work done in the background go last (in their order), so it has the most time."""
    items[:] = sorted(items, key=background.waits)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow self-contained work that selected tests need, so it runs beside the tests before them."""
    background.start_needed(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.stop()


background.register("warmed_cache", background.warm_up_cache)


@pytest.fixture(scope="session")
def warmed_cache(request) -> WarmedCache:
    """One warm-up of the explain kernels into a new folder, for the session (started in the background).

    Tests that run the kernels in other processes use a copy (:func:`warm_cache_copy`); the folder
    itself stays as the warm-up left it.
    """
    return background.result(request)


@pytest.fixture(scope="session")
def warm_cache_copy(warmed_cache) -> Path:
    """A copy of the warmed compile cache, for processes that may add to it."""
    return background.copy_of_warm_cache("warm-copy")


def assert_ice_equals_sklearn_brute(model, X, features, grid: int, categorical: tuple[str, ...] = ("cat",)) -> None:
    """workbench's exact ICE for each feature equals scikit-learn's brute method on workbench's grid (<= 1e-9)."""
    import numpy as np
    from sklearn.inspection import partial_dependence as sklearn_pd

    from workbench.explain import partial_dependence

    for feature in features:
        ours = partial_dependence(model, X, feature, grid=grid, kind="individual", progress=False)
        extra = {"categorical_features": [feature]} if feature in categorical else {}
        theirs = sklearn_pd(
            model, X, [feature], custom_values={feature: ours.grid[0]}, kind="individual", method="brute", **extra
        )
        individual = np.asarray(ours.individual).reshape(theirs["individual"].shape)
        np.testing.assert_allclose(individual, theirs["individual"], rtol=0, atol=1e-9)
