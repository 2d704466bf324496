"""Load and validate ``hub/profiles.yaml``: the curated notebook server profiles."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
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
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
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


# --- validation: every problem is reported with its path in the file ---------------------------------

_BAD = object()  # a checker's answer for a value it reported as a problem


class Problems:
    """Problems found in a profiles file, each as ``path: what is wrong``; raised together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> object:
        self.items.append(f"{path}: {message}")
        return _BAD

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise ValueError(self.items[0])
        if self.items:
            raise ValueError(f"{len(self.items)} problems:\n  " + "\n  ".join(self.items))


Checker = Callable[[Any, str, Problems], Any]


def _show(value: Any) -> str:
    """A value as it reads in YAML (``true``, ``.nan``), else its repr."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    return repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(minimum: int) -> Checker:
    def check(value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            return problems.add(path, f"expected a whole number >= {minimum}, got {_show(value)}")
        return value

    return check


def _seconds(whole: bool) -> Checker:
    """A duration of at least one second (shorter intervals would make a busy loop)."""

    def check(value: Any, path: str, problems: Problems) -> Any:
        if not _is_number(value) or (whole and not isinstance(value, int)):
            kind = "a whole number of seconds" if whole else "a number of seconds"
            return problems.add(path, f"expected {kind}, got {_show(value)}")
        if value < 1:
            return problems.add(path, f"expected at least 1 second, got {_show(value)}")
        return value

    return check


def _percent(value: Any, path: str, problems: Problems) -> Any:
    if not _is_number(value) or not 0 <= value <= 100:
        return problems.add(path, f"expected a utilisation in percent (0-100), got {_show(value)}")
    return float(value)


def _text(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        return problems.add(path, f"expected a string, got {_show(value)}")
    return value


def _flag(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, bool):
        return problems.add(path, f"expected true or false, got {_show(value)}")
    return value


def _names(value: Any, path: str, problems: Problems) -> Any:
    """A list of strings (``groups: gpu-users`` is a string, not a list of one name)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return problems.add(path, f"expected a list of names such as [gpu-users], got {_show(value)}")
    return tuple(value)


def _string_map(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float) for v in value.values()):
        return problems.add(path, f"expected a mapping of names to plain values, got {_show(value)}")
    return {str(k): str(v) for k, v in value.items()}


def _tolerations(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        return problems.add(path, f"expected a list of tolerations, got {_show(value)}")
    for i, tol in enumerate(value):
        if not isinstance(tol, Mapping) or set(tol) - _TOLERATION_KEYS:
            problems.add(f"{path}[{i}]", f"expected a mapping with keys from {sorted(_TOLERATION_KEYS)}, got {_show(tol)}")
    return [dict(t) for t in value] if all(isinstance(t, Mapping) for t in value) else _BAD


def _secret_names(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and _SLUG.match(v) for v in value):
        return problems.add(path, f"secrets must be a list of Kubernetes Secret names such as [kaggle-api], got {_show(value)}")
    return tuple(value)


def _slug(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str) or not _SLUG.match(value) or len(value) > 63:
        return problems.add(path, f"slug must be lowercase letters, digits and '-' (a DNS label), got {_show(value)}")
    return value


def _limit_and_guarantee(value: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    """``{"limit": ..., "guarantee": ...}`` as written (a missing guarantee is the limit, checked once)."""
    if not isinstance(value, Mapping) or "limit" not in value or set(value) - {"limit", "guarantee"}:
        problems.add(path, "expected a mapping with 'limit' (and optionally 'guarantee')")
        return None
    return {str(k): v for k, v in value.items()}


def _cpu(value: Any, path: str, problems: Problems) -> Any:
    given = _limit_and_guarantee(value, path, problems)
    if given is None:
        return _BAD
    bad = [problems.add(f"{path}.{name}", f"expected a number of cores, got {_show(v)}")
           for name, v in given.items() if not _is_number(v)]  # fmt: skip
    if bad:
        return _BAD
    limit = float(given["limit"])
    guarantee = float(given.get("guarantee", limit))
    if guarantee > limit or limit <= 0 or guarantee < 0:
        return problems.add(path, f"cpu guarantee {guarantee} must be positive and at most the limit {limit}")
    return limit, guarantee


def _memory(value: Any, path: str, problems: Problems) -> Any:
    given = _limit_and_guarantee(value, path, problems)
    if given is None:
        return _BAD
    sizes = {}
    for name, v in given.items():
        if isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)) or not isinstance(v, str | int | float):
            problems.add(f"{path}.{name}", f"expected a size such as 4G or 512Mi, got {_show(v)}")
            continue
        try:
            sizes[name] = parse_memory(v)
        except ValueError as exc:
            problems.add(f"{path}.{name}", str(exc))
    if len(sizes) != len(given):
        return _BAD
    limit, guarantee = str(given["limit"]), str(given.get("guarantee", given["limit"]))
    if sizes["limit"] <= 0:
        return problems.add(f"{path}.limit", f"expected a positive size, got {_show(given['limit'])}")
    if sizes.get("guarantee", 0) > sizes["limit"]:
        return problems.add(path, f"memory guarantee {guarantee} exceeds the limit {limit}")
    return limit, guarantee


