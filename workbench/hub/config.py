"""``configure(c, mode)``: one JupyterHub configuration from ``hub/profiles.yaml``, local or on Kubernetes.

Both modes get the profiles, the pre-spawn GPU quota, named servers, and two hub services: the
GPU-aware culler (``culler``) and the shared reports (``reports``, at ``/services/reports/``).
The services (and, locally, the proxy) are started through :mod:`workbench.hub.lifeline`'s launcher,
so they die with the hub however it ends.

- ``local`` (the default of ``workbench hub``): the hub and its proxy bound to 127.0.0.1, state
  (SQLite database, cookie secret, proxy token and admin passwords, all 0600) in a 0700 state
  directory, one working directory per user, NativeAuthenticator (users sign up, an admin approves
  them; the admin accounts are created at first start; logins throttled). As root, every user's
  server runs as that user's own system account (see :mod:`workbench.hub.local`). A third service,
  ``pipelines`` (:mod:`workbench.hub.pipelines`), starts declared pipelines on their cron schedules
  and webhooks, and users' own schedules, each run as its owner's account.
- ``kubernetes``: KubeSpawner pods (see :mod:`workbench.hub.kube`) without Kubernetes credentials,
  and a third service, the job gateway (``job-gateway``, :mod:`workbench.hub.gateway`), through
  which users submit Jobs: every user's role and server token carry its scope
  (:data:`GATEWAY_SCOPE`). The authenticator, database and ports stay whatever the Helm chart sets.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..profiles import ProfileSet, load_profiles
from ..runs.layout import KUBE_RUNS_MOUNT, RUNS_ENV
from .gateway.policy import SUBMIT_SCOPE
from .lifeline import PROCESSES_DIR, forget_stale_pid_file, launcher, reclaim

MODES = ("local", "kubernetes")
MODE_ENV = "WORKBENCH_HUB_MODE"
CULLER, REPORTS, GATEWAY = "culler", "reports", "job-gateway"
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers", "admin:server_state"]
GATEWAY_SCOPE = SUBMIT_SCOPE
"""The custom scope a hub token needs to submit Jobs through the job gateway."""
GATEWAY_SERVICE_SCOPES = ["read:users:name", "read:users:groups", "read:servers"]
"""What the gateway reads from the hub: a user's groups and servers (for profiles and the GPU cap)."""
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", GATEWAY_SCOPE]
LOCAL_IP = "127.0.0.1"
REPORTS_PORT = 10101
GATEWAY_PORT = 10102
SYSTEM_USERS_DIR = "/srv/workbench/users"
"""Default parent of the users' homes when the local hub runs as root (per-user accounts)."""
SYSTEM_RUNS_DIR = KUBE_RUNS_MOUNT
"""Default runs root when the local hub runs as root and the runs root variable is not set: the same
place as the runs volume in a pod."""
LOGIN_ATTEMPTS, LOGIN_BLOCK_SECONDS = 5, 300


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((LOCAL_IP, 0))
        return sock.getsockname()[1]


def _secret_file(path: Path, nbytes: int = 32) -> str:
    """Read a hex secret, creating it with 0600 permissions on first use."""
    if not path.is_file():
        atomic_write_text(path, secrets.token_hex(nbytes) + "\n", mode=0o600)
    path.chmod(0o600)
    return path.read_text().strip()


