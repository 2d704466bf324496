"""Parameters cell parsing, validation and coercion, and input checks: everything before a kernel starts."""

import hashlib
import re
from pathlib import Path

import nbformat
import pytest

from workbench.cli import main
from workbench.jobs.inputs import changed_inputs, check_inputs, declared_inputs, describe_inputs
from workbench.jobs.params import inspect_notebook, parse_parameters_cell, split_grid_values, validate_params
from workbench.jobs.sweep import expand_grid

NOTEBOOKS = Path(__file__).parents[1] / "fixtures" / "notebooks"
CELL = """from pathlib import Path
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
"""


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
    assert list(params) == [
        "n",
        "lr",
        "flag",
        "name",
        "tags",
        "opts",
        "maybe",
        "mode",
        "data",
        "model_dir",
        "anything",
        "computed",
        "required",
    ]
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
    text = {
        "n": "10",
        "lr": "0.1",
        "flag": "false",
        "name": "007",
        "tags": "[3, 4]",
        "opts": "{a: 2, b: 0.5}",
        "maybe": "null",
        "mode": "dart",
        "anything": "[1, x]",
        "required": "1",
    }
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
    with pytest.raises(ValueError, match=r"unknown parameter 'N'.*did you mean 'n'") as caught:
        validate_params(spec, text_values={"N": "1", "required": "1"})
    lines = str(caught.value).splitlines()  # the alternatives one per line
    assert lines[1] == "valid parameters:" and lines[2] == "  n (int, default 3): how many trees"
    assert len(lines) == 2 + len(spec.parameters) and all(line.startswith("  ") for line in lines[2:])
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
    with pytest.raises(
        ValueError,
        match=r"input file not found: .*nope.csv \(parameter data\): pass an existing file with -p data PATH",
    ):
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
    assert (
        main(
            [
                "run",
                job,
                "--backend",
                "k8s",
                "--image",
                "img:1",
                "--gpus",
                "1",
                "-p",
                "lr",
                "0.5",
                "--dry-run",
                "--name",
                "gpu-train",
                "--namespace",
                "ml",
                "--timeout",
                "600",
            ]
        )
        == 0
    )
    (call,) = calls
    assert call["params"]["lr"] == 0.5 and call["params"]["n"] == 3 and call["notebook"] == job
    assert (call["image"], call["gpus"], call["name"], call["namespace"], call["timeout"], call["dry_run"]) == (
        "img:1",
        1,
        "gpu-train",
        "ml",
        600,
        True,
    )
    assert (
        main(["run", job, "--backend", "k8s", "--profile", "cpu-large", "--secret", "kaggle-api", "--secret", "s3"])
        == 0
    )
    assert (calls[-1]["image"], calls[-1]["profile"], calls[-1]["secret"], calls[-1]["dry_run"]) == (
        None,
        "cpu-large",
        ["kaggle-api", "s3"],
        False,
    )
    calls.pop()
    assert main(["run", job, "--backend", "k8s", "--image", "img:1", "-p", "lr", "x"]) == 2  # validated locally first
    assert len(calls) == 1


# A 229-byte "billion laughs": nine levels of nine aliases each expand to 9**9 items when walked.
ALIAS_BOMB = (
    "[&a [lol,lol,lol,lol,lol,lol,lol,lol,lol],&b [*a,*a,*a,*a,*a,*a,*a,*a,*a],"
    "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b],&d [*c,*c,*c,*c,*c,*c,*c,*c,*c],&e [*d,*d,*d,*d,*d,*d,*d,*d,*d],"
    "&f [*e,*e,*e,*e,*e,*e,*e,*e,*e],&g [*f,*f,*f,*f,*f,*f,*f,*f,*f]]"
)


def test_yaml_alias_bomb_is_rejected_at_once(tmp_path):
    import time

    spec = _spec(tmp_path, "tags: list = []\nopts = {}\nanything = None\n")
    for name in ("tags", "opts", "anything"):
        started = time.perf_counter()
        with pytest.raises(
            ValueError, match=rf"parameter {name!r}: YAML anchors \(&a\) are not accepted \(line 1, column 2\)"
        ):
            validate_params(spec, text_values={name: ALIAS_BOMB})
        assert time.perf_counter() - started < 1.0
    with pytest.raises(ValueError, match=r"parameter 'tags': YAML aliases \(\*x\) are not accepted"):
        validate_params(spec, text_values={"tags": "[1, *x]"})


