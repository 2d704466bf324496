"""helm/jupyterhub-values.yaml: generated from hub/profiles.yaml, valid for the official chart's
schema (vendored: tests/fixtures/z2jh-values.schema.json, BSD-3-Clause), consistent with our chart."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from workbench.deploy import jupyterhub_values, render_values
from workbench.deploy.jupyterhub_values import (
    GATEWAY_PORT,
    PROFILES_FILE_KEY,
    PROFILES_MOUNT,
    REPORTS_PORT,
    Z2JH_VERSION,
)
from workbench.hub.gateway.service import CREDENTIALS_DIR
from workbench.profiles import load_profiles, parse_memory
from workbench.runs import KUBE_RUNS_MOUNT, RUNS_ENV

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "helm" / "jupyterhub-values.yaml"
PROFILES = ROOT / "hub" / "profiles.yaml"
CHART_VALUES = ROOT / "helm" / "workbench" / "values.yaml"
Z2JH_SCHEMA = ROOT / "tests" / "fixtures" / "z2jh-values.schema.json"


def _without_required(node, values):
    """The official schema checks user values merged over the chart's defaults, which fill the
    required keys; our file holds only overrides. So along the objects our file sets, 'required'
    keeps only the keys it sets; everything else (types, unknown keys, oneOf...) stays as is."""
    if not isinstance(node, dict) or not isinstance(values, dict):
        return node
    node = dict(node)
    if isinstance(node.get("required"), list):
        node["required"] = [k for k in node["required"] if k in values]
    if "properties" in node:
        node["properties"] = {k: _without_required(v, values.get(k)) for k, v in node["properties"].items()}
    return node


def _z2jh_errors(values: dict) -> list[str]:
    schema = _without_required(json.loads(Z2JH_SCHEMA.read_text()), values)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_values_file_is_generated_from_the_profiles():
    assert VALUES.read_text() == render_values(PROFILES), (
        "regenerate: workbench deploy values -o helm/jupyterhub-values.yaml"
    )


def test_cli_check_detects_a_stale_file(tmp_path, workbench_cli):
    out = tmp_path / "values.yaml"
    write = subprocess.run(
        [*workbench_cli, "deploy", "values", "--profiles", str(PROFILES), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert write.returncode == 0, write.stderr
    check = [*workbench_cli, "deploy", "values", "--profiles", str(PROFILES), "-o", str(out), "--check"]
    assert subprocess.run(check, capture_output=True, text=True).returncode == 0
    out.write_text(out.read_text().replace("cpu_limit: 2.0", "cpu_limit: 3.0"))
    stale = subprocess.run(check, capture_output=True, text=True)
    assert stale.returncode == 1
    assert "out of date" in stale.stderr and "workbench deploy values -o" in stale.stderr


def test_profile_list_matches_hub_profiles(values):
    profiles = load_profiles(PROFILES)
    listed = values["singleuser"]["profileList"]
    assert [p["slug"] for p in listed] == [p.slug for p in profiles.profiles]
    for entry, profile in zip(listed, profiles.profiles, strict=True):
        override = entry["kubespawner_override"]
        assert entry["display_name"] == profile.display_name
        assert entry.get("default", False) is profile.default
        assert override["image"] == profile.image
        assert (override["cpu_limit"], override["cpu_guarantee"]) == (profile.cpu_limit, profile.cpu_guarantee)
        assert parse_memory(override["mem_limit"]) == profile.mem_limit_bytes
        assert parse_memory(override["mem_guarantee"]) == profile.mem_guarantee_bytes
        gpus = override.get("extra_resource_limits", {}).get(profiles.gpu_resource, "0")
        assert int(gpus) == profile.gpus
        assert override.get("node_selector", {}) == profile.node_selector
        assert override.get("tolerations", []) == profile.tolerations
        env = override["environment"]
        assert env["WORKBENCH_PROFILE"] == profile.slug
        assert env["OMP_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == str(max(1, int(profile.cpu_limit)))


def test_values_validate_against_the_official_chart_schema(values):
    assert _z2jh_errors(values) == []


@pytest.mark.parametrize(
    ("path", "bad", "message"),
    [
        (("hub", "image", "tag"), 7, "is not of type 'string'"),
        (("singleuser", "storage", "capasity"), "10Gi", "Additional properties are not allowed"),
        (("cull", "enabled"), "no", "is not of type 'boolean'"),
    ],
)
def test_official_schema_check_can_fail(values, path, bad, message):
    broken = copy.deepcopy(values)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    assert any(message in error for error in _z2jh_errors(broken))


def test_hub_runs_workbench_configure_with_the_mounted_profiles(values):
    hub = values["hub"]
    assert hub["extraFiles"]["workbench-profiles"]["mountPath"] == PROFILES_MOUNT
    config = hub["extraConfig"]["workbench"]
    compile(config, "extraConfig", "exec")
    assert "from workbench.hub import configure" in config
    assert re.search(rf'configure\(c, mode="kubernetes", profiles_path="{re.escape(PROFILES_MOUNT)}"', config)
    assert hub["extraEnv"][RUNS_ENV] == KUBE_RUNS_MOUNT
    assert values["cull"] == {"enabled": False}  # replaced by the GPU-aware culler service
    assert [p["port"] for p in hub["service"]["extraPorts"]] == [REPORTS_PORT, GATEWAY_PORT]
    assert [p["port"] for p in hub["networkPolicy"]["ingress"][0]["ports"]] == [REPORTS_PORT, GATEWAY_PORT]


def test_user_pods_reach_the_gateway_and_not_the_kubernetes_api(values):
    egress = values["singleuser"]["networkPolicy"]["egress"]
    assert [p["port"] for rule in egress for p in rule["ports"]] == [GATEWAY_PORT]
    assert all(rule["to"] for rule in egress)  # only towards the hub pod, never "anywhere on 443/6443"


def test_names_agree_with_the_workbench_chart_and_images(values):
    chart = yaml.safe_load(CHART_VALUES.read_text())
    claim = chart["runs"]["claimName"]
    for section in (values["hub"], values["singleuser"]["storage"]):
        volume, mount = section["extraVolumes"][0], section["extraVolumeMounts"][0]
        assert volume["persistentVolumeClaim"]["claimName"] == claim
        assert (mount["name"], mount["mountPath"]) == (volume["name"], KUBE_RUNS_MOUNT)
    # the gateway's token reaches the hub pod only, from the Secret the workbench chart creates
    gateway_sa = chart["jobGateway"]["serviceAccountName"]
    (token_volume,) = [v for v in values["hub"]["extraVolumes"] if "secret" in v]
    assert token_volume["secret"]["secretName"] == f"{gateway_sa}-token"
    (token_mount,) = [m for m in values["hub"]["extraVolumeMounts"] if m["name"] == token_volume["name"]]
    assert token_mount["readOnly"] is True and token_mount["mountPath"] == CREDENTIALS_DIR
    assert len(values["singleuser"]["storage"]["extraVolumes"]) == 1  # nothing but the runs volume for users
    assert f'runs_pvc="{claim}"' in values["hub"]["extraConfig"]["workbench"]
    assert values["singleuser"]["serviceAccountName"] == chart["notebookServiceAccount"]["name"]
    hub_dockerfile = (ROOT / "images" / "hub" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=quay.io/jupyterhub/k8s-hub:{Z2JH_VERSION}\n" in hub_dockerfile
    image = values["hub"]["image"]
    from workbench import __version__

    assert (image["name"], image["tag"]) == ("workbench/hub", __version__)


def test_profiles_reach_the_hub_through_set_file(values):
    """The file itself is passed at install time; the committed values leave it empty."""
    assert values["hub"]["extraFiles"]["workbench-profiles"]["stringData"] == ""
    assert PROFILES_FILE_KEY == "hub.extraFiles.workbench-profiles.stringData"


def test_bad_profiles_file_is_refused(tmp_path):
    bad = tmp_path / "profiles.yaml"
    bad.write_text(PROFILES.read_text().replace("cpu: {limit: 2, guarantee: 0.5}", "cpu: {limit: 2, guarantee: 4}"))
    with pytest.raises(ValueError, match="cpu guarantee 4.0 must be positive and at most the limit 2.0"):
        render_values(bad)
    with pytest.raises(FileNotFoundError, match="pass --profiles"):
        render_values(tmp_path / "missing.yaml")


def test_values_for_other_names(values):
    other = jupyterhub_values(
        load_profiles(PROFILES), hub_image="registry.example/hub:9", runs_claim="team-runs", service_account="team-nb"
    )
    assert other["hub"]["image"] == {"name": "registry.example/hub", "tag": "9"}
    assert other["singleuser"]["serviceAccountName"] == "team-nb"
    assert other["hub"]["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == "team-runs"
    assert _z2jh_errors(other) == []
