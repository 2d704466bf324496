"""What the job gateway allows: a submission's shape, its profile, its secrets and the GPU cap.

Pure checks over plain data (the request body, the user's groups, the GPUs their servers and
running Jobs hold), so every refusal can be tested without a hub or a cluster. A refusal is a
:class:`Refused` with the HTTP status and a sentence naming the problem and the way out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...profiles import Profile, ProfileSet
from ..quota import spawned_profile
from .parsing import Refused, bad, json_object, name_list, optional_text, whole

SUBMIT_SCOPE = "custom:workbench-jobs:submit"
MAX_NAME = 200
_FIELDS = {"notebook", "params", "name", "profile", "gpus", "secrets", "timeout", "notify"}


@dataclass(frozen=True)
class JobRequest:
    """A submission: everything a user may choose about a Job, and nothing more (no pod spec)."""

    name: str
    params: dict[str, Any]
    notebook_name: str = ""
    notebook_content: str = ""
    notebook_path: str = ""
    profile: str | None = None
    gpus: int = 0
    secrets: tuple[str, ...] = field(default_factory=tuple)
    timeout: int | None = None
    notify: str | None = None


def parse_request(body: Any) -> JobRequest:
    """A :class:`JobRequest` from the JSON body, refusing unknown fields and wrong types (400)."""
    body = json_object(body, _FIELDS, "job request")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise bad(f"name must be a non-empty string of at most {MAX_NAME} characters")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise bad("params must be an object of parameter names to values")
    notebook = body.get("notebook")
    if not isinstance(notebook, Mapping) or set(notebook) not in ({"name", "content"}, {"path"}):
        raise bad(
            'notebook must be {"name": ..., "content": ...} (a notebook to ship) or {"path": ...} (one in the image)'
        )
    if not all(isinstance(v, str) for v in notebook.values()):
        raise bad("notebook fields must be strings")
    if "path" in notebook and not notebook["path"].startswith("/"):
        raise bad(f"notebook path {notebook['path']!r} must be an absolute path inside the image")
    if "name" in notebook and (not notebook["name"].endswith(".ipynb") or "/" in notebook["name"]):
        raise bad(f"notebook name {notebook['name']!r} must be a file name ending in .ipynb")
    timeout = body.get("timeout")
    return JobRequest(
        name=name,
        params=params,
        notebook_name=notebook.get("name", ""),
        notebook_content=notebook.get("content", ""),
        notebook_path=notebook.get("path", ""),
        profile=optional_text(body.get("profile"), "profile must be a profile slug or null"),
        secrets=name_list(body.get("secrets"), "secrets must be a list of Secret names"),
        notify=optional_text(body.get("notify"), "notify must be a webhook URL or null"),
        gpus=whole(body.get("gpus") or 0, "gpus", 0),
        timeout=None if timeout is None else whole(timeout, "timeout", 1),
    )


def choose_profile(profiles: ProfileSet, slug: str | None, gpus: int, groups: Iterable[str]) -> Profile:
    """The profile the Job runs on, open to ``groups`` (403 otherwise).

    Without a slug: the user's default profile, or with GPUs the first of their profiles offering that many.
    """
    groups = list(groups)
    allowed = profiles.for_groups(groups)
    if slug is None:
        if not allowed:
            raise Refused(403, "no profile is open to your groups; ask an admin to add you to a group")
        if not gpus:
            return profiles.select(None, groups)
        fits = [p for p in allowed if p.gpus >= gpus]
        if not fits:
            raise Refused(403, f"none of your profiles ({[p.slug for p in allowed]}) offers {gpus} GPU(s)")
        return fits[0]
    try:
        profile = profiles.get(slug)
    except KeyError:
        raise Refused(400, f"no profile {slug!r}; profiles are {[p.slug for p in profiles.profiles]}") from None
    if not profile.allowed_for(groups):
        raise Refused(403, f"profile {slug} is not allowed for your groups (allowed: {', '.join(profile.groups)})")
    return profile


def check_secrets(profile: Profile, secrets: Iterable[str], user: str | None = None) -> None:
    """Every Secret must be on the profile's allow-list (``secrets:`` in the profiles file), where
    ``prefix{username}`` allows ``user`` their own Secret only."""
    allowed = profile.allowed_secrets(user)
    for name in secrets:
        if name not in allowed:
            raise Refused(
                403,
                f"secret {name!r} is not allowed on profile {profile.slug} (allowed: {', '.join(allowed) or 'none'}); "
                "an admin adds it to the profile's secrets in profiles.yaml",
            )


def server_gpus(servers: Mapping[str, Any], profiles: ProfileSet, groups: Iterable[str]) -> dict[str, int]:
    """GPUs held by a user's servers, from the hub's user model (``servers`` with ``user_options``)."""
    held = {}
    for name, server in servers.items():
        if server.get("stopped"):
            continue
        recorded = spawned_profile(server.get("user_options"), server.get("state"))
        if recorded is not None:  # the profile it was spawned with
            gpus = recorded[1]
        else:
            slug = (server.get("user_options") or {}).get("profile")
            try:
                gpus = (profiles.get(slug) if slug else profiles.select(None, groups)).gpus
            except (KeyError, ValueError):
                continue
        if gpus:
            held[f"server {name!r}" if name else "the default server"] = gpus
    return held


def check_gpu_cap(profiles: ProfileSet, wanted: int, held: Mapping[str, int]) -> None:
    """``max_gpus_per_user`` across the user's servers and running Jobs (403 over it)."""
    cap, total = profiles.max_gpus_per_user, sum(held.values())
    if wanted and total + wanted > cap:
        where = ", ".join(f"{what} ({n} GPU{'s' * (n > 1)})" for what, n in held.items()) or "nothing"
        raise Refused(
            403,
            f"GPU quota: this job needs {wanted} GPU(s), but you may hold at most {cap} "
            f"(max_gpus_per_user) and already hold {total} in: {where}. Stop one of those "
            "or run on a CPU profile.",
        )
