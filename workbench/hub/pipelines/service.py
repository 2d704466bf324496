"""``python -m workbench.hub.pipelines``: the pipelines service, run by the hub (local mode)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from urllib.parse import urlparse

from ...runs.layout import RUNS_ENV, default_runs_root


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workbench.hub.pipelines",
        description="Start pipelines on a calendar, on webhooks, and users' schedules.",
    )
    p.add_argument("--pipelines-dir", help="folder of declared pipeline files (*.yaml)")
    p.add_argument(
        "--runs-dir", default=str(default_runs_root()), help=f"the runs root (default: ${RUNS_ENV}, else runs)"
    )
    p.add_argument("--state-dir", required=True, help="the service's private folder (schedules, calendar, logs)")
    p.add_argument("--users-dir", required=True, help="parent of the users' homes")
    p.add_argument("--accounts", action="store_true", help="run every run as its owner's system account (as root)")
    p.add_argument("--profiles", help="the hub's profiles file")
    return p


def main(argv: list[str] | None = None) -> int:
    """Load the declared pipelines and schedules, run the calendar, serve the API on ``$JUPYTERHUB_SERVICE_URL``."""
    from jupyterhub.services.auth import HubOAuth

    from ..._redact import redact_logging
    from ...profiles import load_profiles
    from .app import make_app
    from .core import Pipelines
    from .store import MAX_BODY_BYTES

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s pipelines] %(message)s")
    redact_logging()
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not service_url:
        print(
            "pipelines: JUPYTERHUB_SERVICE_URL is not set; the pipelines service runs as a JupyterHub service",
            file=sys.stderr,
        )
        return 2
    if args.accounts and os.geteuid() != 0:
        print("pipelines: --accounts needs root (to run each run as its owner's account)", file=sys.stderr)
        return 2
    service = Pipelines(
        pipelines_dir=args.pipelines_dir,
        runs_dir=args.runs_dir,
        state_dir=args.state_dir,
        users_dir=args.users_dir,
        accounts=args.accounts,
        profiles=load_profiles(args.profiles) if args.profiles else None,
    )
    try:
        service.load()
    except Exception as exc:  # the service keeps serving (and the hub keeps running) with what it could load
        logging.getLogger("workbench.hub.pipelines").exception("loading pipelines and schedules failed")
        service.errors.append({"file": str(args.pipelines_dir or ""), "error": f"loading failed: {exc}"})
    url = urlparse(service_url)
    app = make_app(
        service, HubOAuth(cache_max_age=30), os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/pipelines/")
    )

    async def serve() -> None:
        # tornado reads the body limit from the server, not the application: a larger body is dropped unread
        app.listen(url.port or 80, address=url.hostname or "127.0.0.1", max_body_size=MAX_BODY_BYTES)
        logging.getLogger("workbench.hub.pipelines").info(
            "%d declared pipeline(s), %d file(s) skipped; serving at %s",
            len(service.declared),
            len(service.errors),
            service_url,
        )
        await service.calendar.run()

    asyncio.run(serve())
    return 0