@dataclass(frozen=True)
class Field:
    """One key of a mapping in the file: whether it must be there, its checker, its default."""

    check: Checker
    required: bool = False
    default: Any = None


# The keys of one profile. A new key is one more entry here, plus its Profile field in _profile.
PROFILE_FIELDS: dict[str, Field] = {
    "slug": Field(_slug, required=True),
    "display_name": Field(_text, required=True),
    "description": Field(_text, default=""),
    "image": Field(_text, required=True),
    "cpu": Field(_cpu, required=True),
    "memory": Field(_memory, required=True),
    "gpus": Field(_count(0), default=0),
    "node_selector": Field(_string_map, default={}),
    "tolerations": Field(_tolerations, default=[]),
    "groups": Field(_names, default=()),
    "idle_timeout": Field(_seconds(whole=True), default=3600),
    "default": Field(_flag, default=False),
    "env": Field(_string_map, default={}),
    "secrets": Field(_secret_names, default=()),
}
_CULLING_FIELDS = {"every": Field(_seconds(whole=False), default=300)}
_GPU_CULLING_FIELDS = {"threshold": Field(_percent, default=10.0), "checks": Field(_count(1), default=3)}


def _fields(entry: Any, path: str, fields: Mapping[str, Field], problems: Problems, more: Iterable[str] = ()) -> dict[str, Any] | None:
    """Check a mapping against ``fields`` (``more``: keys checked elsewhere); ``None`` when it has problems."""
    if not isinstance(entry, Mapping):
        problems.add(path, f"expected a mapping, got {_show(entry)}")
        return None
    before = len(problems.items)
    allowed = set(fields) | set(more)
    unknown = set(entry) - allowed
    if unknown:
        problems.add(path, f"unknown keys {sorted(map(str, unknown))}; allowed keys are {sorted(allowed)}")
    values = {}
    for key, spec in fields.items():
        if key not in entry or (entry[key] is None and not spec.required):
            if spec.required:
                problems.add(path, f"missing required key '{key}'")
            values[key] = spec.default
            continue
        values[key] = spec.check(entry[key], f"{path}.{key}", problems)
    return None if len(problems.items) > before else values


def _profile(entry: Any, index: int, gpu_resource: str, problems: Problems) -> Profile | None:
    v = _fields(entry, f"profiles[{index}]", PROFILE_FIELDS, problems)
    if v is None:
        return None
    (cpu_limit, cpu_guarantee), (mem_limit, mem_guarantee) = v["cpu"], v["memory"]
    return Profile(slug=v["slug"], display_name=v["display_name"], description=v["description"], image=v["image"],
                   cpu_limit=cpu_limit, cpu_guarantee=cpu_guarantee, mem_limit=mem_limit, mem_guarantee=mem_guarantee,
                   gpus=v["gpus"], gpu_resource=gpu_resource, node_selector=dict(v["node_selector"]),
                   tolerations=list(v["tolerations"]), groups=v["groups"], idle_timeout=v["idle_timeout"],
                   default=v["default"], env=dict(v["env"]), secrets=v["secrets"])  # fmt: skip


def _clock(value: Any, where: str, problems: Problems) -> dtime | None:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if not match:
        problems.add(where, f"expected a time like \"08:00\", got {_show(value)}")
        return None
    return dtime(int(match.group(1)), int(match.group(2)))