def test_yaml_caps_on_size_depth_and_items(tmp_path):
    from workbench._yaml import UnsafeYAMLError, compose_yaml, load_yaml

    spec = _spec(tmp_path, "tags: list = []\nname = ''\n")
    with pytest.raises(
        ValueError,
        match=r"parameter 'tags': the value is 70002 bytes, over the 65536-byte limit for one value; "
        r"pass large data as a file \(a Path parameter\)",
    ):
        validate_params(spec, text_values={"tags": "[" + "1" * 70000 + "]"})
    with pytest.raises(ValueError, match="parameter 'name': the value is 70000 bytes"):
        validate_params(spec, text_values={"name": "x" * 70000})
    with pytest.raises(ValueError, match=r"parameter 'tags': YAML nested deeper than 64 levels is not accepted"):
        validate_params(spec, text_values={"tags": "[" * 200 + "]" * 200})
    nested, depth = validate_params(spec, text_values={"tags": "[" * 60 + "]" * 60})["tags"], 1
    while nested:
        nested, depth = nested[0], depth + 1
    assert depth == 60  # deep but within the cap: accepted
    with pytest.raises(UnsafeYAMLError, match="more than 1000 items"):
        compose_yaml("[" + ",".join(["1"] * 2000) + "]", max_nodes=1000)
    assert load_yaml("{a: [1, 2.5, yes, ~]}") == {"a": [1, 2.5, True, None]}
    with pytest.raises(UnsafeYAMLError, match="anchors"):
        load_yaml("a: &x 1\nb: *x\n")
    with pytest.raises(UnsafeYAMLError, match="aliases"):
        load_yaml("a: {<<: *base}\n")  # merge keys need aliases too


def test_alias_bomb_on_the_command_line_starts_no_kernel_and_writes_nothing(tmp_path, capsys):
    import time

    runs = tmp_path / "runs"
    params = tmp_path / "params.yaml"
    params.write_text(f"tags: {ALIAS_BOMB}\n")
    job = str(NOTEBOOKS / "job.ipynb")
    for extra in (["-p", "tags", ALIAS_BOMB], ["-f", str(params)]):
        started = time.perf_counter()
        assert main(["run", job, "--runs-dir", str(runs), *extra]) == 2
        assert time.perf_counter() - started < 1.0
        err = capsys.readouterr().err
        assert "YAML anchors (&a) are not accepted" in err and "write each value out in full" in err
    assert "parameters file" in err and str(params) in err
    assert not runs.exists()


def test_text_parameters_keep_what_was_typed(tmp_path):
    source = (
        "ids: list[str] = []\nname: str = ''\nlabels: dict[str, str] = {}\nmaybe: list[str | None] = []\n"
        "counts: list[int] = []\nmixed: list[int | str] = []\nplain = []\nchoice: list[Literal['007', 'a']] = []\n"
        "ratios: list[float] = []\n"
    )
    spec = _spec(tmp_path, "from typing import Literal\n" + source)
    values = validate_params(
        spec,
        text_values={
            "ids": "[a1b2, 005115, 0017, yes, 1e3, null, '3', 0x1f, 1:30]",
            "name": "005115",
            "labels": "{007: 008, yes: no, run: 1e3}",
            "maybe": "[x, null, 'null', ~]",
            "counts": "[005115, 0x1f, 1.0, 7]",
            "mixed": "[005115, abc]",
            "plain": "[1, x, '1', yes]",
            "choice": "[007, a]",
            "ratios": "[.inf, 1e3, 2]",
        },
    )
    assert values["ids"] == ["a1b2", "005115", "0017", "yes", "1e3", "null", "3", "0x1f", "1:30"]
    assert values["name"] == "005115"
    assert values["labels"] == {"007": "008", "yes": "no", "run": "1e3"}
    assert values["maybe"] == ["x", None, "null", None]  # str | None: plain null is None, quoted is text
    assert values["counts"] == [5115, 31, 1, 7]  # ints read like -p n 005115, YAML spellings too
    assert values["mixed"] == [5115, "abc"]
    assert values["plain"] == [1, "x", "1", True]  # untyped lists are YAML
    assert values["choice"] == ["007", "a"]
    assert values["ratios"] == [float("inf"), 1000.0, 2.0]


