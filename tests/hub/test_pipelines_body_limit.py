"""The pipelines service as the hub starts it: a body over its limit is dropped unread, before the
token is even looked at (tornado takes the limit from the server, so the service must pass it there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from workbench.hub.config import free_port
from workbench.hub.pipelines.store import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]


def _put(url: str, size: int) -> int:
    req = urllib.request.Request(url, data=b"{" + b" " * size + b"}", method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (ConnectionError, urllib.error.URLError):
        return 0  # dropped unread


def test_a_body_over_the_limit_never_reaches_a_handler(tmp_path):
    port = free_port()
    env = {**os.environ, "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}", "JUPYTERHUB_API_TOKEN": "x" * 32}
    env["PYTHONPATH"] = str(ROOT)
    (tmp_path / "state").mkdir()
    (tmp_path / "users").mkdir()
    cmd = [sys.executable, "-m", "workbench.hub.pipelines", "--state-dir", "state", "--users-dir", "users"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/services/pipelines/api/schedules/ana/nightly"
    try:
        deadline = time.monotonic() + 60
        while (small := _put(url, 10)) == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert small == 401  # a small body reaches the handler, which wants a token
        assert _put(url, MAX_BODY_BYTES + 1) in (0, 400)  # tornado's bare 400, or the connection closed
    finally:
        proc.terminate()
        proc.wait(timeout=10)
