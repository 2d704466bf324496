"""``workbench hub``: start JupyterHub with the curated profiles (local by default, or Kubernetes)."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from ..runs.layout import RUNS_ENV

DEFAULT_STATE = "~/.local/share/workbench/hub"
OVERRIDES = """# Local overrides for `workbench hub`, applied after workbench.hub.configure; for example
# c.JupyterHub.log_level = "DEBUG"
# c.ProfileLocalSpawner.limit_memory = False
"""


# Library parameters whose flag is spelled differently (the rest match their flag).
PARAMETER_FLAGS = {"admin_users": "--admin", "profiles_path": "--profiles"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hub",
        help="start the team hub (JupyterHub with the curated profiles)",
        description="Start JupyterHub configured from hub/profiles.yaml. Local mode (default) binds to 127.0.0.1 "
        "and keeps its state in --state-dir. Run as root, it runs each user's server as that user's own "
        "system account (wb-<name>) in a private home; run as an ordinary user, only admins may start "
        "servers unless --shared-account. The admin accounts are created at first start (password "
        "printed once); users sign up at /hub/signup and an admin approves them at /hub/authorize. "
        "Kubernetes mode spawns pods with KubeSpawner (run it inside the hub pod).",
    )
    p.add_argument(
        "--mode",
        choices=("local", "kubernetes"),
        default=os.environ.get("WORKBENCH_HUB_MODE", "local"),
        help="where servers run (default: $WORKBENCH_HUB_MODE, else local)",
    )
    p.add_argument("--profiles", type=Path, help="profiles file (default: $WORKBENCH_PROFILES, else hub/profiles.yaml)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("WORKBENCH_HUB_STATE_DIR", DEFAULT_STATE)),
        help=f"database, secrets, per-user directories (default: $WORKBENCH_HUB_STATE_DIR, else {DEFAULT_STATE}); "
        "a jupyterhub_config.py there is applied last, for local overrides",
    )
    p.add_argument("--port", type=int, default=8000, help="public port on 127.0.0.1 (default: 8000)")
    p.add_argument(
        "--admin",
        action="append",
        dest="admins",
        metavar="NAME",
        help="hub admin (repeatable; default: your login name); created at first start with a generated password",
    )
    p.add_argument("--runs-dir", type=Path, help=f"shared runs directory (default: ${RUNS_ENV}, else <state-dir>/runs)")
    p.add_argument(
        "--users-dir",
        type=Path,
        help="parent of the users' homes (default: <state-dir>/users; as root "
        "/srv/workbench/users, which must be outside the state directory)",
    )
    p.add_argument(
        "--pipelines-dir",
        type=Path,
        default=os.environ.get("WORKBENCH_HUB_PIPELINES_DIR") or None,
        help="local mode: folder of declared pipeline files (schedule:/webhook:) the hub's pipelines service "
        "starts (default: $WORKBENCH_HUB_PIPELINES_DIR, else none)",
    )
    p.add_argument(
        "--shared-account",
        action="store_true",
        help="not as root: let every approved user start servers, all as this OS user (users can read each "
        "other's files and the hub's secrets, so any user can act as admin; a trusted team only)",
    )
    p.add_argument(
        "--reset-admin-password",
        action="store_true",
        help="give the (first) admin a new generated password, print it once and exit",
    )
    p.add_argument(
        "--gpu-devices",
        metavar="LIST",
        help="local GPU device ids to hand out, e.g. 0,1 (default: what nvidia-smi lists)",
    )
    p.add_argument(
        "--gpus",
        metavar="LIST",
        dest="gpus_deprecated",
        help="deprecated spelling of --gpu-devices, accepted until the next release (--gpus is a count on "
        "`workbench run`)",
    )
    p.add_argument(
        "--culler-every", type=float, metavar="SECONDS", help="seconds between culling checks (default: culling.every)"
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="hub log level")
    p.set_defaults(func=run)


def hub_options(args: argparse.Namespace) -> dict:
    """``workbench.hub.configure`` keyword arguments from the parsed flags."""
    options: dict = {"admin_users": args.admins or [getpass.getuser()]}
    if args.culler_every:
        options["culler_every"] = args.culler_every
    if args.mode == "local":
        options.update(state_dir=args.state_dir.expanduser(), port=args.port)
        if args.runs_dir:
            options["runs_dir"] = str(args.runs_dir)
        if args.users_dir:
            options["users_dir"] = str(args.users_dir)
        if args.shared_account:
            options["shared_account"] = True
        if getattr(args, "pipelines_dir", None):
            options["pipelines_dir"] = str(args.pipelines_dir)
        devices = gpu_devices(args)
        if devices is not None:
            options["gpu_devices"] = devices
    elif args.runs_dir:
        options["runs_dir"] = str(args.runs_dir)
    return options


def gpu_devices(args: argparse.Namespace) -> list[str] | None:
    """The device ids of ``--gpu-devices`` (or of the deprecated ``--gpus``, with a warning)."""
    text = getattr(args, "gpu_devices", None)
    old = getattr(args, "gpus_deprecated", None)
    if old is not None:
        if text is not None:
            from . import CommandError

            raise CommandError("pass --gpu-devices only (--gpus is its deprecated spelling)", code=2)
        print("workbench hub: --gpus is deprecated here; use --gpu-devices (same value)", file=sys.stderr)
        text = old
    if text is None:
        return None
    return [d.strip() for d in text.split(",") if d.strip()]


def _exit_during_start_up(records: Path | None) -> Callable[[int, object], None]:
    """A SIGINT/SIGTERM handler until JupyterHub installs its own (once it is running).

    Unwinding JupyterHub's start-up from an arbitrary point (an import, a database call) is not
    safe, so the handler stops what this hub started and exits at once: the proxy and the services
    it recorded in ``records``; a process still being launched dies with the hub (parent-death signal).
    """

    def handler(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        stopped = []
        if records is not None:
            from ..hub.lifeline import stop_started_by

            stopped = stop_started_by(records)
        print(
            f"workbench hub: {signal.Signals(signum).name} during start-up; stopped {len(stopped)} "
            "process(es) it had started",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + signum)

    return handler


def reset_admin_password(state_dir: Path, name: str) -> int:
    """Replace admin ``name``'s password in the hub database of ``state_dir``; print the new one once."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from ..hub.auth import announce_password, set_admin_password

    db_file = state_dir / "jupyterhub.sqlite"
    if not db_file.is_file():
        raise SystemExit(f"no hub database at {db_file}; start `workbench hub --state-dir {state_dir}` once first")
    from nativeauthenticator.orm import UserInfo

    engine = create_engine(f"sqlite:///{db_file}")
    UserInfo.__table__.create(engine, checkfirst=True)
    with sessionmaker(bind=engine)() as db:
        password, path = set_admin_password(db, name, state_dir)
    engine.dispose()
    announce_password(name, password, path)
    return 0