def test_parameters_files_keep_text_and_sweep_their_lists(tmp_path, capsys):
    from workbench.jobs.params import load_parameters_file

    spec = _spec(tmp_path, "ids: list[str] = []\nrun_id: str = ''\nn = 1\nlr = 0.1\nflag = False\n")
    file = tmp_path / "p.yaml"
    file.write_text("ids: [005115, yes]\nrun_id: 0017\nn: 0x1f\nlr: 1e-3\nflag: on\n")
    loaded = load_parameters_file(file)
    assert repr(loaded["ids"]) == "'[005115, yes]'"
    assert validate_params(spec, loaded) == {
        "ids": ["005115", "yes"],
        "run_id": "0017",
        "n": 31,
        "lr": 0.001,
        "flag": True,
    }
    file.write_text("n: [1, 2]\nrun_id: [0017, 018]\n")
    grid = {k: v.items() for k, v in load_parameters_file(file).items()}
    assert [validate_params(spec, {"run_id": v})["run_id"] for v in grid["run_id"]] == ["0017", "018"]
    with pytest.raises(ValueError, match=r"parameter 'n' expects int .*got '\[1, 2\]'"):
        validate_params(spec, {"n": load_parameters_file(file)["n"]})
    for text, message in [
        ("- 1\n", "must be a YAML mapping of name: value, got a list"),
        ("a: [\n", "is not valid YAML"),
        ("a: &x 1\nb: *x\n", r"p.yaml: YAML anchors \(&x\) are not accepted \(line 1, column 4\)"),
    ]:
        file.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_parameters_file(file)
    file.write_text("")
    assert load_parameters_file(file) == {}


def test_validated_values_dump_without_anchors(tmp_path):
    import yaml

    shared = [1, 2]
    spec = _spec(tmp_path, "a = []\nb = {}\n")
    values = validate_params(spec, {"a": [shared, shared], "b": {"x": shared, "y": shared}})
    dumped = yaml.safe_dump(values)
    assert "&" not in dumped and "*" not in dumped
    assert yaml.safe_load(dumped) == {"a": [[1, 2], [1, 2]], "b": {"x": [1, 2], "y": [1, 2]}}


@pytest.mark.parametrize(
    ("annotation", "text", "typed", "expected"),
    [
        ("int", "12", 12.0, 12),
        ("float", "1e-3", 2, 0.001),
        ("bool", "off", True, False),
        ("str", " 007 ", 5, " 007 "),
        ("Path", "data/x.csv", "data/x.csv", "data/x.csv"),
        ("None", "~", None, None),
        ("Literal['a', 1]", "1", "a", 1),
        ("list[int]", "[1, 2]", (3,), [1, 2]),
        ("dict[str, int]", "{a: 1}", {"b": 2}, {"a": 1}),
        ("int | None", "null", None, None),
        ("Any", "{a: [1]}", [1], {"a": [1]}),
    ],
)
def test_each_type_kind_reads_text_and_typed_values(annotation, text, typed, expected):
    from workbench.jobs.params import coerce_value

    (param,) = parse_parameters_cell(f"x: {annotation}\n").values()
    result = coerce_value(param, text, text=True)
    assert result == expected and type(result) is type(expected)
    coerce_value(param, typed)  # typed values of the kind pass
    with pytest.raises(ValueError, match=rf"parameter 'x' expects {re.escape(str(param.type))} \(declared"):
        coerce_value(param, object())


def test_values_shipped_as_a_yaml_file_come_back_unchanged(tmp_path):
    import yaml

    from workbench.jobs.params import load_parameters_file

    source = (
        "ids: list[str] = []\nname = ''\nn = 0\nlr = 0.1\nmaybe: int | None = 1\nopts = {}\n"
        "grid: list[list[float]] = []\nflag = True\n"
    )
    spec = _spec(tmp_path, source)
    values = validate_params(
        spec,
        text_values={
            "ids": "[005115, yes, null, 1e3]",
            "name": "0017",
            "n": "-3",
            "lr": "inf",
            "maybe": "null",
            "opts": "{a: [1, x], b: {c: ~}}",
            "grid": "[[0.5, 1], []]",
            "flag": "no",
        },
    )
    shipped = tmp_path / "params.yaml"
    shipped.write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))  # as the Kubernetes Job gets them
    assert validate_params(spec, load_parameters_file(shipped)) == values
