"""System accounts for hub users: one Linux account per user when the local hub runs as root.

A hub user ``alice`` gets the account ``wb-alice``; names that are not valid Linux user names, or
too long, get a readable prefix and a hash of the full name (``wb-jean.pierre`` becomes
``wb-jean_pierre__4cfa6e6c0d``). Plain names never contain ``__``, hashed ones always do, so two hub
users never share an account. An account is created without a password and without a login
shell, and is marked (in its comment field) with the hub user it belongs to: an existing account
with the right name but another mark is never taken over.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "wb-"
MAX_NAME = 32  # useradd's limit on Linux
_PLAIN = re.compile(r"[a-z0-9_-]+")
_SAFE = re.compile(r"[^a-z0-9_-]")
NOLOGIN = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(p)), "/bin/false")
_CREATE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Account:
    """A hub user's system account."""

    name: str
    uid: int
    gid: int


def account_name(user: str) -> str:
    """The system account name for hub user ``user`` (deterministic, one-to-one).

    Examples
    --------
    >>> account_name("alice")
    'wb-alice'
    >>> account_name("Jean.Pierre")
    'wb-jean_pierre__4cfa6e6c0d'
    """
    if not user:
        raise ValueError("a hub user name cannot be empty")
    plain = PREFIX + user
    if _PLAIN.fullmatch(user) and "__" not in user and len(plain) <= MAX_NAME:
        return plain
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"_+", "_", _SAFE.sub("_", user.lower())).strip("_-")[: MAX_NAME - len(PREFIX) - len(digest) - 2]
    return f"{PREFIX}{stem}__{digest}"


def account_mark(user: str) -> str:
    """The comment an account created for hub user ``user`` carries (no ``:`` or newline, whatever the name)."""
    return "workbench hub user " + hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]


def lookup_account(user: str) -> Account | None:
    """The existing account of hub user ``user``; ``None`` when there is none.

    Raises
    ------
    PermissionError
        The account name exists but was not created for this hub user.
    """
    name = account_name(user)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    if entry.pw_gecos != account_mark(user) or entry.pw_uid == 0:
        raise PermissionError(
            f"system account {name!r} exists but was not created by the hub for user {user!r}; "
            f"rename or remove that account (userdel {name}) before this user can start a server"
        )
    return Account(name, entry.pw_uid, entry.pw_gid)


def ensure_account(user: str, home: str | os.PathLike[str], attempts: int = 20) -> Account:
    """Hub user ``user``'s account, created on first use (``useradd --system``, its own group, no login).

    Parameters
    ----------
    user
        The hub user name.
    home
        The home directory recorded for the account (created separately by :func:`private_dir`).
    attempts
        How often to retry while another process holds the lock on ``/etc/passwd``.

    Returns
    -------
    Account
        The account's name, uid and primary gid.
    """
    with _CREATE_LOCK:
        found = lookup_account(user)
        if found is not None:
            return found
        name = account_name(user)
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            str(home),
            "--shell",
            NOLOGIN,
            "--comment",
            account_mark(user),
            name,
        ]
        for attempt in range(attempts):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                break
            if proc.returncode == 9:  # created meanwhile by another hub process
                break
            if proc.returncode != 10 or attempt == attempts - 1:  # 10: /etc/passwd is locked
                raise OSError(
                    f"creating system account {name!r} for hub user {user!r} failed: "
                    f"useradd exited {proc.returncode}: {proc.stderr.strip()}"
                )
            time.sleep(0.1)
        found = lookup_account(user)
        if found is None:
            raise OSError(f"useradd reported success but account {name!r} does not exist")
        return found


def private_dir(path: str | os.PathLike[str], account: Account, mode: int = 0o700) -> Path:
    """Create (or repair) ``path`` owned by ``account`` with ``mode``; its parent must exist.

    An existing symbolic link is refused rather than followed.
    """
    path = Path(path)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{path} exists and is not a directory; move it away so the hub can create it for {account.name}")
    os.chown(path, account.uid, account.gid, follow_symlinks=False)
    os.chmod(path, mode)
    return path


def closed_to_others(path: str | os.PathLike[str]) -> Path | None:
    """The first directory on the way to ``path`` (itself included) that other users cannot enter.

    ``None`` when every directory from ``/`` down to ``path`` has the execute bit for others, i.e. an
    unprivileged account can reach ``path``.
    """
    path = Path(path).resolve()
    for part in [*reversed(path.parents), path]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            return None  # created later, under a reachable parent
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return part
    return None
