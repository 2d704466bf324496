"""What the pipelines service does, apart from HTTP: declared pipelines, users' schedules, the calendar.

:class:`Pipelines` loads the declared pipelines of a folder, keeps the calendar in step with them and
with the users' schedules, and starts runs (through :class:`~.launches.Launcher`) for a cron time, a
webhook or a user's "run now", each with its trigger.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...profiles import Profile, ProfileSet
from ...runs.layout import owner_dirname
from ..accounts import account_name
from . import TEAM_OWNER
from .calendar import Calendar, next_fire
from .execute import text_overrides
from .launches import Busy, Launch, Launcher, RunAs, prepare_account
from .store import ScheduleError, ScheduleStore, check_name

log = logging.getLogger("workbench.hub.pipelines")
PIPELINE_SUFFIXES = (".yaml", ".yml")
MAX_NOTES = 200


class Refused(Exception):
    """A request the service turns down: ``status`` and a message naming the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Declared:
    """A declared pipeline: its file and the loaded :class:`~workbench.jobs.pipeline.spec.Pipeline`."""

    name: str
    file: Path
    pipeline: Any

    @property
    def webhook_parameters(self) -> list[str] | None:
        """Parameters a webhook payload may set; ``None`` when the pipeline has no ``webhook:``."""
        hook = self.pipeline.webhook
        if hook is None:
            return None
        return sorted(getattr(hook, "parameters", None) or ())


def load_declared(folder: Path | None) -> tuple[dict[str, Declared], list[dict[str, str]]]:
    """The valid pipelines of ``folder`` by name, and an error per file that is not one."""
    found: dict[str, Declared] = {}
    errors: list[dict[str, str]] = []
    if folder is None or not folder.is_dir():
        return found, errors
    from ...jobs.pipeline.spec import load_pipeline

    for path in sorted(p for p in folder.iterdir() if p.suffix in PIPELINE_SUFFIXES and p.is_file()):
        try:
            pipeline = load_pipeline(path)
        except (ValueError, OSError) as exc:
            errors.append({"file": path.name, "error": str(exc)})
            continue
        if pipeline.name in found:
            errors.append(
                {
                    "file": path.name,
                    "error": f"pipeline {pipeline.name!r} is also declared in {found[pipeline.name].file.name}",
                }
            )
            continue
        if pipeline.schedule is None and pipeline.webhook is None:
            errors.append({"file": path.name, "error": "declares neither schedule: nor webhook:, so nothing starts it"})
            continue
        found[pipeline.name] = Declared(pipeline.name, path, pipeline)
    return found, errors


