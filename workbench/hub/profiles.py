"""Load and validate ``hub/profiles.yaml``: the curated notebook server profiles."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}  # fmt: skip
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROFILE_KEYS = {"slug", "display_name", "description", "image", "cpu", "memory", "gpus", "node_selector",
                 "tolerations", "groups", "idle_timeout", "default", "env"}  # fmt: skip
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


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
class ProfileSet:
    """All profiles plus the hub-wide GPU cap; ``extra`` keeps other top-level sections."""

    profiles: tuple[Profile, ...]
    max_gpus_per_user: int
    gpu_resource: str = "nvidia.com/gpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, slug: str) -> Profile:
        for profile in self.profiles:
            if profile.slug == slug:
                return profile
        raise KeyError(f"no profile {slug!r}; profiles are {[p.slug for p in self.profiles]}")

    def for_groups(self, user_groups: Iterable[str]) -> list[Profile]:
        groups = set(user_groups)
        return [p for p in self.profiles if p.allowed_for(groups)]


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
    )


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
    extra = {k: v for k, v in data.items() if k not in ("profiles", "max_gpus_per_user", "gpu_resource")}
    return ProfileSet(profiles=profiles, max_gpus_per_user=cap, gpu_resource=gpu_resource, extra=extra)


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
