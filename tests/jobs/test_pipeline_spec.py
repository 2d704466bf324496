"""The pipeline file: parsing, expansion, references and the errors that stop a pipeline before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workbench.jobs.pipeline import PipelineError, Step, load_pipeline, parse_pipeline, references, resolve
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "pipeline"
REFERENCE = ROOT / "notebooks" / "pipeline.yaml"


def _parse(text: str, **kwargs):
    return parse_pipeline(yaml.safe_load(text), base_dir=FIXTURES, source="p.yaml", **kwargs)


def _error(text: str, **kwargs) -> str:
    with pytest.raises(PipelineError) as info:
        _parse(text, **kwargs)
    return str(info.value)


def test_reference_pipeline_expands_and_orders_the_steps():
    p = load_pipeline(REFERENCE, profiles=load_profiles(ROOT / "hub" / "profiles.yaml"))
    assert [s.name for s in p.steps] == [
        "train-lgbm",
        "train-logreg",
        "train-extratrees",
        "stack",
        "explain",
        "submission",
    ]
    assert p.groups["train"] == ("train-lgbm", "train-logreg", "train-extratrees")
    stack, explain, submission = p.step("stack"), p.step("explain"), p.step("submission")
    assert stack.after == ("train-lgbm", "train-logreg", "train-extratrees")
    assert explain.after == ("train-lgbm",) and submission.after == ("stack",)
    assert p.step("train-logreg").parameters["model"] == "logreg" and p.step("train-logreg").foreach == {
        "model": "logreg"
    }
    assert p.step("train-lgbm").timeout == 1200 and p.step("train-lgbm").retries == 1
    assert p.step("train-lgbm").notebook == ROOT / "notebooks" / "train.ipynb"
    assert p.source == REFERENCE and len(p.digest) == 64
    assert p.downstream(["train-logreg"]) == {"stack", "submission"}


def test_overrides_are_typed_and_change_the_digest():
    base = load_pipeline(REFERENCE)
    other = load_pipeline(REFERENCE, {"seed": "3"})
    assert other.parameters["seed"] == 3 and other.step("train-lgbm").parameters["seed"] == 3
    assert other.digest != base.digest and load_pipeline(REFERENCE).digest == base.digest
    with pytest.raises(PipelineError, match=r"key 'parameters.seed'.*expects int"):
        load_pipeline(REFERENCE, {"seed": "three"})
    with pytest.raises(PipelineError, match=r"no pipeline parameter 'sede'"):
        load_pipeline(REFERENCE, {"sede": "1"})


def test_references_and_resolve():
    p = load_pipeline(FIXTURES / "tiny.yaml")
    total = p.step("sum")
    assert total.after == ("make-1", "make-2", "single")
    assert [(r.kind, r.name, r.attr) for r in references(total.parameters)] == [
        ("steps", "make", "runs"),
        ("steps", "single", "run"),
    ]
    assert p.step("single").parameters["x"] == 1  # ${params.base}, typed
    runs = {"make": [Path("/r/m1"), Path("/r/m2")], "single": [Path("/r/s")]}
    assert resolve(total, runs) == {"x": 0, "upstream": ["/r/m1", "/r/m2"], "source": "/r/s/artifacts/total.txt"}
    with pytest.raises(PipelineError, match="no run of step 'single'"):
        resolve(total, {"make": runs["make"]})
    lone = Step("s", "s", Path("a.ipynb"), {"a": "${steps.t.run}"})
    with pytest.raises(PipelineError, match=r"names 2 runs; use \$\{steps.t.runs\}"):
        resolve(lone, {"t": ["/a", "/b"]})


def test_a_cycle_is_named():
    message = _error(
        """
steps:
  a: {notebook: add.ipynb, parameters: {source: "${steps.c.run}"}}
  b: {notebook: add.ipynb, after: a}
  c: {notebook: add.ipynb, after: [b]}
