"""Local-mode login: NativeAuthenticator (users sign up, an admin approves them) on current JupyterHub.

NativeAuthenticator 1.3's login handler predates JupyterHub 6 (it calls the removed ``statsd``
and renders errors with an older signature); :class:`TeamAuthenticator` keeps its sign-up,
approval and password pages and logs in through JupyterHub's own login flow.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler


class _LoginHandler(NativeLoginHandler):
    def _render(self, login_error: str | None = None, username: str | None = None, **_: Any) -> Any:
        if login_error and username:
            info = self.authenticator.get_user(username)
            password = self.get_body_argument("password", "", strip=False)
            if info is not None and not info.is_authorized and password and info.is_valid_password(password):
                login_error = f"User {username} has not been approved by an admin yet."
        return super()._render(login_error=login_error, username=username)

    async def post(self) -> None:
        await HubLoginHandler.post(self)


class TeamAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with a login handler that works on JupyterHub 6."""

    def get_handlers(self, app: Any) -> list[tuple]:
        return [(path, _LoginHandler if path == r"/login" else handler) for path, handler in super().get_handlers(app)]
