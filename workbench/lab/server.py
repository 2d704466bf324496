"""The Jupyter server extension: first start of the home, and the ``workbench/status`` pages."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .environments import user_profiles
from .home import REPORTS_PATH, seed_home
from .status import status, status_page


def _links(env: dict[str, str] | os._Environ) -> tuple[str, str]:
    """The team's reports page and the user's runs on it (the hub's URLs, seen from the browser)."""
    prefix = env.get("JUPYTERHUB_BASE_URL", "/").rstrip("/")
    reports = prefix + REPORTS_PATH
    user = env.get("JUPYTERHUB_USER", "")
    return reports, reports + (f"?owner={user}" if user else "")


class _StatusBase(JupyterHandler):
    def _status(self) -> dict[str, Any]:
        last = self.settings.get("last_activity_times") and self.application.last_activity()
        profiles, _ = user_profiles()
        return status(profiles, last if isinstance(last, datetime) else None, datetime.now(UTC))


class StatusApiHandler(_StatusBase):
    """``GET workbench/api/status``: :func:`workbench.lab.status.status` as JSON."""

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self._status()))


class StatusPageHandler(_StatusBase):
    """``GET workbench/status``: GPUs, the culler's verdict and links to the reports and the user's runs."""

    @web.authenticated
    def get(self) -> None:
        reports, runs = _links(os.environ)
        self.set_header("Cache-Control", "no-store")
        self.finish(status_page(self._status(), reports, runs))


class GoHandler(JupyterHandler):
    """``GET workbench/go/reports`` and ``workbench/go/runs``: to the hub's reports page (the launcher cards)."""

    @web.authenticated
    def get(self, where: str) -> None:
        reports, runs = _links(os.environ)
        self.redirect(runs if where == "runs" else reports)


def load(serverapp: Any) -> None:
    """Seed a new user's home, then add the handlers."""
    try:
        created = seed_home(
            serverapp.root_dir,
            os.environ.get("JUPYTERHUB_USER", ""),
            os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            os.environ.get("JUPYTERHUB_SERVICE_PREFIX", serverapp.base_url),
        )
    except OSError as exc:  # a read-only or full home must not keep the server from starting
        serverapp.log.warning("workbench: could not copy the starter notebooks: %s", exc)
    else:
        if created:
            serverapp.log.info("workbench: first start, copied %s", ", ".join(created))
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "workbench/api/status"), StatusApiHandler),
            (url_path_join(base, "workbench/status"), StatusPageHandler),
            (url_path_join(base, r"workbench/go/(reports|runs)"), GoHandler),
        ],
    )