class Pipelines:
    """The service's state and actions.

    Parameters
    ----------
    pipelines_dir
        Folder of declared pipeline files (``None``: none).
    runs_dir
        The runs root.
    state_dir
        The service's private folder (schedules, calendar state, launch logs).
    users_dir
        Parent of the users' homes (as the local spawner lays them out).
    accounts
        Whether runs execute as their owner's system account (the hub runs as root).
    profiles
        The hub's profiles (checked for a schedule's ``profile``).
    calendar
        The calendar (default: a real clock).
    """

    def __init__(
        self,
        *,
        pipelines_dir: str | os.PathLike[str] | None,
        runs_dir: str | os.PathLike[str],
        state_dir: str | os.PathLike[str],
        users_dir: str | os.PathLike[str],
        accounts: bool,
        profiles: ProfileSet | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        state = Path(state_dir)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pipelines_dir = Path(pipelines_dir) if pipelines_dir else None
        self.runs_dir, self.users_dir, self.accounts = Path(runs_dir), Path(users_dir), accounts
        self.profiles = profiles
        self.store = ScheduleStore(state / "schedules")
        self.launcher = Launcher(self.runs_dir, state)
        self.calendar = calendar or Calendar(state=state / "calendar.json")
        self.declared: dict[str, Declared] = {}
        self.errors: list[dict[str, str]] = []
        self.notes: deque[dict[str, Any]] = deque(maxlen=MAX_NOTES)

    # -- declared pipelines -------------------------------------------------------------------
    def load(self) -> None:
        """(Re)load the declared pipelines and every user's schedules into the calendar."""
        self.declared, self.errors = load_declared(self.pipelines_dir)
        for err in self.errors:
            log.warning("pipeline file %s skipped: %s", err["file"], err["error"])
        for key in [k for k in self.calendar.entries if k.startswith("team:")]:
            if key[5:] not in self.declared or self.declared[key[5:]].pipeline.schedule is None:
                self.calendar.remove(key)
        for name, item in self.declared.items():
            if item.pipeline.schedule:
                self.calendar.set(f"team:{name}", item.pipeline.schedule, self._fire_team)
        for record in self.store.list():
            self._calendar_schedule(record)

    def home(self, owner: str) -> Path:
        """Where ``owner``'s runs work: the home the local spawner gives that user."""
        return self.users_dir / (account_name(owner) if self.accounts else owner_dirname(owner))

    async def run_as(self, owner: str) -> RunAs:
        """``owner``'s account, home and runs folder, prepared (created on first use with accounts)."""
        home = self.home(owner)
        if not self.accounts:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            return RunAs(owner, home)
        account = await asyncio.to_thread(prepare_account, owner, home, self.runs_dir)
        return RunAs(owner, home, account)

    def _note(self, key: str, text: str) -> None:
        self.notes.append({"key": key, "note": text, "at": self.calendar.now().isoformat(timespec="seconds")})
        log.info("%s: %s", key, text)

    async def _start(
        self, key: str, name: str, request: dict[str, Any], owner: str, trigger: dict[str, Any], profile: Profile | None
    ) -> Launch:
        run_as = await self.run_as(owner)
        return self.launcher.start(key, name, {**request, "home": str(run_as.home)}, run_as, trigger, profile)

    async def _fire_team(self, key: str, due: datetime) -> Launch | None:
        item = self.declared.get(key[5:])
        if item is None:
            return None
        trigger = {"kind": "schedule", "by": item.pipeline.schedule, "due": due.isoformat()}
        try:
            return await self._start(key, item.name, {"file": str(item.file)}, TEAM_OWNER, trigger, None)
        except Busy as exc:
            self._note(key, f"skipped the {due.isoformat()} fire: {exc}")
            return None

    async def webhook(self, name: str, parameters: Any, by: str) -> Launch:
        """Start declared pipeline ``name`` for a webhook from ``by`` with ``parameters`` (checked first)."""
        item = self.declared.get(name)
        if item is None or item.webhook_parameters is None:
            known = sorted(n for n, d in self.declared.items() if d.webhook_parameters is not None)
            raise Refused(404, f"no pipeline {name!r} with a webhook; these have one: {', '.join(known) or 'none'}")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise Refused(400, 'parameters must be an object of names to values, e.g. {"parameters": {"n": 3}}')
        allowed = item.webhook_parameters
        for key in parameters:
            if key not in allowed:
                raise Refused(
                    400,
                    f"parameter {key!r} may not be set by a webhook of pipeline {name!r}; "
                    f"its webhook allows: {', '.join(allowed) or 'no parameters'}",
                )
        await self._check_team(item, parameters)
        trigger = {"kind": "webhook", "by": by}
        request = {"file": str(item.file), "parameters": parameters}
        try:
            return await self._start(f"team:{name}", name, request, TEAM_OWNER, trigger, None)
        except Busy as exc:
            raise Refused(409, str(exc)) from None

    async def _check_team(self, item: Declared, parameters: dict[str, Any]) -> None:
        """Validate a webhook's parameters like ``-p`` (the declared file is the service's own to read)."""
        from ...jobs.pipeline.spec import load_pipeline

        try:
            await asyncio.to_thread(load_pipeline, item.file, text_overrides(parameters))
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        except OSError as exc:
            raise Refused(500, f"pipeline file {item.file.name} cannot be read: {exc.strerror or exc}") from None

    # -- users' schedules -----------------------------------------------------------------------
    def _profile(self, user_groups: list[str] | None, slug: str | None) -> Profile | None:
        if self.profiles is None:
            return None
        usable = self.profiles.for_groups(user_groups or [])
        if slug is None:
            return next((p for p in usable if p.default), usable[0] if usable else None)
        for p in usable:
            if p.slug == slug:
                return p
        raise Refused(
            400, f"profile {slug!r} is not one you may use; choose one of {', '.join(p.slug for p in usable)}"
        )

    def schedule_key(self, user: str, name: str) -> str:
        """The calendar key of ``user``'s schedule ``name``."""
        return f"user:{owner_dirname(user)}/{name}"

    def _calendar_schedule(self, record: dict[str, Any]) -> None:
        key = self.schedule_key(record["user"], record["name"])
        if record.get("enabled", True):
            self.calendar.set(key, record["cron"], self._fire_user)
        else:
            self.calendar.remove(key)

    def describe(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored schedule as the API shows it (with its next fire and last launch)."""
        key = self.schedule_key(record["user"], record["name"])
        entry = self.calendar.entries.get(key)
        last = self.launcher.launches.get(self.launcher.active.get(key, ""))
        return {
            **record,
            "next_fire": entry.next.isoformat() if entry else None,
            "last": {"id": last.id, "state": last.state, "fired": last.started, "run": last.run} if last else None,
        }

    async def put_schedule(self, user: str, name: str, body: Any, groups: list[str] | None) -> tuple[dict, bool]:
        """Check ``body`` (fields here, files and parameters as ``user``) and store it; ``(schedule, created)``."""
        from .store import parse_schedule

        check_name(name)
        fields = parse_schedule(body)
        profile = self._profile(groups, fields["profile"])
        fields["profile"] = profile.slug if profile else None
        request = {k: fields[k] for k in ("notebook", "pipeline", "parameters") if k in fields}
        request.update(name=name, profile=fields["profile"])
        answer = await self.launcher.check(request, await self.run_as(user), profile)
        if not answer.get("ok"):
            raise ScheduleError(f"schedule {name!r} does not validate: {answer.get('error')}")
        record, created = self.store.put(user, name, fields)
        self._calendar_schedule(record)
        return self.describe(record), created

    def delete_schedule(self, user: str, name: str) -> bool:
        """Remove ``user``'s schedule ``name`` from the store and the calendar."""
        gone = self.store.delete(user, name)
        if gone:
            self.calendar.remove(self.schedule_key(user, name))
        return gone

    async def _fire_user(self, key: str, due: datetime) -> Launch | None:
        folder, _, name = key[5:].partition("/")
        record = next((r for r in self.store.list() if owner_dirname(r["user"]) == folder and r["name"] == name), None)
        if record is None or not record.get("enabled", True):
            self.calendar.remove(key)
            return None
        try:
            return await self.launch_schedule(
                record, {"kind": "schedule", "by": record["cron"], "due": due.isoformat()}
            )
        except Busy as exc:
            self._note(key, f"skipped the {due.isoformat()} fire: {exc}")
            return None

    async def launch_schedule(self, record: dict[str, Any], trigger: dict[str, Any]) -> Launch:
        """Start a run of stored schedule ``record`` as its user (raises :class:`Busy`)."""
        user, name = record["user"], record["name"]
        request = {k: record[k] for k in ("notebook", "pipeline", "parameters") if k in record}
        profile = None
        if self.profiles is not None and record.get("profile"):
            profile = next((p for p in self.profiles.profiles if p.slug == record["profile"]), None)
        request.update(name=name, profile=record.get("profile"))
        return await self._start(self.schedule_key(user, name), name, request, user, trigger, profile)

    def status(self) -> dict[str, Any]:
        """The declared pipelines, load errors, schedules count and notes (``GET api/pipelines``)."""
        now = self.calendar.now()
        pipelines = []
        for name, item in sorted(self.declared.items()):
            schedule = item.pipeline.schedule
            hook = item.webhook_parameters
            pipelines.append(
                {
                    "name": name,
                    "file": item.file.name,
                    "schedule": schedule,
                    "next_fire": next_fire(schedule, now).isoformat() if schedule else None,
                    "webhook": {"parameters": hook} if hook is not None else None,
                    "running": (r.id if (r := self.launcher.running(f"team:{name}")) else None),
                }
            )
        return {"pipelines": pipelines, "errors": list(self.errors), "notes": list(self.notes)}
