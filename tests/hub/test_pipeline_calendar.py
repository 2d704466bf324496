"""The pipelines service's calendar (injected clock) and schedule store: fast, no hub."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench.hub.pipelines import MAX_SCHEDULES
from workbench.hub.pipelines.calendar import Calendar, check_cron, next_fire
from workbench.hub.pipelines.store import ScheduleError, ScheduleStore, check_name, parse_schedule

T0 = datetime(2026, 3, 2, 5, 58, 0, tzinfo=UTC)  # a Monday


class Clock:
    """A clock the loop's sleep advances; stops the loop at ``end``."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.t, self.end, self.stop = start, end, asyncio.Event()
        self.naps: list[float] = []

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.t += timedelta(seconds=max(seconds, 0.5))
        if self.t >= self.end:
            self.stop.set()


def drive(calendar: Calendar, clock: Clock) -> None:
    asyncio.run(asyncio.wait_for(calendar.run(clock.stop), 10))


def test_fires_at_each_cron_time_and_sleeps_until_then():
    clock = Clock(T0, T0 + timedelta(hours=3, minutes=1))
    cal = Calendar(now=clock.now, sleep=clock.sleep)
    fired: list[tuple[str, datetime, datetime]] = []
    cal.set("hourly", "0 * * * *", lambda key, due: fired.append((key, due, clock.now())))
    cal.set("weekdays-at-7", "30 7 * * 1-5", lambda key, due: fired.append((key, due, clock.now())))
    drive(cal, clock)
    dues = [(k, d.strftime("%H:%M")) for k, d, _ in fired]
    assert dues == [("hourly", "06:00"), ("hourly", "07:00"), ("weekdays-at-7", "07:30"), ("hourly", "08:00")]
    # each fired on time (within the 0.5 s minimum step), never early
    assert all(timedelta(0) <= at - due < timedelta(seconds=1) for _, due, at in fired)
    # the loop slept in long naps (at most 30 s), not a busy wait
    assert len(clock.naps) < 3 * 3600 / 25 and max(clock.naps) <= 30


def test_async_fire_and_a_failing_entry_do_not_stop_the_calendar():
    clock = Clock(T0, T0 + timedelta(minutes=5))
    cal = Calendar(now=clock.now, sleep=clock.sleep)
    seen = []

    async def good(key, due):
        seen.append(due.minute)

    def bad(key, due):
        raise RuntimeError("boom")

    cal.set("good", "* * * * *", good)
    cal.set("bad", "* * * * *", bad)
    drive(cal, clock)
    assert seen == [59, 0, 1, 2]


def test_no_backlog_replay_after_downtime_fires_once(tmp_path):
    state = tmp_path / "calendar.json"
    clock = Clock(T0, T0 + timedelta(minutes=3))
    cal = Calendar(now=clock.now, sleep=clock.sleep, state=state)
    fired: list[datetime] = []
    cal.set("every-minute", "* * * * *", lambda key, due: fired.append(due))
    drive(cal, clock)
    assert [d.minute for d in fired] == [59, 0]
    assert json.loads(state.read_text())["every-minute"]["cron"] == "* * * * *"
    assert state.stat().st_mode & 0o777 == 0o600

    # the service was down for 2 hours (120 fires missed): one catch-up fire at start, then on time
    fired.clear()
    later = T0 + timedelta(hours=2, seconds=10)
    clock = Clock(later, later + timedelta(seconds=125))
    cal = Calendar(now=clock.now, sleep=clock.sleep, state=state)
    cal.set("every-minute", "* * * * *", lambda key, due: fired.append(clock.now()))
    drive(cal, clock)
    assert [f.strftime("%H:%M:%S") for f in fired] == ["07:58:10", "07:59:00", "08:00:00"]

    # a new entry, or one whose cron changed, has nothing to catch up: it starts from now
    fired.clear()
    clock = Clock(later + timedelta(hours=1, seconds=30), later + timedelta(hours=1, seconds=31))
    cal = Calendar(now=clock.now, sleep=clock.sleep, state=state)
    cal.set("every-minute", "*/2 * * * *", lambda key, due: fired.append(due))
    cal.set("fresh", "* * * * *", lambda key, due: fired.append(due))
    drive(cal, clock)
    assert fired == []


