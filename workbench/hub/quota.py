"""Pre-spawn checks: the chosen profile must be open to the user, and the GPU quota must hold.

``max_gpus_per_user`` caps the GPUs one user holds across all their servers, named servers
included; a refused spawn says which servers hold the GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .profiles import Profile, ProfileSet


def user_groups(spawner: Any) -> list[str]:
    """Names of the hub groups of the spawner's user."""
    return [g.name for g in getattr(spawner.user, "groups", []) or []]


def spawner_profile(spawner: Any, profiles: ProfileSet) -> Profile:
    """The profile a spawner runs (or is about to run), checked against the user's groups."""
    return profiles.select((spawner.user_options or {}).get("profile"), user_groups(spawner))


def gpus_held(spawner: Any, profiles: ProfileSet) -> dict[str, int]:
    """GPUs held by the user's other active (running or starting) servers: ``{server name: gpus}``."""
    held = {}
    for name, other in spawner.user.spawners.items():
        if other is spawner or not other.active:
            continue
        slug = (other.user_options or {}).get("profile")
        try:
            profile = profiles.get(slug) if slug else profiles.select(None, user_groups(other))
        except (KeyError, ValueError):
            continue
        if profile.gpus:
            held[name] = profile.gpus
    return held


def check_spawn(spawner: Any, profiles: ProfileSet) -> Profile:
    """Raise a 403 naming the problem when the spawn must not go ahead; else return its profile."""
    from tornado.web import HTTPError

    try:
        profile = spawner_profile(spawner, profiles)
    except ValueError as exc:
        raise HTTPError(403, str(exc)) from None
    if not profile.gpus:
        return profile
    held = gpus_held(spawner, profiles)
    cap = profiles.max_gpus_per_user
    if sum(held.values()) + profile.gpus > cap:
        servers = ", ".join(f"{repr(n) if n else 'the default server'} ({g} GPU{'s' * (g > 1)})" for n, g in held.items())
        raise HTTPError(403, (
            f"GPU quota: profile {profile.slug!r} needs {profile.gpus} GPU(s), but you may hold at most {cap} "
            f"(max_gpus_per_user) and already hold {sum(held.values())} in: {servers or 'no server'}. "
            "Stop one of those servers or pick a CPU profile."))  # fmt: skip
    return profile


def gpu_quota_hook(profiles: ProfileSet) -> Callable[[Any], None]:
    """A ``Spawner.pre_spawn_hook`` enforcing :func:`check_spawn`."""

    def pre_spawn_hook(spawner: Any) -> None:
        check_spawn(spawner, profiles)

    return pre_spawn_hook
