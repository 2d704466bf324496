"""JupyterLab as a new user finds it, end to end: real hub, real servers, real kernels, Debian's chromium.

One flow, screenshot by screenshot (saved under the test's tmp folder and, with
``$WORKBENCH_SCREENSHOTS`` set, copied there): sign up, spawn, the starter notebooks in the home,
``train.ipynb`` opened, a notebook job with a wrong-type parameter refused, then created with a
changed parameter on a chosen profile, completed, its report opened; ``workbench runs`` lists the
run with its typed parameters; a job started before the server is stopped finishes without it.
"""

from __future__ import annotations

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
    large = hub.profiles.get("cpu-large")
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
            shot("home-with-starter-notebooks")

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
        except Exception:
            shot("failure")
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
    token = hub.admin.api("POST", f"/users/{user}/tokens", json={"note": "lab test"})["token"]
    base = f"{hub.url}/user/{user}"
    headers = {"Authorization": f"token {token}"}
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