def test_replacing_or_removing_an_entry():
    clock = Clock(T0, T0 + timedelta(minutes=2, seconds=30))
    cal = Calendar(now=clock.now, sleep=clock.sleep)
    fired = []
    cal.set("x", "* * * * *", lambda key, due: fired.append("old"))
    cal.set("x", "* * * * *", lambda key, due: fired.append("new"))  # same cron: same next fire, new action
    cal.set("y", "* * * * *", lambda key, due: fired.append("y"))
    cal.remove("y")
    drive(cal, clock)
    assert fired == ["new", "new"]


def test_cron_validation_names_the_problem():
    assert check_cron("0 6 * * 1-5") == "0 6 * * 1-5"
    for bad in ("61 * * * *", "* * * *", "@reboot", "", None, 5, "0 6 * * * *"):
        with pytest.raises(ValueError, match="not a valid cron expression"):
            check_cron(bad)
    assert next_fire("0 6 * * *", T0) == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_schedule_names_and_bodies_are_checked():
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65, "a b", "n.json", "é"):
        with pytest.raises(ScheduleError, match="not allowed"):
            check_name(bad)
    good = {"cron": "0 6 * * *", "notebook": "work/train.ipynb", "parameters": {"n": 3}}
    assert parse_schedule(good)["notebook"] == "work/train.ipynb"
    cases = {
        "outside your home": [{**good, "notebook": "../bob/x.ipynb"}, {**good, "notebook": "/srv/x.ipynb"}],
        "not a valid cron": [{**good, "cron": "every day"}],
        "exactly one of notebook": [{"cron": "0 6 * * *"}, {**good, "pipeline": "p.yaml"}],
        "unknown field": [{**good, "runs_dir": "/srv/runs/bob"}, {**good, "user": "bob"}],
        "not a notebook": [{**good, "notebook": "x.py"}],
        "parameters must be": [{**good, "parameters": [1]}],
        "enabled must be": [{**good, "enabled": "yes"}],
        "JSON object": [[good]],
    }
    for message, bodies in cases.items():
        for body in bodies:
            with pytest.raises(ScheduleError, match=message):
                parse_schedule(body)


def test_store_is_private_per_user_atomic_and_capped(tmp_path):
    store = ScheduleStore(tmp_path / "schedules")
    body = {"cron": "0 6 * * *", "notebook": "train.ipynb"}
    record, created = store.put("ana", "nightly", body)
    assert created and record["user"] == "ana"
    again, created = store.put("ana", "nightly", {**body, "cron": "0 7 * * *"})
    assert not created and again["created"] == record["created"] and store.get("ana", "nightly")["cron"] == "0 7 * * *"
    store.put("bob", "nightly", body)
    assert [s["user"] for s in store.list()] == ["ana", "bob"]
    assert [s["name"] for s in store.list("ana")] == ["nightly"]
    # private files; no temporary files left behind
    folder = tmp_path / "schedules" / "ana"
    assert (tmp_path / "schedules").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in folder.iterdir()] == ["nightly.json"]
    assert (folder / "nightly.json").stat().st_mode & 0o777 == 0o600
    # a file planted in ana's folder claiming to be bob's is not bob's, nor ana's
    (folder / "planted.json").write_text(json.dumps({**record, "user": "bob", "name": "planted"}))
    assert store.get("bob", "planted") is None and store.get("ana", "planted") is None
    assert "planted" not in [s["name"] for s in store.list()]
    # a symlink is never followed
    os.symlink(tmp_path / "schedules" / "bob" / "nightly.json", folder / "linked.json")
    assert store.get("ana", "linked") is None
    assert store.delete("ana", "nightly") and not store.delete("ana", "nightly")
    for i in range(MAX_SCHEDULES):
        store.put("cap", f"s{i}", body)
    with pytest.raises(ScheduleError, match=f"already hold {MAX_SCHEDULES}") as err:
        store.put("cap", "one-more", body)
    assert err.value.status == 409
    store.put("cap", "s0", body)  # replacing one is fine


