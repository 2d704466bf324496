"""GPU device permissions: make a local GPU assignment binding, not only advisory.

``CUDA_VISIBLE_DEVICES`` only tells CUDA which GPUs to show; any process may unset it. When the
hub runs as root with one system account per user, it can enforce the assignment through the
device files: a free GPU's ``/dev/nvidia<N>`` is ``root:root 0600`` (no user process can open
it) and a handed-out one is ``root:<holder's group> 0660``. The shared control files
(``nvidiactl``, ``nvidia-uvm``) stay as they are. Assumes the GPU index equals the device file's
minor number (true unless devices were renumbered, e.g. by ``CUDA_DEVICE_ORDER`` tricks or MIG).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

FREE_MODE, HELD_MODE = 0o600, 0o660


class DeviceAccess:
    """Owner and mode of the ``nvidia<N>`` files in ``device_dir`` (``/dev``; a folder of files in tests)."""

    def __init__(self, device_dir: str | os.PathLike[str] = "/dev") -> None:
        self.device_dir = Path(device_dir)

    def path(self, device: str) -> Path:
        """The device file of GPU ``device`` (an index such as ``"0"``)."""
        if not device.isdigit():
            raise ValueError(f"GPU device {device!r} is not an index; device permissions need indices such as 0,1")
        return self.device_dir / f"nvidia{device}"

    def present(self, devices: Iterable[str]) -> list[str]:
        """The devices among ``devices`` whose file exists (character device, or a plain file in tests)."""
        found = []
        for device in devices:
            try:
                mode = os.lstat(self.path(device)).st_mode
            except (FileNotFoundError, ValueError):
                continue
            if stat.S_ISCHR(mode) or stat.S_ISREG(mode):
                found.append(device)
        return found

    def _set(self, device: str, gid: int, mode: int) -> None:
        path = self.path(device)
        os.chown(path, 0, gid, follow_symlinks=False)
        os.chmod(path, mode)

    def close(self, devices: Iterable[str]) -> list[str]:
        """Make ``devices`` usable by root only; the ones changed."""
        done = self.present(devices)
        for device in done:
            self._set(device, 0, FREE_MODE)
        return done

    def grant(self, devices: Iterable[str], gid: int) -> list[str]:
        """Give group ``gid`` (the holder's own group) read/write access to ``devices``; the ones changed."""
        done = self.present(devices)
        for device in done:
            self._set(device, gid, HELD_MODE)
        return done

    def holder_gid(self, device: str) -> int | None:
        """The group a device is granted to; ``None`` when it is closed or absent."""
        try:
            info = os.lstat(self.path(device))
        except FileNotFoundError:
            return None
        return info.st_gid if info.st_mode & 0o060 == 0o060 and info.st_gid != 0 else None
