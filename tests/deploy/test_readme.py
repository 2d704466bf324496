"""The README's deployment section: its commands name what the repository really has."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import require_tool

from workbench import __version__
from workbench.deploy.jupyterhub_values import PROFILES_FILE_KEY, Z2JH_VERSION
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "workbench"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Deploying on Kubernetes\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "the README needs a '## Deploying on Kubernetes' section"
    return match.group(1)


def _commands() -> list[list[str]]:
    block = re.search(r"```bash\n(.*?)```", _section(), re.S)
    assert block
    return [shlex.split(line) for line in block.group(1).replace("\\\n", " ").splitlines() if line.strip()]


def _options(argv: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag.startswith("--") and not value.startswith("--"):
            out.setdefault(flag, []).append(value)
    return out


def _helm_install(release: str) -> list[str]:
    return next(c for c in _commands() if c[:3] == ["helm", "upgrade", "--install"] and c[3] == release)


def test_image_builds_match_the_images_and_profiles():
    builds = [c for c in _commands() if c[:2] == ["docker", "build"]]
    tags = {}
    for argv in builds:
        dockerfile = Path(argv[argv.index("-f") + 1])
        assert (ROOT / dockerfile).is_file()
        tag = argv[argv.index("-t") + 1]
        tags[dockerfile.parent.name] = tag
        assert argv[-1] == "."
    assert tags == {name: f"workbench/{name}:{__version__}" for name in ("base", "gpu", "hub")}
    profile_images = {p.image for p in load_profiles(ROOT / "hub" / "profiles.yaml").profiles}
    assert profile_images <= set(tags.values())
    values = yaml.safe_load((ROOT / "helm" / "jupyterhub-values.yaml").read_text())
    assert f"{values['hub']['image']['name']}:{values['hub']['image']['tag']}" == tags["hub"]


def test_workbench_chart_command_matches_the_chart():
    argv = _helm_install("workbench")
    assert (ROOT / argv[4] / "Chart.yaml").is_file() and Path(argv[4]) == Path("helm/workbench")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["name"] == argv[3]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for assignment in _options(argv).get("--set", []):
        node = defaults
        for key in assignment.split("=", 1)[0].split("."):
            assert isinstance(node, dict) and key in node, f"README sets {assignment!r}, not a key of values.yaml"
            node = node[key]


def test_jupyterhub_command_matches_the_values_file():
    commands = _commands()
    assert ["helm", "repo", "add", "jupyterhub", "https://hub.jupyter.org/helm-chart/"] in commands
    argv = _helm_install("jupyterhub")
    assert argv[4] == "jupyterhub/jupyterhub"
    opts = _options(argv)
    assert opts["--version"] == [Z2JH_VERSION]
    assert opts["--values"] == ["helm/jupyterhub-values.yaml"] and (ROOT / opts["--values"][0]).is_file()
    assert opts["--set-file"] == [f"{PROFILES_FILE_KEY}=hub/profiles.yaml"]
    assert opts["--namespace"] == _options(_helm_install("workbench"))["--namespace"]
    generate = next(c for c in commands if c[:3] == ["workbench", "deploy", "values"])
    assert generate[generate.index("-o") + 1] == opts["--values"][0]
    # the values file itself says the same
    values_text = (ROOT / opts["--values"][0]).read_text()
    assert (
        f"--version {Z2JH_VERSION}" in values_text
        and f"--set-file {PROFILES_FILE_KEY}=hub/profiles.yaml" in values_text
    )


def test_readme_commands_render_with_helm(tmp_path):
    """The README's chart command and its schedules example render, and the schedule becomes a CronJob."""
    helm = require_tool("helm")
    argv = _helm_install("workbench")
    example = re.search(r"```yaml\n(.*?)```", _section(), re.S).group(1)
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(example)
    args = [a for a in argv[4:] if a != "--create-namespace"]
    proc = subprocess.run(
        [helm, "template", "workbench", *args, "--values", str(schedules)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    declared = yaml.safe_load(example)["schedules"][0]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] + container["args"][:1] == ["workbench", "run", declared["notebook"]]
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "nfs-client"


@pytest.mark.parametrize(
    "script", ["scripts/install-helm", "scripts/build-standin-base", "scripts/build-image", "scripts/lock-images"]
)
def test_scripts_named_in_the_readme_exist(script):
    assert (ROOT / script).stat().st_mode & 0o111
    assert script in (ROOT / "README.md").read_text()
