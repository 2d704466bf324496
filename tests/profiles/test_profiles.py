import copy
import re
from pathlib import Path

import pytest
import yaml

from workbench.profiles import load_profiles, parse_memory, parse_profiles, profile_env

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())


def test_shipped_profiles_load():
    ps = load_profiles(ROOT / "hub" / "profiles.yaml")
    assert [p.slug for p in ps.profiles] == ["cpu-small", "cpu-large", "gpu-t4", "gpu-a100"]
    t4 = ps.get("gpu-t4")
    assert t4.gpus == 1 and t4.gpu_resource == "nvidia.com/gpu" and t4.groups == ("gpu-users",)
    assert t4.tolerations[0]["key"] == "nvidia.com/gpu"
    assert ps.get("cpu-small").default and ps.max_gpus_per_user == 1
    assert [p.slug for p in ps.for_groups([])] == ["cpu-small", "cpu-large"]
    assert "gpu-t4" in [p.slug for p in ps.for_groups(["gpu-users"])]
    assert ps.get("cpu-large").mem_limit_bytes == 32 * 10**9


@pytest.mark.parametrize(
    ("value", "expected"), [("4G", 4 * 10**9), ("512Mi", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)), (1024, 1024)]
)
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


def _broken(mutate):
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["profiles"][0].pop("image"), r"^profiles\[0\]: missing required key 'image'$"),
        (lambda d: d["profiles"][1].update(gpus=-1), r"^profiles\[1\]\.gpus: expected a whole number >= 0, got -1$"),
        (lambda d: d["profiles"][1].update(slug="CPU Large"), r"profiles\[1\]\.slug: slug must be lowercase"),
        (
            lambda d: d["profiles"][2].update(memory={"limit": "8G", "guarantee": "16G"}),
            r"profiles\[2\]\.memory: .*exceeds the limit",
        ),
        (lambda d: d["profiles"][2].update(colour="red"), r"profiles\[2\]: unknown keys \['colour'\]"),
        (lambda d: d["profiles"][3].update(slug="gpu-t4"), "duplicate profile slugs"),
        (lambda d: d["profiles"][1].update(default=True), "only one profile may be the default"),
        (
            lambda d: d["profiles"][0].update(memory={"limit": "lots"}),
            r"profiles\[0\]\.memory\.limit: cannot read memory size 'lots'",
        ),
        # numbers that are not numbers
        (
            lambda d: d["profiles"][2].update(idle_timeout=True),
            r"^profiles\[2\]\.idle_timeout: expected a whole number of seconds, got true$",
        ),
        (
            lambda d: d["profiles"][2].update(gpus=True),
            r"^profiles\[2\]\.gpus: expected a whole number >= 0, got true$",
        ),
        (
            lambda d: d["profiles"][0].update(cpu={"limit": float("nan")}),
            r"^profiles\[0\]\.cpu\.limit: expected a number of cores, got \.nan$",
        ),
        (
            lambda d: d["profiles"][0].update(cpu={"limit": float("inf"), "guarantee": 1}),
            r"profiles\[0\]\.cpu\.limit: .*got \.inf$",
        ),
        (
            lambda d: d["profiles"][0].update(cpu={"limit": 2, "guarantee": True}),
            r"profiles\[0\]\.cpu\.guarantee: .*got true$",
        ),
        (
            lambda d: d["profiles"][0].update(memory={"limit": float("inf")}),
            r"profiles\[0\]\.memory\.limit: expected a size .*got \.inf$",
        ),
        (
            lambda d: d["profiles"][0].update(memory={"limit": float("nan")}),
            r"profiles\[0\]\.memory\.limit: .*got \.nan$",
        ),
        (lambda d: d["profiles"][0].update(memory={"limit": False}), r"profiles\[0\]\.memory\.limit: .*got false$"),
        (
            lambda d: d["profiles"][1].update(idle_timeout=0.5),
            r"profiles\[1\]\.idle_timeout: expected a whole number of seconds, got 0\.5",
        ),
        (
            lambda d: d["profiles"][1].update(idle_timeout=0),
            r"profiles\[1\]\.idle_timeout: expected at least 1 second, got 0",
        ),
        (
            lambda d: d["profiles"][1].update(default="yes"),
            r"profiles\[1\]\.default: expected true or false, got 'yes'",
        ),
        # strings where lists or mappings belong
        (
            lambda d: d["profiles"][2].update(groups="gpu-users"),
            r"^profiles\[2\]\.groups: expected a list of names such as \[gpu-users\], got 'gpu-users'$",
        ),
        (lambda d: d["profiles"][2].update(groups=[["gpu-users"]]), r"profiles\[2\]\.groups: expected a list of names"),
        (
            lambda d: d["profiles"][2].update(tolerations="nvidia.com/gpu"),
            r"profiles\[2\]\.tolerations: expected a list of tolerations",
        ),
        (
            lambda d: d["profiles"][2].update(tolerations=[{"key": "x", "colour": 1}]),
            r"profiles\[2\]\.tolerations\[0\]: expected a mapping with keys",
        ),
        (lambda d: d["profiles"][2].update(node_selector=["gpu"]), r"profiles\[2\]\.node_selector: expected a mapping"),
        (lambda d: d["profiles"][0].update(env={"A": [1, 2]}), r"profiles\[0\]\.env: expected a mapping"),
        (lambda d: d["profiles"].__setitem__(1, "cpu-large"), r"^profiles\[1\]: expected a mapping, got 'cpu-large'$"),
        # hub-wide settings
        (lambda d: d.update(max_gpus_per_user=True), r"^max_gpus_per_user: expected a whole number >= 0, got true$"),
        (lambda d: d.update(max_gpus_per_user=float("inf")), r"^max_gpus_per_user: .*got \.inf$"),
        (lambda d: d.update(gpu_resource=["nvidia.com/gpu"]), r"^gpu_resource: expected a resource name"),
    ],
)
def test_invalid_profiles_are_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        parse_profiles(_broken(mutate))


