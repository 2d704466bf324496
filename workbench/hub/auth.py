"""Local-mode login: NativeAuthenticator (users sign up, an admin approves them) on current JupyterHub.

NativeAuthenticator 1.3's login handler predates JupyterHub 6 (it calls the removed ``statsd``
and renders errors with an older signature); :class:`TeamAuthenticator` keeps its sign-up,
approval and password pages and logs in through JupyterHub's own login flow, which calls
:meth:`NativeAuthenticator.authenticate` and so its throttling of failed logins.

No name is approved at sign-up: the admin accounts are created by the hub itself at first start,
each with a generated password printed once and kept 0600 in the state directory
(:func:`set_admin_password`; ``workbench hub --reset-admin-password`` replaces it).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import bcrypt
from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode

from .._io import atomic_write_text
from ..runs.layout import owner_dirname


def admin_password_file(state_dir: str | Path, name: str) -> Path:
    """Where admin ``name``'s generated password is kept (0600, in the 0700 state directory)."""
    return Path(state_dir) / f"admin-password-{owner_dirname(name)}"


def set_admin_password(db: Any, name: str, state_dir: str | Path) -> tuple[str, Path]:
    """Create or reset admin ``name``'s login (approved) with a new random password.

    Parameters
    ----------
    db
        A SQLAlchemy session on the hub's database.
    name
        The admin's (normalized) hub user name.
    state_dir
        The hub's state directory, where the password is stored 0600.

    Returns
    -------
    tuple
        The new password and the file it is stored in.
    """
    password = secrets.token_urlsafe(18)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    info = UserInfo.find(db, name)
    if info is None:
        db.add(UserInfo(username=name, password=hashed, is_authorized=True))
    else:
        info.password, info.is_authorized = hashed, True
    path = atomic_write_text(admin_password_file(state_dir, name), password + "\n", mode=0o600)
    db.commit()
    return password, path


def announce_password(name: str, password: str, path: Path, stream: Any = None) -> None:
    """Show a new admin password on the terminal only; in a log file, only where it is stored."""
    stream = stream or sys.stdout
    shown = f"password: {password}" if stream.isatty() else "the password is not shown because output is not a terminal"
    print(
        f"workbench hub: admin account {name!r} ready; {shown} (also stored in {path}, readable by root/the hub's "
        "user only; change it at /hub/change-password)",
        file=stream,
        flush=True,
    )


class _LoginHandler(NativeLoginHandler):
    def _render(self, login_error: str | None = None, username: str | None = None, **_: Any) -> Any:
        if login_error and username:
            auth = self.authenticator
            name = auth.normalize_username(username)
            if auth.allowed_failed_logins and auth.is_blocked(name):
                login_error = (
                    f"Too many failed logins for {username}; try again in {auth.seconds_before_next_try} "
                    "seconds (or ask an admin)."
                )
            else:
                info = auth.get_user(username)
                password = self.get_body_argument("password", "", strip=False)
                if info is not None and not info.is_authorized and password and info.is_valid_password(password):
                    login_error = f"User {username} has not been approved by an admin yet."
        return super()._render(login_error=login_error, username=username)

    async def post(self) -> None:
        await HubLoginHandler.post(self)


class TeamAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with a login handler that works on JupyterHub 6 and admins created at first start."""

    admin_password_dir = Unicode(
        "", help="State directory for the admins' generated passwords; empty: no bootstrap."
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.admin_password_dir:
            self.bootstrap_admins()

    def bootstrap_admins(self) -> list[str]:
        """Create the login of every admin that has none yet; the names created."""
        created = []
        for name in sorted(self.normalize_username(n) for n in self.admin_users):
            if self.get_user(name) is None:
                password, path = set_admin_password(self.db, name, self.admin_password_dir)
                announce_password(name, password, path)
                created.append(name)
        return created

    def get_authed_users(self) -> set[str]:
        # NativeAuthenticator also counts admin_users and allowed_users as approved, which approves
        # whoever signs up first under such a name; only an admin's approval (or the bootstrap) counts here.
        return {info.username for info in UserInfo.all_users(self.db) if info.is_authorized}

    def get_handlers(self, app: Any) -> list[tuple]:
        return [(path, _LoginHandler if path == r"/login" else handler) for path, handler in super().get_handlers(app)]
