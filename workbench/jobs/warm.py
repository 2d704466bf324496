"""Warm kernels for workers that run one notebook many times (tune trials, sweep points).

A worker starts the kernel of its next run while the current one works, and has that kernel
import the modules the notebook imports (:func:`notebook_imports`) and those an earlier run of it
imported on the way (:func:`loaded_modules`), so the next run does not wait for them. The kernel is still used for exactly one run: importing binds no name in the
user's namespace, and the run's seeds are set after the imports, right before its first cell.
Modules that live under the notebook's own folder are not imported ahead (they may read the
run's environment when imported), nor are imports inside ``if``/``try``/functions. Where the kernel
can be forked (a plain ipykernel), it comes from the worker's fork server (``_forkserver``), which
imported the modules once: a new kernel then costs a fork, not an interpreter's imports.

:func:`quiet_exit` runs in a kernel whose cells are done: it flushes the files the notebook left
open and takes every object out of the garbage collector's reach, so the kernel exits in a
fraction of a second instead of collecting a heap it is about to drop (seconds after a model was
trained). The notebook's files are complete on disk before the kernel is asked to shut down, and
the worker moves on to its next run while the kernel's process exits (it is reaped in the background).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import importlib.util
import io
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_MAGIC_PREFIXES = ("%", "!", "?")


def notebook_imports(nb: Any) -> tuple[str, ...]:
    """The absolute module names that ``nb``'s code cells import at their top level, in order.

    Parameters
    ----------
    nb : notebook node or dict
        The notebook (``cells`` with ``cell_type`` and ``source``).

    Returns
    -------
    tuple of str
        ``import a.b`` gives ``a.b``, ``from a.b import c`` gives ``a.b``; relative imports,
        imports inside blocks and cells that are not Python (magics aside) are left out.

    Examples
    --------
    >>> nb = {"cells": [{"cell_type": "code", "source": "%matplotlib inline\\nimport numpy as np\\n"
    ...                  "from pandas import DataFrame\\nif False:\\n    import lightgbm"}]}
    >>> notebook_imports(nb)
    ('numpy', 'pandas')
    """
    names: dict[str, None] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(_MAGIC_PREFIXES)]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names[node.module] = None
    return tuple(names)


def start_warm_kernel(nb: Any, workdir: str | os.PathLike[str], seed: int, log_dir: str | os.PathLike[str]) -> None:
    """Start, in the background, the kernel a coming run of ``nb`` with ``seed`` adopts, importing its modules.

    Parameters
    ----------
    nb : notebook node
        The notebook (its kernel and imports).
    workdir : path
        The run's working directory.
    seed : int
        The run's seed (the kernel's hash seed depends on it).
    log_dir : path
        Where the kernel's output goes until a run adopts it (a scratch folder when missing).
    """
    from ._kernels import launch_spare
    from .runner import kernel_environment

    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if not kernel:
        return
    folder = Path(log_dir) if Path(log_dir).is_dir() else Path(tempfile.gettempdir())
    launch_spare(kernel, workdir, kernel_environment(seed), folder, preload=notebook_imports(nb))


def discard_spare() -> None:
    """Shut down this process's spare kernel, if any (it ran no code of a run)."""
    from ._kernels import discard_spare as discard

    discard()


def wait_for_exiting_kernels() -> None:
    """Wait for the kernels this process asked to shut down (killing those that take too long), then
    stop its kernel fork server, if any."""
    from ._kernels import reap_all

    reap_all()
    if "workbench.jobs._fork_provisioner" in sys.modules:
        from ._fork_provisioner import close_server

        close_server()


def preload_code(modules: Iterable[str]) -> str:
    """What a fresh kernel runs (silently) to import ``modules`` ahead of its run."""
    return f"__import__('workbench.jobs.warm', fromlist=['_']).preload({list(modules)!r})"


def preload(modules: Iterable[str]) -> list[str]:
    """Import ``modules`` (in the kernel), skipping those that fail or live under the working folder.

    Binds no name in the caller's namespace; a module that fails to import is left for the run's
    own import to report.

    Parameters
    ----------
    modules : iterable of str
        Absolute module names.

    Returns
    -------
    list of str
        The modules imported.
    """
    here = Path.cwd().resolve()
    local: dict[str, bool] = {}
    done = []
    for name in modules:
        top = name.split(".")[0]
        if top not in local:
            local[top] = _is_local(top, here)
        if local[top]:
            continue
        with contextlib.suppress(Exception):  # the run's own import reports the problem
            importlib.import_module(name)
            done.append(name)
    return done


def _is_local(top: str, folder: Path) -> bool:
    """True for a module found under ``folder`` (the notebook's) or not found at all."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return True
    if spec is None:
        return True
    places = [spec.origin] if spec.origin not in (None, "built-in", "frozen") else []
    places += list(spec.submodule_search_locations or [])
    return any(Path(p).resolve().is_relative_to(folder) for p in places)


def quiet_exit() -> None:
    """Flush the files left open and freeze the garbage collector: the kernel may now exit quickly.

    Run (silently) in a kernel whose cells are done, right before it is shut down. Only plain
    buffered files are flushed (their flush writes the bytes their close would); a compressed
    stream's flush would add a sync block to what it writes.
    """
    buffered = (io.BufferedWriter, io.BufferedRandom)
    files = [obj for obj in gc.get_objects() if type(obj) in _FILE_TYPES]
    for obj in files:
        with contextlib.suppress(Exception):  # closed, detached
            plain = type(obj.buffer) in buffered if type(obj) is io.TextIOWrapper else True
            if plain and not obj.closed and obj.writable():
                obj.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    gc.freeze()


_FILE_TYPES = frozenset({io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom})


def loaded_modules() -> list[str]:
    """The public modules this kernel has imported (the next run of the notebook imports them ahead,
    catching what its code imports only when called, such as LightGBM inside ``train_cv``)."""
    return [
        name for name in list(sys.modules) if name != "__main__" and not any(p.startswith("_") for p in name.split("."))
    ]


QUIET_EXIT_CODE = "__import__('workbench.jobs.warm', fromlist=['_']).quiet_exit()"
LOADED_MODULES_EXPR = "__import__('workbench.jobs.warm', fromlist=['_']).loaded_modules()"
