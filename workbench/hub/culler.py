"""GPU-aware culling: a hub service built on ``jupyterhub-idle-culler``'s ``cull_idle`` and its arbiter hook.

Every check, for every ready server:

- plain activity culling: stop it when inactive longer than its profile's ``idle_timeout``
  (GPU profiles carry shorter ones); the profile is the one the server was spawned with, as
  recorded by the pre-spawn hook (:func:`workbench.hub.quota.record_spawned_profile`);
- servers on GPU profiles: read GPU utilisation from a metrics source; after ``checks``
  consecutive checks below ``threshold`` percent, notify the user through the webhook during
  working hours (once per idle streak), and stop the server outside them.

Run by the hub as ``python -m workbench.hub.culler --profiles hub/profiles.yaml``;
:func:`workbench.hub.configure` registers it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..profiles import GpuCulling, Profile, ProfileSet, load_profiles
from .metrics import GpuMetrics, GpuServer, metrics_from_config
from .quota import spawned_profile

log = logging.getLogger("workbench.hub.culler")

WEBHOOK_ENV = "WORKBENCH_CULLER_WEBHOOK"


@dataclass
class _Streak:
    started: str | None
    idle_checks: int = 0
    notified: bool = False


class WebhookNotifier:
    """POST a JSON message (Slack-compatible ``text`` plus details) to a webhook URL."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    async def __call__(self, message: dict[str, Any]) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        request = HTTPRequest(
            self.url,
            method="POST",
            body=json.dumps(message),
            headers={"Content-Type": "application/json"},
            request_timeout=self.timeout,
        )
        await AsyncHTTPClient().fetch(request)


@dataclass(frozen=True)
class Decision:
    """What the culler does with a server at one check: ``keep``, ``notify`` its user or ``stop`` it.

    ``reason`` is ``inactive`` or ``gpu-idle`` (empty when kept), ``idle_checks`` the GPU idle
    streak after this check and ``why`` the decision in words.
    """

    action: str
    reason: str = ""
    idle_checks: int = 0
    why: str = ""


def decide(
    policy: GpuCulling,
    *,
    inactive: timedelta | None,
    limit: float,
    gpus: int,
    utilisation: float | None,
    idle_checks: int,
    now: datetime,
) -> Decision:
    """The culler's rule for one server at one check, without side effects.

    Parameters
    ----------
    policy : GpuCulling
        The GPU culling policy (threshold, checks, working hours).
    inactive : timedelta or None
        How long the server has had no activity (``None``: unknown).
    limit : float
        Seconds of inactivity that stop it (its profile's ``idle_timeout``).
    gpus : int
        GPUs the server holds; a server without GPUs is judged on activity alone.
    utilisation : float or None
        Its mean GPU utilisation in percent at this check (``None``: unknown, the streak is kept).
    idle_checks : int
        Consecutive checks below the threshold before this one.
    now : datetime
        The time of the check (working hours decide between notifying and stopping).

    Returns
    -------
    Decision
        The action, its reason and the idle streak after this check.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from workbench.profiles import GpuCulling
    >>> night = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    >>> policy = GpuCulling(threshold=10, checks=3)
    >>> decide(policy, inactive=timedelta(minutes=5), limit=3600, gpus=1, utilisation=4.0, idle_checks=2, now=night).action
    'stop'
    >>> decide(policy, inactive=timedelta(minutes=5), limit=3600, gpus=1, utilisation=40.0, idle_checks=2, now=night)
    Decision(action='keep', reason='', idle_checks=0, why='')
    """
    if inactive is not None and inactive.total_seconds() >= limit:
        why = f"inactive for {inactive.total_seconds():.0f}s, {limit:.0f}s allowed"
        return Decision("stop", "inactive", 0, why)
    if gpus <= 0 or utilisation is None:
        return Decision("keep", "", idle_checks)
    if utilisation >= policy.threshold:
        return Decision("keep", "", 0)
    checks = idle_checks + 1
    if checks < policy.checks:
        return Decision("keep", "", checks)
    if policy.working_hours.contains(now):
        return Decision("notify", "gpu-idle", checks, f"GPU idle for {checks} checks inside working hours")
    return Decision("stop", "gpu-idle", checks, f"GPU idle for {checks} checks outside working hours")


