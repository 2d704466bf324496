"""``workbench show``: everything one run directory records."""

from __future__ import annotations

import argparse
import json
import os

from ._jobargs import add_runs_dir, display_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="show one run: status, parameters, metrics, inputs, artifacts",
        description="Show what a run directory records. RUN is a path, a folder name, a run id or a run "
        "name (its latest run).",
    )
    p.add_argument("run", help="run directory, folder name, run id or run name")
    add_runs_dir(p)
    p.set_defaults(func=run)


def _value(value: object) -> str:
    return (
        f"{value:.6g}"
        if isinstance(value, float)
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )


def run(args: argparse.Namespace) -> int:
    from ..runs.records import ARTIFACTS_DIR, ENV_FILE, INPUTS_FILE
    from ..runs.registry import find_run

    rec = find_run(args.run, args.runs_dir)
    print(f"run       {rec.path.name}  ({display_path(rec.path)})")
    print(
        f"name      {rec.name}"
        + (f"  (sweep {rec.sweep})" if rec.sweep else "")
        + (f"  (rerun of {rec.rerun_of})" if rec.rerun_of else "")
    )
    print(f"notebook  {rec.notebook}")
    duration = f"{rec.duration_s:.1f}s" if rec.duration_s is not None else "-"
    orphaned = "  (its process is gone: the run was killed and will not finish)" if rec.orphaned else ""
    print(
        f"state     {rec.state}  start {rec.start}  end {rec.end or '-'}  duration {duration}  owner {rec.owner}{orphaned}"
    )
    if rec.error:
        print(f"error     {rec.error.get('summary') or rec.error}")
    env = rec.read_extra(ENV_FILE, dict, {})
    if env:
        git = env.get("git") or {}
        commit = (git.get("commit") or "-")[:12] + (" (dirty)" if git.get("dirty") else "")
        print(
            f"env       python {env.get('python', {}).get('version')}  seed {env.get('seed')}  git {commit}  "
            f"cpu {env.get('cpu', {}).get('model')}  gpus {len(env.get('gpu') or [])}"
        )
    for title, values in (("parameters", rec.params), ("metrics", rec.metrics)):
        print(f"{title}:" + ("" if values else " (none)"))
        for key, value in values.items():
            print(f"  {key} = {_value(value)}")
    inputs = [row for row in rec.read_extra(INPUTS_FILE, list, []) if isinstance(row, dict)]
    if inputs:
        print("inputs:")
        by_origin: dict[str, list[dict]] = {}
        for row in inputs:
            by_origin.setdefault(row.get("origin", ""), []).append(row)
        for origin, rows in by_origin.items():
            if len(rows) == 1:
                row = rows[0]
                print(f"  {row['path']}  {row['size']} bytes  sha256 {row['sha256'][:16]}…  ({origin})")
            else:  # a folder input
                folder = os.path.commonpath([row["path"] for row in rows])
                print(f"  {folder}/  {len(rows)} files, {sum(r['size'] for r in rows)} bytes  ({origin})")
    artifacts = (
        sorted(p for p in (rec.path / ARTIFACTS_DIR).rglob("*") if p.is_file())
        if (rec.path / ARTIFACTS_DIR).is_dir()
        else []
    )
    if artifacts:
        print("artifacts:")
        for path in artifacts:
            print(f"  {path.relative_to(rec.path / ARTIFACTS_DIR)}  {path.stat().st_size} bytes")
    if rec.report:
        print(f"report    {display_path(rec.report)}")
    return 0
