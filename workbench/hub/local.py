"""Local mode: notebook servers as processes of the hub's own user, one working directory per user.

The profile a user picks sets the server's environment (``CPU_LIMIT``, ``MEM_LIMIT``, thread
counts for OpenMP/BLAS, ``CUDA_VISIBLE_DEVICES`` with GPUs handed out exclusively from this
machine's) and, where the OS allows, a per-process address-space limit of the profile's memory.

Isolation: every server runs as the hub's OS user, so users of one hub can read each other's
files. This mode is for one machine and a trusted team; the Kubernetes mode gives each user a pod,
a volume and a non-root security context.
"""

from __future__ import annotations

import functools
import html
import os
import re
import resource
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado.web import HTTPError
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, List, Unicode, default

from .._gpu import nvidia_smi_query
from .profiles import Profile, ProfileSet
from .quota import SPAWNED, spawned_profile, spawner_profile, user_groups

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "NUMBA_NUM_THREADS")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")

# GPU devices handed out by this hub process: {"user/server": ("0",)}.
_GPU_HOLDERS: dict[str, tuple[str, ...]] = {}


@functools.lru_cache(maxsize=4)
def detect_gpus(command: str = "nvidia-smi") -> list[str]:
    """Indices of this machine's NVIDIA GPUs (empty when there is no driver or GPU); asked once."""
    return [index for (index,) in nvidia_smi_query(["index"], command)]


def safe_dirname(username: str) -> str:
    """A directory name for a user: unusual characters escaped, never ``.``/``..``."""
    name = _UNSAFE.sub(lambda m: f"-{ord(m.group()):x}-", username)
    return f"-{name}" if name.startswith(".") else name


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
            f'{" checked" if p.slug == default and usable else ""}{"" if usable else " disabled"}> '
            f"<strong>{html.escape(p.display_name)}</strong>{html.escape(note)}"
            f'<br><small class="text-muted">{html.escape(p.description)}</small></label>'
        )  # fmt: skip
    return '<div class="list-group workbench-profiles">' + "\n".join(rows) + "</div>"


class ProfileLocalSpawner(SimpleLocalProcessSpawner):
    """Spawn ``jupyterhub-singleuser`` as the hub's user with the chosen profile's settings.

    Works when the hub runs as root (``--allow-root``); runs the single-user server from the hub's
    own Python environment.
    """

    profiles = AnyTrait(help="The ProfileSet (workbench.hub.load_profiles) offered on the spawn page.").tag(config=True)
    users_dir = Unicode("", help="Parent of the per-user working directories.").tag(config=True)
    runs_dir = Unicode("", help="Shared runs directory, exported as WORKBENCH_RUNS_DIR.").tag(config=True)
    gpu_devices = List(Unicode(), help="GPU devices to hand out (default: those nvidia-smi lists).").tag(config=True)
    limit_memory = Bool(True, help="Set RLIMIT_AS to the profile's memory limit (CPU profiles).").tag(config=True)
    gpus_held = List(Unicode())
    spawned = Dict(help="The profile the running server started with: {'profile': slug, 'gpus': n} (kept in its state).")
    profile = AnyTrait(None, allow_none=True)

    @default("gpu_devices")
    def _detect(self) -> list[str]:
        return list(detect_gpus())

    @default("cmd")
    def _cmd(self) -> list[str]:
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @default("home_dir")
    def _home(self) -> str:
        root = Path(self.users_dir or os.path.expanduser("~/.local/share/workbench/hub/users"))
        return str(root / safe_dirname(self.user.name))

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
            raise RuntimeError("ProfileLocalSpawner.profiles is not set; configure the hub with workbench.hub.configure")
        return self.profiles

    @property
    def _key(self) -> str:
        return f"{self.user.name}/{self.name}"

    def _take_gpus(self, profile: Profile) -> list[str]:
        busy = {d for key, devices in _GPU_HOLDERS.items() if key != self._key for d in devices}
        free = [d for d in self.gpu_devices if d not in busy]
        if len(free) < profile.gpus:
            holders = ", ".join(f"{k} ({','.join(v)})" for k, v in _GPU_HOLDERS.items() if k != self._key)
            raise RuntimeError(
                f"profile {profile.slug!r} needs {profile.gpus} GPU(s) but only {len(free)} of this machine's "
                f"{len(self.gpu_devices)} are free (held by: {holders or 'nobody'}); try again later or pick a CPU profile")  # fmt: skip
        taken = free[: profile.gpus]
        _GPU_HOLDERS[self._key] = tuple(taken)
        return taken

    def _release_gpus(self) -> None:
        _GPU_HOLDERS.pop(self._key, None)
        self.gpus_held = []

    def profile_env(self, profile: Profile, devices: list[str]) -> dict[str, str]:
        """Environment a profile gives its server (on top of JupyterHub's own)."""
        threads = str(max(1, int(profile.cpu_limit)))
        env = {var: threads for var in _THREAD_VARS}
        env.update(profile.env)
        env["WORKBENCH_PROFILE"] = profile.slug
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)  # empty: CPU profiles see no GPU
        if self.runs_dir:
            env["WORKBENCH_RUNS_DIR"] = self.runs_dir
        return env

    async def start(self) -> tuple[str, int]:
        profile = self.profile = self.profile or spawner_profile(self, self._profiles())
        self.spawned = {"profile": profile.slug, "gpus": profile.gpus}
        self.gpus_held = self._take_gpus(profile)
        self._profile_env = self.profile_env(profile, list(self.gpus_held))
        self._rlimit_as = profile.mem_limit_bytes if (self.limit_memory and not profile.gpus) else None
        try:
            return await super().start()
        except BaseException:
            self._release_gpus()
            raise

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        if os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(getattr(self, "_profile_env", {}))
        # the hub's PATH, so kernels and tools of its environment are found
        env.setdefault("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]))
        for key in ("LANG", "LC_ALL", "TZ"):
            if key in os.environ:
                env.setdefault(key, os.environ[key])
        return env

    def make_preexec_fn(self, name: str) -> Any:
        home = self.home_dir
        limit = getattr(self, "_rlimit_as", None)

        def preexec() -> None:
            os.makedirs(home, 0o755, exist_ok=True)
            os.chdir(home)
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return preexec

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
