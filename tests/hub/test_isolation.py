"""Local-mode isolation parts without a running hub: account names, accounts, directories, GPU devices.

The attacks on a running hub (one user's kernel against another's files and the hub's secrets,
name squatting, password guessing) are in tests/hub/test_local.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.web import HTTPError

from workbench.hub import configure
from workbench.hub.accounts import (
    MAX_NAME,
    Account,
    account_mark,
    account_name,
    closed_to_others,
    ensure_account,
    lookup_account,
    private_dir,
)
from workbench.hub.devices import DeviceAccess
from workbench.hub.local import _GPU_HOLDERS, ProfileLocalSpawner
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not AS_ROOT, reason="creating accounts and changing owners needs root (CI runs as root)"
)
LINUX_USER = re.compile(r"[a-z_][a-z0-9_-]*")


def test_account_names_are_valid_and_one_to_one():
    names = [
        "alice",
        "Alice",
        "jean.pierre",
        "jean_pierre",
        "jean-pierre",
        "x__y",
        "x_y",
        "é",
        "-e9-",
        "_",
        "1abc",
        "a" * 29,
        "a" * 30,
        "a" * 200,
        "a" * 201,
        "bob@example.org",
        "bob_example_org",
        "..",
        "root",
        "wb-x",
    ]
    accounts = {account_name(n) for n in names}
    assert len(accounts) == len(names)
    for name in names:
        account = account_name(name)
        assert LINUX_USER.fullmatch(account) and len(account) <= MAX_NAME and account.startswith("wb-"), (name, account)
        assert account_name(name) == account  # deterministic
    assert account_name("alice") == "wb-alice" and account_name("a" * 29) == "wb-" + "a" * 29
    assert "__" in account_name("a" * 30) and "__" in account_name("Alice")  # too long / not a plain name: hashed
    assert ":" not in account_mark("a:b\nc") and "\n" not in account_mark("a:b\nc")
    with pytest.raises(ValueError, match="cannot be empty"):
        account_name("")


@pytest.fixture
def open_tmp():
    """A temporary folder other users can enter (pytest's own is private to its user)."""
    base = Path(tempfile.mkdtemp(prefix="wb-iso-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_closed_to_others(open_tmp):
    closed = open_tmp / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    assert closed_to_others(closed / "inner" / "file") == closed
    closed.chmod(0o711)  # traverse only is enough
    assert closed_to_others(closed / "inner" / "file") is None


def _spawner(isolation: str, name: str = "bob", admin: bool = False, **traits) -> ProfileLocalSpawner:
    user = SimpleNamespace(name=name, admin=admin, url=f"/user/{name}/", escaped_name=name, server=None, spawners={})
    return ProfileLocalSpawner(user=user, isolation=isolation, profiles=PROFILES, **traits)


def test_single_user_mode_lets_only_admins_spawn(tmp_path):
    with pytest.raises(HTTPError) as refused:
        _spawner("single-user", "bob").check_allowed()
    assert refused.value.status_code == 403 and "--shared-account" in refused.value.log_message
    _spawner("single-user", "ann", admin=True).check_allowed()
    _spawner("shared", "bob").check_allowed()
    _spawner("accounts", "bob").check_allowed()


def test_shared_account_is_refused_as_root_and_isolation_follows_the_user(monkeypatch, tmp_path):
    from traitlets.config import Config

    from workbench.hub.config import local_isolation

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert local_isolation() == "accounts"
    with pytest.raises(ValueError, match="--shared-account is for a hub run as an ordinary user"):
        configure(Config(), mode="local", state_dir=tmp_path / "state", shared_account=True)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert (local_isolation(), local_isolation(True)) == ("single-user", "shared")


@needs_root
def test_configure_as_root_keeps_homes_and_runs_out_of_the_state(accounts_ready, open_tmp):
    from conftest import require_tool
    from traitlets.config import Config

    require_tool("configurable-http-proxy")
    base = open_tmp
    state = base / "state"
    with pytest.raises(ValueError, match=r"--users-dir .* is inside the hub's private state directory"):
        configure(Config(), mode="local", state_dir=state, users_dir=state / "users", runs_dir=base / "runs")
    private = base / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ValueError, match=r"not reachable by the users' system accounts: .*private is closed"):
        configure(Config(), mode="local", state_dir=state, users_dir=private / "users", runs_dir=base / "runs")
    c = Config()
    configure(c, mode="local", state_dir=state, users_dir=base / "users", runs_dir=base / "runs")
    assert c.ProfileLocalSpawner.isolation == "accounts"
    assert state.stat().st_mode & 0o777 == 0o700
    assert ((base / "runs").stat().st_mode & 0o777, (base / "users").stat().st_mode & 0o777) == (0o755, 0o711)


@needs_root
def test_accounts_are_created_once_and_foreign_ones_refused(tmp_path):
    from conftest import require_tool

    require_tool("useradd")
    user = "isolation-probe"
    first = ensure_account(user, tmp_path / "home")
    assert first == ensure_account(user, tmp_path / "home") and first.uid != 0 and first.name == account_name(user)
    import pwd

    entry = pwd.getpwnam(first.name)
    assert entry.pw_shell.endswith(("nologin", "false")) and entry.pw_gecos == account_mark(user)
    home = private_dir(tmp_path / "home", first)
    assert (home.stat().st_uid, home.stat().st_mode & 0o777) == (first.uid, 0o700)
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(OSError, match="is not a directory"):
        private_dir(tmp_path / "link", first)

    foreign = "isolation-foreign"
    subprocess.run(["useradd", "--system", "--no-create-home", account_name(foreign)], check=True)
    try:
        with pytest.raises(PermissionError, match="exists but was not created by the hub"):
            lookup_account(foreign)
        with pytest.raises(PermissionError, match="not created by the hub"):
            ensure_account(foreign, tmp_path / "other")
    finally:
        subprocess.run(["userdel", account_name(foreign)], check=False)


@needs_root
def test_gpu_device_files_follow_the_assignment(tmp_path):
    devices = tmp_path / "dev"
    devices.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (devices / name).touch()
        (devices / name).chmod(0o666)
    holder = Account("wb-gpu-holder", 54321, 54321)
    spawner = _spawner("accounts", "gpu-holder", gpu_devices=["0", "1"], device_dir=str(devices))
    spawner.account = holder
    _GPU_HOLDERS.clear()
    try:
        taken = spawner._take_gpus(PROFILES.get("gpu-t4"))
        spawner.gpus_held = taken
        assert taken == ["0"]
        st0, st1 = (devices / "nvidia0").stat(), (devices / "nvidia1").stat()
        assert (st0.st_uid, st0.st_gid, st0.st_mode & 0o777) == (0, 54321, 0o660)  # the holder's group only
        assert (st1.st_uid, st1.st_gid, st1.st_mode & 0o777) == (0, 0, 0o600)  # free: nobody
        assert (devices / "nvidiactl").stat().st_mode & 0o777 == 0o666  # shared control file untouched
        assert DeviceAccess(devices).holder_gid("0") == 54321 and DeviceAccess(devices).holder_gid("1") is None
        spawner._release_gpus()
        st0 = (devices / "nvidia0").stat()
        assert (st0.st_gid, st0.st_mode & 0o777) == (0, 0o600) and "gpu-holder/" not in _GPU_HOLDERS
    finally:
        _GPU_HOLDERS.clear()
    # shared and single-user modes leave the device files alone: CUDA_VISIBLE_DEVICES is advisory there
    assert _spawner("shared", gpu_devices=["0"], device_dir=str(devices))._devices() is None


def test_device_access_needs_indices(tmp_path):
    with pytest.raises(ValueError, match="is not an index"):
        DeviceAccess(tmp_path).path("GPU-1234")
    assert DeviceAccess(tmp_path).present(["0", "GPU-1234"]) == []
