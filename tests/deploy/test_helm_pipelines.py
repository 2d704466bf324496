"""Pipelines installed by the workbench chart (one values file per application), rendered by a real
helm and validated strictly against Argo's schema; the Argo rights the chart grants, exactly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from argo_schema import validate as argo_validate
from conftest import require_tool
from pipeline_fixture import reference_pipeline

from workbench.jobs.pipeline.argo import helm_values
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "workbench"
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
GATEWAY, EXECUTOR, RUNNER = "workbench-job-gateway", "workbench-argo-executor", "workbench-job-runner"
ARGO_KINDS = ["workflows", "cronworkflows", "workflowtemplates", "workfloweventbindings"]


@pytest.fixture(scope="module")
def helm() -> str:
    return require_tool("helm")


def _template(helm: str, tmp_path: Path, values: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return subprocess.run(
        [helm, "template", "wb", str(CHART), "--namespace", "team", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _docs(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture
def two_applications(tmp_path):
    """The reference pipeline's shape, GPU training: nightly on a calendar, and on a webhook."""
    pipeline = reference_pipeline(tmp_path, train_profile="gpu-t4")
    values = helm_values(pipeline, "calendar", PROFILES)
    values["pipelines"]["churn-hook"] = helm_values(pipeline, "webhook", PROFILES)["pipelines"]["churn-stack"]
    return values


def test_declared_pipelines_render_valid_argo_objects(helm, tmp_path, two_applications):
    docs = _docs(_template(helm, tmp_path, two_applications))
    argo = [d for d in docs if d["apiVersion"] == "argoproj.io/v1alpha1"]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in argo) == [
        ("CronWorkflow", "wb-workbench-churn-stack"),
        ("WorkflowEventBinding", "wb-workbench-churn-hook"),
        ("WorkflowTemplate", "wb-workbench-churn-hook"),
    ]
    for doc in argo:
        argo_validate(doc)
    for doc in docs:
        if doc not in argo:
            kubernetes_validate.validate(doc, "1.35.0", strict=True)
    by_kind = {d["kind"]: d for d in argo}
    cron = by_kind["CronWorkflow"]
    assert cron["spec"]["schedules"] == ["0 3 * * *"] and cron["spec"]["timezone"] == "UTC"
    for spec in (cron["spec"]["workflowSpec"], by_kind["WorkflowTemplate"]["spec"]):
        assert spec["serviceAccountName"] == RUNNER and spec["automountServiceAccountToken"] is False
        assert spec["executor"] == {"serviceAccountName": EXECUTOR}
        assert spec["volumes"] == [{"name": "runs", "persistentVolumeClaim": {"claimName": "workbench-runs"}}]
        dag = spec["templates"][0]["dag"]["tasks"]
        stack = next(t for t in dag if t["name"] == "stack")
        assert "{{tasks.train-lgbm.outputs.parameters.run}}" in stack["arguments"]["parameters"][0]["value"]
        train = next(t for t in spec["templates"] if t["name"] == "train-lgbm")
        assert train["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {"name": "USER", "value": "pipeline-churn-stack"} in train["container"]["env"]
    binding = by_kind["WorkflowEventBinding"]["spec"]
    assert binding["event"]["selector"] == 'discriminator == "churn-hook"'
    assert binding["submit"]["workflowTemplateRef"] == {"name": "wb-workbench-churn-hook"}
    lint = subprocess.run(
        [helm, "lint", "--strict", str(CHART), "-f", str(tmp_path / "values.yaml")], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _rules(role: dict) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def test_argo_rights_are_exactly_the_gateways_and_the_executors(helm, tmp_path):
    docs = _docs(_template(helm, tmp_path, {"argo": {"enabled": True, "executorServiceAccountName": EXECUTOR}}))
    roles = {d["metadata"]["name"]: _rules(d) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    assert sorted(roles) == [EXECUTOR, GATEWAY]
    argo = {k: v for k, v in roles[GATEWAY].items() if k[0] == "argoproj.io"}
    assert argo == {("argoproj.io", kind): {"create", "get", "delete"} for kind in ARGO_KINDS}
    assert roles[EXECUTOR] == {("argoproj.io", "workflowtaskresults"): {"create", "patch"}}
    bindings = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    subjects = {(s["kind"], s["name"]) for b in bindings.values() for s in b["subjects"]}
    assert subjects == {("ServiceAccount", GATEWAY), ("ServiceAccount", EXECUTOR)}  # never the notebooks' or steps'
    token = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == f"{EXECUTOR}.service-account-token"
    )
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": EXECUTOR}
    # without Argo, the gateway's Role has no Argo rule at all
    docs = _docs(_template(helm, tmp_path, {}))
    gateway = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == GATEWAY)
    assert "argoproj.io" not in json.dumps(gateway)


def test_pipelines_need_argo_and_a_schedule(helm, tmp_path, two_applications):
    values = {"pipelines": two_applications["pipelines"]}
    proc = _template(helm, tmp_path, values)
    assert proc.returncode != 0 and "set argo.enabled=true" in proc.stderr
    del two_applications["pipelines"]["churn-stack"]["schedule"]
    proc = _template(helm, tmp_path, two_applications)
    assert proc.returncode != 0 and "missing property 'schedule'" in proc.stderr
