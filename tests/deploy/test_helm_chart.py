"""The workbench Helm chart, rendered by a real helm: lint, strict Kubernetes validation of every
object, the values schema, and scheduled notebooks as CronJobs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import require_tool

from workbench.profiles import load_profiles
from workbench.runs import KUBE_RUNS_MOUNT, RUNS_ENV

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "workbench"
GPU_VALUES = ROOT / "tests" / "fixtures" / "helm" / "gpu-heavy-values.yaml"
K8S_VERSION = "1.35.0"
RUNS_MOUNT = KUBE_RUNS_MOUNT


@pytest.fixture(scope="module")
def helm() -> str:
    return require_tool("helm")


def _helm(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def _render(helm: str, *args: str, release: str = "wb") -> list[dict]:
    proc = _helm(helm, "template", release, str(CHART), "--namespace", "team", *args)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _values_file(tmp_path: Path, values: dict) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def _by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("values", [[], ["-f", str(GPU_VALUES)]], ids=["default", "gpu-heavy"])
def test_helm_lint(helm, values):
    proc = _helm(helm, "lint", "--strict", str(CHART), *values)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", [[], ["-f", str(GPU_VALUES)]], ids=["default", "gpu-heavy"])
def test_every_rendered_object_validates_strictly(helm, values):
    import kubernetes_validate

    docs = _render(helm, *values)
    kinds = sorted(d["kind"] for d in docs)
    assert {"PersistentVolumeClaim", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_misspelled_field(helm):
    """The validation above can fail: a typo in a rendered CronJob is refused."""
    import kubernetes_validate

    cronjob = next(d for d in _render(helm, "-f", str(GPU_VALUES)) if d["kind"] == "CronJob")
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)


def test_default_values_render_the_shared_pieces(helm):
    docs = _render(helm)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    pvc = _by_kind(docs, "PersistentVolumeClaim")[defaults["runs"]["claimName"]]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == defaults["runs"]["size"]
    assert pvc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "storageClassName" not in pvc["spec"]  # the cluster's default class
    accounts = _by_kind(docs, "ServiceAccount")
    for key in (defaults["notebookServiceAccount"]["name"], defaults["jobGateway"]["jobServiceAccountName"]):
        assert accounts[key]["automountServiceAccountToken"] is False
    assert not _by_kind(docs, "CronJob")


GATEWAY_RULES = {
    ("batch", "jobs"): {"create", "get", "list", "delete"},
    ("", "configmaps"): {"create"},
    ("", "secrets"): {"create"},
    ("", "pods"): {"get", "list"},
    ("", "pods/log"): {"get"},
}


def _rules(role: dict) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules") or []:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def _can(rules: dict, group: str, resource: str, verb: str) -> bool:
    return any(
        g in (group, "*") and r in (resource, "*") and (verb in verbs or "*" in verbs)
        for (g, r), verbs in rules.items()
    )


@pytest.mark.parametrize("values", [[], ["-f", str(GPU_VALUES)]], ids=["default", "gpu-heavy"])
def test_only_the_gateway_role_can_create_jobs(helm, values):
    """The gateway's Role lists exactly its verbs and resources; no other Role can create Jobs or
    CronJobs, and nothing binds a Role to the notebook servers' or the Jobs' service accounts."""
    docs = _render(helm, *values)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    gateway = defaults["jobGateway"]["serviceAccountName"]
    roles = {d["metadata"]["name"]: _rules(d) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    creators = sorted(
        name
        for name, rules in roles.items()
        if _can(rules, "batch", "jobs", "create") or _can(rules, "batch", "cronjobs", "create")
    )
    assert creators == [gateway]
    assert roles[gateway] == GATEWAY_RULES
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    subjects = {(s["kind"], s["name"]) for b in bindings for s in b["subjects"]}
    assert subjects == {("ServiceAccount", gateway)}
    (binding,) = bindings
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": gateway}
    for account in (defaults["notebookServiceAccount"]["name"], defaults["jobGateway"]["jobServiceAccountName"]):
        assert ("ServiceAccount", account) not in subjects
    (token,) = [d for d in docs if d["kind"] == "Secret"]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": gateway}


def test_role_check_can_fail():
    """The checks above catch a wildcard and a second Job creator."""
    assert _can({("batch", "*"): {"create"}}, "batch", "jobs", "create")
    assert _can({("*", "jobs"): {"*"}}, "batch", "jobs", "create")
    assert not _can(GATEWAY_RULES, "", "configmaps", "patch") and not _can(GATEWAY_RULES, "", "secrets", "get")
    assert not _can(GATEWAY_RULES, "", "pods/exec", "create")


def test_scheduled_notebooks_render_cronjobs_running_workbench_run(helm):
    docs = _render(helm, "-f", str(GPU_VALUES))
    declared = yaml.safe_load(GPU_VALUES.read_text())
    profiles = load_profiles(ROOT / "hub" / "profiles.yaml")
    default_profile = next(p for p in profiles.profiles if p.default)
    cronjobs = _by_kind(docs, "CronJob")
    configmaps = _by_kind(docs, "ConfigMap")
    assert len(cronjobs) == len(declared["schedules"])
    for schedule in declared["schedules"]:
        name = f"wb-workbench-{schedule['name']}"
        cronjob = cronjobs[name]
        assert cronjob["spec"]["schedule"] == schedule["cron"]
        assert cronjob["spec"].get("timeZone") == schedule.get("timeZone")
        assert cronjob["spec"]["suspend"] is schedule.get("suspend", False)
        assert cronjob["spec"]["concurrencyPolicy"] == declared["jobDefaults"]["concurrencyPolicy"]
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
        (container,) = pod["containers"]
        argv = container["command"] + container["args"]
        params_file = "/etc/workbench/params/params.yaml"
        expected = ["workbench", "run", schedule["notebook"]]
        expected += ["-f", params_file] if schedule.get("params") else []
        expected += ["--name", schedule["name"], "--runs-dir", RUNS_MOUNT]
        assert argv == expected
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env[RUNS_ENV] == RUNS_MOUNT and env["USER"] == f"schedule-{schedule['name']}"
        # the shared runs volume is the chart's claim, mounted where `workbench run` writes
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert volumes[mounts[RUNS_MOUNT]["name"]]["persistentVolumeClaim"]["claimName"] == "workbench-runs"
        if schedule.get("params"):
            configmap = configmaps[volumes[mounts["/etc/workbench/params"]["name"]]["configMap"]["name"]]
            assert yaml.safe_load(configmap["data"]["params.yaml"]) == schedule["params"]
        notebooks = mounts["/srv/workbench/notebooks"]
        assert notebooks["readOnly"] and notebooks["subPath"] == "scheduled"
        assert volumes[notebooks["name"]]["persistentVolumeClaim"]["claimName"] == "team-notebooks"
        assert container["workingDir"] == "/srv/workbench/notebooks"
        # image, resources and placement come from the profile
        profile = profiles.get(schedule["profile"]) if "profile" in schedule else default_profile
        assert container["image"] == profile.image
        resources = container["resources"]
        assert float(resources["limits"]["cpu"]) == profile.cpu_limit
        assert float(resources["requests"]["cpu"]) == profile.cpu_guarantee
        assert resources["limits"]["memory"] == profile.mem_limit
        assert resources["requests"]["memory"] == profile.mem_guarantee
        assert int(resources["limits"].get(profile.gpu_resource, 0)) == profile.gpus
        assert pod.get("nodeSelector", {}) == profile.node_selector
        assert pod.get("tolerations", []) == profile.tolerations
        assert env["OMP_NUM_THREADS"] == str(max(1, int(profile.cpu_limit)))


def test_notebook_paths_keep_a_literal_dollar(helm, tmp_path):
    """The kubelet expands $(VAR) in container arguments; the chart escapes '$' as '$$'."""
    values = _values_file(tmp_path, {"schedules": [{"name": "daily", "notebook": "$(HOME)/a.ipynb", "cron": "@daily"}]})
    (cronjob,) = _by_kind(_render(helm, "-f", values), "CronJob").values()
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0] == "$$(HOME)/a.ipynb"


def test_chart_profiles_are_hub_profiles(helm, tmp_path):
    """The chart reads hub/profiles.yaml through a link (no copy); `helm package` bundles its content."""
    linked = CHART / "files" / "profiles.yaml"
    assert linked.is_symlink() and linked.resolve() == (ROOT / "hub" / "profiles.yaml").resolve()
    proc = _helm(helm, "package", str(CHART), "-d", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    import tarfile

    (package,) = tmp_path.glob("workbench-*.tgz")
    with tarfile.open(package) as tar:
        bundled = tar.extractfile("workbench/files/profiles.yaml").read().decode()
    assert bundled == (ROOT / "hub" / "profiles.yaml").read_text()


def test_profiles_can_be_passed_with_set_file(helm, tmp_path):
    text = (ROOT / "hub" / "profiles.yaml").read_text().replace("workbench/base:0.1.0", "registry.example/team/base:7")
    own = tmp_path / "profiles.yaml"
    own.write_text(text)
    values = _values_file(tmp_path, {"schedules": [{"name": "daily", "notebook": "a.ipynb", "cron": "@daily"}]})
    docs = _render(helm, "-f", values, "--set-file", f"profiles={own}")
    (cronjob,) = _by_kind(docs, "CronJob").values()
    assert (
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/team/base:7"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedules": [{"name": "nightly", "notebook": "a.ipynb"}]}, "at '/schedules/0': missing property 'cron'"),
        ({"runs": {"size": 5}}, "at '/runs/size': got number, want string"),
        ({"schedules": [{"name": "Nightly Run", "notebook": "a.ipynb", "cron": "@daily"}]}, "/schedules/0/name"),
        ({"schedules": [{"name": "daily", "notebook": "a.ipynb", "cron": "every day"}]}, "/schedules/0/cron"),
        (
            {"schedules": [{"name": "daily", "notebook": "a.ipynb", "cron": "@daily", "gpu": 1}]},
            "additional properties 'gpu'",
        ),
        ({"jobDefaults": {"concurrencyPolicy": "Sometimes"}}, "/jobDefaults/concurrencyPolicy"),
    ],
    ids=["missing-cron", "wrong-type", "bad-name", "bad-cron", "unknown-key", "bad-enum"],
)
def test_schema_rejects_bad_values(helm, tmp_path, values, message):
    values_file = _values_file(tmp_path, values)
    for command in ("template", "lint"):
        args = ["template", "wb"] if command == "template" else ["lint"]
        proc = _helm(helm, *args, str(CHART), "-f", values_file)
        assert proc.returncode != 0
        assert "don't meet the specifications of the schema" in proc.stdout + proc.stderr
        assert message in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        (
            [{"name": "daily", "notebook": "a.ipynb", "cron": "@daily", "profile": "gpu-h200"}],
            'profile "gpu-h200" is not in the profiles file; choose one of cpu-small, cpu-large, gpu-t4, gpu-a100',
        ),
        (
            [
                {"name": "daily", "notebook": "a.ipynb", "cron": "@daily"},
                {"name": "daily", "notebook": "b.ipynb", "cron": "@daily"},
            ],
            'the name "daily" is used twice',
        ),
    ],
    ids=["unknown-profile", "duplicate-name"],
)
def test_template_refuses_inconsistent_schedules(helm, tmp_path, schedules, message):
    proc = _helm(helm, "template", "wb", str(CHART), "-f", _values_file(tmp_path, {"schedules": schedules}))
    assert proc.returncode != 0
    assert message in proc.stderr


def test_values_schema_documents_every_default():
    """values.yaml validates against values.schema.json, and the schema knows each of its keys."""
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    assert set(defaults) <= set(schema["properties"])