class GpuAwareCuller:
    """Decides, server by server, whether to stop it; used as idle-culler's ``cull_arbiter``.

    ``now`` is injectable so the working-hours policy can be exercised at any time of day.

    Examples
    --------
    >>> from workbench.hub.metrics import StaticMetrics
    >>> from workbench.profiles import load_profiles
    >>> culler = GpuAwareCuller(load_profiles(), metrics=StaticMetrics(0.0))
    >>> type(culler.metrics).__name__
    'StaticMetrics'

    Against a running hub: ``await culler.check(hub_api_url, token)``.
    """

    def __init__(
        self,
        profiles: ProfileSet,
        metrics: GpuMetrics,
        notify: Callable[[dict[str, Any]], Any] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.profiles = profiles
        self.policy: GpuCulling = profiles.culling.gpu
        self.metrics = metrics
        self.notify = notify
        self.now = now
        self._streaks: dict[str, _Streak] = {}
        self.notifications: list[dict[str, Any]] = []

    def server_profile(self, server: dict[str, Any]) -> tuple[GpuServer, Profile | None]:
        """The server (the hub API's model) and the profile it was spawned with (``None``: no longer listed).

        The profile comes from the record made at spawn (spawner state, else ``user_options``), with
        the GPU count the server got then. Only servers started before profiles were recorded fall
        back to the profile they asked for, or the hub-wide default.
        """
        name = server.get("name", "")
        full = server.get("full_name") or ""
        user = full[: len(full) - len(name) - 1] if full.endswith("/" + name) else full.split("/", 1)[0]
        state = server.get("state") or {}
        recorded = spawned_profile(server.get("user_options"), state)
        slug = recorded[0] if recorded else (server.get("user_options") or {}).get("profile")
        try:
            profile = self.profiles.get(slug) if slug else self.profiles.select(None, ())
        except (KeyError, ValueError):
            profile = None
        gpus = recorded[1] if recorded else (profile.gpus if profile else 0)
        info = GpuServer(
            user=user, name=name, profile=profile.slug if profile else str(slug or ""), gpus=gpus, state=state
        )
        return info, profile

    async def arbiter(self, *, inactive: timedelta, inactive_limit: int, server: dict[str, Any], **_: Any) -> bool:
        """True to stop ``server`` (the hub API's server model)."""
        info, profile = self.server_profile(server)
        limit = profile.idle_timeout if profile else inactive_limit
        streak = self._streak(info, server.get("started")) if info.gpus > 0 else _Streak(None)
        util = await self._utilisation(info) if info.gpus > 0 else None
        now = self.now()
        decision = decide(
            self.policy, inactive=inactive, limit=limit, gpus=info.gpus, utilisation=util,
            idle_checks=streak.idle_checks, now=now,
        )  # fmt: skip
        if decision.idle_checks > streak.idle_checks:  # one more check below the threshold
            log.info(
                "%s: GPU %.1f%% < %.1f%% (%d/%d idle checks)",
                info.key, util, self.policy.threshold, decision.idle_checks, self.policy.checks,
            )  # fmt: skip
        streak.idle_checks = decision.idle_checks
        if decision.idle_checks == 0:
            streak.notified = False
        if decision.action == "stop":
            log.info("stopping %s: %s (profile %s)", info.key, decision.why, info.profile)
            self._streaks.pop(info.key, None)
            return True
        if decision.action == "notify" and not streak.notified:
            streak.notified = True
            await self._notify(info, util, decision.idle_checks, now)
        return False

    def _streak(self, info: GpuServer, started: str | None) -> _Streak:
        streak = self._streaks.get(info.key)
        if streak is None or streak.started != started:  # a restarted server starts a new streak
            streak = self._streaks[info.key] = _Streak(started=started)
        return streak

    async def _utilisation(self, info: GpuServer) -> float | None:
        try:
            util = await self.metrics.utilisation(info)
        except Exception as exc:  # a broken metrics source must never stop servers
            log.warning("no GPU utilisation for %s: %s", info.key, exc)
            return None
        if util is None:
            log.debug("GPU utilisation of %s unknown; leaving it", info.key)
        return util

    async def _notify(self, info: GpuServer, util: float, checks: int, now: datetime) -> None:
        label = f"{info.user}'s server {info.name!r}" if info.name else f"{info.user}'s server"
        message = {
            "text": (
                f"{label} on profile {info.profile} holds {info.gpus} GPU(s) that idled below "
                f"{self.policy.threshold:g}% for {checks} checks (last {util:.0f}%). Stop it when you are done; "
                "outside working hours it is stopped automatically."
            ),
            "event": "gpu-idle",
            "user": info.user,
            "server": info.name,
            "profile": info.profile,
            "gpus": info.gpus,
            "utilisation": util,
            "idle_checks": checks,
            "time": now.isoformat(),
        }
        self.notifications.append(message)
        if self.notify is None:
            log.info("GPU idle (no webhook configured): %s", message["text"])
            return
        try:
            await self.notify(message)
        except Exception as exc:  # never log the webhook URL: it is often a secret
            log.warning("GPU-idle notification for %s failed: %s", info.key, type(exc).__name__)

    async def check(self, api_url: str, api_token: str) -> None:
        """One pass over the hub's ready servers (``api_url`` like ``http://127.0.0.1:8081/hub/api``)."""
        from jupyterhub_idle_culler import cull_idle

        await cull_idle(
            url=api_url.rstrip("/"),
            api_token=api_token,
            inactive_limit=self.profiles.slowest_idle_timeout(),
            logger=log,
            cull_arbiter=self.arbiter,
        )


async def run(culler: GpuAwareCuller, api_url: str, api_token: str, every: float) -> None:
    """Check every ``every`` seconds, forever; a failed pass is logged and retried next time."""
    while True:
        try:
            await culler.check(api_url, api_token)
        except Exception:
            log.exception("culling pass failed")
        await asyncio.sleep(every)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the hub service; the hub passes its API URL and token in the environment."""
    p = argparse.ArgumentParser(prog="python -m workbench.hub.culler", description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", help="profiles file (default: $WORKBENCH_PROFILES or hub/profiles.yaml)")
    p.add_argument("--mode", choices=("local", "kubernetes"), default="local", help="picks the 'auto' metrics source")
    p.add_argument("--every", type=float, help="seconds between checks (default: culling.every)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[%(levelname).1s %(asctime)s culler] %(message)s")
    for logger in ("workbench", "tornado.access"):
        logging.getLogger(logger).setLevel(logging.INFO)
    try:
        api_url, api_token = os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"]
    except KeyError as exc:
        print(f"culler: {exc.args[0]} is not set; the culler runs as a JupyterHub service", file=sys.stderr)
        return 2
    profiles = load_profiles(args.profiles)
    webhook = profiles.culling.gpu.webhook or os.environ.get(WEBHOOK_ENV)
    culler = GpuAwareCuller(
        profiles,
        metrics_from_config(profiles.culling.gpu.metrics, args.mode),
        notify=WebhookNotifier(webhook) if webhook else None,
    )
    asyncio.run(run(culler, api_url, api_token, args.every or profiles.culling.every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
