"""Run records: writing, listing, and reading them without trusting what is in the runs root."""

import json

import pytest

from workbench.runs import (
    METRICS_FILE,
    PARAMS_FILE,
    InvalidRunError,
    RunRecord,
    check_status,
    find_run,
    iter_runs,
    list_runs,
    new_run_dir,
    scan_runs,
)


def _make(tmp_path, name, state, auc):
    path, run_id = new_run_dir(tmp_path, name, owner="ana")
    (path / PARAMS_FILE).write_text(json.dumps({"lr": auc / 10}))
    (path / METRICS_FILE).write_text(json.dumps({"cv_auc": auc}))
    RunRecord(path=path, run_id=run_id, name=name, notebook="train.ipynb", state=state, owner="ana").write_status()
    return path


def test_run_dirs_are_unique_and_listed(tmp_path):
    a = _make(tmp_path, "train lgbm/1", "succeeded", 0.84)
    b = _make(tmp_path, "train", "failed", 0.80)
    c = _make(tmp_path, "train", "succeeded", 0.86)
    (tmp_path / "not-a-run").mkdir()
    assert len({a, b, c}) == 3 and "train-lgbm-1" in a.name
    table = list_runs(tmp_path, sort="cv_auc")
    assert list(table["metric.cv_auc"]) == [0.86, 0.84, 0.80]
    assert list(list_runs(tmp_path, status="failed")["run"]) == [b.name]
    assert list(list_runs(tmp_path, sort="-cv_auc")["metric.cv_auc"]) == [0.80, 0.84, 0.86]
    rec = RunRecord.read(c)
    assert rec.owner == "ana" and rec.params == {"lr": 0.086} and rec.report is None
    with pytest.raises(ValueError, match="no metric 'auc'"):
        list_runs(tmp_path, sort="auc")
    with pytest.raises(ValueError, match="unknown status"):
        list_runs(tmp_path, status="done")
    assert list_runs(tmp_path / "missing").empty


def _bad_runs(root, outside):
    """Six runs in bob's folder whose records an attacker or a crash left broken, one good run of ana's."""
    good = _make(root, "good", "succeeded", 0.9)
    broken = {}
    for name, content in [
        ("list", "[1, 2]"),
        ("start-number", None),
        ("bad-json", '{"state": "succ'),
        ("bad-state", None),
        ("metrics-list", None),
    ]:
        path, run_id = new_run_dir(root, name, owner="bob")
        RunRecord(path=path, run_id=run_id, name=name, notebook="t.ipynb", state="succeeded").write_status()
        status = json.loads((path / "status.json").read_text())
        if name == "start-number":
            content = json.dumps({**status, "start": 5})
        if name == "bad-state":
            content = json.dumps({**status, "state": "<script>"})
        if name == "metrics-list":
            (path / METRICS_FILE).write_text("[0.99]")
        if content is not None:
            (path / "status.json").write_text(content)
        broken[name] = path
    path, _ = new_run_dir(root, "symlink", owner="bob")  # status.json pointing at a file outside the root
    (path / "status.json").symlink_to(outside)
    broken["symlink"] = path
    path, _ = new_run_dir(root, "huge", owner="bob")  # 50 MB: refused by size, never parsed
    with open(path / "status.json", "wb") as fh:
        fh.write(b'{"state": "succeeded", "pad": "' + b"x" * (50 << 20) + b'"}')
    broken["huge"] = path
    (root / "bob" / "20260101-000000-linked-rabcdef").symlink_to(good, target_is_directory=True)  # a run folder symlink
    broken["linked"] = root / "bob" / "20260101-000000-linked-rabcdef"
    return good, broken


REASONS = {
    "list": "holds a JSON list, expected an object",
    "start-number": "start is a int (5), expected str or null",
    "bad-json": "status.json is not valid JSON",
    "bad-state": "state is '<script>', expected one of",
    "metrics-list": "metrics.json holds a JSON list",
    "symlink": "'status.json' is a symlink",
    "huge": "over the 1048576-byte limit",
    "linked": "not a plain directory",
}


@pytest.fixture
def broken_root(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"state": "succeeded", "run_id": "stolen", "name": "SECRET-CONTENT"}))
    root = tmp_path / "runs"
    good, broken = _bad_runs(root, outside)
    return root, good, broken


def test_bad_runs_are_skipped_and_flagged_never_raised(broken_root):
    root, good, broken = broken_root
    assert [r.path for r in iter_runs(root)] == [good]
    runs, invalid = scan_runs(root)
    assert [r.path for r in runs] == [good]
    reasons = {b.path: b.reason for b in invalid}
    assert set(reasons) == set(broken.values()) and {b.owner for b in invalid} == {"bob"}
    for name, path in broken.items():
        assert REASONS[name] in reasons[path], (name, reasons[path])
    table = list_runs(root)
    assert table["run"].tolist() == [good.name] and "SECRET-CONTENT" not in table.to_string()
    flagged = list_runs(root, invalid=True)
    assert sorted(flagged[flagged["state"] == "invalid"]["run"]) == sorted(p.name for p in broken.values())
    with pytest.raises(InvalidRunError, match="start is a int"):
        RunRecord.read(broken["start-number"])
    with pytest.raises(InvalidRunError, match="is a symlink"):
        find_run(broken["symlink"])


def test_cli_lists_good_runs_and_names_the_bad(broken_root, capsys):
    from workbench.cli import main

    root, good, broken = broken_root
    assert main(["runs", "--runs-dir", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "1 runs in" in out and good.name.rsplit("-", 1)[-1] in out  # the run id column
    for path in broken.values():
        assert f"skipped {path}:" in err


def test_reports_index_rows_survive_bad_runs(broken_root):
    from workbench.hub.reports import run_rows

    root, good, broken = broken_root
    rows = run_rows(root)
    assert [r["run"] for r in rows if r["state"] != "invalid"] == [good.name]
    assert {r["run"]: r["reason"] for r in rows if r["state"] == "invalid"}.keys() == {p.name for p in broken.values()}
    assert all("SECRET" not in json.dumps(r) for r in rows)
    assert [r["run"] for r in run_rows(root, owner="ana")] == [good.name]


def test_status_fields_are_type_checked():
    base = {"state": "succeeded", "run_id": "r1a2b3c", "name": "n", "notebook": "t.ipynb"}
    assert check_status(base) is base
    for bad in (
        {"duration_s": "3"},
        {"duration_s": True},
        {"pid": 1.5},
        {"error": "boom"},
        {"end": []},
        {"run_id": 5},
        {"state": None},
    ):
        with pytest.raises(InvalidRunError):
            check_status({**base, **bad})
    assert check_status({**base, "duration_s": 2, "extra": "later versions may add keys"})["duration_s"] == 2