def test_every_problem_is_reported_at_once():
    def mutate(d):
        d["profiles"][0]["idle_timeout"] = True
        d["profiles"][2]["groups"] = "gpu-users"
        d["profiles"][3]["cpu"] = {"limit": float("nan")}
        d["culling"]["every"] = 0.5

    with pytest.raises(ValueError) as err:
        parse_profiles(_broken(mutate))
    lines = str(err.value).splitlines()
    assert lines[0] == "4 problems:"
    assert [line.strip() for line in lines[1:]] == [
        "profiles[0].idle_timeout: expected a whole number of seconds, got true",
        "profiles[2].groups: expected a list of names such as [gpu-users], got 'gpu-users'",
        "profiles[3].cpu.limit: expected a number of cores, got .nan",
        "culling.every: expected at least 1 second, got 0.5",
    ]


def test_yaml_spellings_of_non_finite_numbers_are_refused(tmp_path):
    text = (ROOT / "hub" / "profiles.yaml").read_text()
    for spelled, shown in [(".nan", ".nan"), (".inf", ".inf"), ("-.Inf", "-.inf")]:
        path = tmp_path / "profiles.yaml"
        path.write_text(text.replace("cpu: {limit: 8, guarantee: 4}", f"cpu: {{limit: {spelled}, guarantee: 4}}", 1))
        with pytest.raises(
            ValueError, match=rf"profiles\[1\]\.cpu\.limit: expected a number of cores, got {re.escape(shown)}"
        ):
            load_profiles(path)


def test_valid_edge_values_still_load():
    def mutate(d):
        d["profiles"][0].update(groups=None, env=None, idle_timeout=1, description=None)
        d["culling"]["every"] = 1.5

    ps = parse_profiles(_broken(mutate))
    assert ps.profiles[0].groups == () and ps.profiles[0].idle_timeout == 1 and ps.culling.every == 1.5


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="WORKBENCH_PROFILES"):
        load_profiles(tmp_path / "nope.yaml")


