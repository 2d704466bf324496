"""Pre-spawn checks: the chosen profile must be open to the user, and the GPU quota must hold.

``max_gpus_per_user`` caps the GPUs one user holds across all their servers, named servers
included; a refused spawn says which servers hold the GPUs.

The hook also records the profile a server really starts with (``user_options["spawned"]``:
slug and GPU count, resolved with the user's groups when no profile was asked for), so the culler
and later quota checks judge the server by it rather than by a guess.

Locally, the GPUs a server may use are named in ``CUDA_VISIBLE_DEVICES``. That variable is
advisory: CUDA programs honour it, but it is not access control, and code in a server can reset it
and use any GPU its OS user may open. The quota counts what servers asked for; only device
permissions (or Kubernetes' device plugin) enforce it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._checks import is_whole_number
from ..profiles import Profile, ProfileSet

SPAWNED = "spawned"  # user_options / spawner state key: {"profile": slug, "gpus": n} at spawn
LOCAL_GPU_NOTE = (
    " Note: on this machine a server's GPUs are named in CUDA_VISIBLE_DEVICES, which is advisory, "
    "not access control; the quota counts the GPUs servers asked for."
)


def user_groups(spawner: Any) -> list[str]:
    """Names of the hub groups of the spawner's user."""
    return [g.name for g in getattr(spawner.user, "groups", []) or []]


def spawner_profile(spawner: Any, profiles: ProfileSet) -> Profile:
    """The profile a spawner runs (or is about to run), checked against the user's groups."""
    return profiles.select((spawner.user_options or {}).get("profile"), user_groups(spawner))


def spawned_profile(user_options: dict[str, Any] | None, state: dict[str, Any] | None = None) -> tuple[str, int] | None:
    """``(slug, gpus)`` a server was started with, as recorded at spawn; ``None`` if unrecorded.

    The spawner state (written by the hub only) is preferred over ``user_options``.
    """
    for holder in (state, user_options):
        record = (holder or {}).get(SPAWNED) if isinstance(holder, dict) else None
        if isinstance(record, dict) and isinstance(record.get("profile"), str):
            gpus = record.get("gpus")
            if is_whole_number(gpus):
                return record["profile"], gpus
    return None


def record_spawned_profile(spawner: Any, profile: Profile) -> None:
    """Record ``profile`` as the one the spawner starts with, in its ``user_options`` and the database.

    The running server's options also name the profile, so every spawner starts exactly the profile
    that was checked; the saved options (the defaults of the next start) keep what the user asked.
    """
    asked = {k: v for k, v in (spawner.user_options or {}).items() if k != SPAWNED}
    record = {SPAWNED: {"profile": profile.slug, "gpus": profile.gpus}}
    orm_spawner = getattr(spawner, "orm_spawner", None)
    if orm_spawner is not None:
        orm_spawner.user_options = {**(orm_spawner.user_options or {}), **record}
    spawner.user_options = {**asked, "profile": profile.slug, **record}


def gpus_held(spawner: Any, profiles: ProfileSet) -> dict[str, int]:
    """GPUs held by the user's other active (running or starting) servers: ``{server name: gpus}``."""
    held = {}
    for name, other in spawner.user.spawners.items():
        if other is spawner or not other.active:
            continue
        recorded = spawned_profile(other.user_options)
        if recorded is not None:
            gpus = recorded[1]
        else:  # started before profiles were recorded
            slug = (other.user_options or {}).get("profile")
            try:
                gpus = (profiles.get(slug) if slug else profiles.select(None, user_groups(other))).gpus
            except (KeyError, ValueError):
                continue
        if gpus:
            held[name] = gpus
    return held


def check_spawn(spawner: Any, profiles: ProfileSet, note: str = "") -> Profile:
    """Raise a 403 naming the problem when the spawn must not go ahead; else return its profile.

    ``note`` is added to a quota refusal (local mode: :data:`LOCAL_GPU_NOTE`).
    """
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
        servers = ", ".join(
            f"{repr(n) if n else 'the default server'} ({g} GPU{'s' * (g > 1)})" for n, g in held.items()
        )
        raise HTTPError(
            403,
            (
                f"GPU quota: profile {profile.slug!r} needs {profile.gpus} GPU(s), but you may hold at most {cap} "
                f"(max_gpus_per_user) and already hold {sum(held.values())} in: {servers or 'no server'}. "
                f"Stop one of those servers or pick a CPU profile.{note}"
            ),
        )
    return profile


def gpu_quota_hook(profiles: ProfileSet, note: str = "") -> Callable[[Any], None]:
    """A ``Spawner.pre_spawn_hook`` enforcing :func:`check_spawn` and recording the profile."""

    def pre_spawn_hook(spawner: Any) -> None:
        record_spawned_profile(spawner, check_spawn(spawner, profiles, note))

    return pre_spawn_hook
