"""The pipelines service's launches without a hub: kept across a restart, linked to their run by id, hostile records."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from workbench.hub.pipelines.launches import Launcher, RunAs
from workbench.runs import new_pipeline_dir
from workbench.runs.layout import owner_dirname

ADD = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline" / "add.ipynb"
OWNER = "launch-user"


def _launch(launcher: Launcher, home: Path, request: dict) -> dict:
    async def scenario():
        launch = launcher.start(
            "user:x/once", "once", {**request, "home": str(home)}, RunAs(OWNER, home), {"kind": "user", "by": OWNER}
        )
        return await launcher.wait(launch.id)

    return asyncio.run(asyncio.wait_for(scenario(), 180))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_launches_outlive_the_service_and_hostile_records_are_skipped(tmp_path):
    state, runs = tmp_path / "state", tmp_path / "runs"
    launcher = Launcher(runs, state)
    done = _launch(launcher, tmp_path, {"file": str(tmp_path / "missing.yaml")})
    assert done.state == "failed" and "missing.yaml not found" in done.error and done.pid
    record = state / "launches" / f"{done.id}.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and json.loads(record.read_text()) == done.to_dict()

    folder = state / "launches"
    good = done.to_dict()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({**good, "id": "20260101-000000-aaaaaaaa"}))
    (folder / "20260101-000000-aaaaaaaa.json").symlink_to(elsewhere)
    (folder / "20260101-000001-bbbbbbbb.json").write_text(" " * (1 << 20))
    (folder / "20260101-000002-cccccccc.json").write_text("{not json")
    os.mkfifo(folder / "20260101-000003-dddddddd.json")
    (folder / "20260101-000004-eeeeeeee.json").write_text("[]")
    for n, (field, value) in enumerate(
        {"state": "exploded", "run": "../../etc", "pid": "1", "trigger": [], "started": "yesterday"}.items()
    ):
        bad_id = f"20260101-00001{n}-ffffff0{n}"
        (folder / f"{bad_id}.json").write_text(json.dumps({**good, "id": bad_id, field: value}))
    (folder / "20260101-000020-12345678.json").write_text(json.dumps(good))  # a record under another id's name

    restarted = Launcher(runs, state)
    assert list(restarted.launches) == [done.id]
    assert restarted.launches[done.id].to_dict() == done.to_dict()
    assert restarted.active == {"user:x/once": done.id} and restarted.running("user:x/once") is None


@pytest.mark.kernel
def test_a_launch_finds_its_run_by_its_id_and_a_restart_settles_it(tmp_path):
    state, runs = tmp_path / "state", tmp_path / "runs"
    shutil.copy(ADD, tmp_path / "add.ipynb")
    (tmp_path / "p.yaml").write_text("name: once\nsteps:\n  add: {notebook: add.ipynb, parameters: {x: 2}}\n")
    launcher = Launcher(runs, state)
    done = _launch(launcher, tmp_path, {"file": str(tmp_path / "p.yaml")})
    assert done.state == "succeeded" and done.run, done
    owner = runs / owner_dirname(OWNER)
    (real,) = [p for p in owner.iterdir() if p.name.endswith(done.run)]
    recorded = json.loads((real / "pipeline.json").read_text())
    assert recorded["trigger"] == {"kind": "user", "by": OWNER, "id": done.id}

    # a newer record of the same owner claiming the launch's process (a pid at another depth, or
    # reused) does not take the link: only the run that carries the launch's id does
    decoy, decoy_id = new_pipeline_dir(runs, "decoy", owner=OWNER)
    decoy.rename(owner / f"29991231-235959-decoy-{decoy_id}")
    (owner / f"29991231-235959-decoy-{decoy_id}" / "pipeline.json").write_text(
        json.dumps(
            {
                **recorded,
                "run_id": decoy_id,
                "pid": done.pid,
                "host": platform.node(),
                "trigger": {"kind": "user", "by": OWNER, "id": "other"},
            }
        )
    )
    done.run = None
    assert launcher.find_run(done) == real.name.rsplit("-", 1)[1]

    # the service stopped while the launch ran, and its process ended since: settled from the run
    running = {**done.to_dict(), "state": "running", "finished": None, "run": None, "pid": _dead_pid()}
    (state / "launches" / f"{done.id}.json").write_text(json.dumps(running))
    lost_id = "20260101-000000-0badf00d"
    lost = {**running, "id": lost_id, "key": "user:x/lost", "trigger": {"kind": "user", "by": OWNER, "id": lost_id}}
    (state / "launches" / f"{lost_id}.json").write_text(json.dumps(lost))
    restarted = Launcher(runs, state)
    assert restarted.running("user:x/once") is None and restarted.running("user:x/lost") is None
    again, gone = restarted.launches[done.id], restarted.launches[lost_id]
    assert (again.state, again.run) == ("succeeded", done.run)
    assert gone.state == "interrupted" and gone.run is None and "restarted" in gone.error
    assert json.loads((state / "launches" / f"{lost_id}.json").read_text())["state"] == "interrupted"
