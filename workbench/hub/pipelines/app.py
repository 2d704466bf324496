"""The pipelines service's HTTP routes (see :mod:`workbench.hub.pipelines` for the API).

Every ``api/`` route identifies the caller by a hub API token (``Authorization: token ...``, checked
with the hub on each request, cached briefly); no token, or one the hub does not know, is 401; a
token without the route's scope is 403. The status page uses the hub's OAuth login.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
from typing import Any

from tornado import web

from ..services import hub_user_model
from . import ADMIN_SCOPE, SCHEDULES_SCOPE, TRIGGER_SCOPE
from .core import Pipelines, Refused
from .launches import Busy
from .store import ScheduleError, check_name

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class _Api(web.RequestHandler):
    def initialize(self, service: Pipelines, hub_auth: Any) -> None:
        self.service, self.hub_auth = service, hub_auth
        self.caller: dict[str, Any] = {}

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", _CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no cookies are accepted, so there is nothing to forge."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})

    def _answer(self, status: int, body: Any) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    async def _identify(self, scope: str | None) -> None:
        match = self.hub_auth.auth_header_pat.match(self.request.headers.get("Authorization", ""))
        if not match:
            self.set_header("WWW-Authenticate", "token")
            raise Refused(401, "no hub token: send 'Authorization: token <hub API token>'")
        model = await self.hub_auth.user_for_token(match.group(1), sync=False)
        if not model or not model.get("name"):
            self.set_header("WWW-Authenticate", "token")
            raise Refused(401, "the hub does not accept this token (expired, revoked or unknown)")
        self.caller = model
        if scope is not None and scope not in self.scopes and not (scope == SCHEDULES_SCOPE and self.admin):
            raise Refused(403, f"this token lacks the {scope} scope; ask an admin for a token with it")

    @property
    def scopes(self) -> list[str]:
        return list(self.caller.get("scopes") or [])

    @property
    def admin(self) -> bool:
        return self.caller.get("kind", "user") == "user" and ADMIN_SCOPE in self.scopes

    @property
    def by(self) -> str:
        kind = self.caller.get("kind", "user")
        return self.caller["name"] if kind == "user" else f"{kind}:{self.caller['name']}"

    def _own(self, user: str, write: bool) -> None:
        """Refuse ``user``'s schedules to anyone but ``user`` (admins may read and delete them)."""
        if self.caller.get("kind", "user") != "user":
            raise Refused(403, "schedules belong to users; use a user's token")
        if user != self.caller["name"] and not (self.admin and not write):
            raise Refused(
                403, f"you may only manage your own schedules (you are {self.caller['name']!r}, not {user!r})"
            )

    def _sees(self, launch: Any) -> bool:
        """Whether the caller may see ``launch``: its requester, its owner, or an admin."""
        return self.admin or launch.trigger.get("by") == self.by or launch.owner == self.caller["name"]

    def _json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise Refused(400, "the request body is not JSON") from None

    async def _run(self, scope: str | None, action: Any, *args: Any) -> None:
        try:
            await self._identify(scope)
            await action(*args)
        except Refused as exc:
            self._answer(exc.status, {"error": exc.reason})
        except ScheduleError as exc:
            self._answer(exc.status, {"error": str(exc)})

    async def groups(self, user: str) -> list[str]:
        """``user``'s hub groups, asked with the service's own token."""
        return list((await hub_user_model(self.hub_auth, user, Refused)).get("groups") or [])


class PipelinesHandler(_Api):
    async def get(self) -> None:
        async def show() -> None:
            self._answer(200, self.service.status())

        await self._run(None, show)


class WebhookHandler(_Api):
    async def post(self, name: str) -> None:
        async def start() -> None:
            body = self._json_body()
            if body is not None and not (isinstance(body, dict) and set(body) <= {"parameters"}):
                raise Refused(400, 'the body must be {"parameters": {...}} (or empty)')
            launch = await self.service.webhook(name, (body or {}).get("parameters"), self.by)
            await self.service.launcher.early_run(launch)
            self._answer(202, launch.to_dict())

        await self._run(TRIGGER_SCOPE, start)


class LaunchesHandler(_Api):
    async def get(self) -> None:
        async def show() -> None:
            launcher = self.service.launcher
            shown = [launch for launch in launcher.launches.values() if self._sees(launch)]
            for launch in shown:
                await asyncio.to_thread(launcher.settle, launch)
            shown.sort(key=lambda launch: launch.id, reverse=True)
            self._answer(200, {"launches": [launch.to_dict() for launch in shown]})

        await self._run(None, show)


class LaunchHandler(_Api):
    async def get(self, launch_id: str) -> None:
        async def show() -> None:
            launch = self.service.launcher.launches.get(launch_id)
            if launch is None or not self._sees(launch):
                raise Refused(404, f"no run launch {launch_id!r} of yours")
            await asyncio.to_thread(self.service.launcher.refresh, launch)
            self._answer(200, launch.to_dict())

        await self._run(None, show)


