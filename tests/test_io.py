import json
import os

import pytest

from workbench._io import atomic_directory, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_and_sets_mode(tmp_path):
    target = tmp_path / "sub" / "secret.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two", mode=0o600)
    assert target.read_text() == "two"
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o600)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "sub"]


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_directory_all_or_nothing(tmp_path):
    out = tmp_path / "result"
    with atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as tmp:
            (tmp / "a.txt").write_text("second")
            raise RuntimeError("crash half-way")
    assert (out / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
    with pytest.raises(FileExistsError):
        with atomic_directory(out, overwrite=False):
            pass
