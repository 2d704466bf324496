"""Load and validate ``hub/profiles.yaml``: the curated notebook server profiles."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .._yaml import MAX_FILE_BYTES, UnsafeYAMLError, load_yaml
from .checks import (
    Field,
    Problems,
    _count,
    _cpu,
    _flag,
    _memory,
    _names,
    _percent,
    _seconds,
    _secret_names,
    _show,
    _slug,
    _string_map,
    _text,
    _tolerations,
    per_user_secret_clashes,
)
from .model import _CLOCK, _DAYS, _HOURS_KEYS, Culling, GpuCulling, Profile, ProfileSet, WorkingHours

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


def _fields(
    entry: Any, path: str, fields: Mapping[str, Field], problems: Problems, more: Iterable[str] = ()
) -> dict[str, Any] | None:
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
    return Profile(
        slug=v["slug"],
        display_name=v["display_name"],
        description=v["description"],
        image=v["image"],
        cpu_limit=cpu_limit,
        cpu_guarantee=cpu_guarantee,
        mem_limit=mem_limit,
        mem_guarantee=mem_guarantee,
        gpus=v["gpus"],
        gpu_resource=gpu_resource,
        node_selector=dict(v["node_selector"]),
        tolerations=list(v["tolerations"]),
        groups=v["groups"],
        idle_timeout=v["idle_timeout"],
        default=v["default"],
        env=dict(v["env"]),
        secrets=v["secrets"],
    )


def _clock(value: Any, where: str, problems: Problems) -> dtime | None:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if not match:
        problems.add(where, f'expected a time like "08:00", got {_show(value)}')
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
        problems.add(
            f"{where}.days", f"expected a list of day names from {list(_DAYS)} (empty: never), got {_show(days)}"
        )
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
    return WorkingHours(
        days=frozenset(_DAYS.index(d.lower()[:3]) for d in days), start=start, end=end, timezone=str(timezone)
    )


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
    return Culling(
        every=top["every"],
        gpu=GpuCulling(
            threshold=checked["threshold"],
            checks=checked["checks"],
            working_hours=hours,
            webhook=webhook or None,
            metrics=dict(metrics),
        ),
    )


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
    for clash in per_user_secret_clashes(profiles):
        problems.add("secrets", clash)
    if sum(p.default for p in profiles) > 1:
        problems.add("profiles", f"only one profile may be the default; {[p.slug for p in profiles if p.default]} are")
    cap = _count(0)(data.get("max_gpus_per_user", 1), "max_gpus_per_user", problems)
    culling = _culling(data.get("culling"), problems)
    problems.raise_if_any()
    extra = {k: v for k, v in data.items() if k not in ("profiles", "max_gpus_per_user", "gpu_resource", "culling")}
    return ProfileSet(profiles=profiles, max_gpus_per_user=cap, gpu_resource=gpu_resource, extra=extra, culling=culling)


def default_profiles_path() -> Path:
    """``$WORKBENCH_PROFILES``, else ``hub/profiles.yaml`` of the source checkout."""
    env = os.environ.get("WORKBENCH_PROFILES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "hub" / "profiles.yaml"


def load_profiles(path: str | os.PathLike[str] | None = None) -> ProfileSet:
    """Read and validate a profiles file (default: :func:`default_profiles_path`).

    Examples
    --------
    >>> profiles = load_profiles()  # the checkout's hub/profiles.yaml
    >>> [p.slug for p in profiles.for_groups(["gpu-users"])]
    ['cpu-small', 'cpu-large', 'gpu-t4']
    """
    path = Path(path) if path is not None else default_profiles_path()
    if not path.is_file():
        raise FileNotFoundError(f"profiles file {path} not found; set WORKBENCH_PROFILES or pass the path")
    try:
        data = load_yaml(path.read_text(), max_bytes=MAX_FILE_BYTES)
    except (yaml.YAMLError, UnsafeYAMLError) as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse_profiles(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
