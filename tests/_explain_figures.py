"""Helpers for figure tests: run a script in a fresh headless interpreter, and read PNG pixels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np


def run_headless(script: str, cwd: Path) -> None:
    """Run ``script`` with the Agg backend and no display, as a batch job would."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def pixels(path: Path) -> np.ndarray:
    """RGB values in [0, 1] of a PNG, ``(height, width, 3)``."""
    from matplotlib.image import imread

    image = imread(path)
    return image[..., :3]


def share_near(image: np.ndarray, hex_color: str, tol: float = 0.12) -> float:
    """Fraction of pixels within ``tol`` (per channel) of ``hex_color``."""
    from matplotlib.colors import to_rgb

    target = np.asarray(to_rgb(hex_color))
    return float(np.mean(np.all(np.abs(image - target) <= tol, axis=-1)))


def ink(image: np.ndarray) -> float:
    """Fraction of pixels that are not (near) white."""
    return float(np.mean(np.any(image < 0.92, axis=-1)))
