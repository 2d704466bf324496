"""Launch pipeline runs as child processes of the service, each as its owner's system account.

A launch is ``python -m workbench.hub.pipelines.execute run`` with the request on its standard input
and its result (the pipeline run, its state) as the last line of its standard output; its log goes
to ``<state>/launches/<id>.log``, and the launch itself (what ``GET api/runs/<id>`` answers) to
``<state>/launches/<id>.json``, rewritten atomically at each change and read back at start (through
the runs' safe readers: no symlink, size-capped, every field checked), so a restarted service still
knows its past launches. A launch finds its pipeline run by its id, which it passes down as the
run's ``trigger["id"]``; a launch still marked running when the service starts is settled from its
pipeline run once its process is gone. With per-user accounts (the hub runs as root) the child drops to
the owner's account before anything runs (``setgid``, ``setgroups``, ``setuid``), in the owner's
home, with ``$WORKBENCH_RUNS_DIR`` the runs root and ``$JUPYTERHUB_USER`` the owner, so the run lands
in the owner's runs folder and nowhere else. The child is in its own session: stopping the owner's
notebook server does not stop it. :meth:`Launcher.check` runs the same child in ``check`` mode, so
that a user's files are only ever read by that user's account.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import resource
import secrets
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..._checks import is_whole_number
from ..._io import atomic_write_json
from ...profiles import Profile, profile_env
from ...runs.layout import RUNS_ENV, owner_dir, owner_dirname
from ...runs.pipelines import is_pipeline_folder, read_pipeline_record
from ...runs.safe_open import list_dir, read_json
from ..accounts import Account, ensure_account, private_dir

KEEP_LAUNCHES = 500
MAX_RESULT_BYTES = 64 * 1024
CHECK_TIMEOUT = 120.0
EARLY_RUN_WAIT = 20.0
LAUNCH_STATES = ("running", "succeeded", "failed", "interrupted")
LAUNCH_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
RUN_ID = re.compile(r"p[0-9a-f]{6}")
MAX_ERROR_CHARS = 4000
log = logging.getLogger("workbench.hub.pipelines")


class Busy(RuntimeError):
    """The previous run of the same pipeline or schedule is still running."""

    def __init__(self, launch: Launch) -> None:
        super().__init__(f"{launch.key}: its previous run {launch.id} (started {launch.started}) is still running")
        self.launch = launch


@dataclass(frozen=True)
class RunAs:
    """Whose run: the owner's name, working directory and system account (``None``: this process's user)."""

    owner: str
    home: Path
    account: Account | None = None


@dataclass
class Launch:
    """One started run and what became of it."""

    id: str
    key: str
    pipeline: str
    owner: str
    trigger: dict[str, Any]
    started: str
    state: str = "running"
    finished: str | None = None
    returncode: int | None = None
    run: str | None = None
    error: str | None = None
    uid: int | None = None
    pid: int | None = None
    _task: Any = field(default=None, repr=False)

    @property
    def started_folder(self) -> str:
        """The folder-name prefix (``YYYYmmdd-HHMMSS``) of runs started no earlier than this launch."""
        return datetime.fromisoformat(self.started).strftime("%Y%m%d-%H%M%S")

    def to_dict(self) -> dict[str, Any]:
        """The launch as JSON data (what ``GET api/runs/<id>`` answers)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Launch:
        """The launch :meth:`to_dict` wrote; :class:`ValueError` naming the first field that is not as written."""
        checks: dict[str, Any] = {
            "id": lambda v: isinstance(v, str) and LAUNCH_ID.fullmatch(v),
            "key": _text,
            "pipeline": _text,
            "owner": _text,
            "trigger": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
            "started": _timestamp,
            "state": lambda v: v in LAUNCH_STATES,
            "finished": lambda v: v is None or _timestamp(v),
            "returncode": _optional_int,
            "run": lambda v: v is None or (isinstance(v, str) and RUN_ID.fullmatch(v)),
            "error": lambda v: v is None or isinstance(v, str),
            "uid": _optional_int,
            "pid": _optional_int,
        }
        for name, check in checks.items():
            if name not in data or not check(data[name]):
                raise ValueError(f"field {name!r} is missing or malformed")
        return cls(**{name: data[name] for name in checks})


def _text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000


def _optional_int(value: Any) -> bool:
    return value is None or is_whole_number(value, low=None)