NOTEBOOK = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "sleeps.ipynb"
TEAM_PIPELINE = """\
name: team-nap
steps:
  nap:
    notebook: sleeps.ipynb
    parameters:
      seconds: 4
schedule: "* * * * *"
"""


@pytest.mark.kernel
def test_calendar_fires_schedules_as_their_owners_and_never_overlaps(request):
    """The service's calendar on an injected clock: real runs, as the owners' accounts when root."""
    from workbench.hub.accounts import ensure_account, lookup_account, private_dir
    from workbench.hub.pipelines import TEAM_OWNER
    from workbench.hub.pipelines.core import Pipelines

    as_root = os.geteuid() == 0
    if as_root:
        request.getfixturevalue("accounts_ready")
    base = Path(tempfile.mkdtemp(prefix="wb-calendar-"))
    base.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    pipelines = base / "pipelines"
    pipelines.mkdir(mode=0o755)
    shutil.copy(NOTEBOOK, pipelines / "sleeps.ipynb")
    (pipelines / "team.yaml").write_text(TEAM_PIPELINE)
    for path in pipelines.iterdir():
        path.chmod(0o644)
    clock = [datetime(2026, 3, 2, 5, 59, 50, tzinfo=UTC)]
    cal = Calendar(now=lambda: clock[0], state=base / "state" / "calendar.json")
    service = Pipelines(
        pipelines_dir=pipelines,
        runs_dir=base / "runs",
        state_dir=base / "state",
        users_dir=base / "users",
        accounts=as_root,
        calendar=cal,
    )
    (base / "runs").mkdir(mode=0o755)
    (base / "users").mkdir(mode=0o711)
    home = service.home("cal-user")
    account = ensure_account("cal-user", home) if as_root else None
    private_dir(home, account, 0o700) if as_root else home.mkdir()
    shutil.copy(NOTEBOOK, home / "sleeps.ipynb")
    if account is not None:
        os.chown(home / "sleeps.ipynb", account.uid, account.gid)
    body = {"cron": "* * * * *", "notebook": "sleeps.ipynb", "parameters": {"seconds": 4}}
    service.store.put("cal-user", "every-minute", body)
    service.load()
    assert sorted(cal.entries) == ["team:team-nap", "user:cal-2d-user/every-minute"]

    async def scenario():
        assert await cal.tick() == []  # 05:59:50: nothing due
        clock[0] = datetime(2026, 3, 2, 6, 0, 0, tzinfo=UTC)
        launches = [launch for _, launch in await cal.tick()]
        assert len(launches) == 2 and all(launch.state == "running" for launch in launches)
        clock[0] = datetime(2026, 3, 2, 6, 1, 0, tzinfo=UTC)
        assert [result for _, result in await cal.tick()] == [None, None]  # both still running: skipped
        return [await service.launcher.wait(launch.id) for launch in launches]

    team, user = sorted(asyncio.run(asyncio.wait_for(scenario(), 240)), key=lambda launch: launch.owner != TEAM_OWNER)
    skipped = [n["note"] for n in service.notes]
    assert len(skipped) == 2 and all(n.startswith("skipped the 2026-03-02T06:01:00+00:00 fire") for n in skipped)
    for launch in (team, user):
        assert launch.state == "succeeded", launch
        assert launch.trigger["kind"] == "schedule" and launch.trigger["by"] == "* * * * *"
    assert (team.owner, user.owner) == (TEAM_OWNER, "cal-user")
    if as_root:
        assert user.uid == account.uid != 0 and team.uid == lookup_account(TEAM_OWNER).uid != 0
