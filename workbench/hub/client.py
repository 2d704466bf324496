"""Script the hub the way a browser uses it: sign up, log in, pick a profile, wait for the server.

For smoke checks, benchmarks and admin chores on a running hub (cookie session plus XSRF token,
exactly like the web pages; API tokens work too).

Against a running hub:

.. code-block:: python

    admin = HubSession("http://127.0.0.1:8000")
    admin.signup("alice", "a long passphrase")  # an admin name is approved at once
    admin.login("alice", "a long passphrase")
    admin.spawn("alice", profile="cpu-small")  # through the spawn form
    admin.wait_ready("alice")
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

_XSRF = re.compile(r'name="_xsrf"\s+value="([^"]+)"|[?&]_xsrf=([^"&]+)')


class HubError(RuntimeError):
    """The hub refused or failed a request; the message is the hub's."""


class HubSession:
    """A logged-in (or anonymous) browser-like session on a hub at ``url``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import requests

        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.timeout = timeout
        if token:
            self.http.headers["Authorization"] = f"token {token}"

    def _form_xsrf(self, path: str) -> str:
        page = self.http.get(self.url + path, timeout=self.timeout)
        if page.status_code >= 400:
            raise HubError(f"GET {path}: status {page.status_code}")
        match = _XSRF.search(page.text)
        token = (match.group(1) or match.group(2)) if match else self.http.cookies.get("_xsrf")
        if not token:
            raise HubError(f"no form with an XSRF token at {path}")
        return token

    def signup(self, username: str, password: str) -> str:
        """Sign up through the NativeAuthenticator form; returns the page's message."""
        xsrf = self._form_xsrf("/hub/signup")
        page = self.http.post(
            self.url + "/hub/signup",
            timeout=self.timeout,
            data={
                "username": username,
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": xsrf,
            },
        )
        message = re.search(r'class="alert[^"]*"[^>]*>\s*(.*?)\s*<', page.text, re.S)
        return message.group(1) if message else page.text[-500:]

    def login(self, username: str, password: str) -> None:
        """Log in through the login form; raises :class:`HubError` when the hub refuses."""
        xsrf = self._form_xsrf("/hub/login")
        page = self.http.post(
            self.url + "/hub/login",
            timeout=self.timeout,
            data={"username": username, "password": password, "_xsrf": xsrf},
        )
        if "/hub/login" in page.url or not any(c.name.startswith("jupyterhub-session") for c in self.http.cookies):
            raise HubError(f"login as {username!r} refused (status {page.status_code})")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A hub REST call (``path`` after ``/hub/api``); the JSON answer, or :class:`HubError`."""
        headers = kwargs.pop("headers", {})
        xsrf = self.http.cookies.get("_xsrf", path="/hub/")
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        response = self.http.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise HubError(f"{method} {path}: {response.status_code} {message}")
        return response.json() if response.content else None

    def authorize(self, username: str) -> None:
        """Approve a signed-up user (admins only; NativeAuthenticator's toggle)."""
        page = self.http.get(f"{self.url}/hub/authorize/{quote(username)}", timeout=self.timeout)
        if page.status_code >= 400:
            raise HubError(f"authorizing {username!r} failed with status {page.status_code}")

    def new_token(self, username: str, note: str = "workbench") -> str:
        """A new API token for ``username`` (yourself, or anyone as an admin)."""
        return self.api("POST", f"/users/{quote(username)}/tokens", json={"note": note})["token"]

    def spawn(self, username: str, profile: str | None = None, server: str = "") -> None:
        """Start a server through the spawn form with ``profile`` picked."""
        path = f"/hub/spawn/{quote(username)}" + (f"/{quote(server)}" if server else "")
        xsrf = self._form_xsrf(path)
        data = {"_xsrf": xsrf, **({"profile": profile} if profile else {})}
        page = self.http.post(self.url + path, data=data, timeout=self.timeout)
        if page.status_code >= 400:
            detail = re.search(r"<p>\s*(.*?)\s*</p>", page.text, re.S)
            raise HubError(f"spawn refused ({page.status_code}): {detail.group(1) if detail else page.reason}")

    def server(self, username: str, server: str = "") -> dict[str, Any] | None:
        """The server's model from the hub API, or ``None`` when it is not running."""
        return self.api("GET", f"/users/{quote(username)}").get("servers", {}).get(server)

    def wait_ready(self, username: str, server: str = "", timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the server is ready (following the hub's progress stream); its model."""
        import json

        path = f"/hub/api/users/{quote(username)}/" + (f"servers/{quote(server)}" if server else "server") + "/progress"
        headers = {"Accept": "text/event-stream"}
        xsrf = self.http.cookies.get("_xsrf", path="/hub/")
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        deadline = time.monotonic() + timeout
        with self.http.get(self.url + path, headers=headers, stream=True, timeout=(self.timeout, timeout)) as stream:
            if stream.status_code >= 400:
                raise HubError(f"server {username}/{server}: progress answered {stream.status_code}")
            for line in stream.iter_lines(decode_unicode=True):
                if time.monotonic() > deadline:
                    break
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    raise HubError(f"server {username}/{server} failed to start: {event.get('message', '')}")
                if event.get("ready"):
                    break
        model = self.server(username, server)
        if not (model and model.get("ready")):
            raise HubError(f"server {username}/{server} not ready after {timeout:.0f}s (see the hub log)")
        return model
