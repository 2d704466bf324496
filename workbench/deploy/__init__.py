"""Deployment: image lock files and the Helm values generated from the hub profiles."""

from .locks import Entry, parse_lock, select

__all__ = ["Entry", "parse_lock", "select"]
