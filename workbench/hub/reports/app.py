"""The reports service: HubOAuth-protected pages over the shared runs directory.

``GET {prefix}`` lists the runs (name, owner, date, status, key metrics; ``?owner=`` filters),
``GET {prefix}api/runs`` gives the same as JSON, and ``GET {prefix}runs/<owner>/<run>/report.html``
(or ``runs/<run>/report.html`` for a run of the flat layout) serves a run's report. Only users the
hub lets access this service get anything; others are sent to the hub's login.

Reports are written by teammates into a shared folder, so they are neither trusted as files nor as
pages: a report is opened one path component at a time without following symlinks and read from
the opened descriptor (:mod:`workbench.runs.safe_open`), so nothing outside the runs root, no
symlink and no special file is ever served; and it is served under :data:`REPORT_CSP`, which lets
a self-contained report render (inline styles, ``data:`` images and fonts) and nothing else: no
scripts, no requests, no forms, a sandboxed origin without the service's cookies.

Run by the hub as ``python -m workbench.hub.reports``; :func:`workbench.hub.configure` registers it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jinja2 import Environment, PackageLoader, select_autoescape
from tornado import web

from ...runs.layout import RUNS_ENV, default_runs_root
from ...runs.records import REPORT_FILE
from ...runs.registry import scan_runs
from ...runs.safe_open import read_file

MAX_METRICS = 6
MAX_REPORT_BYTES = 256 << 20
"""Largest report served (256 MiB); a larger file is answered 404 like any unservable one."""

REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)
"""Content-Security-Policy of served reports: what a self-contained HTML report needs, nothing more."""

INDEX_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
"""Content-Security-Policy of the index (inline styles only; never framed)."""

_STRICT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _date(start: str | None) -> str:
    if not start:
        return ""
    try:
        return datetime.fromisoformat(start.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return start


def run_rows(runs_dir: str | os.PathLike[str], owner: str | None = None) -> list[dict[str, Any]]:
    """The runs of ``runs_dir`` as table rows, newest first; scalar metrics only (at most six).

    ``owner`` is the folder a run lives in; ``dir`` is ``<owner folder>/<run folder>``. A folder
    that is not a valid run is a row with state ``invalid`` and the ``reason``, never an error.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.runs import METRICS_FILE, RunRecord, new_run_dir, write_record
    >>> runs = tempfile.mkdtemp()
    >>> path, run_id = new_run_dir(runs, "train", owner="ana")
    >>> _ = write_record(path / METRICS_FILE, {"cv_auc": 0.84213})
    >>> RunRecord(path=path, run_id=run_id, name="train", notebook="train.ipynb", state="succeeded").write_status()
    >>> rows = run_rows(runs)
    >>> rows[0]["state"], rows[0]["metrics"]
    ('succeeded', [('cv_auc', '0.8421')])
    """
    good, bad = scan_runs(runs_dir)
    rows = []
    for rec in good:
        if owner and rec.owner != owner:
            continue
        scalars = [(k, _fmt(v)) for k, v in rec.metrics.items() if isinstance(v, int | float | str | bool)]
        rows.append(
            {
                "run": rec.path.name,
                "dir": f"{rec.path.parent.name}/{rec.path.name}",
                "name": rec.name,
                "owner": rec.owner,
                "start": rec.start,
                "date": _date(rec.start),
                "state": rec.state,
                "metrics": scalars[:MAX_METRICS],
                "report": rec.report is not None,
                "reason": None,
            }
        )
    rows.sort(key=lambda r: (r["start"] or "", r["run"]), reverse=True)
    for b in bad:
        if not owner or b.owner == owner:
            rows.append(
                {
                    "run": b.path.name,
                    "dir": f"{b.path.parent.name}/{b.path.name}",
                    "name": b.path.name,
                    "owner": b.owner,
                    "start": None,
                    "date": "",
                    "state": "invalid",
                    "metrics": [],
                    "report": False,
                    "reason": b.reason,
                }
            )
    return rows


class _Base(web.RequestHandler):
    def initialize(self, runs_dir: Path, prefix: str, hub_auth: Any) -> None:
        self.runs_dir = runs_dir
        self.prefix = prefix
        if hub_auth is not None:
            self.hub_auth = hub_auth

    def set_default_headers(self) -> None:
        # every answer, error pages and redirects included; pages override the policy with their own
        self.set_header("Content-Security-Policy", _STRICT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")


def read_report(runs_dir: str | os.PathLike[str], run: str) -> bytes:
    """The bytes of ``<runs_dir>/<run>/report.html``, where ``run`` is ``<owner folder>/<run folder>``.

    Parameters
    ----------
    runs_dir
        The runs root (trusted); nothing below it is.
    run
        The run's path below the root, ``/``-separated.

    Returns
    -------
    bytes
        The report, read from the descriptor of a regular file reached without following any symlink.

    Raises
    ------
    OSError
        The run or its report does not exist, a component is a symlink, a parent reference or not a
        plain directory, the report is not a regular file or is larger than :data:`MAX_REPORT_BYTES`.
    """
    parts = run.split("/")
    if len(parts) != 2:
        raise FileNotFoundError(f"{run!r} is not a run of the runs root (<owner folder>/<run folder>)")
    return read_file(runs_dir, [*parts, REPORT_FILE], MAX_REPORT_BYTES)


def _handlers(prefix: str, runs_dir: Path) -> list[tuple]:
    from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated

    templates = Environment(loader=PackageLoader("workbench.hub.reports", "templates"), autoescape=select_autoescape())

    class IndexHandler(HubOAuthenticated, _Base):
        @web.authenticated
        def get(self) -> None:
            owner = self.get_argument("owner", None)
            rows = run_rows(self.runs_dir, owner=owner)
            self.set_header("Cache-Control", "no-store")
            self.set_header("Content-Security-Policy", INDEX_CSP)
            self.finish(
                templates.get_template("index.html").render(
                    rows=rows,
                    owner=owner,
                    prefix=self.prefix,
                    runs_dir=str(self.runs_dir),
                    user=self.current_user["name"],
                )
            )

    class ApiHandler(HubOAuthenticated, _Base):
        def get_login_url(self) -> str:
            raise web.HTTPError(403, "log in to the hub first")

        @web.authenticated
        def get(self) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(run_rows(self.runs_dir, owner=self.get_argument("owner", None))))

    class ReportHandler(HubOAuthenticated, _Base):
        @web.authenticated
        async def get(self, run: str) -> None:
            try:
                body = await asyncio.get_running_loop().run_in_executor(None, read_report, self.runs_dir, run)
            except OSError as exc:
                raise web.HTTPError(404, f"no report for run {run!r}: {exc.strerror or exc}") from None
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", REPORT_CSP)
            self.set_header("Cache-Control", "no-store")
            self.finish(body)

    auth = HubOAuth.instance()
    kwargs = {"runs_dir": runs_dir, "prefix": prefix, "hub_auth": auth}
    return [
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (prefix + r"runs/(.+)/report\.html", ReportHandler, kwargs),
        (prefix + "api/runs", ApiHandler, kwargs),
        (prefix.rstrip("/") + "/?", IndexHandler, kwargs),
    ]


def make_app(runs_dir: str | os.PathLike[str], prefix: str = "/services/reports/") -> web.Application:
    """The tornado application (the hub's service environment supplies the OAuth settings)."""
    prefix = "/" + prefix.strip("/") + "/"
    return web.Application(_handlers(prefix, Path(runs_dir)), cookie_secret=secrets.token_bytes(32), xsrf_cookies=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the hub service: serves on the port of ``$JUPYTERHUB_SERVICE_URL``."""
    p = argparse.ArgumentParser(prog="python -m workbench.hub.reports", description="Serve the team's run reports.")
    p.add_argument(
        "--runs-dir", default=str(default_runs_root()), help=f"shared runs directory (default: ${RUNS_ENV}, else runs)"
    )
    p.add_argument("--ip", help="address to listen on (default: the host of $JUPYTERHUB_SERVICE_URL)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[%(levelname).1s %(asctime)s reports] %(message)s")
    for logger in ("workbench", "tornado.access"):
        logging.getLogger(logger).setLevel(logging.INFO)
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not service_url:
        print(
            "reports: JUPYTERHUB_SERVICE_URL is not set; the reports service runs as a JupyterHub service",
            file=sys.stderr,
        )
        return 2
    url = urlparse(service_url)
    app = make_app(args.runs_dir, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/reports/"))

    async def serve() -> None:
        app.listen(url.port or 80, address=args.ip or url.hostname or "127.0.0.1")
        logging.getLogger("workbench.hub.reports").info("serving runs of %s at %s", args.runs_dir, service_url)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0
