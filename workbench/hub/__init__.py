"""The team hub: notebook server profiles shared by the local hub, KubeSpawner and Helm.

``configure(c, mode="local"|"kubernetes")`` fills a JupyterHub configuration from ``hub/profiles.yaml``.
Spawners, the culler and the reports service load on first use (they need the ``hub`` extra).
"""

from .config import configure, options_from_env
from .profiles import Culling, GpuCulling, Profile, ProfileSet, WorkingHours, load_profiles, parse_memory, parse_profiles

__all__ = ["Culling", "GpuCulling", "Profile", "ProfileSet", "WorkingHours", "configure", "load_profiles",
           "options_from_env", "parse_memory", "parse_profiles"]  # fmt: skip
