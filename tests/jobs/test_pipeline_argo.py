"""Pipelines rendered as Argo objects: every object validated strictly against Argo's published
schema (vendored, unknown keys refused), each step's pod parts against the Kubernetes schema
(kubernetes-validate, strict), and the trust model's rules read off the rendered objects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from argo_schema import validate as argo_validate
from pipeline_fixture import reference_pipeline

from workbench.jobs.pipeline.argo import RUN_OUTPUT, render_pipeline
from workbench.jobs.pipeline.argo_api import workflow_status
from workbench.jobs.pipeline.argo_follow import summary_line
from workbench.profiles import load_profiles
from workbench.runs import KUBE_RUNS_MOUNT
from workbench.runs.layout import owner_dirname

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
RAW_PROFILES = {p["slug"]: p for p in yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())["profiles"]}
K8S_VERSION = kubernetes_validate.utils.latest_version()
OWNER = "gina-r@example.com"


def _render(pipeline, mode="run", **kwargs):
    kwargs = {"owner": OWNER, "namespace": "team", "profiles": PROFILES, **kwargs}
    return render_pipeline(pipeline, mode=mode, **kwargs)


def _templates(spec: dict) -> dict[str, dict]:
    return {t["name"]: t for t in spec["templates"] if "container" in t}


def _pod(spec: dict, template: dict) -> dict:
    """The pod Argo makes of a container template (its main container and what the spec gives every pod)."""
    container = {**template["container"], "name": "main"}
    pod = {
        "restartPolicy": "Never",
        "serviceAccountName": spec["serviceAccountName"],
        "automountServiceAccountToken": spec["automountServiceAccountToken"],
        "securityContext": spec["securityContext"],
        "containers": [container],
        "volumes": spec["volumes"],
        "activeDeadlineSeconds": template["activeDeadlineSeconds"],
    }
    for key in ("nodeSelector", "tolerations"):
        if key in template:
            pod[key] = template[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "step", **template["metadata"]}, "spec": pod}


@pytest.mark.parametrize("train_profile", ["cpu-large", "gpu-t4"])
@pytest.mark.parametrize("mode", ["run", "calendar", "webhook"])
def test_every_mode_renders_objects_valid_against_argos_schema(tmp_path, mode, train_profile):
    objects = _render(reference_pipeline(tmp_path, train_profile=train_profile), mode, secrets=["kaggle-api"])
    kinds = [o["kind"] for o in objects.objects]
    assert (
        kinds
        == {"run": ["Workflow"], "calendar": ["CronWorkflow"], "webhook": ["WorkflowTemplate", "WorkflowEventBinding"]}[
            mode
        ]
    )
    for obj in objects.objects:
        argo_validate(obj)
    spec = {
        "run": lambda o: o["spec"],
        "calendar": lambda o: o["spec"]["workflowSpec"],
        "webhook": lambda o: o["spec"],
    }[mode](objects.objects[0])
    for template in _templates(spec).values():
        kubernetes_validate.validate(_pod(spec, template), K8S_VERSION, strict=True)
    # and the YAML printed by --dry-run reads back as the same objects
    assert list(yaml.safe_load_all(objects.to_yaml())) == list(objects.objects)


def test_strict_validation_refuses_an_unknown_key(tmp_path):
    """The check above can fail: the published schema allows unknown keys, the strict one does not."""
    workflow = _render(reference_pipeline(tmp_path)).objects[0]
    workflow["spec"]["templates"][1]["container"]["volumeMount"] = []
    with pytest.raises(jsonschema.ValidationError, match="'volumeMount' was unexpected"):
        argo_validate(workflow)
    workflow = _render(reference_pipeline(tmp_path)).objects[0]
    workflow["spec"]["templates"][0]["dag"]["tasks"][0]["dependsOn"] = ["x"]
    with pytest.raises(jsonschema.ValidationError, match="'dependsOn' was unexpected"):
        argo_validate(workflow)


def test_the_dag_passes_run_directories_downstream(tmp_path):
    spec = _render(reference_pipeline(tmp_path)).objects[0]["spec"]
    dag = {t["name"]: t for t in spec["templates"][0]["dag"]["tasks"]}
    trains = ["train-extratrees", "train-lgbm", "train-logreg"]
    assert [n for n in dag if n.startswith("train-")] == ["train-lgbm", "train-logreg", "train-extratrees"]
    assert dag["stack"]["dependencies"] == trains
    (arg,) = dag["stack"]["arguments"]["parameters"]
    outputs = json.loads(arg["value"])  # ${steps.train.runs}: a JSON list, one entry per fanned-out step
    assert outputs == [
        f"{{{{tasks.{t}.outputs.parameters.run}}}}" for t in ("train-lgbm", "train-logreg", "train-extratrees")
    ]
    args = {p["name"]: p["value"] for p in dag["explain"]["arguments"]["parameters"]}
    assert args == {
        "run_dir": "{{tasks.stack.outputs.parameters.run}}",
        "cv_dir": "{{tasks.stack.outputs.parameters.run}}/artifacts/cv",
    }
    assert dag["submission"]["dependencies"] == ["explain", "stack"]  # after: explain, and the run it reads
    templates = _templates(spec)
    for name, template in templates.items():
        command = template["container"]["command"]
        assert command[:3] == ["workbench", "run", f"/etc/workbench/job/{name}.ipynb"]
        assert command[command.index("--run-dir-file") + 1] == RUN_OUTPUT
        assert template["outputs"]["parameters"] == [{"name": "run", "valueFrom": {"path": RUN_OUTPUT}}]
        received = [p["name"] for p in template["inputs"].get("parameters", [])]
        for key in received:  # each received run reaches the notebook as -p NAME VALUE
            i = command.index(key)
            assert command[i - 1] == "-p" and command[i + 1] == f"{{{{inputs.parameters.{key}}}}}"
    static = yaml.safe_load(templates["train-logreg"]["inputs"]["artifacts"][1]["raw"]["data"])
    assert static == {"model": "logreg", "lr": 0.05}
    notebook = json.loads(templates["train-logreg"]["inputs"]["artifacts"][0]["raw"]["data"])
    assert "".join(notebook["cells"][0]["source"]).startswith("model = ")


def test_steps_get_their_profile_retries_timeout_and_the_trust_models_pod(tmp_path):
    spec = _render(reference_pipeline(tmp_path, train_profile="gpu-t4"), secrets=["kaggle-api"]).objects[0]["spec"]
    templates = _templates(spec)
    gpu, raw = templates["train-lgbm"], RAW_PROFILES["gpu-t4"]
    assert gpu["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["container"]["image"] == raw["image"]
    assert gpu["nodeSelector"] == raw["node_selector"] and gpu["tolerations"] == raw["tolerations"]
    assert gpu["retryStrategy"] == {"limit": 2, "retryPolicy": "Always"}
    assert gpu["activeDeadlineSeconds"] == 1800 + 600
    assert gpu["container"]["command"][-2:] == ["--timeout", "1800"]
    assert gpu["synchronization"] == {"mutexes": [{"name": "workbench-gpu-gina-r-example.com"}]}
    cpu = templates["stack"]
    assert "nvidia.com/gpu" not in cpu["container"]["resources"]["limits"] and "nodeSelector" not in cpu
    assert "retryStrategy" not in cpu and "synchronization" not in cpu
    assert cpu["container"]["resources"]["limits"]["cpu"] == str(RAW_PROFILES["cpu-large"]["cpu"]["limit"])
    folder = owner_dirname(OWNER)
    assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] == "workbench-job-runner"
    assert spec["executor"] == {"serviceAccountName": "workbench-argo-executor"}
    for template in templates.values():
        container = template["container"]
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert writable == [{"name": "runs", "mountPath": f"{KUBE_RUNS_MOUNT}/{folder}", "subPath": folder}]
        assert container["envFrom"] == [{"secretRef": {"name": "kaggle-api"}}]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    text = json.dumps(spec)
    for word in ("privileged", "hostPath", "hostNetwork", "podSpecPatch", "hostPID"):
        assert word not in text


def test_calendar_and_webhook_objects(tmp_path):
    pipeline = reference_pipeline(tmp_path)
    (cron,) = _render(pipeline, "calendar").objects
    assert cron["spec"]["schedules"] == ["0 3 * * *"]
    assert cron["spec"]["workflowMetadata"]["annotations"]["workbench/owner"] == OWNER
    template, binding = _render(pipeline, "webhook").objects
    assert binding["spec"]["submit"]["workflowTemplateRef"] == {"name": template["metadata"]["name"]}
    assert binding["spec"]["submit"]["metadata"]["annotations"]["workbench/owner"] == OWNER
    assert re.fullmatch(r'discriminator == "[a-z0-9-]+"', binding["spec"]["event"]["selector"])
    without = reference_pipeline(tmp_path, schedule=None, webhook=None)
    with pytest.raises(ValueError, match="has no schedule: add `schedule: <cron>`"):
        _render(without, "calendar")
    with pytest.raises(ValueError, match="has no webhook"):
        _render(without, "webhook")


def test_a_profile_the_profiles_file_lacks_names_the_step(tmp_path):
    with pytest.raises(ValueError, match=r"step 'train-lgbm': .*'gpu-h100'"):
        _render(reference_pipeline(tmp_path, train_profile="gpu-h100"))


def _node(name, display, kind, phase, **extra):
    return {"id": name, "name": f"wf.{display}", "displayName": display, "type": kind, "phase": phase, **extra}


def test_workflow_status_reads_steps_retries_and_the_failure():
    nodes = {
        "wf": _node("wf", "wf", "DAG", "Failed"),
        "r1": _node("r1", "train-lgbm", "Retry", "Succeeded", children=["p1", "p2"], startedAt="2025-01-01T00:00:01Z"),
        "p1": _node("p1", "train-lgbm(0)", "Pod", "Failed", message="OOMKilled (exit code 137)"),
        "p2": _node("p2", "train-lgbm(1)", "Pod", "Succeeded"),
        "s": _node("s", "stack", "Pod", "Failed", message="Error (exit code 1)", startedAt="2025-01-01T00:05:00Z"),
        "e": _node("e", "explain", "Omitted", "Omitted", startedAt="2025-01-01T00:06:00Z"),
    }
    workflow = {
        "metadata": {"name": "wf"},
        "status": {
            "phase": "Failed",
            "startedAt": "2025-01-01T00:00:00Z",
            "finishedAt": "2025-01-01T00:06:05Z",
            "nodes": nodes,
        },
    }
    status = workflow_status(workflow)
    assert status["finished"] and [(s["step"], s["phase"], s["retries"]) for s in status["steps"]] == [
        ("train-lgbm", "Succeeded", 1),
        ("stack", "Failed", 0),
        ("explain", "Omitted", 0),
    ]
    assert status["steps"][0]["message"] == "OOMKilled (exit code 137)"
    assert summary_line(status) == (
        "pipeline wf: failed in 6m05s; failed: stack (Error (exit code 1)); skipped: explain"
    )


@pytest.mark.kernel
def test_workbench_run_writes_its_run_directory_for_the_next_step(tmp_path, capsys):
    """A step's output parameter ``run`` is the file ``--run-dir-file`` writes: the run's absolute directory."""
    from workbench.cli import main
    from workbench.runs import RunRecord

    job = ROOT / "tests" / "fixtures" / "notebooks" / "job.ipynb"
    out = tmp_path / "step" / "run-dir"
    out.parent.mkdir()
    assert (
        main(["run", str(job), "--runs-dir", str(tmp_path / "runs"), "--run-dir-file", str(out), "--no-progress"]) == 0
    )
    run_dir = Path(out.read_text())
    assert run_dir.is_absolute() and RunRecord.read(run_dir).state == "succeeded"
    assert "run directory: " in capsys.readouterr().out
