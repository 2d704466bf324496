"""The notebook and hub images: Dockerfiles (hadolint, Docker Stacks contract), lock files, and real
builds with buildah from a Debian stand-in base, smoke-tested inside a running podman container."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import background
import pytest
from conftest import require_tool
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workbench.deploy import parse_lock, select

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("base", "gpu", "hub")
PYTHONS = ("3.11.2", "3.11.9", "3.12.3", "3.13.5")  # Debian bookworm, and newer Docker Stacks bases
# Enough of the base lock for the smoke test (imports, CLI, train_cv); same pins and hashes.
SMOKE_PACKAGES = "numpy,pandas,scipy,scikit-learn,lightgbm,numba,pyarrow,pyyaml,tqdm,setuptools,wheel"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(image: str, python: str) -> dict[str, str]:
    entries = select(parse_lock((ROOT / "images" / image / "requirements.lock").read_text()), python)
    return {e.name: e.version for e in entries}


# --- Dockerfiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_contract(image):
    text = (ROOT / "images" / image / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0].startswith("ARG BASE_IMAGE="), "the base image must be configurable"
    assert "FROM ${BASE_IMAGE}" in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] == "${NB_UID}", "the image must end as the notebook user (uid 1000), not root"
    assert f"images/{image}/requirements.lock" in text and "--require-hashes" in text


def test_hadolint_passes_and_can_fail(tmp_path):
    hadolint = require_tool("hadolint", str(Path(sys.executable).parent / "hadolint"))
    files = [str(ROOT / "images" / image / "Dockerfile") for image in IMAGES]
    proc = subprocess.run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install -y curl\n")
    proc = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(bad)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "DL3006" in proc.stdout


# --- lock files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_every_locked_file_is_hashed(image):
    entries = parse_lock((ROOT / "images" / image / "requirements.lock").read_text())
    assert entries
    for entry in entries:
        assert entry.hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in entry.hashes), entry.name


@pytest.mark.parametrize("python", PYTHONS)
def test_base_lock_covers_pyproject(python):
    """Every dependency of workbench (core, k8s) and the notebook server is pinned, within its bounds."""
    project = _pyproject()["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["k8s"]]
    wanted += [
        Requirement(r)
        for r in project["optional-dependencies"]["hub"]
        if canonicalize_name(Requirement(r).name) in {"jupyterhub", "jupyterlab"}
    ]
    pins = _pins("base", python)
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is missing from images/base/requirements.lock (run scripts/lock-images)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"


@pytest.mark.parametrize("python", PYTHONS)
def test_gpu_lock_extends_the_base_lock(python):
    base, gpu = _pins("base", python), _pins("gpu", python)
    assert {name: gpu.get(name) for name in base} == base, "the gpu lock must keep every pin of the base lock"
    assert {"torch", "xgboost"} <= set(gpu)
    assert any(name.startswith("nvidia-") for name in gpu), "PyTorch's CUDA runtime wheels are missing"


@pytest.mark.parametrize("python", PYTHONS)
def test_hub_lock_covers_the_hub_module(python):
    """What workbench.hub and the run reader import beyond the k8s-hub image, within pyproject's bounds."""
    project = _pyproject()["project"]
    bounds = {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in project["dependencies"] + project["optional-dependencies"]["hub"]
    }
    pins = _pins("hub", python)
    for name in ("pyyaml", "pandas", "jinja2", "jupyterhub-idle-culler"):
        assert name in pins
        assert bounds[name].specifier.contains(pins[name]), f"{name}=={pins[name]} violates {bounds[name]}"


LOCK = """\
soupsieve==2.10 ; python_full_version < '3.11.5' \\
    --hash=sha256:aaaa
    # via beautifulsoup4
soupsieve==4.1.3 ; python_full_version >= '3.11.5' \\
    --hash=sha256:bbbb
    # via beautifulsoup4
beautifulsoup4==4.15.0 \\
    --hash=sha256:cccc \\
    --hash=sha256:dddd
    # via
    #   nbconvert
    #   -r requirements.in
pywinpty==3.1.2 ; os_name == 'nt' \\
    --hash=sha256:eeee
    # via jupyter-server
nbconvert==7.17.0 \\
    --hash=sha256:ffff
    # via workbench (pyproject.toml)
"""


def test_select_applies_markers_for_the_target_python():
    entries = parse_lock(LOCK)
    assert [(e.name, e.version) for e in select(entries, "3.11.2")] == [
        ("soupsieve", "2.10"),
        ("beautifulsoup4", "4.15.0"),
        ("nbconvert", "7.17.0"),
    ]
    assert ("soupsieve", "4.1.3") in [(e.name, e.version) for e in select(entries, "3.11.7")]
    bs4 = next(e for e in entries if e.name == "beautifulsoup4")
    assert bs4.line() == "beautifulsoup4==4.15.0 --hash=sha256:cccc --hash=sha256:dddd"
    assert bs4.via == {"nbconvert"}


def test_select_only_keeps_the_dependency_closure():
    entries = parse_lock(LOCK)
    assert sorted(e.name for e in select(entries, "3.12.0", only=["nbconvert"])) == [
        "beautifulsoup4",
        "nbconvert",
        "soupsieve",
    ]
    assert [e.name for e in select(entries, "3.12.0", only=["soupsieve"])] == ["soupsieve"]
    with pytest.raises(ValueError, match=r"packages \['torch'\] are not in the lock"):
        select(entries, "3.12.0", only=["torch"])


# --- real builds -----------------------------------------------------------------------------------


