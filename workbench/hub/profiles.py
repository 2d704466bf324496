"""Load and validate ``hub/profiles.yaml``: the curated notebook server profiles."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}  # fmt: skip
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROFILE_KEYS = {"slug", "display_name", "description", "image", "cpu", "memory", "gpus", "node_selector",
                 "tolerations", "groups", "idle_timeout", "default", "env", "secrets"}  # fmt: skip
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_CULLING_KEYS = {"every", "gpu"}
_GPU_CULLING_KEYS = {"threshold", "checks", "working_hours", "webhook", "metrics"}
_HOURS_KEYS = {"days", "start", "end", "timezone"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


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

    every: int = 300
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


def _resource(entry: Mapping[str, Any], name: str, where: str) -> tuple[Any, Any]:
    value = entry.get(name)
    if not isinstance(value, Mapping) or "limit" not in value:
        raise ValueError(f"{where}: '{name}' needs a mapping with 'limit' (and optionally 'guarantee')")
    return value["limit"], value.get("guarantee", value["limit"])


def _profile(entry: Any, index: int, gpu_resource: str) -> Profile:
    where = f"profiles[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(entry).__name__}")
    where = f"profile {entry.get('slug', index)!r}"
    unknown = set(entry) - _PROFILE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed keys are {sorted(_PROFILE_KEYS)}")
    for key in ("slug", "display_name", "image", "cpu", "memory"):
        if key not in entry:
            raise ValueError(f"{where}: missing required key '{key}'")
    slug = str(entry["slug"])
    if not _SLUG.match(slug) or len(slug) > 63:
        raise ValueError(f"{where}: slug must be lowercase letters, digits and '-' (a DNS label), got {slug!r}")
    cpu_limit, cpu_guarantee = (float(v) for v in _resource(entry, "cpu", where))
    mem_limit, mem_guarantee = (str(v) for v in _resource(entry, "memory", where))
    if cpu_guarantee > cpu_limit or cpu_limit <= 0:
        raise ValueError(f"{where}: cpu guarantee {cpu_guarantee} must be positive and at most the limit {cpu_limit}")
    if parse_memory(mem_guarantee) > parse_memory(mem_limit):
        raise ValueError(f"{where}: memory guarantee {mem_guarantee} exceeds the limit {mem_limit}")
    gpus = entry.get("gpus", 0)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise ValueError(f"{where}: gpus must be a whole number >= 0, got {gpus!r}")
    tolerations = list(entry.get("tolerations") or [])
    for tol in tolerations:
        if not isinstance(tol, Mapping) or set(tol) - _TOLERATION_KEYS:
            raise ValueError(f"{where}: each toleration is a mapping with keys from {sorted(_TOLERATION_KEYS)}")
    idle = entry.get("idle_timeout", 3600)
    if not isinstance(idle, int) or idle <= 0:
        raise ValueError(f"{where}: idle_timeout must be a positive number of seconds, got {idle!r}")
    return Profile(
        slug=slug,
        display_name=str(entry["display_name"]),
        description=str(entry.get("description", "")),
        image=str(entry["image"]),
        cpu_limit=cpu_limit,
        cpu_guarantee=cpu_guarantee,
        mem_limit=mem_limit,
        mem_guarantee=mem_guarantee,
        gpus=gpus,
        gpu_resource=gpu_resource,
        node_selector={str(k): str(v) for k, v in (entry.get("node_selector") or {}).items()},
        tolerations=[dict(t) for t in tolerations],
        groups=tuple(str(g) for g in entry.get("groups") or ()),
        idle_timeout=idle,
        default=bool(entry.get("default", False)),
        env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
        secrets=_secret_names(entry.get("secrets"), where),
    )


def _secret_names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and _SLUG.match(v) for v in value):
        raise ValueError(f"{where}: secrets must be a list of Kubernetes Secret names (e.g. [kaggle-api]), got {value!r}")
    return tuple(value)


def _clock(value: Any, where: str) -> dtime:
    match = _CLOCK.match(str(value))
    if not match:
        raise ValueError(f"{where} must be a time like \"08:00\", got {value!r}")
    return dtime(int(match.group(1)), int(match.group(2)))


def _working_hours(value: Any) -> WorkingHours:
    where = "culling.gpu.working_hours"
    if value is None:
        return WorkingHours()
    if not isinstance(value, Mapping) or set(value) - _HOURS_KEYS:
        raise ValueError(f"{where} must be a mapping with keys from {sorted(_HOURS_KEYS)}")
    days = value.get("days", list(_DAYS[:5]))
    if not isinstance(days, list) or any(str(d).lower()[:3] not in _DAYS for d in days):
        raise ValueError(f"{where}.days must be a list of day names from {list(_DAYS)} (empty: never), got {days!r}")
    timezone = str(value.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{where}.timezone {timezone!r} is not an IANA time zone such as Europe/Paris") from exc
    start = _clock(value.get("start", "08:00"), f"{where}.start")
    end = _clock(value.get("end", "19:00"), f"{where}.end")
    if end <= start:
        raise ValueError(f"{where}: end {end:%H:%M} must come after start {start:%H:%M}")
    return WorkingHours(days=frozenset(_DAYS.index(str(d).lower()[:3]) for d in days),
                        start=start, end=end, timezone=timezone)  # fmt: skip


def _culling(value: Any) -> Culling:
    if value is None:
        return Culling()
    if not isinstance(value, Mapping) or set(value) - _CULLING_KEYS:
        raise ValueError(f"culling must be a mapping with keys from {sorted(_CULLING_KEYS)}")
    every = value.get("every", 300)
    if not isinstance(every, int | float) or isinstance(every, bool) or every <= 0:
        raise ValueError(f"culling.every must be a positive number of seconds, got {every!r}")
    gpu = value.get("gpu") or {}
    if not isinstance(gpu, Mapping) or set(gpu) - _GPU_CULLING_KEYS:
        raise ValueError(f"culling.gpu must be a mapping with keys from {sorted(_GPU_CULLING_KEYS)}")
    threshold = gpu.get("threshold", 10.0)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 100:
        raise ValueError(f"culling.gpu.threshold must be a utilisation in percent (0-100), got {threshold!r}")
    checks = gpu.get("checks", 3)
    if not isinstance(checks, int) or isinstance(checks, bool) or checks < 1:
        raise ValueError(f"culling.gpu.checks must be a whole number >= 1, got {checks!r}")
    webhook = gpu.get("webhook")
    if webhook is not None and not str(webhook).startswith(("http://", "https://")):
        raise ValueError("culling.gpu.webhook must be an http(s) URL (or leave it out and set WORKBENCH_CULLER_WEBHOOK)")
    metrics = gpu.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise ValueError("culling.gpu.metrics must be a mapping such as {source: nvidia-smi}")
    return Culling(every=int(every), gpu=GpuCulling(
        threshold=float(threshold), checks=checks, working_hours=_working_hours(gpu.get("working_hours")),
        webhook=str(webhook) if webhook else None, metrics=dict(metrics)))  # fmt: skip


def parse_profiles(data: Mapping[str, Any]) -> ProfileSet:
    """Validate the parsed YAML; errors name the profile and the key to fix."""
    if not isinstance(data, Mapping) or not isinstance(data.get("profiles"), list) or not data["profiles"]:
        raise ValueError("the profiles file needs a non-empty 'profiles:' list")
    gpu_resource = str(data.get("gpu_resource", "nvidia.com/gpu"))
    profiles = tuple(_profile(entry, i, gpu_resource) for i, entry in enumerate(data["profiles"]))
    slugs = [p.slug for p in profiles]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise ValueError(f"duplicate profile slugs {dupes}; each slug must be unique")
    if sum(p.default for p in profiles) > 1:
        raise ValueError(f"only one profile may be the default; {[p.slug for p in profiles if p.default]} are")
    cap = data.get("max_gpus_per_user", 1)
    if not isinstance(cap, int) or cap < 0:
        raise ValueError(f"max_gpus_per_user must be a whole number >= 0, got {cap!r}")
    extra = {k: v for k, v in data.items() if k not in ("profiles", "max_gpus_per_user", "gpu_resource", "culling")}
    return ProfileSet(profiles=profiles, max_gpus_per_user=cap, gpu_resource=gpu_resource, extra=extra,
                      culling=_culling(data.get("culling")))  # fmt: skip


def default_profiles_path() -> Path:
    """``$WORKBENCH_PROFILES``, else ``hub/profiles.yaml`` of the source checkout."""
    env = os.environ.get("WORKBENCH_PROFILES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "hub" / "profiles.yaml"


def load_profiles(path: str | os.PathLike[str] | None = None) -> ProfileSet:
    """Read and validate a profiles file (default: :func:`default_profiles_path`).

    >>> profiles = load_profiles("hub/profiles.yaml")
    >>> [p.slug for p in profiles.for_groups(["gpu-users"])]
    """
    path = Path(path) if path is not None else default_profiles_path()
    if not path.is_file():
        raise FileNotFoundError(f"profiles file {path} not found; set WORKBENCH_PROFILES or pass the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse_profiles(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