def _timestamp(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def prepare_account(owner: str, home: Path, runs_dir: Path) -> Account:
    """``owner``'s system account, 0700 home and 0755 runs folder, created on first use (as root)."""
    account = ensure_account(owner, home)
    private_dir(home, account, 0o700)
    private_dir(owner_dir(runs_dir, owner), account, 0o755)
    return account


class Launcher:
    """Starts and follows runs; at most one running launch per key."""

    def __init__(self, runs_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str]) -> None:
        self.runs_dir = Path(runs_dir)
        self.logs = Path(state_dir) / "launches"
        self.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.launches: dict[str, Launch] = {}
        self._order: deque[str] = deque()
        self.active: dict[str, str] = {}
        self._saving = threading.Lock()  # find_run saves from a worker thread too: snapshot and write as one
        self._restore()

    def _restore(self) -> None:
        """Read back the launches of earlier service processes, oldest first (malformed files are skipped)."""
        names = sorted(n for n, is_dir in list_dir(self.logs) if not is_dir and n.endswith(".json"))
        for name in names[-KEEP_LAUNCHES:]:
            try:
                launch = Launch.from_dict(read_json(self.logs, [name], dict, MAX_RESULT_BYTES))
                if f"{launch.id}.json" != name:
                    raise ValueError(f"it holds launch {launch.id!r}")
            except (OSError, ValueError) as exc:
                log.warning("launch record %s skipped: %s", name, exc)
                continue
            self.launches[launch.id] = launch
            self._order.append(launch.id)
            self.active[launch.key] = launch.id

    def save(self, launch: Launch) -> None:
        """Write ``launch`` to its record (atomically, private to the service); a failure is logged, not raised."""
        try:
            with self._saving:
                atomic_write_json(self.logs / f"{launch.id}.json", launch.to_dict(), mode=0o600, default=str)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("launch %s could not be saved: %s", launch.id, exc)

    def running(self, key: str) -> Launch | None:
        """The launch of ``key`` that is still running, if any."""
        launch = self.launches.get(self.active.get(key, ""))
        if launch is not None and launch.state == "running" and launch._task is None:
            self.settle(launch)  # started by an earlier service process: is it still going?
        return launch if launch is not None and launch.state == "running" else None

    def refresh(self, launch: Launch) -> Launch:
        """``launch`` with its pipeline run found and, if an earlier service process started it, its end settled."""
        self.settle(launch)
        self.find_run(launch)
        return launch

    def settle(self, launch: Launch) -> None:
        """End a launch an earlier service process started, once its process is gone, from its pipeline run."""
        if launch.state != "running" or launch._task is not None or _alive(launch.pid):
            return
        self.find_run(launch)
        record = self._run_record(launch) if launch.run else None
        state = record.get("state") if record else None
        if state in ("succeeded", "failed"):
            launch.state, launch.error = state, None if state == "succeeded" else "a step failed"
        else:
            launch.state = "interrupted"
            launch.error = "the service restarted, and the run's process ended without a finished pipeline run"
        launch.finished = launch.finished or _stamp()
        self.save(launch)

    def _env(self, run_as: RunAs, profile: Profile | None) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
            RUNS_ENV: str(self.runs_dir),
            "JUPYTERHUB_USER": run_as.owner,
            "HOME": str(run_as.home),
            "USER": run_as.account.name if run_as.account else os.environ.get("USER", ""),
            "PYTHONUNBUFFERED": "1",
        }
        for key in ("PYTHONPATH", "LANG", "LC_ALL", "TZ"):
            if os.environ.get(key):
                env[key] = os.environ[key]
        env.update(profile_env(profile) if profile is not None else {})
        return env

    def _preexec(self, run_as: RunAs, profile: Profile | None) -> Any:
        from jupyterhub.spawner import set_user_setuid

        become = set_user_setuid(run_as.account.name, chdir=False) if run_as.account else None
        home = str(run_as.home)
        limit = profile.mem_limit_bytes if profile is not None and not profile.gpus else None

        def preexec() -> None:
            if become is not None:
                become()  # never runs a user's pipeline as root
            os.chdir(home)
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return preexec

    async def _spawn(
        self, mode: str, request: dict[str, Any], run_as: RunAs, profile: Profile | None, log: Any
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workbench.hub.pipelines.execute",
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=self._env(run_as, profile),
            preexec_fn=self._preexec(run_as, profile),
            start_new_session=True,
            close_fds=True,
        )

    async def check(self, request: dict[str, Any], run_as: RunAs, profile: Profile | None = None) -> dict[str, Any]:
        """Validate ``request`` as its owner (``execute check``); the child's answer (``ok``, ``error``, ...)."""
        proc = await self._spawn("check", request, run_as, profile, asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), CHECK_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return {"ok": False, "error": f"checking took longer than {CHECK_TIMEOUT:.0f} s"}
        return _result(out, err, proc.returncode)

    def start(
        self,
        key: str,
        pipeline: str,
        request: dict[str, Any],
        run_as: RunAs,
        trigger: dict[str, Any],
        profile: Profile | None = None,
    ) -> Launch:
        """Start a run of ``request`` as ``run_as``; :class:`Busy` when ``key`` is still running."""
        current = self.running(key)
        if current is not None:
            raise Busy(current)
        launch_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
        trigger = {**trigger, "id": launch_id}
        launch = Launch(launch_id, key, pipeline, run_as.owner, trigger, _stamp())
        self.launches[launch_id] = launch
        self._order.append(launch_id)
        self.active[key] = launch_id
        while len(self._order) > KEEP_LAUNCHES:
            old = self.launches.get(self._order[0])
            if old is not None and old.state == "running":
                break
            gone = self._order.popleft()
            self.launches.pop(gone, None)
            (self.logs / f"{gone}.json").unlink(missing_ok=True)
        self.save(launch)
        launch._task = asyncio.ensure_future(self._follow(launch, {**request, "trigger": trigger}, run_as, profile))
        return launch

    async def _follow(self, launch: Launch, request: dict[str, Any], run_as: RunAs, profile: Profile | None) -> None:
        log_path = self.logs / f"{launch.id}.log"
        try:
            with open(log_path, "ab") as log:
                os.chmod(log_path, 0o600)
                proc = await self._spawn("run", request, run_as, profile, log)
                launch.pid = proc.pid
                self.save(launch)
                out, _ = await proc.communicate(json.dumps(request).encode())
            result = _result(out, b"", proc.returncode)
        except Exception as exc:  # the run could not even start: say why in its launch
            result, proc = {"ok": False, "error": f"could not start the run: {exc}"}, None
        launch.returncode = proc.returncode if proc is not None else None
        run, uid, error = result.get("run"), result.get("uid"), result.get("error")
        launch.run = run if isinstance(run, str) and RUN_ID.fullmatch(run) else launch.run
        launch.uid = uid if _optional_int(uid) else None
        launch.error = str(error)[:MAX_ERROR_CHARS] if error is not None else None
        state = result.get("state") or ("succeeded" if result.get("ok") else "failed")
        launch.state = state if state in LAUNCH_STATES else "failed"
        launch.finished = _stamp()
        self.save(launch)

    def find_run(self, launch: Launch) -> str | None:
        """The id of the pipeline run ``launch`` started, read from the owner's runs folder.

        The run is the one whose ``trigger["id"]`` is the launch's id (the launcher passes it down
        with the request), not the one of a process id: the pipeline may run in a process below
        the launched one, and process ids are reused.
        """
        if launch.run is not None:
            return launch.run
        record = self._run_record(launch)
        if record is not None:
            launch.run = str(record["run_id"])
            self.save(launch)
        return launch.run

    def _run_record(self, launch: Launch) -> dict[str, Any] | None:
        """``pipeline.json`` of ``launch``'s run (newest first among the owner's runs since it started)."""
        folder = owner_dirname(launch.owner)
        with contextlib.suppress(OSError):
            for name, is_dir in sorted(list_dir(self.runs_dir, [folder]), reverse=True):
                if not (is_dir and is_pipeline_folder(name) and name >= launch.started_folder):
                    continue
                with contextlib.suppress(OSError, ValueError):
                    record = read_pipeline_record(self.runs_dir, folder, name)
                    trigger = record.get("trigger")
                    run_id = record.get("run_id")
                    if isinstance(trigger, dict) and trigger.get("id") == launch.id and isinstance(run_id, str):
                        if launch.run is None or launch.run == run_id:
                            return record
        return None

    async def early_run(self, launch: Launch, timeout: float = EARLY_RUN_WAIT) -> str | None:
        """Wait (up to ``timeout`` s) until ``launch``'s pipeline run exists; its id, or ``None``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while launch.state == "running" and asyncio.get_running_loop().time() < deadline:
            if await asyncio.to_thread(self.find_run, launch):
                break
            await asyncio.sleep(0.2)
        return launch.run

    async def wait(self, launch_id: str) -> Launch:
        """The launch once its run has finished."""
        launch = self.launches[launch_id]
        if launch._task is not None:
            await launch._task
        return launch


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` is still a launched child (``python -m workbench.hub.pipelines.execute``) on this machine."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"workbench.hub.pipelines.execute" in fh.read()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc: trust the signal check
    except OSError:
        return True


def _result(out: bytes, err: bytes, code: int | None) -> dict[str, Any]:
    """The child's last JSON line; a crash without one becomes an error naming the exit code."""
    for line in reversed(out[-MAX_RESULT_BYTES:].decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict):
                    return data
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
    return {"ok": False, "error": f"the run's process exited {code} without a result{': ' + tail[0] if tail else ''}"}
