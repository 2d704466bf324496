"""Schedules from JupyterLab's job definitions, kept by the hub's pipelines service (local mode).

A job definition with a schedule becomes the user's schedule ``<name>`` in the service's API
(``PUT/GET/DELETE api/schedules/<user>/<name>`` below ``$WORKBENCH_PIPELINES_URL``, authenticated
with the server's ``$JUPYTERHUB_API_TOKEN``). The service fires it from its calendar as the user's
own account, whether or not the notebook server runs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

from jupyter_scheduler.exceptions import SchedulerError

from ..hub.lab import PIPELINES_URL_ENV
from ..jobs.k8s_client import GatewayClient, GatewayError

TIMEOUT_S = 20


def schedule_name(definition_id: str) -> str:
    """The schedule's name in the service for job definition ``definition_id`` (the service's name rules).

    Examples
    --------
    >>> schedule_name("5f0c3a1e-7d2b-4c1a-9e8f-0a1b2c3d4e5f")
    'lab-5f0c3a1e-7d2b-4c1a-9e8f-0a1b2c3d4e5f'
    """
    name = "lab-" + re.sub(r"[^A-Za-z0-9_.-]", "-", definition_id)
    return name[:64]


def _call(method: str, name: str, body: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Any:
    env = os.environ if environ is None else environ
    base, token, user = (
        env.get(PIPELINES_URL_ENV, ""),
        env.get("JUPYTERHUB_API_TOKEN", ""),
        env.get("JUPYTERHUB_USER", ""),
    )
    if not (base and token and user):
        raise SchedulerError(
            f"schedules are kept by the hub's pipelines service, but ${PIPELINES_URL_ENV}, $JUPYTERHUB_API_TOKEN "
            "or $JUPYTERHUB_USER is not set: start this server from the workbench hub (or choose Run now)"
        )
    client = GatewayClient(base, token, service="hub's scheduler", timeout=TIMEOUT_S)
    try:
        raw = client.call(method, f"api/schedules/{quote(user, safe='')}/{quote(name, safe='')}", body)
    except GatewayError as exc:
        if exc.status == 404 and method in ("GET", "DELETE"):
            return None
        refused = f"the hub's scheduler refused the schedule ({exc})" if exc.status else str(exc)
        raise SchedulerError(refused) from None
    return json.loads(raw) if raw else None


def put_schedule(
    definition_id: str,
    notebook: str,
    parameters: dict[str, str],
    cron: str,
    profile: str,
    enabled: bool = True,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create or replace the schedule of job definition ``definition_id``; returns the stored schedule.

    Parameters
    ----------
    definition_id
        The job definition's id (the schedule's name follows from it: :func:`schedule_name`).
    notebook
        The notebook, relative to the user's home.
    parameters
        Parameter values as text, as the dialog gives them.
    cron
        Five-field cron expression (UTC).
    profile
        The hub profile the runs use.
    enabled
        ``False`` pauses the schedule.
    environ
        Where the service URL, token and user come from (default: this process's environment).

    Returns
    -------
    dict
        The schedule as the service stored it.
    """
    body = {"cron": cron, "notebook": notebook, "parameters": dict(parameters), "profile": profile, "enabled": enabled}
    body["description"] = "created in JupyterLab"
    return _call("PUT", schedule_name(definition_id), body, environ)


def get_schedule(definition_id: str, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The stored schedule of job definition ``definition_id`` (``None`` if the service has none)."""
    return _call("GET", schedule_name(definition_id), None, environ)


def delete_schedule(definition_id: str, environ: dict[str, str] | None = None) -> None:
    """Delete the schedule of job definition ``definition_id`` (nothing if there is none)."""
    _call("DELETE", schedule_name(definition_id), None, environ)