def _script_env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable}


def _run(args: list[str], timeout: int = 900) -> str:
    proc = background.run(args, env=_script_env(), timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


def _storage_options() -> list[str]:
    out = subprocess.run(
        ["bash", "-c", 'source scripts/_containers.sh; printf "%s\\n" "${STORAGE_OPTS[@]}" "--" "${RUN_OPTS[@]}"'],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=_script_env(),
    ).stdout.split("\n")
    split = out.index("--")
    return out[:split], [o for o in out[split + 1 :] if o]


def _podman_run(image: str, *command: str, volumes: dict[Path, str] | None = None) -> subprocess.CompletedProcess:
    storage, run_opts = _storage_options()
    mounts = [f"--volume={src}:{dst}:ro" for src, dst in (volumes or {}).items()]
    return subprocess.run(
        ["podman", *storage, "run", "--rm", *run_opts, *mounts, image, *command],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _build_image(image: str, base: str, *options: str) -> str:
    tag = f"localhost/workbench/{image}:test"
    return _run(["scripts/build-image", image, "--base-image", base, "--offline", *options, "--tag", tag])


def _build_images(items: list[pytest.Item]) -> dict[str, str | BaseException]:
    """The stand-in base, then the base image (the smoke test's packages) and the hub image on it.

    Each image's tag, or what its build raised (each test reports its own image's failure).
    """
    for tool in ("buildah", "podman", "mmdebstrap"):
        require_tool(tool)
    standin = _run(["scripts/build-standin-base"])
    builds = {"base": ("--only", SMOKE_PACKAGES), "hub": ()}
    built: dict[str, str | BaseException] = {}
    for image, options in builds.items():
        try:
            built[image] = _build_image(image, standin, *options)
        except Exception as exc:  # noqa: BLE001 - reported by the image's own test
            built[image] = exc
    return built


background.register("built_images", _build_images)


@pytest.fixture(scope="session")
def built_images(request) -> dict[str, str | BaseException]:
    """The images the smoke tests run, built in the background while the tests before them run."""
    return background.result(request)


def _tag(built: dict[str, str | BaseException], image: str) -> str:
    if isinstance(built[image], BaseException):
        raise built[image]
    return built[image]


def _smoke_module():
    spec = importlib.util.spec_from_file_location("image_smoke_test", ROOT / "images" / "smoke_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.images
@pytest.mark.slow
def test_base_image_builds_and_passes_its_smoke_test(built_images):
    from workbench import __version__

    tag = _tag(built_images, "base")
    proc = _podman_run(
        tag, "python", "/tmp/smoke_test.py", volumes={ROOT / "images" / "smoke_test.py": "/tmp/smoke_test.py"}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["user"]["uid"] == 1000 and result["user"]["gid"] == 100 and result["user"]["user"] == "jovyan"
    assert result["workbench"] == {"version": __version__, "cli": f"workbench {__version__}"}
    assert result["train_cv"]["cv_auc"] == result["train_cv"]["sklearn_auc"]
    assert result["explain_cache"] == {"cache_hits": 1, "cache_misses": 0}  # compiled at build time
    # same pins as this machine's LightGBM/numpy: the container reproduces the host's numbers
    host = _smoke_module().check_train_cv()
    assert result["train_cv"]["cv_auc"] == pytest.approx(host["cv_auc"], abs=1e-9)
    # the default command is the Docker Stacks single-user entry point, found on PATH
    proc = _podman_run(tag, "sh", "-c", "command -v start-singleuser.sh && id -u && test ! -w /usr/bin")
    assert proc.returncode == 0 and proc.stdout.split() == ["/usr/local/bin/start-singleuser.sh", "1000"], proc.stderr


@pytest.mark.images
@pytest.mark.slow
def test_hub_image_builds_and_loads_profiles_as_non_root(built_images):
    tag = _tag(built_images, "hub")
    code = (
        "import os, workbench.profiles as h; p = h.load_profiles('/usr/local/etc/workbench/profiles.yaml'); "
        "print(os.getuid(), *[x.slug for x in p.profiles])"
    )
    proc = _podman_run(
        tag, "python3", "-c", code, volumes={ROOT / "hub" / "profiles.yaml": "/usr/local/etc/workbench/profiles.yaml"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from workbench.profiles import load_profiles

    uid, *slugs = proc.stdout.split()
    assert uid == "1000"
    assert slugs == [p.slug for p in load_profiles(ROOT / "hub" / "profiles.yaml").profiles]


def _gpu_present() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.skipif(
    not _gpu_present(), reason="no NVIDIA GPU on this machine: the gpu image's CUDA smoke test needs one"
)
def test_gpu_image_builds_and_sees_cuda(built_images):
    base = _tag(built_images, "base")
    tag = _run(
        [
            "scripts/build-image",
            "gpu",
            "--base-image",
            base,
            "--offline",
            "--only",
            SMOKE_PACKAGES + ",torch,xgboost",
            "--tag",
            "localhost/workbench/gpu:test",
        ],
        timeout=1800,
    )
    storage, run_opts = _storage_options()
    proc = subprocess.run(
        [
            "podman",
            *storage,
            "run",
            "--rm",
            *run_opts,
            "--device",
            "nvidia.com/gpu=all",
            f"--volume={ROOT / 'images' / 'smoke_test.py'}:/tmp/smoke_test.py:ro",
            tag,
            "python",
            "/tmp/smoke_test.py",
            "--gpu",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cuda"]["xgboost_device"].startswith("cuda")
