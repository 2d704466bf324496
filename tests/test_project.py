"""The repository's promises: layout, README commands, CI script, environment.yml in sync."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import background
import pytest
import yaml
from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]


def _requirements(pyproject: dict, extras: list[str]) -> set[str]:
    """What ``pip install .[extras]`` asks for, with ``workbench[...]`` self-references expanded."""
    project = pyproject["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    out: set[str] = set()
    for req in reqs:
        match = re.fullmatch(r"workbench\[(.+)\]", req)
        out |= _requirements(pyproject, match.group(1).split(",")) if match else {req}
    return out


def test_layout():
    for name in [
        "hub",
        "images",
        "notebooks",
        "workbench",
        "helm",
        "tests",
        "benchmarks",
        "environment.yml",
        "pyproject.toml",
        "README.md",
        ".ci/run",
        "Makefile",
    ]:
        assert (ROOT / name).exists(), name


def test_environment_yml_mirrors_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    expected = _requirements(pyproject, ["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    listed = {r for r in pip_section if not r.startswith("-e")}
    assert listed == expected, f"only in environment.yml: {listed - expected}; only in pyproject: {expected - listed}"
    assert any(r.startswith("-e") for r in pip_section)


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block and text.index(block.group(0)) < 600, "the README must open with its two commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_readme_opens_with_the_two_commands():
    assert _readme_commands() == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert ci.rstrip().splitlines()[-1].strip() == test_command or re.search(
        rf"^\s*(exec\s+)?{re.escape(test_command)}\s*$", ci, re.M
    )
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111


def test_makefile_targets():
    out = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "demo", "test"], capture_output=True, text=True, check=True
    ).stdout
    assert "workbench demo" in out and "pytest" in out


_BENCHMARK_MARKS = {  # what a benchmark starts: a real hub, or real kernels
    "bench_hub.py": pytest.mark.hub,
    "bench_jobs.py": pytest.mark.kernel,
    "bench_pipeline.py": pytest.mark.kernel,
    "bench_tune.py": pytest.mark.kernel,
}


def _benchmarks() -> list:
    """Each benchmark script, marked by what it starts: a real hub, or real kernels."""
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    return [pytest.param(name, marks=_BENCHMARK_MARKS.get(name, ())) for name in scripts]


def _quick_benchmarks(items: list[pytest.Item]) -> list[str]:
    """The benchmark scripts whose quick runs share one interpreter (all selected but the hub's)."""
    selected = {
        item.callspec.params["script"]
        for item in items
        if getattr(item, "originalname", None) == "test_benchmark_runs_quick"
    }
    return sorted(selected - {"bench_hub.py"})


background.register(
    "quick_runs",
    lambda items: background.quick_benchmark_runs(_quick_benchmarks(items)),
    needs=lambda items: ("warmed_cache",) if "bench_first_call.py" in _quick_benchmarks(items) else (),
)


@pytest.fixture(scope="session")
def quick_runs(request) -> dict[str, dict]:
    """The ``--quick`` runs of the selected benchmarks but the hub's, by script name (started in the background)."""
    return background.result(request)


@pytest.mark.parametrize("script", _benchmarks())
def test_benchmark_runs_quick(script, request, quick_runs):
    if script == "bench_hub.py":  # alone, after the checks that the hub's accounts can work here
        require_tool("configurable-http-proxy")  # a skip with the reason locally, a failure in CI
        if os.geteuid() == 0:
            request.getfixturevalue("accounts_ready")  # per-user accounts must reach the hub's Python
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), "--quick"], capture_output=True, text=True, timeout=600
        )
        run = {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    else:
        run = quick_runs[script]
    assert run["returncode"] == 0, run["stderr"][-2000:]
    assert re.search(r"^RATIO .+ speedup=", run["stdout"], re.M), run["stdout"]
