"""No-follow reads of a shared runs root: every attack a teammate's run folder can make is refused."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from workbench.runs.safe_open import UnsafePathError, list_dir, open_dir, read_at, read_file, read_json, relative_parts

SECRET = "SECRET-OUTSIDE-THE-ROOT"


@pytest.fixture
def tree(tmp_path):
    """``root/alice/run/status.json`` and a secret folder beside the root holding the same names."""
    root = tmp_path / "runs"
    run = root / "alice" / "run"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "succeeded"}))
    outside = tmp_path / "outside"
    (outside / "run").mkdir(parents=True)
    (outside / "run" / "status.json").write_text(json.dumps({"state": SECRET}))
    (outside / "status.json").write_text(json.dumps({"state": SECRET}))
    return root, outside


def test_reads_regular_files_below_the_root(tree):
    root, _ = tree
    assert read_json(root, ["alice", "run", "status.json"]) == {"state": "succeeded"}
    assert read_file(root, ["alice", "run", "status.json"]) == b'{"state": "succeeded"}'
    with open_dir(root, ["alice", "run"]) as fd:
        assert read_at(fd, "status.json") == b'{"state": "succeeded"}'
    assert list_dir(root) == [("alice", True)]


@pytest.mark.parametrize("level", ["owner", "run", "file"])
def test_symlink_at_any_component_is_refused(tree, level):
    root, outside = tree
    owner, run = root / "alice", root / "alice" / "run"
    if level == "owner":
        os.rename(owner, root / "alice-real")
        owner.symlink_to(outside, target_is_directory=True)
    elif level == "run":
        os.rename(run, owner / "run-real")
        run.symlink_to(outside / "run", target_is_directory=True)
    else:
        (run / "status.json").unlink()
        (run / "status.json").symlink_to(outside / "status.json")
    with pytest.raises(UnsafePathError, match="symlink|not a plain directory") as info:
        read_json(root, ["alice", "run", "status.json"])
    assert info.value.errno in (errno.ELOOP, errno.ENOTDIR) and SECRET not in str(info.value)


def test_symlinked_folders_are_not_listed_as_directories(tree):
    root, outside = tree
    (root / "mallory").symlink_to(outside, target_is_directory=True)
    assert list_dir(root) == [("alice", True), ("mallory", False)]
    with pytest.raises(UnsafePathError, match="'mallory' is not a plain directory"):
        list_dir(root, ["mallory"])


def test_the_configured_root_itself_may_be_a_symlink(tree, tmp_path):
    root, _ = tree
    (tmp_path / "mounted").symlink_to(root, target_is_directory=True)
    assert read_json(tmp_path / "mounted", ["alice", "run", "status.json"]) == {"state": "succeeded"}


@pytest.mark.parametrize("part", ["..", ".", "", "a/b", "x\0y"])
def test_parent_references_and_odd_names_are_refused(tree, part):
    root, _ = tree
    with pytest.raises(UnsafePathError, match="not a plain file name"):
        read_file(root, ["alice", part, "status.json"])
    with pytest.raises(UnsafePathError, match="not a plain file name"):
        read_file(root, ["alice", "run", part])


def test_fifo_is_refused_without_blocking(tree):
    root, _ = tree
    fifo = root / "alice" / "run" / "report.html"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_file(root, ["alice", "run", "report.html"])
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], UnsafePathError)
    assert "'report.html' is not a regular file" in str(outcome[0])


def test_directory_in_place_of_a_file_is_refused(tree):
    root, _ = tree
    (root / "alice" / "run" / "report.html").mkdir()
    with pytest.raises(UnsafePathError, match="'report.html' is not a regular file"):
        read_file(root, ["alice", "run", "report.html"])


def test_oversize_file_is_refused(tree):
    root, _ = tree
    (root / "alice" / "run" / "metrics.json").write_bytes(b"x" * 101)
    with pytest.raises(UnsafePathError, match="101 bytes, over the 100-byte limit") as info:
        read_file(root, ["alice", "run", "metrics.json"], max_bytes=100)
    assert info.value.errno == errno.EFBIG
    assert len(read_file(root, ["alice", "run", "metrics.json"], max_bytes=101)) == 101


def test_file_larger_than_its_size_says_is_cut_off_at_the_limit():
    # /proc files are regular files whose size reads 0: they grow past the checked size while read
    if not Path("/proc/self/status").is_file() or os.stat("/proc/self/status").st_size != 0:
        pytest.skip("needs a Linux /proc (a regular file whose stat size is 0 but whose content is not)")
    with pytest.raises(UnsafePathError, match="grew past the 16-byte limit while read") as info:
        read_file("/proc/self", ["status"], max_bytes=16)
    assert info.value.errno == errno.EFBIG


def test_growing_file_never_returns_more_than_the_limit(tree):
    root, _ = tree
    path = root / "alice" / "run" / "kernel.log"
    path.write_bytes(b"")
    stop = threading.Event()

    def grow() -> None:
        with open(path, "ab", buffering=0) as out:
            while not stop.is_set():
                out.write(b"y" * 4096)

    writer = threading.Thread(target=grow, daemon=True)
    writer.start()
    try:
        for _ in range(50):
            try:
                data = read_file(root, ["alice", "run", "kernel.log"], max_bytes=64 << 10)
            except UnsafePathError as exc:
                assert exc.errno == errno.EFBIG
            else:
                assert len(data) <= 64 << 10
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "holds a JSON list, expected a dict"),
        ('"running"', "holds a JSON str, expected a dict"),
        ("{'state': 1}", "is not valid JSON"),
        (b"\xff\xfe{}", "is not valid JSON"),
    ],
)
def test_wrong_json_type_or_syntax_names_the_file(tree, content, problem):
    root, _ = tree
    path = root / "alice" / "run" / "status.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=f"alice/run/status.json {problem}"):
        read_json(root, ["alice", "run", "status.json"])
    if content == "[1, 2]":
        assert read_json(root, ["alice", "run", "status.json"], expect=list) == [1, 2]


def test_relative_parts(tree, tmp_path):
    root, outside = tree
    assert relative_parts(root, root / "alice" / "run") == ["alice", "run"]
    assert relative_parts(root, root / "alice" / ".." / "bob") == ["bob"]
    for path in (root, outside / "run", root / ".." / "outside", tmp_path / "runs2" / "x", "/etc/passwd"):
        with pytest.raises(ValueError, match="is not inside the runs root"):
            relative_parts(root, path)


def test_hard_linked_file_is_refused(tree):
    root, outside = tree
    os.link(outside / "status.json", root / "alice" / "run" / "linked.json")
    with pytest.raises(UnsafePathError, match="hard links"):
        read_file(root, ["alice", "run", "linked.json"])
