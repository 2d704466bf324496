"""Parameters cell parsing, validation and coercion, and input checks: everything before a kernel starts."""

import hashlib
from pathlib import Path

import nbformat
import pytest

from workbench.cli import main
from workbench.jobs.inputs import changed_inputs, check_inputs, declared_inputs, describe_inputs
from workbench.jobs.params import inspect_notebook, parse_parameters_cell, split_grid_values, validate_params
from workbench.jobs.sweep import expand_grid

NOTEBOOKS = Path(__file__).parent / "notebooks"
CELL = '''from pathlib import Path
from typing import Literal, Optional

n = 3  # how many trees
lr: float = 1
flag = False
name = "lgbm"
tags: list[int] = [1, 2]
opts: dict[str, float] = {"a": 1.0}
maybe: Optional[int] = None
mode: Literal["gbdt", "dart"] = "gbdt"
data: Path | None = None
model_dir: Path = Path("models")
anything = None
computed = n * 2
required: int
'''


def _spec(tmp_path, source=CELL):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("import os"), cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return inspect_notebook(path)


def test_parameters_cell_types_defaults_and_help():
    params = parse_parameters_cell(CELL)
    assert list(params) == ["n", "lr", "flag", "name", "tags", "opts", "maybe", "mode", "data", "model_dir",
                            "anything", "computed", "required"]  # fmt: skip
    assert (str(params["n"].type), params["n"].default, params["n"].help) == ("int", 3, "how many trees")
    assert str(params["lr"].type) == "float" and params["lr"].declared
    assert str(params["tags"].type) == "list[int]" and params["tags"].default == [1, 2]
    assert str(params["opts"].type) == "dict[str, float]"
    assert str(params["maybe"].type) == "int | None"
    assert params["mode"].type.choices == ("gbdt", "dart")
    assert params["data"].type.is_path and params["model_dir"].default == "models"
    assert str(params["anything"].type) == "any"
    assert not params["computed"].has_default and params["computed"].source == "n * 2"
    assert not params["required"].has_default and params["required"].source == ""


def test_command_line_values_are_coerced_to_the_declared_type(tmp_path):
    spec = _spec(tmp_path)
    text = {"n": "10", "lr": "0.1", "flag": "false", "name": "007", "tags": "[3, 4]", "opts": "{a: 2, b: 0.5}",
            "maybe": "null", "mode": "dart", "anything": "[1, x]", "required": "1"}  # fmt: skip
    values = validate_params(spec, text_values=text)
    assert values["n"] == 10 and type(values["n"]) is int
    assert values["lr"] == 0.1 and values["flag"] is False and values["name"] == "007"
    assert values["tags"] == [3, 4] and values["opts"] == {"a": 2.0, "b": 0.5}
    assert values["maybe"] is None and values["mode"] == "dart" and values["anything"] == [1, "x"]
    assert "computed" not in values  # the notebook computes it itself
    assert values["model_dir"] == str((tmp_path / "models").resolve())  # defaults resolve beside the notebook
    assert validate_params(spec, text_values={"required": "1", "lr": "1e-3", "flag": "YES"})["lr"] == 0.001
    # typed values (a YAML file, Python): ints widen to float, numeric text is read
    typed = validate_params(spec, {"lr": 2, "n": "4", "required": 5})
    assert typed["lr"] == 2.0 and type(typed["lr"]) is float and typed["n"] == 4


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"n": "0.5"}, r"parameter 'n' expects int \(the type of its default 3\); got '0.5'.*`n: float = 3`"),
        ({"lr": "fast"}, r"parameter 'lr' expects float \(declared in the parameters cell\); got 'fast'"),
        ({"flag": "maybe"}, r"parameter 'flag' expects bool .*true or false"),
        ({"tags": "[1, x]"}, r"parameter 'tags' expects list\[int\]"),
        ({"mode": "goss"}, r"parameter 'mode' expects one of 'gbdt', 'dart'"),
        ({"opts": "[1]"}, r"parameter 'opts' expects dict\[str, float\].*YAML mapping"),
    ],
)
def test_wrong_types_name_the_parameter_the_type_and_the_fix(tmp_path, given, message):
    with pytest.raises(ValueError, match=message):
        validate_params(_spec(tmp_path), text_values={"required": "1", **given})


