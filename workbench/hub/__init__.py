"""The team hub: notebook server profiles shared by the local hub, KubeSpawner and Helm."""

from .profiles import Profile, ProfileSet, load_profiles, parse_memory, parse_profiles

__all__ = ["Profile", "ProfileSet", "load_profiles", "parse_memory", "parse_profiles"]
