"""The profile objects: a notebook server's image, resources and placement, and the culling policy."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_HOURS_KEYS = {"days", "start", "end", "timezone"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
USERNAME = "{username}"  # at the end of a `secrets:` entry: one Secret per user, e.g. optuna-{username}
_SECRET_CHAR = re.compile(r"[a-z0-9]")


def secret_username(user: str) -> str:
    """``user`` as it stands in a per-user Secret name: ``a-z`` and ``0-9`` kept, every other
    character as ``-`` and the hex of each of its UTF-8 bytes, so no two users share a name.

    Examples
    --------
    >>> secret_username("ana"), secret_username("gina-r@example.com")
    ('ana', 'gina-2dr-40example-2ecom')
    """
    return "".join(ch if _SECRET_CHAR.fullmatch(ch) else "".join(f"-{b:02x}" for b in ch.encode()) for ch in user)


def parse_memory(value: str | int | float) -> int:
    """Bytes from ``"4G"``, ``"512Mi"``, ``"1.5GiB"`` or a number of bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _MEMORY.match(str(value))
    if not match:
        raise ValueError(f"cannot read memory size {value!r}; write it like 4G, 512M or 2Gi")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").upper()])


@dataclass(frozen=True)
class Profile:
    """One notebook server flavour: image, resources, placement and who may use it."""

    slug: str
    display_name: str
    description: str
    image: str
    cpu_limit: float
    cpu_guarantee: float
    mem_limit: str
    mem_guarantee: str
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    groups: tuple[str, ...] = ()
    idle_timeout: int = 3600
    default: bool = False
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # Kubernetes Secrets a Job on this profile may receive (the job gateway's allow-list)

    @property
    def mem_limit_bytes(self) -> int:
        return parse_memory(self.mem_limit)

    @property
    def mem_guarantee_bytes(self) -> int:
        return parse_memory(self.mem_guarantee)

    def allowed_secrets(self, user: str | None = None) -> tuple[str, ...]:
        """The Secrets a Job of ``user`` may receive here: ``secrets`` with ``{username}`` filled in
        (:func:`secret_username`); without a user, the entries holding it are left out."""
        names = []
        for entry in self.secrets:
            if entry.endswith(USERNAME):
                if user:
                    names.append(entry[: -len(USERNAME)] + secret_username(user))
            else:
                names.append(entry)
        return tuple(names)

    def allowed_for(self, user_groups: Iterable[str]) -> bool:
        """Open to everyone when ``groups`` is empty, else to members of any listed group."""
        return not self.groups or bool(set(self.groups) & set(user_groups))


@dataclass(frozen=True)
class WorkingHours:
    """When people are at work: GPU idleness then only notifies; outside it stops the server."""

    days: frozenset[int] = frozenset(range(5))  # 0 = Monday, as datetime.weekday()
    start: dtime = dtime(8, 0)
    end: dtime = dtime(19, 0)
    timezone: str = "UTC"

    def contains(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware; naive means UTC) falls inside working hours."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=ZoneInfo("UTC"))
        local = now.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end


@dataclass(frozen=True)
class GpuCulling:
    """GPU-aware culling: ``checks`` consecutive checks below ``threshold`` percent utilisation."""

    threshold: float = 10.0
    checks: int = 3
    working_hours: WorkingHours = field(default_factory=WorkingHours)
    webhook: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Culling:
    """The ``culling:`` section: check interval and the GPU policy (idle timeouts are per profile)."""

    every: float = 300
    gpu: GpuCulling = field(default_factory=GpuCulling)


@dataclass(frozen=True)
class ProfileSet:
    """All profiles plus the hub-wide GPU cap and culling policy; ``extra`` keeps other sections."""

    profiles: tuple[Profile, ...]
    max_gpus_per_user: int
    gpu_resource: str = "nvidia.com/gpu"
    extra: dict[str, Any] = field(default_factory=dict)
    culling: Culling = field(default_factory=Culling)

    def get(self, slug: str) -> Profile:
        for profile in self.profiles:
            if profile.slug == slug:
                return profile
        raise KeyError(f"no profile {slug!r}; profiles are {[p.slug for p in self.profiles]}")

    def for_groups(self, user_groups: Iterable[str]) -> list[Profile]:
        groups = set(user_groups)
        return [p for p in self.profiles if p.allowed_for(groups)]

    def select(self, slug: str | None, user_groups: Iterable[str]) -> Profile:
        """The profile a user asked for (``None``: their default), refusing ones outside their groups.

        The default is the profile marked ``default`` if the user may use it, else their first one.
        """
        allowed = self.for_groups(user_groups)
        if not slug:
            if not allowed:
                raise ValueError("no profile is open to your groups; ask an admin to add you to a group")
            return next((p for p in allowed if p.default), allowed[0])
        if slug not in {p.slug for p in allowed}:
            choices = [p.slug for p in allowed]
            if slug in {p.slug for p in self.profiles}:
                groups = list(self.get(slug).groups)
                raise ValueError(f"profile {slug!r} is only for members of {groups}; your profiles are {choices}")
            raise ValueError(f"no profile {slug!r}; your profiles are {choices}")
        return self.get(slug)

    def slowest_idle_timeout(self) -> int:
        """The longest per-profile idle timeout: the hub-wide activity limit."""
        return max(p.idle_timeout for p in self.profiles)
