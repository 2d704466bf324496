import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.cli import main
from workbench.models import CVResult


def test_version_and_help(workbench_cli, capsys):
    out = subprocess.run([*workbench_cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"workbench {workbench.__version__}"
    help_text = subprocess.run([*workbench_cli, "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in help_text and "usage: workbench" in help_text
    assert main([]) == 2  # no subcommand: help and a usage exit status
    assert "usage: workbench" in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from workbench.cli import build_parser; build_parser(); print(sorted(m for m in ('lightgbm','sklearn','pandas','papermill') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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


def test_errors_are_printed_without_secrets(tmp_path, capsys, monkeypatch):
    job = str(Path(__file__).parent / "notebooks" / "job.ipynb")
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