def test_unknown_and_missing_parameters(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(ValueError, match=r"unknown parameter 'N'.*did you mean 'n'.*valid parameters: n \(int, default 3\)"):
        validate_params(spec, text_values={"N": "1", "required": "1"})
    with pytest.raises(ValueError, match=r"parameter 'required' .* has no default; pass it, e.g. -p required VALUE"):
        validate_params(spec, {})
    with pytest.raises(ValueError, match="expects int"):
        validate_params(spec, {"required": True})  # bool is not an int here
    plain = nbformat.v4.new_notebook()
    plain.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(plain, tmp_path / "plain.ipynb")
    with pytest.raises(ValueError, match="has no cell tagged 'parameters'"):
        validate_params(inspect_notebook(tmp_path / "plain.ipynb"), {"x": 2})
    assert validate_params(inspect_notebook(tmp_path / "plain.ipynb"), {}) == {}


def test_inputs_are_checked_and_hashed(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "train.csv"
    data.write_bytes(b"a,b\n1,2\n" * 1000)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.txt").write_text("weights")
    values = validate_params(spec, text_values={"required": "1", "data": "train.csv"})
    assert values["data"] == str(data.resolve())  # relative to where the command runs
    inputs = declared_inputs(spec, values)
    check_inputs(inputs)
    rows = describe_inputs(inputs)
    assert {Path(r["path"]).name: r["sha256"] for r in rows} == {
        "train.csv": hashlib.sha256(data.read_bytes()).hexdigest(),
        "m.txt": hashlib.sha256(b"weights").hexdigest(),
    }
    assert changed_inputs(rows) == []
    data.write_bytes(b"changed")
    assert [c.split()[0] for c in changed_inputs(rows)] == [str(data.resolve())]
    missing = declared_inputs(spec, validate_params(spec, text_values={"required": "1", "data": "nope.csv"}))
    with pytest.raises(ValueError, match=r"input file not found: .*nope.csv \(parameter data\): pass an existing file with -p data PATH"):
        check_inputs(missing)


def test_rejected_runs_write_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    job = str(NOTEBOOKS / "job.ipynb")
    cases = [
        (["-p", "learning_rate", "0.1"], "unknown parameter 'learning_rate'"),
        (["-p", "n", "many"], "parameter 'n' expects int"),
        (["-p", "data", str(tmp_path / "missing.csv")], "input file not found"),
    ]
    for extra, message in cases:
        assert main(["run", job, "--runs-dir", str(runs), *extra]) == 2
        assert message in capsys.readouterr().err
    params = tmp_path / "params.yaml"
    params.write_text("lr: [0.1]\n")
    assert main(["run", job, "--runs-dir", str(runs), "-f", str(params)]) == 2
    assert "parameter 'lr' expects float" in capsys.readouterr().err
    assert not runs.exists()
    assert main(["run", job, "--dry-run", "-p", "lr", "0.5", "-p", "tags", "[a, b]"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "- a" in out and not runs.exists()


def test_grid_values_and_expansion():
    assert split_grid_values("0.01,0.03, 0.1") == ["0.01", "0.03", "0.1"]
    assert split_grid_values("[1, 2],[3],'a,b'") == ["[1, 2]", "[3]", "'a,b'"]
    grid = expand_grid({"lr": [0.1, 0.3], "leaves": [15, 31, 63]})
    assert len(grid) == 6 and grid[0] == {"lr": 0.1, "leaves": 15} and grid[-1] == {"lr": 0.3, "leaves": 63}
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"lr": []})


def test_kubernetes_backend_gets_validated_parameters(monkeypatch, capsys):
    import sys
    import types

    job = str(NOTEBOOKS / "job.ipynb")
    # submitted Jobs run the profile's image (the job gateway decides); --image is for --dry-run only
    assert main(["run", job, "--backend", "k8s", "--image", "img:1"]) == 2
    assert "--image applies to --dry-run only" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "workbench.jobs.k8s", None)
    assert main(["run", job, "--backend", "k8s"]) == 2
    assert "Kubernetes backend is not available" in capsys.readouterr().err
    calls = []
    fake = types.ModuleType("workbench.jobs.k8s")
    fake.run_k8s = lambda **kwargs: calls.append(kwargs) or 0
    monkeypatch.setitem(sys.modules, "workbench.jobs.k8s", fake)
    assert main(["run", job, "--backend", "k8s", "--image", "img:1", "--gpus", "1", "-p", "lr", "0.5", "--dry-run",
                 "--name", "gpu-train", "--namespace", "ml", "--timeout", "600"]) == 0  # fmt: skip
    (call,) = calls
    assert call["params"]["lr"] == 0.5 and call["params"]["n"] == 3 and call["notebook"] == job
    assert (call["image"], call["gpus"], call["name"], call["namespace"], call["timeout"], call["dry_run"]) == (
        "img:1", 1, "gpu-train", "ml", 600, True)  # fmt: skip
    assert main(["run", job, "--backend", "k8s", "--profile", "cpu-large", "--secret", "kaggle-api", "--secret", "s3"]) == 0
    assert (calls[-1]["image"], calls[-1]["profile"], calls[-1]["secret"], calls[-1]["dry_run"]) == (
        None, "cpu-large", ["kaggle-api", "s3"], False)  # fmt: skip
    calls.pop()
    assert main(["run", job, "--backend", "k8s", "--image", "img:1", "-p", "lr", "x"]) == 2  # validated locally first
    assert len(calls) == 1
