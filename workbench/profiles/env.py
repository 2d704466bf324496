"""The environment variables a profile gives a process: thread counts, its own variables, its GPUs."""

from __future__ import annotations

from collections.abc import Sequence

from .model import Profile

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "NUMBA_NUM_THREADS")


def profile_env(profile: Profile, devices: Sequence[str] | None = None) -> dict[str, str]:
    """What ``profile`` sets for a server or run, on top of the environment it starts from.

    The numeric libraries' thread counts follow the profile's CPU limit (at least 1), then come the
    profile's own ``env`` and ``WORKBENCH_PROFILE``. ``CUDA_VISIBLE_DEVICES`` lists ``devices`` when
    they are given; without them a CPU profile sees no GPU and a GPU profile keeps what it inherits.

    Parameters
    ----------
    profile : Profile
        The hub profile.
    devices : sequence of str, optional
        The GPUs (indices or UUIDs) held for the process.

    Returns
    -------
    dict of str to str
        The variables to set.

    Examples
    --------
    >>> from workbench.profiles import load_profiles
    >>> env = profile_env(load_profiles().get("cpu-large"))
    >>> env["OMP_NUM_THREADS"], env["WORKBENCH_PROFILE"], env["CUDA_VISIBLE_DEVICES"]
    ('8', 'cpu-large', '')
    """
    threads = str(max(1, int(profile.cpu_limit)))
    env = dict.fromkeys(THREAD_VARS, threads)
    env.update(profile.env)
    env["WORKBENCH_PROFILE"] = profile.slug
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    elif not profile.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env
