"""JupyterLab as a new user finds it, end to end: real hub, real servers, real kernels, Debian's chromium.

One flow, screenshot by screenshot (saved under the test's tmp folder and, with
``$WORKBENCH_SCREENSHOTS`` set, copied there): sign up, spawn, the starter notebooks in the home,
``train.ipynb`` opened, a notebook job with a wrong-type parameter refused, then created with a
changed parameter on a chosen profile, completed, its report opened; ``workbench runs`` lists the
run with its typed parameters; a job started before the server is stopped finishes without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests
from conftest import require_tool

from tests.hub.test_local import CHROMIUM_FLAGS, PASSWORD, hub  # noqa: F401 (the module's hub fixture)
from workbench.runs import RUNS_ENV, RunRecord
from workbench.runs.layout import owner_dir

pytestmark = [pytest.mark.hub, pytest.mark.kernel, pytest.mark.browser, pytest.mark.slow]


class Shots:
    """Numbered screenshots of one flow, also copied to ``$WORKBENCH_SCREENSHOTS``."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        if os.environ.get("WORKBENCH_SCREENSHOTS"):
            target = Path(os.environ["WORKBENCH_SCREENSHOTS"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)
        return path


def _wait(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(hub, user: str) -> list[RunRecord]:  # noqa: F811
    folder = owner_dir(hub.runs, user)
    return [RunRecord.read(p.parent) for p in folder.glob("*/status.json")] if folder.is_dir() else []


def _api_headers(hub, user: str) -> dict[str, str]:  # noqa: F811
    """Request headers with a new API token of ``user`` (made by the hub's admin)."""
    token = hub.admin.api("POST", f"/users/{user}/tokens", json={"note": "lab test"})["token"]
    return {"Authorization": f"token {token}"}


def _fill_job(page, name: str, profile: str, params: dict[str, str]) -> None:
    """Fill jupyter-scheduler's Create Job form (already open); React re-renders between steps."""
    page.locator(".MuiSelect-select").first.click()
    page.locator("li[role=option]", has_text=profile).click()
    for i, (key, value) in enumerate(params.items()):
        field = page.locator(f"input[name='parameter-{i}-name']")
        for _ in range(10):
            page.click("button[title='Add new parameter']")
            try:
                field.wait_for(timeout=2000)
                break
            except Exception:
                continue
        field.fill(key)
        page.fill(f"input[name='parameter-{i}-value']", value)
    page.fill("#jp-create-job-jobName", name)
    assert page.input_value("#jp-create-job-jobName") == name


def _slow_notebook(seconds: int) -> dict:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"seconds: int = {seconds}")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        cell,
        nbformat.v4.new_code_cell(
            "import time\ntime.sleep(seconds)\nimport workbench\nworkbench.record('slept', seconds)"
        ),
    ]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return json.loads(nbformat.writes(nb))


