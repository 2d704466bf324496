"""Shared reports: a hub service listing the team's runs and serving their HTML reports to hub users."""

from .app import make_app, run_rows

__all__ = ["make_app", "run_rows"]
