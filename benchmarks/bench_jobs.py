"""Notebook jobs vs papermill: a ``workbench sweep --workers 2`` of 8 runs against 8 sequential
``papermill`` CLI invocations, and one in-process ``run_notebook`` against a bare
``papermill.execute_notebook`` call (what the run directory, report and records cost)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import header, measure, parser, report  # noqa: E402

PARAMETERS = "x = 1  # size of the computation\nseed = 0"
BODY = [
    "import math\nimport random\nimport workbench",
    "values = [math.sin(i * x) for i in range(20_000)]\ntotal = sum(values) + random.random()",
    "workbench.record('total', total)\nprint(f'{total:.6f}')",
]


def write_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in BODY)]
    nbformat.write(nb, path)
    return path


def best_of(fn_a, fn_b, rounds: int) -> tuple[float, float]:
    """Alternate the two so machine noise hits both alike; keep each one's best wall time."""
    a, b = [], []
    for _ in range(rounds):
        a.append(measure(fn_a, repeat=1).best)
        b.append(measure(fn_b, repeat=1).best)
    return min(a), min(b)


def main() -> None:
    args = parser(__doc__).parse_args()
    import papermill

    from workbench.jobs import run_notebook

    n_runs = 2 if args.quick else 8
    rounds = 1 if args.quick else 2
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        tmp = Path(tmp)
        nb = write_notebook(tmp / "small.ipynb")
        values = ",".join(str(i) for i in range(1, n_runs + 1))
        header(f"sweep of {n_runs} runs of a small notebook, --workers 2, vs {n_runs} sequential papermill CLI runs")

        def ours_sweep() -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workbench",
                    "sweep",
                    str(nb),
                    "-p",
                    "x",
                    values,
                    "--workers",
                    "2",
                    "--runs-dir",
                    str(tmp / "sweeps"),
                    "--no-progress",
                ],
                check=True,
                capture_output=True,
            )

        def papermill_cli() -> None:
            for i in range(1, n_runs + 1):
                subprocess.run(
                    [
                        str(bindir / "papermill"),
                        str(nb),
                        str(tmp / f"out-{i}.ipynb"),
                        "-p",
                        "x",
                        str(i),
                        "--no-progress-bar",
                    ],
                    check=True,
                    capture_output=True,
                )

        ours, peer = best_of(ours_sweep, papermill_cli, rounds)
        report(f"sweep {n_runs} runs --workers 2", ours, peer, f"{n_runs}x papermill CLI", target="<=0.35")

        header("one run in-process: workbench run_notebook vs papermill.execute_notebook")

        def ours_run() -> None:
            rec = run_notebook(nb, {"x": 3}, runs_dir=tmp / "single", progress=False)
            assert rec.state == "succeeded", rec.error

        def papermill_api() -> None:
            papermill.execute_notebook(str(nb), str(tmp / "out-api.ipynb"), parameters={"x": 3}, progress_bar=False)

        if not args.quick:  # warm-up: imports and caches on both sides
            ours_run()
            papermill_api()
        ours, peer = best_of(ours_run, papermill_api, 1 if args.quick else 5)
        report("single run overhead", ours, peer, "papermill.execute_notebook", target="<=1.2")


if __name__ == "__main__":
    main()