def _working_hours(value: Any, problems: Problems) -> WorkingHours | None:
    where = "culling.gpu.working_hours"
    if value is None:
        return WorkingHours()
    if not isinstance(value, Mapping) or set(value) - _HOURS_KEYS:
        problems.add(where, f"expected a mapping with keys from {sorted(_HOURS_KEYS)}")
        return None
    days = value.get("days", list(_DAYS[:5]))
    if not isinstance(days, list) or any(not isinstance(d, str) or d.lower()[:3] not in _DAYS for d in days):
        problems.add(f"{where}.days", f"expected a list of day names from {list(_DAYS)} (empty: never), got {_show(days)}")
        days = None
    timezone = value.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(f"{where}.timezone", f"{timezone!r} is not an IANA time zone such as Europe/Paris")
    start = _clock(value.get("start", "08:00"), f"{where}.start", problems)
    end = _clock(value.get("end", "19:00"), f"{where}.end", problems)
    if start and end and end <= start:
        problems.add(where, f"end {end:%H:%M} must come after start {start:%H:%M}")
    if days is None or start is None or end is None or end <= start:
        return None
    return WorkingHours(days=frozenset(_DAYS.index(d.lower()[:3]) for d in days), start=start, end=end,
                        timezone=str(timezone))  # fmt: skip


def _culling(value: Any, problems: Problems) -> Culling | None:
    if value is None:
        return Culling()
    top = _fields(value, "culling", _CULLING_FIELDS, problems, more=("gpu",))
    gpu = value.get("gpu") or {} if isinstance(value, Mapping) else {}
    rest = ("working_hours", "webhook", "metrics")
    checked = _fields(gpu, "culling.gpu", _GPU_CULLING_FIELDS, problems, more=rest)
    gpu = gpu if isinstance(gpu, Mapping) else {}
    hours = _working_hours(gpu.get("working_hours"), problems)
    webhook = gpu.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
        problems.add("culling.gpu.webhook", "must be an http(s) URL (or leave it out and set WORKBENCH_CULLER_WEBHOOK)")
    metrics = gpu.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        problems.add("culling.gpu.metrics", "expected a mapping such as {source: nvidia-smi}")
    if top is None or checked is None or hours is None or problems.items:
        return None
    return Culling(every=top["every"], gpu=GpuCulling(threshold=checked["threshold"], checks=checked["checks"],
                                                      working_hours=hours, webhook=webhook or None, metrics=dict(metrics)))  # fmt: skip


def parse_profiles(data: Mapping[str, Any]) -> ProfileSet:
    """Validate the parsed YAML; every problem is reported at once, each with its path.

    Raises
    ------
    ValueError
        Listing each problem as ``path: what is wrong``, e.g. ``profiles[2].idle_timeout: expected a
        whole number of seconds, got true``.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("profiles"), list) or not data["profiles"]:
        raise ValueError("the profiles file needs a non-empty 'profiles:' list")
    problems = Problems()
    gpu_resource = data.get("gpu_resource", "nvidia.com/gpu")
    if not isinstance(gpu_resource, str) or not gpu_resource:
        problems.add("gpu_resource", f"expected a resource name such as nvidia.com/gpu, got {_show(gpu_resource)}")
    found = [_profile(entry, i, str(gpu_resource), problems) for i, entry in enumerate(data["profiles"])]
    profiles = tuple(p for p in found if p is not None)
    slugs = [p.slug for p in profiles]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        problems.add("profiles", f"duplicate profile slugs {dupes}; each slug must be unique")
    if sum(p.default for p in profiles) > 1:
        problems.add("profiles", f"only one profile may be the default; {[p.slug for p in profiles if p.default]} are")
    cap = _count(0)(data.get("max_gpus_per_user", 1), "max_gpus_per_user", problems)
    culling = _culling(data.get("culling"), problems)
    problems.raise_if_any()
    extra = {k: v for k, v in data.items() if k not in ("profiles", "max_gpus_per_user", "gpu_resource", "culling")}
    return ProfileSet(profiles=profiles, max_gpus_per_user=cap, gpu_resource=gpu_resource, extra=extra,
                      culling=culling)  # fmt: skip


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
