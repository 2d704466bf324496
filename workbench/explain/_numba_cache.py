"""Where numba keeps the compiled tree kernels, chosen so that the cache works in any install.

numba caches a compiled function next to its source (``__pycache__``) when that folder is
writable. A read-only install (a system site-packages, a shared environment) cannot, so the kernels
go to a per-user folder instead: ``$XDG_CACHE_HOME/workbench/numba`` (``~/.cache/workbench/numba``).
An explicit ``NUMBA_CACHE_DIR`` is always respected. :func:`configure` runs before the first
kernel is defined (decoration time is when numba picks the cache folder).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def user_cache_dir() -> Path:
    """The per-user folder for compiled kernels: ``$XDG_CACHE_HOME/workbench/numba``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbench" / "numba"


def _writable(folder: Path) -> bool:
    """Whether numba could write its cache into ``folder/__pycache__`` (tried, not guessed from modes)."""
    target = folder / "__pycache__"
    try:
        target.mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=target).close()
    except OSError:
        return False
    return True


def cache_dir() -> Path:
    """The folder the kernels are cached in for this process (after :func:`configure`)."""
    explicit = os.environ.get("NUMBA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return _PACKAGE_DIR / "__pycache__"


def configure() -> Path:
    """Point numba at a writable cache folder unless the user chose one; returns the folder in use."""
    if not os.environ.get("NUMBA_CACHE_DIR") and not _writable(_PACKAGE_DIR):
        folder = user_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
        if "numba" in sys.modules:  # numba read the environment when it was imported: update its copy
            sys.modules["numba"].config.CACHE_DIR = str(folder)
    return cache_dir()
