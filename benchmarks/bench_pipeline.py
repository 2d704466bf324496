"""Pipelines: ``workbench pipeline run --workers 2`` of the reference pipeline (train x3 → stack →
explain → submission) against the same six steps run one after another with ``workbench run``, then
a re-run with nothing changed (every step reused from the cache; target: at most 2 s).

``--quick`` runs a tiny generated pipeline (two fanned-out steps and a join) instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import header, parser, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "notebooks" / "pipeline.yaml"


def workbench(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "workbench", *args, "--no-progress"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"workbench {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr[-2000:]}")
    return proc.stdout


def run_one(notebook: Path, runs: Path, name: str, **params: str) -> str:
    """``workbench run`` of one notebook; its run directory."""
    flags = [item for k, v in params.items() for item in ("-p", k, v)]
    out = workbench("run", str(notebook), "--runs-dir", str(runs), "--name", name, *flags)
    return str(runs.parent / re.search(r"^run directory: (.+)$", out, re.M).group(1).strip())


def sequential_reference(steps, runs: Path) -> None:
    """The reference pipeline's six steps, one ``workbench run`` after another, each with the parameters
    the pipeline gives it (each expansion its own), upstream references replaced by the runs made here."""
    from workbench.jobs.pipeline import resolve

    done: dict[str, list[str]] = {}
    for step in steps:
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in resolve(step, done).items()}
        run = run_one(step.notebook, runs, step.name, **params)
        done.setdefault(step.group, []).append(run)
        done[step.name] = [run]


def tiny_pipeline(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("x = 1\nupstream: list[str] = []")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import workbench\nworkbench.record('total', x + len(upstream))")]
    nbformat.write(nb, folder / "step.ipynb")
    (folder / "pipeline.yaml").write_text(
        "name: tiny\nsteps:\n  a: {notebook: step.ipynb, foreach: {x: [1, 2]}}\n"
        "  b: {notebook: step.ipynb, parameters: {upstream: '${steps.a.runs}'}}\n"
    )
    return folder / "pipeline.yaml"


def sequential_tiny(folder: Path, runs: Path) -> None:
    a = [run_one(folder / "step.ipynb", runs, f"a-{x}", x=str(x)) for x in (1, 2)]
    run_one(folder / "step.ipynb", runs, "b", upstream=str(a))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__).parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        tmp = Path(tmp)
        pipeline = tiny_pipeline(tmp) if args.quick else REFERENCE
        if not args.quick:
            from workbench.jobs.pipeline import load_pipeline

            reference_steps = load_pipeline(REFERENCE).steps  # read before the clocks start
        steps = 3 if args.quick else 6
        header(f"pipeline of {steps} steps, --workers 2, vs {steps} sequential `workbench run`")
        runs = tmp / "runs"

        def ours() -> None:
            out = workbench("pipeline", "run", str(pipeline), "--runs-dir", str(runs), "--workers", "2")
            assert " succeeded: " in out and "cached" not in out.splitlines()[0], out

        def peer() -> None:
            sequential_tiny(tmp, tmp / "seq") if args.quick else sequential_reference(reference_steps, tmp / "seq")

        peer_s = timed(peer)
        ours_s = timed(ours)
        report(f"pipeline {steps} steps --workers 2", ours_s, peer_s, f"{steps}x workbench run", target="<=0.7")

        header("the same pipeline again, nothing changed: every step reused")
        again = timed(lambda: workbench("pipeline", "run", str(pipeline), "--runs-dir", str(runs), "--workers", "2"))
        report(
            "no-change re-run (target: at most 2 s)", again, ours_s, "first run", target="<=" + f"{2.0 / ours_s:.3f}"
        )


if __name__ == "__main__":
    main()
