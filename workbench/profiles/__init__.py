"""Compute profiles: the curated notebook server and job environments of ``hub/profiles.yaml``.

A profile names an image, CPU/memory limits and guarantees, GPUs, node placement, the groups that
may use it, its idle timeout and the secrets its jobs may read. The hub offers profiles to users,
the job renderers size Jobs from them, and the deployment generates Helm values from them, so
they sit below all three.
"""

from __future__ import annotations

from .env import THREAD_VARS, profile_env
from .model import Culling, GpuCulling, Profile, ProfileSet, WorkingHours, parse_memory, secret_username
from .parse import PROFILE_FIELDS, default_profiles_path, load_profiles, parse_profiles

__all__ = [
    "PROFILE_FIELDS",
    "THREAD_VARS",
    "Culling",
    "GpuCulling",
    "Profile",
    "ProfileSet",
    "WorkingHours",
    "default_profiles_path",
    "load_profiles",
    "parse_memory",
    "parse_profiles",
    "profile_env",
    "secret_username",
]