def _profile(cpu_limit, **changes):
    data = copy.deepcopy(RAW)
    data["profiles"][0].update(changes, cpu={"limit": cpu_limit, "guarantee": 0.1})
    return parse_profiles(data).profiles[0]


def test_profile_env_sets_threads_variables_and_devices():
    cpu = _profile(2.7, env={"MKL_NUM_THREADS": "1", "TEAM": "risk"})
    env = profile_env(cpu)
    assert env == {
        "OMP_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "1",  # the profile's own value wins over the computed one
        "NUMEXPR_MAX_THREADS": "2",
        "NUMBA_NUM_THREADS": "2",
        "TEAM": "risk",
        "WORKBENCH_PROFILE": cpu.slug,
        "CUDA_VISIBLE_DEVICES": "",  # a CPU profile sees no GPU
    }
    assert profile_env(_profile(0.5))["NUMBA_NUM_THREADS"] == "1"
    gpu = load_profiles(ROOT / "hub" / "profiles.yaml").get("gpu-t4")
    assert "CUDA_VISIBLE_DEVICES" not in profile_env(gpu)  # keeps what the process inherits
    assert profile_env(gpu, ["0", "GPU-b"])["CUDA_VISIBLE_DEVICES"] == "0,GPU-b"
    assert profile_env(gpu, [])["CUDA_VISIBLE_DEVICES"] == ""


def _unescape(name: str) -> str:
    """The inverse of the per-user Secret naming, written from its rule: ``-xx`` is one UTF-8 byte."""
    out, i = bytearray(), 0
    while i < len(name):
        if name[i] == "-":
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            out += name[i].encode()
            i += 1
    return out.decode()


@pytest.mark.parametrize("user", ["ana", "gina-r@example.com", "Ana", "ana-2d", "jürgen.ö", "x_y", "0"])
def test_a_per_user_secret_names_each_user_by_a_dns_safe_one_to_one_name(user):
    from workbench.jobs.k8s_manifest import DNS_SUBDOMAIN
    from workbench.profiles import secret_username

    data = _broken(lambda d: d["profiles"][0].update(secrets=["kaggle-api", "optuna-user-{username}"]))
    profile = parse_profiles(data).profiles[0]
    fixed, own = profile.allowed_secrets(user)
    assert fixed == "kaggle-api" and own.startswith("optuna-user-") and DNS_SUBDOMAIN.match(own)
    assert _unescape(own.removeprefix("optuna-user-")) == user  # nobody else's name maps to it
    assert secret_username("ana-2d") != secret_username("ana.") and profile.allowed_secrets() == ("kaggle-api",)


@pytest.mark.parametrize(
    "secrets, message",
    [
        (["optuna-{username}", "optuna-ro-{username}"], "optuna-{username} could name the Secret of optuna-ro-"),
        (["optuna-{username}", "optuna-shared"], "optuna-{username} could name the Secret of optuna-shared"),
        (["{username}"], "secrets must be a list"),
        (["optuna-{username}-ro"], "secrets must be a list"),
        (["Optuna-{username}"], "secrets must be a list"),
    ],
)
def test_per_user_secrets_that_could_name_another_secret_are_refused(secrets, message):
    with pytest.raises(ValueError) as info:
        parse_profiles(_broken(lambda d: d["profiles"][0].update(secrets=secrets)))
    assert message in str(info.value)
    # across profiles too: a prefix on one profile must not start another profile's secret
    data = _broken(lambda d: d["profiles"][1].update(secrets=["kaggle-{username}"]))
    with pytest.raises(ValueError, match="kaggle-{username} could name the Secret of kaggle-api"):
        parse_profiles(data)
