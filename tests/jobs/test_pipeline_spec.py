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
        ("steps: {a: {notebook: add.ipynb, timeout: .nan}}", "key 'timeout'"),
        ("steps: {a: {notebook: add.ipynb, timeout: .inf}}", "key 'timeout'"),
        ("steps: {a: {notebook: add.ipynb, retries: 1.0}}", "key 'retries'"),
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


def _train_keys(pipeline, runs: Path) -> dict[str, str]:
    """Each training expansion's content key, as the executor computes it before running."""
    from workbench.jobs.pipeline.cache import cache_key
    from workbench.jobs.runner import prepare_run

    return {
        s.name: cache_key(prepare_run(s.notebook, resolve(s, {}), name=s.name), [], runs)
        for s in pipeline.steps
        if s.group == "train"
    }


def test_one_expansion_takes_its_own_parameters_and_keeps_its_siblings_keys(tmp_path):
    base = load_pipeline(REFERENCE)
    assert base.step("train-lgbm").parameters["learning_rate"] == 0.05 and base.step("train-lgbm").key == "lgbm"
    assert "learning_rate" not in base.step("train-logreg").parameters and base.step("stack").key is None
    keys = _train_keys(base, tmp_path)
    # the file's each: entry, -p EXPANSION.PARAM and -p 'STEP[KEY].PARAM' give one and the same step
    edited = tmp_path / "pipeline.yaml"
    edited.write_text(REFERENCE.read_text().replace("logreg: {logreg_C: 1.0}", "logreg: {logreg_C: 0.5}"))
    for name in ("train", "stack", "explain", "submission"):
        (tmp_path / f"{name}.ipynb").write_bytes((REFERENCE.parent / f"{name}.ipynb").read_bytes())
    variants = [
        load_pipeline(edited),
        load_pipeline(REFERENCE, {"train-logreg.logreg_C": "0.5"}),
        load_pipeline(REFERENCE, {"train[logreg].logreg_C": "0.5"}),
    ]
    for variant in variants:
        assert variant.step("train-logreg").parameters["logreg_C"] == 0.5
        changed = _train_keys(variant, tmp_path)
        assert [n for n in keys if changed[n] != keys[n]] == ["train-logreg"]
    # -p STEP.PARAM sets every expansion, over each:; the expansion's own -p wins over it
    both = load_pipeline(REFERENCE, {"train.learning_rate": "0.2", "train-lgbm.learning_rate": "0.3"})
    assert [both.step(f"train-{m}").parameters["learning_rate"] for m in ("lgbm", "logreg", "extratrees")] == [
        0.3,
        0.2,
        0.2,
    ]
    assert both.step("train-lgbm").parameters["early_stopping_rounds"] == 100  # the rest of each: stays


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"trian.seed": "1"}, "-p trian.seed=1: no step 'trian'; the steps are train, stack"),
        ({"train-xgb.seed": "1"}, "no step 'train-xgb'; the steps are train, stack, explain, submission, train-lgbm"),
        (
            {"train[xgb].learning_rate": "0.1"},
            "step 'train': -p train[xgb].learning_rate=0.1: step 'train' has no expansion 'xgb'; its expansions are "
            "lgbm, logreg, extratrees (e.g. -p train-lgbm.learning_rate=0.1)",
        ),
        (
            {"train-lgbm.learnin_rate": "0.1"},
            "train.ipynb has no parameter 'learnin_rate'; did you mean 'learning_rate'?",
        ),
        (
            {"train-lgbm.learning_rate": "fast"},
            "-p train-lgbm.learning_rate=fast: parameter 'learning_rate' expects float",
        ),
        ({"stack[a].seed": "1"}, "-p stack[a].seed=1: step 'stack' has no foreach; write -p stack.seed=1"),
        ({"train.model": "lgbm"}, "step 'train' fans out over 'model' (foreach); change its foreach list in the file"),
        ({"stack.train_runs": "[]"}, "'train_runs' of step 'stack' reads an upstream step's run in the file"),
        ({"train.seed": "${params.seed}"}, "-p gives plain values; write ${...} references in the pipeline file"),
        ({"train..seed": "1"}, "-p train..seed=...: not a parameter name; write -p NAME=VALUE"),
    ],
)
def test_step_overrides_are_checked_before_anything_runs(overrides, expected):
    with pytest.raises(PipelineError) as info:
        load_pipeline(REFERENCE, overrides)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("each: {3: {label: b}}", "step 'a', key 'each.3': no expansion '3'; the expansions of 'a' are 1, 2"),
        ("each: {2: {x: 5}}", "key 'each.2.x': 'x' is the foreach value that names this expansion"),
        ("each: {2: {nope: 1}}", "step 'a-2', key 'each.2.nope': unknown parameter 'nope'"),
        ("each: {2: {sleep: fast}}", "step 'a-2', key 'each.2.sleep': parameter 'sleep' expects float"),
        ("each: [1]", "key 'each': expected a mapping of expansion keys (1, 2) to parameters"),
        ("each: {2: {label: '${params.q}'}}", "key 'each.2.label': ${params.q}: no pipeline parameter 'q'"),
    ],
)
def test_each_errors_name_the_expansion_and_key(text, expected):
    assert expected in _error(f"steps:\n  a: {{notebook: add.ipynb, foreach: {{x: [1, 2]}}, {text}}}")


def test_each_needs_foreach_and_may_read_upstream_runs():
    message = _error("steps: {a: {notebook: add.ipynb, each: {b: {x: 1}}}}")
    assert "key 'each': 'each' sets parameters of single foreach expansions" in message
    p = _parse(
        """
steps:
  make: {notebook: add.ipynb, foreach: {x: [1, 2]}, each: {"2": {source: "${steps.one.run}", label: two}}}
  one: {notebook: add.ipynb}
"""
    )
    assert p.step("make-2").after == ("one",) and p.step("make-1").after == ()
    assert p.step("make-2").parameters == {"source": "${steps.one.run}", "label": "two", "x": 2}
    assert [s.name for s in p.steps] == ["one", "make-1", "make-2"]
