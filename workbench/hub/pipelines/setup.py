"""Register the pipelines service with a local hub: the service, its scopes, its roles, the trigger group."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..accounts import closed_to_others
from ..lifeline import launcher
from . import SCHEDULES_SCOPE, SERVICE, TRIGGER_GROUP, TRIGGER_SCOPE

SERVICE_SCOPES = ["read:users:name", "read:users:groups"]
"""What the service reads from the hub: a user's groups (for the profiles a schedule may use)."""

SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", SCHEDULES_SCOPE]
"""A notebook server's ``$JUPYTERHUB_API_TOKEN`` in local mode: the default, plus managing own schedules."""

STATE_SUBDIR = "pipelines-service"


def _setting(holder: Any, name: str, default: Any) -> Any:
    return holder[name] if name in holder else default


def _check_pipelines_dir(folder: Path, accounts: bool) -> None:
    if not folder.is_dir():
        raise ValueError(f"pipelines folder {folder} does not exist; create it or fix --pipelines-dir")
    closed = closed_to_others(folder) if accounts else None
    if closed is not None:
        raise ValueError(
            f"pipelines folder {folder} is not readable by the team pipelines' account: {closed} is closed to "
            "other users; choose a folder every user can reach (chmod o+rx on each directory)"
        )


def pipelines_service(
    c: Any, *, profiles_path: Path, runs_dir: str, records: Path, pipelines_dir: str | os.PathLike[str] | None
) -> None:
    """Add the ``pipelines`` service to the local hub config ``c`` (state next to the hub's, in ``records.parent``).

    Parameters
    ----------
    c
        The JupyterHub config (already filled for local mode: spawner users and isolation set).
    profiles_path
        The profiles file (a schedule's profile is checked against it).
    runs_dir
        The runs root.
    records
        The hub's process records folder (``<state>/processes``); the service dies with the hub.
    pipelines_dir
        Folder of declared pipeline files, or ``None`` for users' schedules only.
    """
    state = records.parent
    accounts = c.ProfileLocalSpawner.isolation == "accounts"
    cmd = [
        sys.executable,
        "-m",
        "workbench.hub.pipelines",
        "--runs-dir",
        str(runs_dir),
        "--state-dir",
        str(state / STATE_SUBDIR),
        "--users-dir",
        str(c.ProfileLocalSpawner.users_dir),
        "--profiles",
        str(profiles_path),
    ]
    if pipelines_dir:
        folder = Path(pipelines_dir).expanduser().resolve()
        _check_pipelines_dir(folder, accounts)
        cmd += ["--pipelines-dir", str(folder)]
    if accounts:
        cmd.append("--accounts")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    for key in ("PYTHONPATH", "LANG", "LC_ALL", "TZ"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    hub = c.JupyterHub
    services = [s for s in _setting(hub, "services", []) if s.get("name") != SERVICE]
    services.append(
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{_free_port()}",
            "command": launcher(cmd, name=SERVICE, records=records),
            "environment": env,
            "oauth_no_confirm": True,
            "display": True,
            "info": {"description": "Scheduled and webhook pipelines, and your own schedules"},
        }
    )
    hub.services = services
    hub.custom_scopes = {
        **_setting(hub, "custom_scopes", {}),
        TRIGGER_SCOPE: {"description": "Start runs of the team's webhook pipelines."},
        SCHEDULES_SCOPE: {"description": "Create, read and delete one's own pipeline and notebook schedules."},
    }
    roles = [
        r
        for r in _setting(hub, "load_roles", [])
        if r["name"] not in ("workbench-pipelines", "workbench-pipelines-trigger")
    ]
    access = f"access:services!service={SERVICE}"
    for role in roles:
        if role["name"] == "user":
            role["scopes"] = sorted({*role["scopes"], SCHEDULES_SCOPE, access})
    roles += [
        {
            "name": "workbench-pipelines",
            "description": "The pipelines service reads users' groups",
            "scopes": SERVICE_SCOPES,
            "services": [SERVICE],
        },
        {
            "name": "workbench-pipelines-trigger",
            "description": "Start webhook pipelines (CI systems); grant by adding a user to the group",
            "scopes": [TRIGGER_SCOPE, access],
            "groups": [TRIGGER_GROUP],
        },
    ]
    hub.load_roles = roles
    hub.load_groups = {**_setting(hub, "load_groups", {}), TRIGGER_GROUP: {"users": []}}
    c.Spawner.server_token_scopes = sorted({*_setting(c.Spawner, "server_token_scopes", []), *SERVER_TOKEN_SCOPES})


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
