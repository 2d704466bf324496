import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.cli import CommandError, build_parser, main, translate_parameters
from workbench.cli._jobargs import display_path
from workbench.models import CVResult

JOB = Path(__file__).parents[1] / "fixtures" / "notebooks" / "job.ipynb"


def test_version_and_help(workbench_cli, capsys):
    out = subprocess.run([*workbench_cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"workbench {workbench.__version__}"
    help_text = subprocess.run([*workbench_cli, "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in help_text and "usage: workbench" in help_text
    assert main([]) == 2  # no subcommand: help and a usage exit status
    assert "usage: workbench" in capsys.readouterr().out


CLI_IMPORTS = """
import json, sys
before = set(sys.modules)
from workbench.cli import main
try:
    main(["runs", "--help"])
except SystemExit:
    pass
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_help_imports_only_the_standard_library_and_the_command_modules():
    out = subprocess.run([sys.executable, "-c", CLI_IMPORTS], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.splitlines()[-1])
    heavy = set("pandas numpy sklearn lightgbm numba papermill optuna kubernetes yaml jupyterhub".split())
    assert not heavy & {m.split(".")[0] for m in loaded}
    third_party = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names) - {"workbench"}
    assert not third_party, f"workbench --help imports {sorted(third_party)}; import them inside the command"
    ours = {m for m in loaded if m.startswith("workbench.") and not m.startswith("workbench.cli")}
    assert ours <= {"workbench._lazy", "workbench._version", "workbench.runs", "workbench.runs.layout"}, sorted(ours)


@pytest.mark.kernel
@pytest.mark.slow
def test_demo_end_to_end(tmp_path, workbench_cli):
    proc = subprocess.run(
        [*workbench_cli, "demo", "--runs-dir", str(tmp_path)], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    auc = float(re.search(r"CV AUC (\d\.\d+)", proc.stdout).group(1))
    assert auc >= 0.84
    report = tmp_path / re.search(r"training report: (.+)", proc.stdout).group(1).strip()
    submission = tmp_path / re.search(r"submission: (\S+)", proc.stdout).group(1)
    run_dir = report.parent
    assert report.is_file() and run_dir.parent.parent == tmp_path
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["cv_auc"] == pytest.approx(auc, abs=1e-4)
    cv = CVResult.load(run_dir / "artifacts" / "cv")
    assert cv.n_splits == 5 and np.isfinite(cv.oof).all()
    assert submission.is_file() and submission.read_text().splitlines()[0] == "customerID,Churn"
    explanation = tmp_path / re.search(r"explanation report: (.+)", proc.stdout).group(1).strip()
    page = explanation.read_text()
    assert "Permutation importance" in page and "Partial dependence" in page and "SHAP" in page
    assert page.count("data:image/png;base64,") >= 5 and "import warnings" not in page  # figures, no code
    explain_params = json.loads((explanation.parent / "params.json").read_text())
    assert Path(explain_params["cv_dir"]) == run_dir
    _demo_pipeline_caches(tmp_path, proc.stdout)


def _demo_pipeline_caches(runs: Path, stdout: str) -> None:
    """The demo ran the reference pipeline with two workers; unchanged steps are reused, changed ones rerun."""
    from workbench.jobs.pipeline import find_pipeline_run, load_pipeline, run_pipeline
    from workbench.runs import iter_runs

    first = find_pipeline_run(stdout.splitlines()[0].split()[-1], runs)
    assert first.state == "succeeded" and len(first.steps) == 6 and len(iter_runs(runs)) == 6
    stacked = float(re.search(r"stacked CV AUC (\d\.\d+)", stdout).group(1))
    assert first.steps["stack"].metrics["cv_auc"] == pytest.approx(stacked, abs=1e-4)
    reference = Path(__file__).parents[2] / "notebooks" / "pipeline.yaml"
    again = run_pipeline(load_pipeline(reference), runs_dir=runs, workers=2, progress=False)
    assert {s.state for s in again.steps.values()} == {"cached"}  # its time is bench_pipeline's to measure
    assert len(iter_runs(runs)) == 6  # no notebook executed
    edited = runs / "pipeline.yaml"  # the stack's meta model changed: stack and submission run again
    edited.write_text(
        reference.read_text().replace(
            "      train_runs: ${steps.train.runs}\n", "      train_runs: ${steps.train.runs}\n      meta: lgbm\n"
        )
    )
    for name in ("train", "stack", "explain", "submission"):
        (runs / f"{name}.ipynb").write_bytes((reference.parent / f"{name}.ipynb").read_bytes())
    changed = run_pipeline(load_pipeline(edited), runs_dir=runs, workers=2, progress=False)
    executed = sorted(n for n, s in changed.steps.items() if s.state == "succeeded")
    assert executed == ["stack", "submission"] and len(iter_runs(runs)) == 8, changed.summary()
    # one model's parameter: that training step and what reads it (stack, submission) run; not explain
    one = run_pipeline(
        load_pipeline(edited, {"train-logreg.logreg_C": "0.5"}), runs_dir=runs, workers=2, progress=False
    )
    executed = sorted(n for n, s in one.steps.items() if s.state == "succeeded")
    assert executed == ["stack", "submission", "train-logreg"] and len(iter_runs(runs)) == 11, one.summary()
    assert {n: s.state for n, s in one.steps.items() if n not in executed} == dict.fromkeys(
        ["train-lgbm", "train-extratrees", "explain"], "cached"
    )


def test_errors_are_printed_without_secrets(tmp_path, capsys, monkeypatch):
    job = str(Path(__file__).parents[1] / "fixtures" / "notebooks" / "job.ipynb")
    # a credential pasted into the wrong parameter comes back in the type error, hidden
    assert (
        main(["run", job, "--runs-dir", str(tmp_path), "-p", "n", "https://ana:S3CR3T@data.example/x.csv?token=S3CR3T"])
        == 2
    )
    err = capsys.readouterr().err
    assert "parameter 'n' expects int" in err and "https://***@data.example/x.csv?token=***" in err
    assert "S3CR3T" not in err

    # an unexpected failure prints its traceback, redacted, and a one-line summary
    import workbench.cli.runs as runs_command

    def broken(args):
        raise RuntimeError("request to https://hub/api?token=S3CR3T failed with Authorization: Bearer S3CR3T")

    monkeypatch.setattr(runs_command, "run", broken)
    monkeypatch.delenv("WORKBENCH_DEBUG", raising=False)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: request to https://hub/api?token=*** failed with Authorization: ***" in err
    assert "workbench runs: unexpected RuntimeError (set WORKBENCH_DEBUG=1" in err and "S3CR3T" not in err


def _command(name: str):
    return next(a for a in build_parser()._actions if isinstance(a.choices, dict)).choices[name]


def _long_options(command: str) -> set[str]:
    return {o for a in _command(command)._actions for o in a.option_strings}


def test_one_meaning_per_flag():
    assert {"--gpus"} <= _long_options("run") and "--gpu-devices" in _long_options("hub")
    for command in ("explain", "runs", "run", "sweep", "rerun", "demo", "show", "compare", "hub"):
        assert "--runs-dir" in _long_options(command), command
    for command in ("demo", "explain", "run", "sweep", "rerun"):
        assert {"--notify", "--no-progress"} <= _long_options(command), command
    assert {"-o", "--output"} <= _long_options("explain") and "--out" not in _long_options("explain")
    assert "--state" in _long_options("runs") and "--status" not in _long_options("runs")


def test_hub_gpu_devices_and_the_deprecated_spelling(capsys):
    from workbench.cli.hub import hub_options

    parser = build_parser()
    new = hub_options(parser.parse_args(["hub", "--gpu-devices", "0, 1", "--admin", "ana"]))
    assert new["gpu_devices"] == ["0", "1"] and capsys.readouterr().err == ""
    old = hub_options(parser.parse_args(["hub", "--gpus", "0,1", "--admin", "ana"]))
    assert (
        old["gpu_devices"] == ["0", "1"] and "--gpus is deprecated here; use --gpu-devices" in capsys.readouterr().err
    )
    assert "deprecated spelling of --gpu-devices" in " ".join(_command("hub").format_help().split())
    with pytest.raises(CommandError, match="pass --gpu-devices only"):
        hub_options(parser.parse_args(["hub", "--gpus", "0", "--gpu-devices", "1"]))


def test_params_prints_types_defaults_and_help(capsys):
    assert main(["params", str(JOB)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"parameters of {display_path(JOB)} (set with -p NAME VALUE):"
    assert lines[1].split() == ["NAME", "TYPE", "DEFAULT", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == ["n", "lr", "flag", "tags", "options", "data", "seed"]
    assert rows["n"].split() == ["n", "int", "3", "how", "many"]
    assert rows["data"].split() == ["data", "Path", "|", "None", "None", "an", "input", "file"]
    assert rows["options"].split()[1:] == ["dict", "{'depth':", "2}"] and lines[-1] == "runs ranked by: n_times_lr"
    assert main(["params", "missing.ipynb"]) == 2
    assert "missing.ipynb not found; pass the path of an .ipynb file" in capsys.readouterr().err


def test_unknown_parameter_lists_the_valid_ones_one_per_line(tmp_path, capsys):
    assert main(["run", str(JOB), "--runs-dir", str(tmp_path), "-p", "N", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("workbench run: error: unknown parameter 'N'") and "did you mean 'n'" in err[0]
    assert err[1] == "valid parameters:" and err[2] == "  n (int, default 3): how many" and len(err) == 2 + 7
    assert not any(tmp_path.iterdir())  # nothing written


def test_library_errors_read_in_the_command_flags(monkeypatch, capsys):
    import workbench.jobs.sweep

    def refuse(*args, **kwargs):
        raise ValueError("random= needs a positive number of runs, got 0; or pass random_state=1; see ?token=x")

    monkeypatch.setattr(workbench.jobs.sweep, "run_sweep", refuse)
    assert main(["sweep", str(JOB)]) == 2
    assert capsys.readouterr().err.strip() == (
        "workbench sweep: error: --random needs a positive number of runs, got 0; or pass --seed 1; see ?token=***"
    )
    explain = build_parser().parse_args(["explain"]).parameter_flags
    message = "pass cv_dir= or model_path=, not both; top=0 is not >= 1; trust=True loads it; cv=1 stays"
    assert translate_parameters(message, explain) == (
        "pass --cv or --model, not both; --top-k 0 is not >= 1; --trust loads it; --cv 1 stays"
    )
    hub = build_parser().parse_args(["hub"]).parameter_flags
    assert translate_parameters("gpu_devices= lists ids; admin_users=[]", hub) == "--gpu-devices lists ids; --admin []"


def test_readme_commands_use_existing_flags():
    from workbench.cli import COMMANDS, flag_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    seen = 0
    for command, rest in re.findall(r"\bworkbench (\w+)([^`#\n]*)", readme):
        if command not in COMMANDS:
            continue
        options = set(flag_table(_command(command)).values()) | {"--help"}
        options |= {o for a in _command(command)._actions for o in a.option_strings}
        for flag in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", rest):
            assert flag in options, f"workbench {command} {flag}: no such flag"
            seen += 1
    assert seen >= 15
