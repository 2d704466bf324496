"""Fill a wheelhouse with the pins of an image lock for one target Python (offline image builds).

``python -m workbench.deploy.wheelhouse LOCK WHEELS --python X.Y.Z --requirements-out FILE [--only A,B]``
writes the chosen ``name==version --hash=...`` lines to FILE (what the build installs) and downloads
them through this machine's pip (its cache and configured indexes), every file checked against the
lock's hashes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .locks import parse_lock, select

_NOISE = "is ignored: it is neither a file nor a directory"


def fill_wheelhouse(lock: Path, dest: Path, python: str, requirements_out: Path, only: list[str] | None = None) -> int:
    """Write the pins of ``lock`` for ``python`` to ``requirements_out`` and download them into ``dest``;
    returns pip's exit status.

    Downloading needs the package index, so the example is not run:

    .. code-block:: python

        fill_wheelhouse(Path("images/base/requirements.lock"), Path("wheels"), "3.11.2", Path("wheels/base.txt"))
    """
    entries = select(parse_lock(lock.read_text()), python, only)
    if not entries:
        raise ValueError(f"{lock}: no pinned requirement applies to Python {python}")
    requirements_out.parent.mkdir(parents=True, exist_ok=True)
    requirements_out.write_text("".join(e.line() + "\n" for e in entries))
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--python-version",
        python,
        "-d",
        str(dest),
        "-r",
        str(requirements_out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write("".join(ln for ln in proc.stderr.splitlines(True) if _NOISE not in ln))
    print(f"{len(entries)} locked packages for Python {python} in {dest}", file=sys.stderr)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fill a wheelhouse with the pins of an image lock for one Python.")
    parser.add_argument("lock", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--python", required=True, help="the target interpreter's version, e.g. 3.11.2")
    parser.add_argument("--requirements-out", type=Path, required=True)
    parser.add_argument("--only", help="comma-separated packages: keep their dependency closure only")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    return fill_wheelhouse(args.lock, args.dest, args.python, args.requirements_out, only)


if __name__ == "__main__":
    sys.exit(main())
