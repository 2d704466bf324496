"""Local mode: one notebook server process per user, with the chosen profile's settings.

The profile a user picks sets the server's environment (``CPU_LIMIT``, ``MEM_LIMIT``, thread
counts for OpenMP/BLAS, ``CUDA_VISIBLE_DEVICES`` with GPUs handed out exclusively from this
machine's) and, where the OS allows, a per-process address-space limit of the profile's memory.

Isolation (:data:`ISOLATIONS`):

- ``accounts`` (the hub runs as root): each user's server runs as that user's own system account
  (:mod:`workbench.hub.accounts`) in a 0700 home, with a runs folder only they can write; GPU
  device files are opened to the holder only (:mod:`workbench.hub.devices`).
- ``single-user`` (not root, the default there): only hub admins may start servers, which run as
  the hub's OS user.
- ``shared`` (not root, opted into): every user's server runs as the hub's OS user, so users can
  read each other's files and the hub's secrets. For a trusted team only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import html
import os
import resource
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado.web import HTTPError
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Enum, List, Unicode, default

from .._gpu import nvidia_smi_query
from ..profiles import Profile, ProfileSet, profile_env
from ..runs.layout import RUNS_ENV, owner_dir, owner_dirname
from .accounts import Account, account_name, ensure_account, private_dir
from .devices import DeviceAccess
from .quota import SPAWNED, spawned_profile, spawner_profile, user_groups

ISOLATIONS = ("accounts", "single-user", "shared")

# GPU devices handed out by this hub process: {"user/server": ("0",)}.
_GPU_HOLDERS: dict[str, tuple[str, ...]] = {}


@functools.lru_cache(maxsize=4)
def detect_gpus(command: str = "nvidia-smi") -> list[str]:
    """Indices of this machine's NVIDIA GPUs (empty when there is no driver or GPU); asked once."""
    return [index for (index,) in nvidia_smi_query(["index"], command)]


def options_form(profiles: list[Profile], gpus_available: int, chosen: str | None = None) -> str:
    """The spawn page's profile picker (radio buttons named ``profile``)."""
    default = chosen or next((p.slug for p in profiles if p.default), profiles[0].slug if profiles else None)
    rows = []
    for p in profiles:
        usable = p.gpus <= gpus_available
        note = "" if usable else f" (needs {p.gpus} GPU(s); this machine has {gpus_available})"
        rows.append(
            f'<label class="list-group-item" style="display:block;font-weight:normal">'
            f'<input type="radio" name="profile" value="{html.escape(p.slug)}" id="profile-{html.escape(p.slug)}"'
            f"{' checked' if p.slug == default and usable else ''}{'' if usable else ' disabled'}> "
            f"<strong>{html.escape(p.display_name)}</strong>{html.escape(note)}"
            f'<br><small class="text-muted">{html.escape(p.description)}</small></label>'
        )
    return '<div class="list-group workbench-profiles">' + "\n".join(rows) + "</div>"


