"""Deployment: image lock files and the Helm values generated from the hub profiles."""

from .jupyterhub_values import jupyterhub_values, render_values
from .locks import Entry, parse_lock, select

__all__ = ["Entry", "jupyterhub_values", "parse_lock", "render_values", "select"]
