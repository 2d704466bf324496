"""Where runs live: the runs root, one folder per owner, and the names shared by every part.

A team shares one *runs root* (``$WORKBENCH_RUNS_DIR``; on Kubernetes the runs volume mounted at
:data:`KUBE_RUNS_MOUNT`). Each person writes only below their own folder::

    <runs root>/<owner folder>/<YYYYmmdd-HHMMSS>-<name>-r<6 hex>/

The owner of a run is the folder it lives in, never a value written inside the run. Owner folder
names come from :func:`owner_dirname`, which is injective: two different user names never share a
folder.
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path

RUNS_ENV = "WORKBENCH_RUNS_DIR"
"""Environment variable naming the runs root."""

KUBE_RUNS_MOUNT = "/srv/workbench/runs"
"""Where the shared runs volume is mounted in hub, user and job pods."""

DEFAULT_RUNS_DIR = "runs"
"""The runs root when ``$WORKBENCH_RUNS_DIR`` is not set (relative to the working directory)."""

STATES = ("running", "succeeded", "failed", "degraded", "pruned")
"""The states a run's ``status.json`` may hold (:mod:`workbench.runs.records`)."""

_KEEP = re.compile(r"[A-Za-z0-9_.@]")


def default_runs_root() -> Path:
    """``$WORKBENCH_RUNS_DIR`` when set, else ``runs`` in the working directory.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"WORKBENCH_RUNS_DIR": "/srv/runs"}):
    ...     print(default_runs_root())
    /srv/runs
    >>> with mock.patch.dict(os.environ):
    ...     _ = os.environ.pop("WORKBENCH_RUNS_DIR", None)
    ...     print(default_runs_root())
    runs
    """
    return Path(os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)


def current_owner() -> str:
    """The name this process writes runs under: the hub user inside JupyterHub, else the login name.

    Writing under a name is only possible where the file system lets this process write, so the
    name is a destination, not a claim: readers take the owner from the folder a run lives in.
    """
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def owner_dirname(name: str) -> str:
    """A folder name for user ``name``: letters, digits, ``_``, ``.`` and ``@`` kept, the rest escaped.

    Every other character, ``-`` included, becomes ``-<hex code point>-``, so the mapping is
    one-to-one (``"é"`` and ``"-e9-"`` get different folders), and a leading ``.`` is escaped too,
    so the result is never hidden, ``.`` or ``..``.

    Examples
    --------
    >>> owner_dirname("alice")
    'alice'
    >>> owner_dirname("é"), owner_dirname("-e9-")
    ('-e9-', '-2d-e9-2d-')
    >>> owner_dirname("..")
    '-2e-.'
    """
    if not name:
        raise ValueError("a user name cannot be empty")
    out = []
    for i, ch in enumerate(name):
        keep = _KEEP.fullmatch(ch) and not (i == 0 and ch == ".")
        out.append(ch if keep else f"-{ord(ch):x}-")
    return "".join(out)


def owner_dir(root: str | os.PathLike[str], owner: str) -> Path:
    """``<root>/<owner_dirname(owner)>``: where ``owner`` writes runs."""
    return Path(root) / owner_dirname(owner)


_ESCAPED = re.compile(r"-([0-9a-f]+)-")


def owner_from_dirname(dirname: str) -> str | None:
    """The user name whose folder is ``dirname`` (the inverse of :func:`owner_dirname`), or ``None``.

    ``None`` means no user name maps to ``dirname`` (a folder not made by :func:`owner_dirname`).

    Examples
    --------
    >>> owner_from_dirname("-2d-e9-2d-"), owner_from_dirname("alice"), owner_from_dirname("-e9-")
    ('-e9-', 'alice', 'é')
    >>> owner_from_dirname("a-b") is None
    True
    """
    try:
        name = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), dirname)
    except (ValueError, OverflowError):
        return None
    try:
        return name if name and owner_dirname(name) == dirname else None
    except ValueError:
        return None
