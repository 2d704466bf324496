"""``workbench hub``: start JupyterHub with the curated profiles (local by default, or Kubernetes)."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_STATE = "~/.local/share/workbench/hub"
OVERRIDES = """# Local overrides for `workbench hub`, applied after workbench.hub.configure; for example
# c.JupyterHub.log_level = "DEBUG"
# c.ProfileLocalSpawner.limit_memory = False
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hub", help="start the team hub (JupyterHub with the curated profiles)",
        description="Start JupyterHub configured from hub/profiles.yaml. Local mode (default) binds to 127.0.0.1, "
                    "keeps its state in --state-dir and runs each user's server as a process of this user in a "
                    "per-user working directory; users sign up at /hub/signup and an admin approves them at "
                    "/hub/authorize. Kubernetes mode spawns pods with KubeSpawner (run it inside the hub pod).")  # fmt: skip
    p.add_argument("--mode", choices=("local", "kubernetes"), default=os.environ.get("WORKBENCH_HUB_MODE", "local"),
                   help="where servers run (default: $WORKBENCH_HUB_MODE, else local)")  # fmt: skip
    p.add_argument("--profiles", type=Path, help="profiles file (default: $WORKBENCH_PROFILES, else hub/profiles.yaml)")
    p.add_argument("--state-dir", type=Path, default=Path(os.environ.get("WORKBENCH_HUB_STATE_DIR", DEFAULT_STATE)),
                   help=f"database, secrets, per-user directories (default: $WORKBENCH_HUB_STATE_DIR, else {DEFAULT_STATE}); "
                        "a jupyterhub_config.py there is applied last, for local overrides")  # fmt: skip
    p.add_argument("--port", type=int, default=8000, help="public port on 127.0.0.1 (default: 8000)")
    p.add_argument("--admin", action="append", dest="admins", metavar="NAME",
                   help="hub admin (repeatable; default: your login name); sign up with this name first")  # fmt: skip
    p.add_argument("--runs-dir", type=Path, help="shared runs directory (default: $WORKBENCH_RUNS_DIR, else <state-dir>/runs)")
    p.add_argument("--gpus", metavar="LIST", help="local GPU devices to hand out, e.g. 0,1 (default: what nvidia-smi lists)")
    p.add_argument("--culler-every", type=float, metavar="SECONDS", help="seconds between culling checks (default: culling.every)")
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
        if args.gpus is not None:
            options["gpu_devices"] = [d.strip() for d in args.gpus.split(",") if d.strip()]
    elif args.runs_dir:
        options["runs_dir"] = str(args.runs_dir)
    return options


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
        print(f"workbench hub: {signal.Signals(signum).name} during start-up; stopped {len(stopped)} "
              "process(es) it had started", file=sys.stderr, flush=True)  # fmt: skip
        os._exit(128 + signum)

    return handler


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
    from ..hub.lifeline import HubStillRunning
    from . import CommandError

    config = Config()
    options = hub_options(args)
    try:
        configure(config, mode=args.mode, profiles_path=args.profiles, **options)
    except HubStillRunning as exc:
        raise CommandError(str(exc)) from None
    config.JupyterHub.log_level = args.log_level
    state_dir = args.state_dir.expanduser().resolve()
    if args.mode == "local":
        print(f"workbench hub: http://127.0.0.1:{args.port}/ (state in {state_dir}); admins "
              f"{', '.join(options['admin_users'])} sign up at /hub/signup first, then approve others at /hub/authorize",
              flush=True)  # fmt: skip
    overrides = state_dir / "jupyterhub_config.py"
    if not overrides.is_file():
        atomic_write_text(overrides, OVERRIDES)
    JupyterHub.instance(config=config, config_file=str(overrides))
    JupyterHub.launch_instance([])
    return 0
