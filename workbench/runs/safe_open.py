"""Reading files of a shared runs root without trusting it: no symlinks, regular files only, size caps.

Runs live on a volume every teammate can write to their own part of, so a run folder may hold a
symlink where a record should be, a FIFO, a huge file, or change while it is read. Every path is
opened one component at a time relative to the directory before it (``O_NOFOLLOW``, ``dir_fd``),
so a symlink swapped in at any moment makes the open fail instead of leading outside the root, and
the content is read from the opened descriptor, never again by name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MAX_RECORD_BYTES = 1 << 20
"""Largest JSON record read from a run (1 MiB); larger ones are refused as malformed."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UnsafePathError(OSError):
    """A path component is a symlink, a non-regular or hard-linked file, a parent reference, or too large."""


def _check_part(part: str) -> str:
    if not part or part in (".", "..") or "/" in part or "\0" in part:
        raise UnsafePathError(errno.EINVAL, f"not a plain file name: {part!r}")
    return part


@contextlib.contextmanager
def open_dir(root: str | os.PathLike[str], parts: Sequence[str] = ()) -> Iterator[int]:
    """A descriptor of ``root/parts...``, each part opened without following symlinks.

    ``root`` itself is trusted (it is the configured runs root); everything below it is not.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                nxt = os.open(_check_part(part), _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(exc.errno, f"{part!r} is not a plain directory") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def read_at(dir_fd: int, name: str, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of regular file ``name`` in directory ``dir_fd``; symlinks and specials refused."""
    try:
        fd = os.open(_check_part(name), _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(exc.errno, f"{name!r} is a symlink") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(errno.EINVAL, f"{name!r} is not a regular file")
        if info.st_nlink != 1:
            # a hard link can put a file the reader may open (but the writer may not) into a run
            raise UnsafePathError(errno.EMLINK, f"{name!r} has {info.st_nlink} hard links; records have one")
        if info.st_size > max_bytes:
            raise UnsafePathError(errno.EFBIG, f"{name!r} is {info.st_size} bytes, over the {max_bytes}-byte limit")
        os.set_blocking(fd, True)
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UnsafePathError(errno.EFBIG, f"{name!r} grew past the {max_bytes}-byte limit while read")
        return data
    finally:
        os.close(fd)


def read_file(root: str | os.PathLike[str], parts: Sequence[str], max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of ``root/parts...`` (the last part a regular file), no symlink followed anywhere below ``root``."""
    *dirs, name = parts
    with open_dir(root, dirs) as fd:
        return read_at(fd, name, max_bytes)


def read_json(
    root: str | os.PathLike[str], parts: Sequence[str], expect: type = dict, max_bytes: int = MAX_RECORD_BYTES
) -> Any:
    """Parse ``root/parts...`` as JSON of type ``expect``; :class:`ValueError` names what is wrong."""
    data = read_file(root, parts, max_bytes)
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{'/'.join(parts)} is not valid JSON ({exc})") from None
    if not isinstance(value, expect):
        raise ValueError(f"{'/'.join(parts)} holds a JSON {type(value).__name__}, expected a {expect.__name__}")
    return value


def list_dir(root: str | os.PathLike[str], parts: Sequence[str] = ()) -> list[tuple[str, bool]]:
    """Entries of ``root/parts...`` as ``(name, is_plain_directory)``; symlinks are never directories."""
    with open_dir(root, parts) as fd:
        entries = []
        for name in os.listdir(fd):
            with contextlib.suppress(OSError):
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
                entries.append((name, stat.S_ISDIR(mode)))
        return sorted(entries)


def relative_parts(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> list[str]:
    """The components of ``path`` below ``root`` (lexically, no symlink resolved); ValueError outside it."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = Path(rel).parts
    if rel == "." or parts[0] == "..":
        raise ValueError(f"{path} is not inside the runs root {root}")
    return [_check_part(p) for p in parts]
