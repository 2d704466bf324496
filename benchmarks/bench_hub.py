"""Local hub: spawn-to-ready time through `workbench hub` vs launching JupyterLab directly.

Ours: a spawn through the hub API (profile cpu-small) until the hub reports the server ready,
median over sequential spawns; then N concurrent spawns (all must become ready), wall time. Run
as root, every server runs as its user's own system account (the hub's isolation); otherwise the
hub runs with --shared-account.
Peer: the same single-user stack started by hand as that same account, `python -m jupyterlab` on
a free port, until its /api/status answers; median, then N at once. The ratio is the hub's overhead.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the hub start-up the tests use

import requests  # noqa: E402
from _harness import header, parser, report  # noqa: E402
from hub_process import local_hub  # noqa: E402

AS_ROOT = os.geteuid() == 0


def _wait(url: str, timeout: float, ok=lambda r: r.status_code == 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok(requests.get(url, timeout=2)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def hub_spawn(admin, user: str) -> float:
    start = time.perf_counter()
    admin.api("POST", f"/users/{user}/server", json={"profile": "cpu-small"})
    admin.wait_ready(user, timeout=300)
    return time.perf_counter() - start


def hub_stop(admin, user: str) -> None:
    admin.api("DELETE", f"/users/{user}/server")
    deadline = time.monotonic() + 60
    while admin.server(user) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def direct_spawn(base: Path, name: str, user: str) -> tuple[float, subprocess.Popen]:
    """JupyterLab started by hand in a fresh home, as ``user``'s system account when root."""
    from workbench.hub.config import free_port

    port = free_port()
    workdir = base / "direct" / name
    workdir.mkdir(parents=True, exist_ok=True)
    env, preexec = {**os.environ, "HOME": str(workdir)}, None
    if AS_ROOT:
        from jupyterhub.spawner import set_user_setuid

        from workbench.hub.accounts import lookup_account, private_dir

        account = lookup_account(user)  # created by the hub's spawns
        private_dir(workdir, account)
        preexec = set_user_setuid(account.name, chdir=False)
    start = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--IdentityProvider.token=bench",
        f"--ServerApp.root_dir={workdir}",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=workdir,
        env=env,
        preexec_fn=preexec,
    )
    _wait(f"http://127.0.0.1:{port}/api/status?token=bench", 300)
    return time.perf_counter() - start, proc


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    if not shutil.which("configurable-http-proxy"):
        sys.exit("configurable-http-proxy is not installed (npm install -g configurable-http-proxy)")
    sequential, concurrent = (1, 2) if args.quick else (5, 10)
    isolation = "per-user system accounts" if AS_ROOT else "shared account (not root)"
    header(f"local hub ({isolation}): median of {sequential} spawns, then {concurrent} concurrent spawns (cpu-small)")
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # the users' accounts reach their homes below it
        with local_hub(base, "bench-admin", ["--gpu-devices", ""], timeout=120) as hub:
            admin = hub.admin
            users = [f"bench{i}" for i in range(concurrent)]
            admin.api("POST", "/users", json={"usernames": users})
            ours = []
            for _ in range(sequential):
                ours.append(hub_spawn(admin, users[0]))
                hub_stop(admin, users[0])
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrent) as pool:
                list(pool.map(lambda u: hub_spawn(admin, u), users))
            ours_wall = time.perf_counter() - start
            ready = sum(bool((admin.server(u) or {}).get("ready")) for u in users)
            print(f"hub: {ready}/{concurrent} concurrent servers ready", flush=True)
            assert ready == concurrent, f"only {ready} of {concurrent} servers became ready"
            for user in users:
                hub_stop(admin, user)

        peer = []
        for i in range(sequential):
            elapsed, server = direct_spawn(base, f"seq{i}", users[0])
            peer.append(elapsed)
            stop(server)
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            servers = list(pool.map(lambda i: direct_spawn(base, f"con{i}", users[i]), range(concurrent)))
        peer_wall = time.perf_counter() - start
        for _, server in servers:
            stop(server)

    print(
        f"hub: median spawn-to-ready {statistics.median(ours):.2f}s over {sequential} spawns; "
        f"{concurrent} concurrent spawns all ready after {ours_wall:.2f}s",
        flush=True,
    )
    report("spawn_to_ready_median", statistics.median(ours), statistics.median(peer), "jupyterlab-direct", "<=1.3")
    report(f"{concurrent}_concurrent_spawns", ours_wall, peer_wall, "jupyterlab-direct", "<=1.25")


if __name__ == "__main__":
    main()
