"""The runs layout: owner folders, who owns a run, run ids and folder names, modes, and write isolation."""

import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from workbench.runs import (
    DIR_MODE,
    FILE_MODE,
    RunRecord,
    find_run,
    iter_runs,
    list_runs,
    new_run_dir,
    owner_dirname,
    owner_from_dirname,
    utcnow,
    write_record,
)
from workbench.runs import records as records_module

ROOT = Path(__file__).resolve().parents[2]


def _run(root, name, owner, state="succeeded", claimed_owner=None, **fields):
    path, run_id = new_run_dir(root, name, owner=owner)
    RunRecord(
        path=path,
        run_id=run_id,
        name=name,
        notebook="train.ipynb",
        state=state,
        start=utcnow(),
        owner=claimed_owner or owner,
        **fields,
    ).write_status()
    return RunRecord.read(path)


def test_new_runs_go_to_the_owner_folder(tmp_path):
    rec = _run(tmp_path, "train lgbm/1", "ana")
    assert rec.path.parent == tmp_path / "ana" and rec.owner == "ana"
    assert re.fullmatch(r"\d{8}-\d{6}-train-lgbm-1-r[0-9a-f]{6}", rec.path.name)
    assert rec.path.name.endswith("-" + rec.run_id) and rec.run_id.startswith("r")
    odd = _run(tmp_path, "train", "-é-")  # a user name that needs escaping gets its own folder, decoded back
    assert odd.path.parent.name == owner_dirname("-é-") and odd.owner == "-é-"
    assert {r.owner for r in iter_runs(tmp_path)} == {"ana", "-é-"}


@pytest.mark.parametrize("name", ["alice", "é", "-e9-", "a-b", ".hidden", "..", "x/y", "ünï cödé", "a@b.c"])
def test_owner_folder_names_decode_back(name):
    assert owner_from_dirname(owner_dirname(name)) == name


@pytest.mark.parametrize("folder", ["a-b", "-zz-", "-110000-", ".x", "", "-2d"])
def test_folders_no_user_maps_to_have_no_owner(folder):
    assert owner_from_dirname(folder) is None


def test_owner_comes_from_the_folder_not_from_status_json(tmp_path):
    """bob writes a run claiming admin in status.json: it is still bob's run everywhere it is read."""
    forged = _run(tmp_path, "train", "bob", claimed_owner="admin")
    assert json.loads((forged.path / "status.json").read_text())["owner"] == "admin"
    assert forged.owner == "bob" and find_run(forged.run_id, tmp_path).owner == "bob"
    assert list_runs(tmp_path)["owner"].tolist() == ["bob"]
    from workbench.hub.reports import run_rows

    assert run_rows(tmp_path, owner="admin") == [] and [r["owner"] for r in run_rows(tmp_path)] == ["bob"]


def test_files_and_folders_are_team_readable(tmp_path):
    old = os.umask(0o077)  # a strict umask must not make records private
    try:
        rec = _run(tmp_path, "train", "ana")
        write_record(rec.path / "params.json", {"lr": 0.1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ana").stat().st_mode) == DIR_MODE == 0o755
    assert stat.S_IMODE(rec.path.stat().st_mode) == 0o755
    for name in ("status.json", "params.json"):
        assert stat.S_IMODE((rec.path / name).stat().st_mode) == FILE_MODE == 0o644


def test_a_300_character_name_works(tmp_path):
    name = "x" * 300
    rec = _run(tmp_path, name, "ana")
    assert len(rec.path.name) < 100 and rec.name == name
    assert find_run(name, tmp_path).path == rec.path


def test_all_digit_ids_stay_strings(tmp_path, monkeypatch):
    """A hex id of digits with a leading zero ("005115") would read as the number 5115 without its letter."""
    monkeypatch.setattr(records_module.secrets, "token_hex", lambda n: "005115")
    rec = _run(tmp_path, "train", "ana")
    assert rec.run_id == "r005115" and rec.path.name.endswith("-r005115")
    assert find_run("r005115", tmp_path).path == rec.path

    from workbench.jobs.params import inspect_notebook, validate_params

    spec = inspect_notebook(ROOT / "notebooks" / "stack.ipynb")  # train_runs: list[str]
    values = validate_params(spec, text_values={"train_runs": "[r005115]"})
    assert values["train_runs"] == ["r005115"] and find_run(values["train_runs"][0], tmp_path).path == rec.path
    import yaml

    assert yaml.safe_load("[005115]") == [2637]  # why ids carry a letter: untyped YAML reads bare digits as a number


def test_a_name_finds_the_callers_own_run_first(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    mine = _run(tmp_path, "train", "ana")
    theirs = _run(tmp_path, "train", "bob")  # newer, but bob's
    assert find_run("train", tmp_path).path == mine.path
    monkeypatch.setenv("JUPYTERHUB_USER", "carl")  # no run of that name of one's own: the latest of anyone's
    assert find_run("train", tmp_path).path == theirs.path
    assert find_run(f"bob/{theirs.path.name}", tmp_path).path == theirs.path


def _as_user(uid: int, action) -> str:
    """Run ``action`` in a forked child with uid and gid ``uid``; what it returns or raises, as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the other user, try, report, exit without cleanup
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                result = f"ok {action()}"
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                result = f"{type(exc).__name__}: {exc}"
            os.write(write, result.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        result = fh.read()
    os.waitpid(pid, 0)
    return result


def test_another_users_run_is_readable_but_not_writable():
    if os.geteuid() != 0:
        print("SKIP: needs root to create files of two throwaway users", file=sys.stderr)
        pytest.skip("needs root to create files of two throwaway users (uid 12345 and 12346)")
    owner_uid, intruder_uid = 12345, 12346
    root = Path(tempfile.mkdtemp(prefix="wb-runs-"))
    try:
        os.chmod(root, 0o755)  # a shared runs root every teammate can enter
        rec = _run(root, "train", "alice")
        for path in [rec.path.parent, rec.path, *rec.path.iterdir()]:
            os.chown(path, owner_uid, owner_uid)

        def read_status():
            return json.loads((rec.path / "status.json").read_text())["state"]

        def overwrite_status():
            (rec.path / "status.json").write_text('{"state": "succeeded", "owner": "mallory"}')

        def add_file():
            (rec.path / "report.html").write_text("<script>steal()</script>")

        def atomic_replace():
            write_record(rec.path / "status.json", {"state": "succeeded"})

        def new_run_in_alices_folder():
            return new_run_dir(root, "planted", owner="alice")

        assert _as_user(intruder_uid, read_status) == "ok succeeded"  # the team reads
        for attack in (overwrite_status, add_file, atomic_replace, new_run_in_alices_folder):
            assert _as_user(intruder_uid, attack).startswith("PermissionError"), attack.__name__
        assert read_status() == "succeeded" and not (rec.path / "report.html").exists()
        assert [r.path for r in iter_runs(root)] == [rec.path]
        assert _as_user(owner_uid, add_file) == "ok None"  # while alice herself can
    finally:
        import shutil

        shutil.rmtree(root)