def test_new_user_runs_a_notebook_job_from_jupyterlab(hub, tmp_path):  # noqa: F811 (fixture)
    chromium = require_tool("chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    user = "nora"
    large, small = hub.profiles.get("cpu-large"), hub.profiles.get("cpu-small")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(90_000)
        shot = Shots(page, tmp_path / "screenshots")
        try:
            page.goto(f"{hub.url}/hub/signup")
            page.fill("#username_input", user)
            page.fill("#password_input", PASSWORD)
            page.fill("#password_confirmation_input", PASSWORD)
            shot("signup")
            page.click("#signup_submit, input[type=submit], button[type=submit]")
            hub.admin.authorize(user)
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", user)
            page.fill("#password_input", PASSWORD)
            page.click("#login_submit, input[type=submit], button[type=submit]")
            page.goto(f"{hub.url}/hub/spawn")
            page.check("#profile-cpu-small")
            page.click("#spawn_form button[type=submit]")
            page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
            listing = page.locator(".jp-DirListing-content")
            for name in ("Start here.ipynb", "train.ipynb", "explain.ipynb", "stack.ipynb", "submission.ipynb"):
                listing.get_by_text(name, exact=True).wait_for()
            page.wait_for_timeout(3000)  # the news question would show by now
            assert page.get_by_text("official Jupyter news").count() == 0
            for card in ("Team reports", "My runs", "GPU and culling", "Jobs"):
                page.locator(".jp-LauncherCard", has_text=card).first.wait_for()
            shot("home-with-starter-notebooks")
            with page.context.expect_page() as opened:
                page.locator(".jp-LauncherCard", has_text="My runs").click()
            runs_page = opened.value
            runs_page.wait_for_url(f"**/services/reports/?owner={user}")
            runs_page.close()

            page.locator(".jp-DirListing-item", has_text="train.ipynb").dblclick()
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            shot("train-notebook")
            page.click("[data-command='scheduling:create-from-notebook']")
            page.locator("#jp-create-job-jobName").wait_for()
            _fill_job(page, "train-logreg", large.display_name, {"model": "logreg", "n_splits": "three"})
            shot("create-job-form")
            page.get_by_role("button", name="Create", exact=True).click()
            error = page.locator(".MuiAlert-message", has_text="n_splits")
            error.wait_for()
            assert "int" in error.inner_text(), error.inner_text()
            shot("wrong-type-refused")
            assert _runs(hub, user) == []  # nothing started
            page.fill("input[name='parameter-1-value']", "3")
            page.get_by_role("button", name="Create", exact=True).click()
            status = page.locator("tr", has_text="train-logreg").get_by_text("Completed", exact=True)
            deadline = time.monotonic() + 240
            while not status.count() and time.monotonic() < deadline:
                page.get_by_role("button", name="Reload").click()
                page.wait_for_timeout(2000)
            assert status.count(), "the job did not complete"
            shot("job-completed")
            page.click("button[title='Download output files for \"train-logreg\"']")
            report = page.get_by_role("link", name="Report (HTML)")
            deadline = time.monotonic() + 60
            while not report.count() and time.monotonic() < deadline:
                page.get_by_role("button", name="Reload").click()
                page.wait_for_timeout(1000)
            shot("job-outputs")
            report.first.click()
            frame = page.frame_locator(".jp-HTMLViewer iframe, iframe").last
            frame.locator("h1").first.wait_for()
            page.wait_for_timeout(1000)
            shot("output-report")

            page.get_by_role("tab", name="train.ipynb").click()
            page.click("[data-command='scheduling:create-from-notebook']")
            page.locator("#jp-create-job-jobName").wait_for()
            _fill_job(page, "nightly-train", small.display_name, {"model": "logreg", "n_splits": "3"})
            page.check("input[name=createType][value=JobDefinition]")
            page.locator(".MuiSelect-select").nth(1).click()
            page.locator("li[role=option]", has_text="Custom schedule").click()
            page.fill("input[name=schedule]", "0 3 1 1 *")
            shot("create-schedule-form")
            page.get_by_role("button", name="Create", exact=True).click()
            page.get_by_role("tab", name="Job Definitions").click() if page.get_by_role(
                "tab", name="Job Definitions"
            ).count() else None
            page.get_by_text("nightly-train").first.wait_for()
            shot("schedule-listed")

            page.goto(f"{hub.url}/user/{user}/workbench/status")
            page.locator("#verdict").wait_for()
            assert "idle" in page.locator("#verdict").inner_text() and "cpu-small" in page.content()
            shot("workbench-status")
        except Exception:
            shot("failure")
            print("alerts:", page.locator(".MuiAlert-message").all_inner_texts())
            print("hub log:", hub.log.read_text()[-4000:])
            raise
        finally:
            browser.close()

    runs = _runs(hub, user)
    assert len(runs) == 1 and runs[0].state == "succeeded", runs
    assert runs[0].params["model"] == "logreg" and runs[0].params["n_splits"] == 3
    listed = subprocess.run(
        [sys.executable, "-m", "workbench", "runs", "--name", "train-logreg", "--columns", "name,state,model,n_splits"],
        env={**os.environ, RUNS_ENV: str(hub.runs)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.splitlines()[-1].split() == ["train-logreg", "succeeded", "logreg", "3"], listed.stdout

    # a job started before the server stops finishes without it
    base = f"{hub.url}/user/{user}"
    headers = _api_headers(hub, user)
    requests.put(
        f"{base}/api/contents/slow.ipynb",
        json={"type": "notebook", "content": _slow_notebook(8)},
        headers=headers,
        timeout=30,
    ).raise_for_status()
    created = requests.post(
        f"{base}/scheduler/jobs",
        json={
            "input_uri": "slow.ipynb",
            "runtime_environment_name": "cpu-small",
            "name": "slow",
            "output_formats": ["ipynb", "html"],
        },
        headers=headers,
        timeout=60,
    )
    created.raise_for_status()
    _wait(lambda: any(r.name == "slow" for r in _runs(hub, user)), 60, "the slow run to start", 0.3)
    hub.admin.api("DELETE", f"/users/{user}/server")
    assert hub.wait_gone(user)
    slow = _wait(
        lambda: [r for r in _runs(hub, user) if r.name == "slow" and r.state != "running"], 120, "the slow run to end"
    )
    assert slow[0].state == "succeeded" and slow[0].metrics["slept"] == 8

    # the schedule the dialog created is kept by the hub's pipelines service
    schedules = requests.get(f"{hub.url}/services/pipelines/api/schedules/{user}", headers=headers, timeout=30)
    schedules.raise_for_status()
    (stored,) = schedules.json()["schedules"]
    assert stored["cron"] == "0 3 1 1 *" and stored["notebook"] == "train.ipynb" and stored["profile"] == "cpu-small"
    assert stored["parameters"]["model"] == "logreg" and stored["parameters"]["n_splits"] in (3, "3")


def test_a_schedule_from_jupyterlab_fires_and_produces_a_run(hub, tmp_path):  # noqa: F811 (fixture)
    """A job definition with a schedule, made through the server's scheduler API, fires on an injected clock."""
    if importlib.util.find_spec("workbench.jobs.pipeline.executor") is None:
        pytest.skip("the pipelines executor (workbench.jobs.pipeline.executor) is not part of this build")
    user = "omar"
    session = hub.user(user)
    session.spawn(user, "cpu-small")
    hub.admin.wait_ready(user)
    headers = _api_headers(hub, user)
    created = requests.post(
        f"{hub.url}/user/{user}/scheduler/job_definitions",
        json={
            "input_uri": "train.ipynb",
            "runtime_environment_name": "cpu-small",
            "name": "nightly",
            "parameters": {"model": "logreg", "n_splits": "3"},
            "schedule": "0 3 1 1 *",
            "timezone": "UTC",
            "output_formats": ["ipynb", "html"],
        },
        headers=headers,
        timeout=60,
    )
    created.raise_for_status()
    listed = requests.get(f"{hub.url}/user/{user}/scheduler/job_definitions", headers=headers, timeout=30).json()
    assert [d["name"] for d in listed["job_definitions"]] == ["nightly"]
    (stored,) = requests.get(f"{hub.url}/services/pipelines/api/schedules/{user}", headers=headers, timeout=30).json()[
        "schedules"
    ]
    hub.admin.api("DELETE", f"/users/{user}/server")  # the schedule does not need the server
    assert hub.wait_gone(user)
    fired = _fire_on_injected_clock(hub, user, stored["name"], tmp_path)
    assert fired.state == "succeeded", fired
    (run,) = _runs(hub, user)
    assert run.state == "succeeded" and run.params["model"] == "logreg" and run.params["n_splits"] == 3


def _fire_on_injected_clock(hub, user: str, name: str, tmp_path: Path):  # noqa: F811
    """Load the service's stored schedules into a calendar whose clock the test sets, and tick past 03:00."""
    import asyncio
    from datetime import UTC, datetime

    from workbench.hub.pipelines.calendar import Calendar
    from workbench.hub.pipelines.core import Pipelines
    from workbench.hub.pipelines.setup import STATE_SUBDIR

    state = tmp_path / "pipelines-state"
    state.mkdir(mode=0o700)
    shutil.copytree(hub.state / STATE_SUBDIR / "schedules", state / "schedules")
    clock = [datetime(2027, 1, 1, 2, 59, 30, tzinfo=UTC)]
    calendar = Calendar(now=lambda: clock[0], state=state / "calendar.json")
    service = Pipelines(
        pipelines_dir=None,
        runs_dir=hub.runs,
        state_dir=state,
        users_dir=hub.users,
        accounts=os.geteuid() == 0,
        profiles=hub.profiles,
        calendar=calendar,
    )
    service.load()
    key = service.schedule_key(user, name)
    assert key in calendar.entries

    async def scenario():
        assert await calendar.tick() == []  # 02:59:30: not yet
        clock[0] = datetime(2027, 1, 1, 3, 0, 0, tzinfo=UTC)
        (fired,) = [launch for entry, launch in await calendar.tick() if entry == key]
        return await service.launcher.wait(fired.id)

    return asyncio.run(asyncio.wait_for(scenario(), 240))
