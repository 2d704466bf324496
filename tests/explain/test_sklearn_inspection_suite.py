"""scikit-learn's own inspection tests, run against workbench through ``sklearn_adapter``.

The installed scikit-learn's ``test_permutation_importance.py`` and ``test_partial_dependence.py``
are copied into a temporary folder with their imports of ``sklearn.inspection`` pointed at
``tests/explain/sklearn_adapter.py``, and run by pytest in a subprocess in which scikit-learn's
implementations raise when called (and count the calls). Tests that differ on purpose are
listed in ``sklearn_expected_failures.txt`` with the reason; an unlisted failure fails here, and
so does a listed test that passes (the list stays honest).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FILES = ("test_permutation_importance.py", "test_partial_dependence.py")
EXPECTED = HERE / "sklearn_expected_failures.txt"

# Every scikit-learn function that computes permutation importance or partial dependence.
_GUARD = """
import importlib

import pytest

CALLS = []
TARGETS = [
    ("sklearn.inspection", "permutation_importance"),
    ("sklearn.inspection", "partial_dependence"),
    ("sklearn.inspection._permutation_importance", "permutation_importance"),
    ("sklearn.inspection._permutation_importance", "_calculate_permutation_scores"),
    ("sklearn.inspection._partial_dependence", "partial_dependence"),
    ("sklearn.inspection._partial_dependence", "_grid_from_X"),
    ("sklearn.inspection._partial_dependence", "_partial_dependence_brute"),
    ("sklearn.inspection._partial_dependence", "_partial_dependence_recursion"),
    ("sklearn.tree._classes.DecisionTreeRegressor", "_compute_partial_dependence_recursion"),
    ("sklearn.ensemble._forest.RandomForestRegressor", "_compute_partial_dependence_recursion"),
    ("sklearn.ensemble._gb.BaseGradientBoosting", "_compute_partial_dependence_recursion"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.BaseHistGradientBoosting",
     "_compute_partial_dependence_recursion"),
]


def _forbidden(where):
    def call(*args, **kwargs):
        CALLS.append(where)
        raise AssertionError(f"scikit-learn's own {where} was called")

    return call


def _owner(path):
    module, _, attr = path.rpartition(".")
    try:
        return importlib.import_module(path)
    except ImportError:
        return getattr(importlib.import_module(module), attr)


for path, name in TARGETS:
    setattr(_owner(path), name, _forbidden(f"{path}.{name}"))


def pytest_sessionfinish(session, exitstatus):
    with open(session.config.rootpath / "sklearn_calls.txt", "w") as out:
        out.write("\\n".join(CALLS))
"""


def _expected() -> dict[str, str]:
    """``{test id or test name: reason}`` from the list (``id  # reason`` per line)."""
    out = {}
    for line in EXPECTED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            test, _, reason = line.partition("#")
            assert reason.strip(), f"{test.strip()} is listed without a reason"
            out[test.strip()] = reason.strip()
    return out


def _copy_tests(tmp: Path) -> None:
    import sklearn

    source = Path(sklearn.__file__).parent / "inspection" / "tests"
    for name in FILES:
        text = (source / name).read_text()
        text, n = re.subn(
            r"from sklearn\.inspection(\._partial_dependence)? import",
            "from tests.explain.sklearn_adapter import",
            text,
        )
        assert n >= 1, f"{name}: no import of sklearn.inspection to point at the adapter"
        assert "sklearn.inspection" not in text, f"{name} still uses sklearn.inspection"
        (tmp / name).write_text(text)
    (tmp / "conftest.py").write_text(_GUARD)
    (tmp / "pytest.ini").write_text("[pytest]\naddopts =\n")


def _outcomes(report: Path) -> dict[str, str]:
    """``{file::test[params]: passed | failed | skipped}`` from pytest's JUnit XML."""
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        test = f"{module}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            out[test] = "failed"
        elif case.find("skipped") is not None:
            out[test] = "skipped"
        else:
            out[test] = "passed"
    return out


def _matches(entry: str, test: str) -> bool:
    if "*" in entry:
        return re.fullmatch(re.escape(entry).replace(r"\*", ".*"), test) is not None
    return test == entry or test.startswith(entry + "[")


@pytest.mark.slow
def test_sklearn_inspection_tests_pass_against_workbench(tmp_path):
    _copy_tests(tmp_path)
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    outcomes = _outcomes(report)
    assert len(outcomes) > 100, f"only {len(outcomes)} tests ran:\n{run.stdout[-3000:]}"
    expected = _expected()
    failed = [t for t, o in outcomes.items() if o == "failed"]
    unexpected = [t for t in failed if not any(_matches(e, t) for e in expected)]
    honest = {e: [t for t in outcomes if _matches(e, t) and outcomes[t] != "skipped"] for e in expected}
    stale = [e for e, tests in honest.items() if not tests]
    passing = [e for e, tests in honest.items() if any(outcomes[t] == "passed" for t in tests)]
    calls = (tmp_path / "sklearn_calls.txt").read_text().split()
    summary = run.stdout[-6000:]
    assert not calls, f"scikit-learn's own implementation was called: {sorted(set(calls))}"
    assert not unexpected, f"failed and not listed in {EXPECTED.name}: {unexpected}\n{summary}"
    assert not passing, f"listed in {EXPECTED.name} but passing (remove them): {passing}"
    assert not stale, f"listed in {EXPECTED.name} but not run (remove them): {stale}"