class HubSqliteConnection(sqlite3.Connection):
    """The local hub's SQLite connection: write-ahead log, fsync at checkpoints rather than every commit.

    JupyterHub commits many times per spawn on its event loop; with the default rollback journal
    each commit waits for several fsyncs, which serialises concurrent spawns. WAL with
    ``synchronous=NORMAL`` keeps the database consistent after a crash; a power loss may forget the
    last few commits (server activity, state of servers that then need a restart anyway).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


def proxy_command() -> list[str]:
    """The configurable-http-proxy executable (npm package, or the PyPI implementation)."""
    exe = shutil.which("configurable-http-proxy") or shutil.which(
        "configurable-http-proxy", path=str(Path(sys.executable).parent)
    )
    if exe is None:
        raise ValueError(
            "configurable-http-proxy is not installed; install it with `npm install -g configurable-http-proxy` "
            "(or `pip install configurable-http-proxy`)"
        )
    return [exe]


def _append(c: Any, section: str, name: str, items: list[dict[str, Any]]) -> None:
    """Add to a list setting without dropping what earlier configuration put there."""
    holder = getattr(c, section)
    current = holder[name] if name in holder else []
    keep = [item for item in current if item.get("name") not in {i["name"] for i in items}]
    setattr(holder, name, keep + items)


def _services(
    c: Any,
    mode: str,
    profiles_path: Path,
    runs_dir: str,
    reports_url: str,
    culler_every: float | None,
    records: Path | None,
) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), RUNS_ENV: runs_dir, "PYTHONUNBUFFERED": "1"}
    culler_env = dict(env)
    if os.environ.get("WORKBENCH_CULLER_WEBHOOK"):
        culler_env["WORKBENCH_CULLER_WEBHOOK"] = os.environ["WORKBENCH_CULLER_WEBHOOK"]
    culler_cmd = [sys.executable, "-m", "workbench.hub.culler", "--profiles", str(profiles_path), "--mode", mode]
    if culler_every:
        culler_cmd += ["--every", str(culler_every)]
    reports_cmd = [sys.executable, "-m", "workbench.hub.reports", "--runs-dir", runs_dir]
    if mode == "kubernetes":
        reports_cmd += ["--ip", "0.0.0.0"]
    # both die with the hub however it ends (see workbench.hub.lifeline)
    culler_cmd = launcher(culler_cmd, name=CULLER, records=records)
    reports_cmd = launcher(reports_cmd, name=REPORTS, records=records)
    _append(
        c,
        "JupyterHub",
        "services",
        [
            {"name": CULLER, "command": culler_cmd, "environment": culler_env, "display": False},
            {
                "name": REPORTS,
                "url": reports_url,
                "command": reports_cmd,
                "environment": env,
                "oauth_no_confirm": True,
                "display": True,
                "info": {"description": "The team's run reports"},
            },
        ],
    )
    _append(
        c,
        "JupyterHub",
        "load_roles",
        [
            {
                "name": "workbench-culler",
                "description": "GPU-aware culling of idle servers",
                "scopes": CULLER_SCOPES,
                "services": [CULLER],
            },
            # every user may open the reports service (the default 'user' role only has 'self')
            {"name": "user", "scopes": ["self", f"access:services!service={REPORTS}"]},
        ],
    )


def local_isolation(shared_account: bool = False) -> str:
    """The isolation of local mode for this process: ``accounts`` as root, else ``single-user`` or ``shared``."""
    if os.geteuid() == 0:
        if shared_account:
            raise ValueError(
                "--shared-account is for a hub run as an ordinary user; run as root, the hub gives every "
                "user their own system account (drop --shared-account)"
            )
        return "accounts"
    return "shared" if shared_account else "single-user"


def _reachable(path: Path, what: str, flag: str) -> None:
    from .accounts import closed_to_others

    closed = closed_to_others(path)
    if closed is not None:
        raise ValueError(
            f"{what} {path} is not reachable by the users' system accounts: {closed} is closed to "
            f"other users (mode {closed.stat().st_mode & 0o777:o}); {flag}"
        )


def _account_dirs(state: Path, users: Path, runs: Path) -> None:
    """Check and create the directories per-user accounts need; the state directory stays out of their reach."""
    for path, flag in ((users, "--users-dir"), (runs, "--runs-dir")):
        if path == state or state in path.parents:
            raise ValueError(
                f"{flag} {path} is inside the hub's private state directory {state}; choose a directory "
                f"outside it (default {SYSTEM_USERS_DIR if flag == '--users-dir' else SYSTEM_RUNS_DIR})"
            )
    prefix = Path(sys.prefix).resolve()
    if prefix == state or state in prefix.parents:
        raise ValueError(
            f"the hub's Python environment {prefix} is inside its private state directory {state}; "
            "choose another --state-dir"
        )
    _reachable(
        Path(sys.executable).resolve(),
        "the hub's Python",
        "install the hub's environment where every user can read it (e.g. /usr/local or /opt)",
    )
    _reachable(prefix, "the hub's Python environment", "make it readable by every user (chmod o+rx on each directory)")
    for path, flag, mode in ((users, "--users-dir", 0o711), (runs, "--runs-dir", 0o755)):
        _reachable(path.parent, "the parent of", f"choose a {flag} every user can reach")
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, 0, 0)
        path.chmod(mode)


def _local(
    c: Any,
    profiles: ProfileSet,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    port: int = 8000,
    ip: str = LOCAL_IP,
    hub_port: int | None = None,
    proxy_api_port: int | None = None,
    reports_port: int | None = None,
    users_dir: str | None = None,
    runs_dir: str | None = None,
    gpu_devices: Iterable[str] | None = None,
    admin_users: Iterable[str] = (),
    authenticator: bool = True,
    shared_account: bool = False,
    login_attempts: int = LOGIN_ATTEMPTS,
    login_block_seconds: int = LOGIN_BLOCK_SECONDS,
) -> tuple[str, str, Path]:
    from .local import ProfileLocalSpawner

    if ip != LOCAL_IP:
        raise ValueError(
            f"local mode binds to {LOCAL_IP} only (got ip={ip!r}); for a team network use the Kubernetes mode"
        )
    isolation = local_isolation(shared_account)
    state = Path(state_dir or Path.home() / ".local/share/workbench/hub").expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    records = state / PROCESSES_DIR
    reclaim(records)  # what a killed hub left running; refuses while that hub is alive
    forget_stale_pid_file(state / "proxy.pid", expect="configurable-http-proxy")
    accounts = isolation == "accounts"
    runs_default = os.environ.get(RUNS_ENV) or (SYSTEM_RUNS_DIR if accounts else state / "runs")
    runs = Path(runs_dir or runs_default).expanduser().resolve()
    users = Path(users_dir or (SYSTEM_USERS_DIR if accounts else state / "users")).expanduser().resolve()
    if accounts:
        _account_dirs(state, users, runs)
    runs.mkdir(parents=True, exist_ok=True)

    c.JupyterHub.ip, c.JupyterHub.port = LOCAL_IP, int(port)
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = LOCAL_IP, int(hub_port or free_port())
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.db_kwargs = {"connect_args": {"check_same_thread": False, "factory": HubSqliteConnection}}
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    _secret_file(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.auth_token = _secret_file(state / "proxy_token")
    c.ConfigurableHTTPProxy.api_url = f"http://{LOCAL_IP}:{proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.ConfigurableHTTPProxy.command = launcher(proxy_command(), name="proxy", records=records)

    c.JupyterHub.spawner_class = ProfileLocalSpawner
    c.ProfileLocalSpawner.profiles = profiles
    c.ProfileLocalSpawner.isolation = isolation
    c.ProfileLocalSpawner.users_dir = str(users)
    c.ProfileLocalSpawner.runs_dir = str(runs)
    if gpu_devices is not None:
        c.ProfileLocalSpawner.gpu_devices = [str(d) for d in gpu_devices]
    c.Spawner.ip = LOCAL_IP
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 120

    if authenticator:
        from .auth import TeamAuthenticator

        c.JupyterHub.authenticator_class = TeamAuthenticator
        c.Authenticator.allow_all = True  # NativeAuthenticator only lets in users an admin approved
        c.TeamAuthenticator.minimum_password_length = 8
        c.TeamAuthenticator.check_common_password = True
        c.TeamAuthenticator.allowed_failed_logins = int(login_attempts)
        c.TeamAuthenticator.seconds_before_next_try = int(login_block_seconds)
        c.TeamAuthenticator.admin_password_dir = str(state)
    if admin_users:
        c.Authenticator.admin_users = set(admin_users)
    return str(runs), f"http://{LOCAL_IP}:{reports_port or free_port()}", records


def _kubernetes(
    c: Any,
    profiles: ProfileSet,
    *,
    runs_dir: str = KUBE_RUNS_MOUNT,
    runs_pvc: str = "workbench-runs",
    storage_capacity: str = "10Gi",
    storage_class: str | None = None,
    namespace: str | None = None,
    service_host: str = "hub",
    reports_port: int = REPORTS_PORT,
    gateway_port: int = GATEWAY_PORT,
    admin_users: Iterable[str] = (),
) -> tuple[str, str]:
    from .kube import kubespawner_config

    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    settings = kubespawner_config(
        profiles,
        runs_pvc=runs_pvc,
        storage_capacity=storage_capacity,
        storage_class=storage_class,
        namespace=namespace,
        gateway_url=f"http://{service_host}:{gateway_port}/services/{GATEWAY}/",
    )
    for key, value in settings.items():
        setattr(c.KubeSpawner, key, value)
    if admin_users:
        c.Authenticator.admin_users = set(admin_users)
    return runs_dir, f"http://{service_host}:{reports_port}"


def configure(
    c: Any, mode: str = "local", profiles_path: str | os.PathLike[str] | None = None, **options: Any
) -> ProfileSet:
    """Fill the JupyterHub config object ``c`` for ``mode``; returns the loaded profiles.

    Local options: ``state_dir``, ``port``, ``hub_port``, ``proxy_api_port``, ``reports_port``,
    ``pipelines_dir`` (declared pipelines of the ``pipelines`` service),
    ``users_dir``, ``runs_dir``, ``gpu_devices``, ``admin_users`` (their accounts are created at first
    start, passwords in ``<state_dir>/admin-password-<name>``), ``authenticator`` (False keeps yours),
    ``shared_account`` (not root: every user's server as the hub's OS user, instead of admins only),
    ``login_attempts`` and ``login_block_seconds`` (throttling of failed logins).
    Kubernetes options: ``runs_dir``, ``runs_pvc``, ``storage_capacity``, ``storage_class``,
    ``namespace``, ``service_host``, ``reports_port`` and ``gateway_port`` (where the proxy and user
    pods reach the hub's services), ``admin_users``. Both: ``culler_every`` (seconds, overrides ``culling.every``).

    Parameters
    ----------
    c : traitlets.config.Config
        The config object (``get_config()`` in ``jupyterhub_config.py``).
    mode : {"local", "kubernetes"}, default "local"
        Where user servers run.
    profiles_path : path, optional
        The profiles file (default: :func:`~workbench.profiles.default_profiles_path`).
    **options
        The options of ``mode``, as above.

    Returns
    -------
    ProfileSet
        The loaded profiles.

    Raises
    ------
    ValueError
        On an unknown mode or option, or a setup that cannot work (named, with the fix).

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config()  # in jupyterhub_config.py: c = get_config()
    >>> profiles = configure(c, mode="kubernetes")
    >>> c.JupyterHub.spawner_class
    'kubespawner.KubeSpawner'
    """
    if mode not in MODES:
        raise ValueError(f"unknown hub mode {mode!r}; choose one of {MODES} (flag --mode or ${MODE_ENV})")
    from .quota import LOCAL_GPU_NOTE, gpu_quota_hook

    path = Path(profiles_path) if profiles_path else None
    profiles = load_profiles(path)
    if path is None:
        from ..profiles import default_profiles_path

        path = default_profiles_path()
    culler_every = options.pop("culler_every", None)
    pipelines_dir = options.pop("pipelines_dir", None) if mode == "local" else None
    if culler_every is not None and not (isinstance(culler_every, int | float) and 1 <= culler_every < float("inf")):
        raise ValueError(
            f"culler_every must be a number of seconds, at least 1, got {culler_every!r} "
            "(flag --culler-every, $WORKBENCH_HUB_CULLER_EVERY)"
        )
    if mode == "local":
        runs_dir, reports_url, records = _local(c, profiles, **options)
    else:
        (runs_dir, reports_url), records = _kubernetes(c, profiles, **options), None
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 5
    c.Spawner.default_url = "/lab"
    c.Spawner.pre_spawn_hook = gpu_quota_hook(profiles, note=LOCAL_GPU_NOTE if mode == "local" else "")
    _services(c, mode, path.resolve(), runs_dir, reports_url, culler_every, records)
    if mode == "local" and records is not None:
        from .pipelines.setup import pipelines_service

        pipelines_service(
            c, profiles_path=path.resolve(), runs_dir=runs_dir, records=records, pipelines_dir=pipelines_dir
        )
    from .lab import configure_lab
    from .pipelines import SERVICE as PIPELINES

    public = f"http://{LOCAL_IP}:{c.JupyterHub.port}/services/{PIPELINES}/" if mode == "local" else ""
    configure_lab(c, mode, path.resolve(), pipelines_url=public)
    if mode == "kubernetes":
        _job_gateway(
            c,
            path.resolve(),
            service_host=options.get("service_host", "hub"),
            port=options.get("gateway_port", GATEWAY_PORT),
            runs_pvc=options.get("runs_pvc", "workbench-runs"),
            namespace=options.get("namespace"),
        )
    return profiles


def _job_gateway(
    c: Any, profiles_path: Path, *, service_host: str, port: int, runs_pvc: str, namespace: str | None
) -> None:
    """Register the job gateway service, its role, the submit scope, and grant that scope to users' tokens."""
    cmd = [
        sys.executable,
        "-m",
        "workbench.hub.gateway",
        "--profiles",
        str(profiles_path),
        "--ip",
        "0.0.0.0",
        "--runs-pvc",
        runs_pvc,
    ]
    if namespace:
        cmd += ["--namespace", namespace]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    for key in ("POD_NAMESPACE", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    cmd = launcher(cmd, name=GATEWAY)  # dies with the hub
    _append(
        c,
        "JupyterHub",
        "services",
        [
            {
                "name": GATEWAY,
                "url": f"http://{service_host}:{port}",
                "command": cmd,
                "environment": env,
                "display": False,
            },
        ],
    )
    hub = c.JupyterHub
    scopes = dict(hub["custom_scopes"]) if "custom_scopes" in hub else {}
    hub.custom_scopes = {
        **scopes,
        GATEWAY_SCOPE: {"description": "Submit notebook Jobs through the job gateway, and follow and stop one's own."},
    }
    roles = list(hub["load_roles"]) if "load_roles" in hub else []
    for role in roles:
        if role["name"] == "user":
            role["scopes"] = sorted({*role["scopes"], GATEWAY_SCOPE})
    roles.append(
        {
            "name": "workbench-job-gateway",
            "description": "The job gateway reads users' groups and servers",
            "scopes": GATEWAY_SERVICE_SCOPES,
            "services": [GATEWAY],
        }
    )
    hub.load_roles = roles
    # notebook servers' $JUPYTERHUB_API_TOKEN: the default server scopes plus the gateway's
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES


def options_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``configure`` keyword arguments from ``WORKBENCH_HUB_*`` variables (for ``jupyterhub_config.py``)."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {"mode": env.get(MODE_ENV, "local")}
    if env.get("WORKBENCH_PROFILES"):
        options["profiles_path"] = env["WORKBENCH_PROFILES"]
    if options["mode"] == "local" and env.get("WORKBENCH_HUB_SHARED_ACCOUNT", "").lower() in ("1", "true", "yes"):
        options["shared_account"] = True
    if options["mode"] == "local" and env.get("WORKBENCH_HUB_USERS_DIR"):
        options["users_dir"] = env["WORKBENCH_HUB_USERS_DIR"]
    if options["mode"] == "local" and env.get("WORKBENCH_HUB_PIPELINES_DIR"):
        options["pipelines_dir"] = env["WORKBENCH_HUB_PIPELINES_DIR"]
    for key, name, cast in [
        ("WORKBENCH_HUB_STATE_DIR", "state_dir", str),
        ("WORKBENCH_HUB_PORT", "port", int),
        ("WORKBENCH_HUB_CULLER_EVERY", "culler_every", float),
    ]:
        if env.get(key):
            try:
                options[name] = cast(env[key])
            except ValueError as exc:
                raise ValueError(f"${key}={env[key]!r} is not a valid {name}") from exc
    if env.get("WORKBENCH_HUB_ADMINS"):
        options["admin_users"] = [a.strip() for a in env["WORKBENCH_HUB_ADMINS"].split(",") if a.strip()]
    if env.get("WORKBENCH_HUB_GPUS") is not None and options["mode"] == "local":
        options["gpu_devices"] = [d.strip() for d in env["WORKBENCH_HUB_GPUS"].split(",") if d.strip()]
    return options
