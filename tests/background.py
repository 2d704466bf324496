"""Slow, self-contained work the session needs later, started as soon as the tests are collected.

The image builds, the compile cache's cold warm-up and the benchmarks' quick runs are each a long
subprocess that uses about one core. A module registers such work under the name of the session
fixture that returns it (:func:`register`); when collection ends, the work that selected tests need
starts in the order they need it (``conftest.pytest_collection_finish``), one job after the other,
beside the tests that come first. The fixture waits for it (:func:`result`). Whatever is still
running when the session ends is killed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

_pool: ThreadPoolExecutor | None = None
_registered: dict[str, _Work] = {}
_jobs: dict[str, Future] = {}
_running: set[subprocess.Popen] = set()
_lock = threading.Lock()
_scratch: Path | None = None
_stopping = threading.Event()


@dataclass(frozen=True)
class WarmedCache:
    """What ``python -m workbench.explain.warmup`` did to an empty compile cache folder."""

    folder: Path
    run: subprocess.CompletedProcess
    files: frozenset[str]  # below ``folder``, right after the warm-up


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without numba's settings, this checkout first on the path, plus ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


@dataclass(frozen=True)
class _Work:
    run: Callable[[list[pytest.Item]], Any]
    needs: Callable[[list[pytest.Item]], tuple[str, ...]]


def register(
    fixture: str,
    work: Callable[[list[pytest.Item]], Any],
    needs: Callable[[list[pytest.Item]], tuple[str, ...]] = lambda items: (),
) -> None:
    """Have ``work(selected_items)`` start when collection ends if a selected test uses ``fixture``.

    ``needs(selected_items)`` names the registered fixtures whose work must be done first.
    """
    _registered[fixture] = _Work(work, needs)


def waits(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture whose work is registered (it waits for that work)."""
    return any(fixture in _registered for fixture in getattr(item, "fixturenames", ()))


def start_needed(items: list[pytest.Item]) -> None:
    """Queue the registered work that ``items`` need, in the order of the first test needing each."""
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            _queue(fixture, items)


def _queue(fixture: str, items: list[pytest.Item]) -> None:
    global _pool
    work = _registered.get(fixture)
    if work is None or fixture in _jobs:
        return
    for first in work.needs(items):
        _queue(first, items)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tests-background")
    _jobs[fixture] = _pool.submit(work.run, items)


def result(request: pytest.FixtureRequest) -> Any:
    """What the work registered for ``request``'s fixture gave (it is queued now if it never was)."""
    _queue(request.fixturename, list(request.session.items))
    return _jobs[request.fixturename].result()


def done(fixture: str) -> Any:
    """What finished work gave, from work queued after it (jobs run in the order they were queued)."""
    return _jobs[fixture].result()


def scratch() -> Path:
    """A folder for the session's background work, removed when the session ends."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="workbench-tests-"))
    return _scratch


def run(args: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run`` that :func:`stop` can kill (output captured as text)."""
    if _stopping.is_set():
        raise RuntimeError("the test session is ending")
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with _lock:
        _running.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    finally:
        with _lock:
            _running.discard(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def stop() -> None:
    """Kill what is still running and remove the scratch folder."""
    _stopping.set()
    with _lock:
        for proc in _running:
            proc.kill()
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)


def warm_up_cache(items: list[pytest.Item]) -> WarmedCache:
    """One cold warm-up of the explain kernels into a new folder (the compile takes long)."""
    folder = scratch() / "warmed" / "numba"
    done = run([sys.executable, "-m", "workbench.explain.warmup"], clean_env(NUMBA_CACHE_DIR=str(folder)), 600)
    files = frozenset(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return WarmedCache(folder=folder, run=done, files=files)


def copy_of_warm_cache(name: str) -> Path:
    """A copy of the warmed compile cache, for processes that may add to it."""
    warmed = done("warmed_cache")
    assert warmed.run.returncode == 0, warmed.run.stderr[-3000:]
    copy = scratch() / name / "numba"
    shutil.copytree(warmed.folder, copy)
    return copy


# Runs each script named after the report file as the command line would (``__main__``, ``--quick``),
# one after the other in one interpreter, so the libraries they share are imported once; writes each
# script's exit status, output and errors to the report (JSON).
_IN_ONE_PROCESS = """
import contextlib, io, json, runpy, sys, traceback

report, results = sys.argv[1], {}
for script in sys.argv[2:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, "--quick"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:  # the status the interpreter would exit with
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    results[script] = {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
with open(report, "w") as f:
    json.dump(results, f)
"""


def quick_benchmark_runs(scripts: list[str]) -> dict[str, dict]:
    """The ``--quick`` runs of ``scripts`` (names under ``benchmarks/``), in one interpreter, by name (none: ``{}``).

    With ``bench_first_call.py`` among them, the warm-up (``warmed_cache``) must be done first.
    """
    import os

    if not scripts:
        return {}
    env = dict(os.environ)
    if "bench_first_call.py" in scripts:  # it warms the compile cache first: a warm copy saves the compile
        env["NUMBA_CACHE_DIR"] = str(copy_of_warm_cache("benchmarks-cache"))
    report = scratch() / "benchmarks.json"
    paths = [str(ROOT / "benchmarks" / name) for name in sorted(scripts)]
    done = run([sys.executable, "-c", _IN_ONE_PROCESS, str(report), *paths], env, 850)
    assert done.returncode == 0 and report.is_file(), done.stderr[-3000:]
    return {Path(script).name: outcome for script, outcome in json.loads(report.read_text()).items()}
