"""GPU at a glance: this server's GPUs (utilisation, memory) and the culler's verdict on it.

The figures come from ``nvidia-smi`` for the devices of ``$CUDA_VISIBLE_DEVICES`` (the culler's own
source in local mode); the verdict applies the culler's own rule (:func:`workbench.hub.culler.decide`):
a server idle for its profile's ``idle_timeout`` is stopped; a GPU server whose GPUs stay below the
threshold for ``checks`` checks is stopped outside working hours (its user is told inside them).
"""

from __future__ import annotations

import html
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .._gpu import nvidia_smi_query
from ..hub.culler import decide
from ..profiles import Profile, ProfileSet

GPU_FIELDS = ["index", "uuid", "utilization.gpu", "memory.used", "memory.total"]


@dataclass(frozen=True)
class GpuReading:
    """One GPU of this server."""

    index: str
    utilisation: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None


def _number(text: str) -> float | None:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def held_devices(environ: dict[str, str] | None = None) -> list[str]:
    """The GPUs this server holds: ``$CUDA_VISIBLE_DEVICES`` (indices or UUIDs); empty without one.

    Examples
    --------
    >>> held_devices({"CUDA_VISIBLE_DEVICES": "0,GPU-bbb"})
    ['0', 'GPU-bbb']
    """
    env = os.environ if environ is None else environ
    return [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]


def read_gpus(devices: list[str], command: str = "nvidia-smi") -> list[GpuReading]:
    """Readings of ``devices`` (indices or UUIDs, as in ``CUDA_VISIBLE_DEVICES``); empty without a GPU."""
    wanted = set(devices)
    rows = nvidia_smi_query(GPU_FIELDS, command) if wanted else []
    return [
        GpuReading(index, _number(util), _number(used), _number(total))
        for index, uuid, util, used, total in rows
        if index in wanted or uuid in wanted
    ]


def verdict(
    profile: Profile | None, profiles: ProfileSet, idle: timedelta, gpus: list[GpuReading], now: datetime
) -> str:
    """What the culler will do with this server, in one sentence.

    Examples
    --------
    >>> from workbench.profiles import load_profiles
    >>> ps = load_profiles()
    >>> verdict(ps.get("cpu-small"), ps, timedelta(minutes=25), [], datetime(2026, 1, 5, 18, 0, tzinfo=UTC))
    'idle 25 min; stops at 18:35 UTC if still idle (profile cpu-small allows 60 min)'
    """
    minutes = int(idle.total_seconds() // 60)
    if profile is None:
        return f"idle {minutes} min"
    stop_at = now - idle + timedelta(seconds=profile.idle_timeout)
    text = (
        f"idle {minutes} min; stops at {stop_at.astimezone(UTC):%H:%M} UTC if still idle "
        f"(profile {profile.slug} allows {profile.idle_timeout // 60} min)"
    )
    policy = profiles.culling.gpu
    utils = [g.utilisation for g in gpus if g.utilisation is not None]
    # what the culler decides at its last check if the GPUs stay this busy
    last = decide(
        policy, inactive=None, limit=profile.idle_timeout, gpus=profile.gpus,
        utilisation=sum(utils) / len(utils) if utils else None, idle_checks=policy.checks - 1, now=now,
    )  # fmt: skip
    if last.reason == "gpu-idle":
        window = int(policy.checks * profiles.culling.every // 60)
        when = "now, outside working hours" if last.action == "stop" else "after working hours"
        text += (
            f"; GPUs below {policy.threshold:g}%: after {window} min of that the server is stopped {when} "
            "(inside working hours you are notified)"
        )
    return text


def status(
    profiles: ProfileSet,
    last_activity: datetime | None,
    now: datetime | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The status of this server as a JSON-able dict: profile, GPUs and the culler's verdict."""
    env = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    slug = env.get("WORKBENCH_PROFILE", "")
    try:
        profile = profiles.get(slug) if slug else None
    except (KeyError, ValueError):
        profile = None
    gpus = read_gpus(held_devices(env))
    idle = max(timedelta(0), now - last_activity) if last_activity else timedelta(0)
    return {
        "profile": slug,
        "gpus": [asdict(g) for g in gpus],
        "idle_seconds": int(idle.total_seconds()),
        "verdict": verdict(profile, profiles, idle, gpus, now),
        "time": now.isoformat(),
    }


def status_page(info: dict[str, Any], reports: str, runs: str) -> str:
    """A small HTML page of :func:`status` with links to the reports and the user's runs."""
    rows = (
        "".join(
            f"<tr><td>GPU {html.escape(str(g['index']))}</td><td class='util'>{g['utilisation'] if g['utilisation'] is not None else '?'}%</td>"
            f"<td>{g['memory_used_mib'] or 0:.0f} / {g['memory_total_mib'] or 0:.0f} MiB</td></tr>"
            for g in info["gpus"]
        )
        or "<tr><td colspan='3'>no GPU on this server</td></tr>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='30'>"
        "<title>Workbench status</title><style>body{font-family:sans-serif;margin:2em}td{padding:.3em 1em}</style>"
        f"</head><body><h1>Workbench status</h1><p>Profile: <b>{html.escape(info['profile'] or 'unknown')}</b></p>"
        f"<table id='gpus'>{rows}</table><p id='verdict'>Culler: {html.escape(info['verdict'])}</p>"
        f"<p><a href='{html.escape(runs)}' target='_blank'>Your runs</a> · "
        f"<a href='{html.escape(reports)}' target='_blank'>The team's reports</a></p></body></html>"
    )
