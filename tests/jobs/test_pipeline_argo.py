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
from pipeline_fixture import reference_pipeline, write_reference_pipeline

from workbench.jobs.pipeline.argo import RUN_OUTPUT, event_expression, render_pipeline
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


WEBHOOK = {"enabled": True, "parameters": ["seed"]}


@pytest.mark.parametrize("train_profile", ["cpu-small", "gpu-t4"])
@pytest.mark.parametrize("mode", ["run", "calendar", "webhook"])
def test_every_mode_renders_objects_valid_against_argos_schema(tmp_path, mode, train_profile):
    pipeline = reference_pipeline(tmp_path, train_profile=train_profile, webhook=WEBHOOK)
    objects = _render(pipeline, mode, secrets=["kaggle-api"])
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
    trains = ["train-lgbm", "train-logreg", "train-extratrees"]
    assert list(dag) == [*trains, "stack", "explain", "submission"]
    assert dag["stack"]["dependencies"] == sorted(trains)
    (arg,) = dag["stack"]["arguments"]["parameters"]
    outputs = json.loads(arg["value"])  # ${steps.train.runs}: a JSON list, one entry per fanned-out step
    assert arg["name"] == "train_runs" and outputs == [f"{{{{tasks.{t}.outputs.parameters.run}}}}" for t in trains]
    assert dag["explain"]["arguments"]["parameters"] == [
        {"name": "cv_dir", "value": "{{tasks.train-lgbm.outputs.parameters.run}}"}  # one expansion's run
    ]
    assert dag["explain"]["dependencies"] == ["train-lgbm"]
    assert dag["submission"]["dependencies"] == ["stack"]
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
    assert static == {"seed": 0, "n_splits": 5, "logreg_C": 1.0, "model": "logreg"}  # its own, from each:
    notebook = json.loads(templates["train-logreg"]["inputs"]["artifacts"][0]["raw"]["data"])
    source = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())
    assert [c["source"] for c in notebook["cells"]] == [c["source"] for c in source["cells"]]
    assert all(not c.get("outputs") for c in notebook["cells"])


def test_steps_get_their_profile_retries_timeout_and_the_trust_models_pod(tmp_path):
    spec = _render(reference_pipeline(tmp_path, train_profile="gpu-t4"), secrets=["kaggle-api"]).objects[0]["spec"]
    templates = _templates(spec)
    gpu, raw = templates["train-lgbm"], RAW_PROFILES["gpu-t4"]
    assert gpu["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["container"]["image"] == raw["image"]
    assert gpu["nodeSelector"] == raw["node_selector"] and gpu["tolerations"] == raw["tolerations"]
    assert gpu["retryStrategy"] == {"limit": 1, "retryPolicy": "Always"}  # retries: 1, timeout: 20m
    assert gpu["activeDeadlineSeconds"] == 1200 + 600
    assert gpu["container"]["command"][-2:] == ["--timeout", "1200"]
    assert gpu["synchronization"] == {"mutexes": [{"name": "workbench-gpu-gina-r-example.com"}]}
    cpu = templates["stack"]
    assert "nvidia.com/gpu" not in cpu["container"]["resources"]["limits"] and "nodeSelector" not in cpu
    assert "retryStrategy" not in cpu and "synchronization" not in cpu
    assert cpu["container"]["resources"]["limits"]["cpu"] == str(RAW_PROFILES["cpu-small"]["cpu"]["limit"])
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
    pipeline = reference_pipeline(tmp_path, webhook=WEBHOOK)
    (cron,) = _render(pipeline, "calendar").objects
    assert cron["spec"]["schedules"] == ["0 3 * * *"]
    assert cron["spec"]["workflowMetadata"]["annotations"]["workbench/owner"] == OWNER
    template, binding = _render(pipeline, "webhook").objects
    assert binding["spec"]["submit"]["workflowTemplateRef"] == {"name": template["metadata"]["name"]}
    assert binding["spec"]["submit"]["metadata"]["annotations"]["workbench/owner"] == OWNER
    assert re.fullmatch(r'discriminator == "[a-z0-9-]+"', binding["spec"]["event"]["selector"])
    # the payload may set seed (listed under webhook.parameters), and nothing else
    assert template["spec"]["arguments"] == {"parameters": [{"name": "seed", "value": "0"}]}
    assert binding["spec"]["submit"]["arguments"]["parameters"] == [
        {"name": "seed", "valueFrom": {"event": event_expression("seed", "0")}}
    ]
    templates = _templates(template["spec"])
    for name in (
        "train-lgbm",
        "train-logreg",
        "train-extratrees",
        "stack",
        "explain",
    ):  # the steps using ${params.seed}
        command = templates[name]["container"]["command"]
        i = command.index("seed")
        assert command[i - 1 : i + 2] == ["-p", "seed", "{{workflow.parameters.seed}}"]
        static = yaml.safe_load(templates[name]["inputs"]["artifacts"][1]["raw"]["data"]) or {}
        assert "seed" not in static and "n_splits" not in command  # not a webhook parameter: stays fixed
    assert "seed" not in templates["submission"]["container"]["command"]
    without = reference_pipeline(tmp_path, schedule=None, webhook=None)
    with pytest.raises(ValueError, match="has no schedule: add `schedule: <cron>`"):
        _render(without, "calendar")
    with pytest.raises(ValueError, match="has no webhook"):
        _render(without, "webhook")


def test_a_webhook_parameter_in_one_expansions_each_reaches_that_expansion_only(tmp_path):
    from workbench.jobs.pipeline import load_pipeline

    source, _ = write_reference_pipeline(tmp_path)
    data = yaml.safe_load(source.read_text())
    data["parameters"]["rate"], data["webhook"] = 0.05, {"parameters": ["rate"]}
    data["steps"]["train"]["each"]["lgbm"]["learning_rate"] = "${params.rate}"
    source.write_text(yaml.safe_dump(data, sort_keys=False))
    templates = _templates(_render(load_pipeline(source), "webhook").objects[0]["spec"])
    command = templates["train-lgbm"]["container"]["command"]
    i = command.index("learning_rate")
    assert command[i - 1 : i + 2] == ["-p", "learning_rate", "{{workflow.parameters.rate}}"]
    assert all(
        "{{workflow.parameters.rate}}" not in templates[n]["container"]["command"]
        for n in templates
        if n != "train-lgbm"
    )


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


def test_the_command_prints_the_objects_or_a_values_file(tmp_path, capsys):
    from workbench.cli import main

    source, _ = write_reference_pipeline(tmp_path, webhook={"parameters": ["seed"]})
    base = ["pipeline", "run", str(source), "--backend", "argo", "--dry-run", "-p", "seed=3"]
    assert main([*base, "--mode", "webhook", "--namespace", "team-a", "--secret", "kaggle-api"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate", "WorkflowEventBinding"]
    for doc in docs:
        argo_validate(doc)
    assert docs[0]["metadata"]["namespace"] == "team-a"
    assert docs[0]["spec"]["arguments"]["parameters"] == [{"name": "seed", "value": "3"}]  # -p overrides the default
    assert main([*base, "--mode", "calendar", "--helm-values"]) == 0
    values = yaml.safe_load(capsys.readouterr().out)
    assert values["argo"]["enabled"] is True and values["pipelines"]["telco-stack"]["schedule"] == "0 3 * * *"
    assert main(["pipeline", "run", str(source), "--backend", "argo", "--helm-values"]) == 2
    assert "add --dry-run" in capsys.readouterr().err
    assert main(["pipeline", "run", str(source), "--dry-run"]) == 2
    assert "add --backend argo" in capsys.readouterr().err