def _isolation_note(isolation: str) -> str:
    return {
        "accounts": "each user's server runs as their own system account (wb-<name>); GPU device files opened to "
        "their holder only where /dev/nvidia<N> exists (else CUDA_VISIBLE_DEVICES is advisory)",
        "single-user": "not root: only admins may start servers (they run as this OS user); run as root for per-user "
        "accounts, or pass --shared-account",
        "shared": "SHARED ACCOUNT: every user's server runs as this OS user, so users can read each other's files and "
        "the hub's secrets (cookie secret, database) and can act as any user, admin included; "
        "CUDA_VISIBLE_DEVICES is advisory",
    }[isolation]


def run(args: argparse.Namespace) -> int:
    records = None
    if args.mode == "local":
        from ..hub.lifeline import PROCESSES_DIR

        records = args.state_dir.expanduser().resolve() / PROCESSES_DIR
    handler = _exit_during_start_up(records)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(args: argparse.Namespace) -> int:
    from jupyterhub.app import JupyterHub
    from traitlets.config import Config

    from .._io import atomic_write_text
    from ..hub import configure
    from ..hub.config import local_isolation
    from ..hub.lifeline import HubStillRunning
    from . import CommandError

    state_dir = args.state_dir.expanduser().resolve()
    options = hub_options(args)
    if args.reset_admin_password:
        return reset_admin_password(state_dir, options["admin_users"][0])
    config = Config()
    try:
        configure(config, mode=args.mode, profiles_path=args.profiles, **options)
    except HubStillRunning as exc:
        raise CommandError(str(exc)) from None
    config.JupyterHub.log_level = args.log_level
    if args.mode == "local":
        print(
            f"workbench hub: http://127.0.0.1:{args.port}/ (state in {state_dir}); admins "
            f"{', '.join(options['admin_users'])} (created at first start), approve others at /hub/authorize; "
            f"{_isolation_note(local_isolation(args.shared_account))}",
            flush=True,
        )
    overrides = state_dir / "jupyterhub_config.py"
    if not overrides.is_file():
        atomic_write_text(overrides, OVERRIDES)
    JupyterHub.instance(config=config, config_file=str(overrides))
    JupyterHub.launch_instance([])
    return 0