class ProfileLocalSpawner(LocalProcessSpawner):
    """Spawn ``jupyterhub-singleuser`` with the chosen profile's settings, isolated per :attr:`isolation`.

    Runs the single-user server from the hub's own Python environment, which every user account
    must be able to read (``workbench.hub.configure`` checks it).
    """

    profiles = AnyTrait(help="The ProfileSet (workbench.profiles.load_profiles) offered on the spawn page.").tag(
        config=True
    )
    isolation = Enum(ISOLATIONS, help="accounts (as root), single-user or shared; see the module docstring.").tag(
        config=True
    )
    users_dir = Unicode("", help="Parent of the per-user working directories.").tag(config=True)
    runs_dir = Unicode("", help=f"Shared runs directory, exported as {RUNS_ENV}.").tag(config=True)
    gpu_devices = List(Unicode(), help="GPU devices to hand out (default: those nvidia-smi lists).").tag(config=True)
    enforce_gpu_devices = Bool(True, help="With per-user accounts, open a GPU's device file to its holder only.").tag(
        config=True
    )
    device_dir = Unicode("/dev", help="Where the nvidia<N> device files are.").tag(config=True)
    limit_memory = Bool(True, help="Set RLIMIT_AS to the profile's memory limit (CPU profiles).").tag(config=True)
    home_dir = Unicode(help="The server's home and working directory.")
    gpus_held = List(Unicode())
    spawned = Dict(
        help="The profile the running server started with: {'profile': slug, 'gpus': n} (kept in its state)."
    )
    profile = AnyTrait(None, allow_none=True)
    account = AnyTrait(None, allow_none=True)

    @default("isolation")
    def _isolation(self) -> str:
        return "accounts" if os.geteuid() == 0 else "single-user"

    @default("gpu_devices")
    def _detect(self) -> list[str]:
        return list(detect_gpus())

    @default("cmd")
    def _cmd(self) -> list[str]:
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @default("home_dir")
    def _home(self) -> str:
        root = Path(self.users_dir or os.path.expanduser("~/.local/share/workbench/hub/users"))
        name = account_name(self.user.name) if self.isolation == "accounts" else owner_dirname(self.user.name)
        return str(root / name)

    @default("options_form")
    def _form(self) -> Any:
        def render(spawner: ProfileLocalSpawner) -> str:
            profiles = spawner._profiles().for_groups(user_groups(spawner))
            return options_form(profiles, len(spawner.gpu_devices), (spawner.user_options or {}).get("profile"))

        return render

    @default("options_from_form")
    def _from_form(self) -> Any:
        def parse(form: dict[str, list[str]]) -> dict[str, Any]:
            return {"profile": form["profile"][0]} if form.get("profile") else {}

        return parse

    @default("apply_user_options")
    def _apply(self) -> Any:
        def apply(spawner: ProfileLocalSpawner, user_options: dict[str, Any]) -> None:
            try:
                profile = spawner_profile(spawner, spawner._profiles())
            except ValueError as exc:
                raise HTTPError(403, str(exc)) from None
            spawner.apply_profile(profile)

        return apply

    def apply_profile(self, profile: Profile) -> None:
        """Take the profile's limits; the environment and GPUs follow in :meth:`start`."""
        self.profile = profile
        self.cpu_limit, self.cpu_guarantee = profile.cpu_limit, profile.cpu_guarantee
        self.mem_limit, self.mem_guarantee = profile.mem_limit_bytes, profile.mem_guarantee_bytes

    def _profiles(self) -> ProfileSet:
        if not isinstance(self.profiles, ProfileSet):
            raise RuntimeError(
                "ProfileLocalSpawner.profiles is not set; configure the hub with workbench.hub.configure"
            )
        return self.profiles

    @property
    def _key(self) -> str:
        return f"{self.user.name}/{self.name}"

    def _devices(self) -> DeviceAccess | None:
        """Device permissions, where they can enforce the GPU assignment (per-user accounts, as root)."""
        if self.isolation == "accounts" and self.enforce_gpu_devices and os.geteuid() == 0:
            return DeviceAccess(self.device_dir)
        return None

    def _take_gpus(self, profile: Profile) -> list[str]:
        busy = {d for key, devices in _GPU_HOLDERS.items() if key != self._key for d in devices}
        free = [d for d in self.gpu_devices if d not in busy]
        if len(free) < profile.gpus:
            holders = ", ".join(f"{k} ({','.join(v)})" for k, v in _GPU_HOLDERS.items() if k != self._key)
            raise RuntimeError(
                f"profile {profile.slug!r} needs {profile.gpus} GPU(s) but only {len(free)} of this machine's "
                f"{len(self.gpu_devices)} are free (held by: {holders or 'nobody'}); try again later or pick a CPU profile"
            )
        taken = free[: profile.gpus]
        _GPU_HOLDERS[self._key] = tuple(taken)
        devices = self._devices()
        if devices is not None and self.account is not None:
            devices.close(d for d in free if d not in taken)
            granted = devices.grant(taken, self.account.gid)
            if granted:
                self.log.info("GPU device(s) %s opened to %s only", ",".join(granted), self.account.name)
        return taken

    def _release_gpus(self) -> None:
        held = _GPU_HOLDERS.pop(self._key, None) or tuple(self.gpus_held)
        devices = self._devices()
        if devices is not None and held:
            devices.close(held)
        self.gpus_held = []

    def profile_env(self, profile: Profile, devices: list[str]) -> dict[str, str]:
        """Environment a profile gives its server (on top of JupyterHub's own)."""
        env = profile_env(profile, devices)  # no devices: CPU profiles see no GPU
        if self.runs_dir:
            env[RUNS_ENV] = self.runs_dir
        return env

    def check_allowed(self) -> None:
        """Refuse a spawn the isolation mode does not allow (``single-user``: admins only)."""
        if self.isolation == "single-user" and not self.user.admin:
            raise HTTPError(
                403,
                f"this hub runs as the ordinary user {getpass.getuser()!r}, so only its admins may "
                "start servers (they would all run as that user and could read each other's files); "
                "run the hub as root for one system account per user, or restart it with "
                "--shared-account to share one account knowingly",
            )

    async def run_pre_spawn_hook(self) -> Any:
        self.check_allowed()
        return await _maybe_await(super().run_pre_spawn_hook())

    def prepare_account(self) -> Account:
        """The user's system account, 0700 home and 0755 runs folder, created on first use (as root)."""
        account = ensure_account(self.user.name, self.home_dir)
        private_dir(self.home_dir, account, 0o700)
        if self.runs_dir:
            private_dir(owner_dir(self.runs_dir, self.user.name), account, 0o755)
        return account

    async def start(self) -> tuple[str, int]:
        profile = self.profile = self.profile or spawner_profile(self, self._profiles())
        self.spawned = {"profile": profile.slug, "gpus": profile.gpus}
        self.check_allowed()
        if self.isolation == "accounts":
            try:
                self.account = await asyncio.to_thread(self.prepare_account)
            except OSError as exc:  # PermissionError included: a foreign account of that name
                raise HTTPError(500, f"could not prepare the system account of {self.user.name!r}: {exc}") from None
        self.gpus_held = self._take_gpus(profile)
        self._profile_env = self.profile_env(profile, list(self.gpus_held))
        self._rlimit_as = profile.mem_limit_bytes if (self.limit_memory and not profile.gpus) else None
        try:
            ip, port = await super().start()
        except BaseException:
            self._release_gpus()
            raise
        await self.wait_listening(ip, port)
        return ip, port

    async def wait_listening(self, ip: str, port: int, interval: float = 0.05) -> None:
        """Return once the server accepts connections (or has exited, or ``http_timeout`` passed).

        The hub then checks the server with a backoff that doubles from 0.2 s up to 5 s, so a
        server ready after 3.1 s would otherwise be seen at about 6 s; polling the port this often
        costs a connect per interval.
        """
        deadline = asyncio.get_running_loop().time() + self.http_timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return  # the hub reports the exit
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(interval)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.account.name if self.account is not None else self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(getattr(self, "_profile_env", {}))
        # the hub's PATH, so kernels and tools of its environment are found
        env.setdefault(
            "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
        )
        for key in ("LANG", "LC_ALL", "TZ"):
            if key in os.environ:
                env.setdefault(key, os.environ[key])
        return env

    def make_preexec_fn(self, name: str) -> Any:
        home = self.home_dir
        limit = getattr(self, "_rlimit_as", None)
        become = set_user_setuid(self.account.name, chdir=False) if self.account is not None else None

        def preexec() -> None:
            if become is not None:
                become()  # setgid, setgroups, setuid: the server never runs as root
            else:
                os.makedirs(home, 0o700, exist_ok=True)
            os.chdir(home)
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return preexec

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        return paths  # internal SSL is not used in local mode

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.gpus_held:
            state["gpu_devices"] = list(self.gpus_held)
        if self.spawned:
            state[SPAWNED] = dict(self.spawned)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("gpu_devices"):
            self.gpus_held = list(state["gpu_devices"])
            _GPU_HOLDERS[self._key] = tuple(self.gpus_held)
        recorded = spawned_profile(None, state)
        if recorded:
            self.spawned = {"profile": recorded[0], "gpus": recorded[1]}

    def clear_state(self) -> None:
        super().clear_state()
        self._release_gpus()
        self.spawned = {}


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future) else value