"""
    )
    assert "cycle: a -> c -> b -> a" in message and "p.yaml" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps: {a: {notebook: add.ipynb}}\nstpes: 1", "key 'stpes': unknown key; did you mean 'steps'?"),
        (
            "steps: {a: {notebook: add.ipynb, paramters: {}}}",
            "step 'a', key 'paramters': unknown key; did you mean 'parameters'?",
        ),
        (
            "steps: {a: {notebook: add.ipynb, parameters: {y: 1}}}",
            "step 'a', key 'parameters.y': unknown parameter 'y'",
        ),
        (
            "steps: {a: {notebook: add.ipynb, parameters: {x: abc}}}",
            "step 'a', key 'parameters.x': parameter 'x' expects int",
        ),
        (
            "steps: {a: {notebook: add.ipynb}, b: {notebook: add.ipynb, parameters: {x: '${steps.a.runs}'}}}",
            "step 'b', key 'parameters.x': ${steps.a.runs} is a list of run directories, but parameter 'x' expects int",
        ),
        (
            "steps: {a: {notebook: add.ipynb, parameters: {source: '${steps.nope.run}'}}}",
            "step 'a', key 'parameters.source': ${steps.nope.run}: no step 'nope'",
        ),
        ("steps: {a: {notebook: add.ipynb, parameters: {label: '${params.q}'}}}", "no pipeline parameter 'q'"),
        ("steps: {a: {notebook: add.ipynb, parameters: {label: '${step.a}'}}}", "${step.a} is not a reference"),
        ("steps: {a: {notebook: add.ipynb, after: [zz]}}", "step 'a', key 'after': no step 'zz'"),
        ("steps: {a: {notebook: missing.ipynb}}", "step 'a', key 'notebook': notebook"),
        ("steps: {a: {notebook: add.ipynb, foreach: {x: []}}}", "step 'a', key 'foreach.x': expected a non-empty list"),
        ("steps: {a: {notebook: add.ipynb, foreach: {x: [[1]]}}}", "foreach values must be scalars"),
        ("steps: {a: {notebook: add.ipynb, foreach: {zz: [1]}}}", "key 'foreach.zz': add.ipynb has no parameter 'zz'"),
        (
            "steps: {a: {notebook: add.ipynb, foreach: {x: [a]}}}",
            "step 'a-a', key 'parameters.x': parameter 'x' expects int",
        ),
        (
            "steps: {a: {notebook: add.ipynb, foreach: {x: [1, 2]}}, b: {notebook: add.ipynb, parameters: {source: '${steps.a.run}'}}}",
            "step 'a' fans out with foreach; use ${steps.a.runs}",
        ),
        (
            "steps: {a: {notebook: add.ipynb}, b: {notebook: add.ipynb, parameters: {label: 'x ${steps.a.runs}'}}}",
            "is a list, so it must be the whole value",
        ),
        ("steps: {Train_1: {notebook: add.ipynb}}", "step name 'Train_1' must be lower-case letters"),
        (
            "schedule: every day\nsteps: {a: {notebook: add.ipynb}}",
            "key 'schedule': 'every day' is not a cron expression",
        ),
        ("steps: {a: {notebook: add.ipynb, retries: -1}}", "key 'retries'"),
        ("steps: {a: {notebook: add.ipynb, timeout: soon}}", "key 'timeout'"),
        ("webhook: {parameters: [nope]}\nsteps: {a: {notebook: add.ipynb}}", "key 'webhook.parameters'"),
        ("steps: {a: {notebook: add.ipynb, profile: gpu-huge}}", "step 'a', key 'profile': no profile 'gpu-huge'"),
        ("steps: []", "key 'steps'"),
    ],
)
def test_errors_name_the_step_and_key(text, expected):
    profiles = load_profiles(ROOT / "hub" / "profiles.yaml")
    assert expected in _error(f"name: p\n{text}", profiles=profiles)


def test_schedule_webhook_timeout_and_after():
    p = _parse(
        """
name: nightly
parameters: {base: 2}
schedule: "0 3 * * *"
webhook: {parameters: [base]}
steps:
  a: {notebook: add.ipynb, timeout: 10m, retries: 2, profile: cpu-small}
  b: {notebook: add.ipynb, after: a, parameters: {x: "${params.base}", label: "run ${params.base}"}}
"""
    )
    assert p.schedule == "0 3 * * *" and p.webhook.enabled and p.webhook.parameters == ("base",)
    assert p.step("a").timeout == 600 and p.step("a").retries == 2 and p.step("a").profile == "cpu-small"
    assert p.step("b").after == ("a",) and p.step("b").parameters == {"x": 2, "label": "run 2"}


def test_path_parameters_resolve_against_the_pipeline_file(tmp_path):
    (tmp_path / "data.txt").write_text("abc")
    (tmp_path / "add.ipynb").write_bytes((FIXTURES / "add.ipynb").read_bytes())
    (tmp_path / "p.yaml").write_text("steps: {a: {notebook: add.ipynb, parameters: {data: data.txt}}}")
    p = load_pipeline(tmp_path / "p.yaml")
    assert p.name == "p" and p.step("a").parameters["data"] == str(tmp_path / "data.txt")


def test_hostile_yaml_is_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x]\nb: &b [*a, *a]\nsteps: *b\n")
    with pytest.raises(PipelineError, match="anchors"):
        load_pipeline(bomb)
    huge = tmp_path / "huge.yaml"
    huge.write_text("steps: {}\n" + "#" * (1024 * 1024 + 1))
    with pytest.raises(PipelineError, match="byte limit"):
        load_pipeline(huge)
    with pytest.raises(PipelineError, match="not found"):
        load_pipeline(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(PipelineError, match="must be a YAML mapping"):
        load_pipeline(tmp_path / "list.yaml")