class SchedulesHandler(_Api):
    async def get(self, user: str | None = None) -> None:
        async def show() -> None:
            if user is not None:
                self._own(user, write=False)
            who = user if user is not None else (None if self.admin else self.caller["name"])
            self._answer(200, {"schedules": [self.service.describe(r) for r in self.service.store.list(who)]})

        await self._run(SCHEDULES_SCOPE, show)


class ScheduleHandler(_Api):
    async def get(self, user: str, name: str) -> None:
        async def show() -> None:
            self._own(user, write=False)
            record = self.service.store.get(user, check_name(name))
            if record is None:
                raise Refused(404, f"{user!r} has no schedule {name!r}")
            self._answer(200, self.service.describe(record))

        await self._run(SCHEDULES_SCOPE, show)

    async def put(self, user: str, name: str) -> None:
        async def save() -> None:
            self._own(user, write=True)
            check_name(name)
            body = self._json_body()
            record, created = await self.service.put_schedule(user, name, body, await self.groups(user))
            self._answer(201 if created else 200, record)

        await self._run(SCHEDULES_SCOPE, save)

    async def delete(self, user: str, name: str) -> None:
        async def remove() -> None:
            self._own(user, write=not self.admin)
            if not self.service.delete_schedule(user, check_name(name)):
                raise Refused(404, f"{user!r} has no schedule {name!r}")
            self._answer(204, None)

        await self._run(SCHEDULES_SCOPE, remove)


class ScheduleRunHandler(_Api):
    async def post(self, user: str, name: str) -> None:
        async def start() -> None:
            self._own(user, write=True)
            record = self.service.store.get(user, check_name(name))
            if record is None:
                raise Refused(404, f"{user!r} has no schedule {name!r}")
            try:
                launch = await self.service.launch_schedule(record, {"kind": "user", "by": user})
            except Busy as exc:
                raise Refused(409, str(exc)) from None
            await self.service.launcher.early_run(launch)
            self._answer(202, launch.to_dict())

        await self._run(SCHEDULES_SCOPE, start)


def status_page(service: Pipelines, user: str) -> str:
    """The status page: declared pipelines, files that failed to load, recent skips."""
    status = service.status()
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(p['name'])}</td><td>{esc(p['file'])}</td><td>{esc(p['schedule'] or '')}</td>"
        f"<td>{esc(p['next_fire'] or '')}</td><td>{esc(', '.join(p['webhook']['parameters']) if p['webhook'] else 'no')}"
        f"</td></tr>"
        for p in status["pipelines"]
    )
    errors = "".join(f"<li><b>{esc(e['file'])}</b>: {esc(e['error'])}</li>" for e in status["errors"])
    notes = "".join(f"<li>{esc(n['at'])} {esc(n['key'])}: {esc(n['note'])}</li>" for n in status["notes"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Pipelines</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}</style></head><body>"
        f"<h1>Pipelines</h1><p>Signed in as {esc(user)}.</p>"
        "<table><tr><th>Pipeline</th><th>File</th><th>Schedule (UTC)</th><th>Next</th><th>Webhook parameters</th></tr>"
        f"{rows}</table><h2>Files not loaded</h2><ul>{errors or '<li>none</li>'}</ul>"
        f"<h2>Skipped fires</h2><ul>{notes or '<li>none</li>'}</ul></body></html>"
    )


def make_app(service: Pipelines, hub_auth: Any, prefix: str = "/services/pipelines/") -> web.Application:
    """The tornado application; ``hub_auth`` is a ``HubOAuth`` from the service's environment."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated

    class StatusHandler(HubOAuthenticated, web.RequestHandler):
        def initialize(self, service: Pipelines, hub_auth: Any) -> None:
            self.service, self.hub_auth = service, hub_auth

        @web.authenticated
        def get(self) -> None:
            self.set_header("Content-Security-Policy", _CSP)
            self.set_header("Cache-Control", "no-store")
            self.finish(status_page(self.service, self.current_user["name"]))

    prefix = "/" + prefix.strip("/") + "/"
    kwargs = {"service": service, "hub_auth": hub_auth}
    part = r"([^/]+)"
    return web.Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "api/pipelines", PipelinesHandler, kwargs),
            (prefix + f"api/pipelines/{part}/runs", WebhookHandler, kwargs),
            (prefix + "api/runs", LaunchesHandler, kwargs),
            (prefix + f"api/runs/{part}", LaunchHandler, kwargs),
            (prefix + "api/schedules", SchedulesHandler, kwargs),
            (prefix + f"api/schedules/{part}", SchedulesHandler, kwargs),
            (prefix + f"api/schedules/{part}/{part}", ScheduleHandler, kwargs),
            (prefix + f"api/schedules/{part}/{part}/runs", ScheduleRunHandler, kwargs),
            (prefix.rstrip("/") + "/?", StatusHandler, kwargs),
        ],
        cookie_secret=secrets.token_bytes(32),
    )
