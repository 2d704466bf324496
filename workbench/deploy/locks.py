r"""Image lock files: read a hashed lock (``uv pip compile``/``pip-compile`` output) and pick the pins
for one target interpreter, optionally only the dependency closure of some packages.

pip evaluates a lock's environment markers against the Python running it, so a universal lock
(entries split on ``python_full_version``) needs the target's version to pick the right pins; the
offline image builds use :func:`select` to fill a wheelhouse for the image's own Python.

Examples
--------
>>> lock = "\n".join(
...     [
...         "numpy==2.1.0 \\",
...         "    --hash=sha256:aaaa",
...         "    # via pandas",
...         "tomli==2.0.1 ; python_full_version < '3.11' \\",
...         "    --hash=sha256:bbbb",
...     ]
... )
>>> entries = parse_lock(lock)
>>> [e.name for e in select(entries, "3.11.2")], [e.name for e in select(entries, "3.10.4")]
(['numpy'], ['numpy', 'tomli'])
>>> [e.name for e in select(entries, "3.10.4", only=["tomli"])]
['tomli']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.markers import Marker, default_environment
from packaging.utils import canonicalize_name

ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")


@dataclass
class Entry:
    """One pinned package of a lock: version, environment marker, hashes and the packages needing it."""

    name: str
    version: str
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)

    def line(self) -> str:
        return " ".join([f"{self.name}=={self.version}", *self.hashes])


def parse_lock(text: str) -> list[Entry]:
    """Entries of a ``uv pip compile``/``pip-compile`` lock: pins, markers, hashes and ``# via`` parents."""
    entries: list[Entry] = []
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        match = ENTRY.match(raw)
        if match:
            entries.append(Entry(canonicalize_name(match["name"]), match["version"], match["marker"]))
            in_via = False
        elif entries and line.startswith("--hash="):
            entries[-1].hashes.append(line.rstrip("\\").strip())
        elif entries and line.startswith("# via"):
            rest = line.removeprefix("# via").strip()
            in_via = not rest
            if rest and not rest.startswith("-"):
                entries[-1].via.add(canonicalize_name(rest.split()[0]))
        elif entries and in_via and line.startswith("#   "):
            parent = line.removeprefix("#").strip()
            if not parent.startswith("-"):
                entries[-1].via.add(canonicalize_name(parent.split()[0]))
        else:
            in_via = False
    return entries


def select(entries: list[Entry], python: str, only: list[str] | None = None) -> list[Entry]:
    """Entries whose markers hold on ``python`` (Linux, this machine's architecture); with ``only``,
    just those packages and what they depend on.

    Parameters
    ----------
    entries : list of Entry
        What :func:`parse_lock` read.
    python : str
        The target interpreter's version, e.g. ``"3.11.2"``.
    only : list of str, optional
        Packages whose dependency closure is kept.

    Returns
    -------
    list of Entry
        The entries that apply.
    """
    env = default_environment()
    env.update(python_full_version=python, python_version=".".join(python.split(".")[:2]))
    chosen = [e for e in entries if e.marker is None or Marker(e.marker).evaluate(env)]
    if only is None:
        return chosen
    names = {e.name for e in chosen}
    wanted = {canonicalize_name(n) for n in only}
    missing = sorted(wanted - names)
    if missing:
        raise ValueError(f"packages {missing} are not in the lock; pick from {sorted(names)}")
    children: dict[str, set[str]] = {}
    for e in chosen:
        for parent in e.via:
            children.setdefault(parent, set()).add(e.name)
    todo = list(wanted)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in wanted:
                wanted.add(child)
                todo.append(child)
    return [e for e in chosen if e.name in wanted]
