"""Tuning on Kubernetes: the Indexed Job validates strictly for every profile, and a tune
submission's fields are checked as an attacker would fill them."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from workbench.cli import main
from workbench.jobs.k8s_manifest import RUNS_MOUNT
from workbench.jobs.tune.k8s import SPACE_KEY, parse_tune_spec, render_tune_job, tune_request
from workbench.jobs.tune.k8s_storage import STORAGE_ENV
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
TRAIN = ROOT / "notebooks" / "train.ipynb"
VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
SPEC = {"space": {"num_leaves": "int(8,64)", "model": "choice(lgbm,logreg)"}, "metric": "cv_auc", "study": "churn"}


@pytest.mark.parametrize("slug", [p.slug for p in PROFILES.profiles])
def test_every_profile_renders_a_strictly_valid_indexed_job(slug):
    profile = PROFILES.get(slug)
    spec = parse_tune_spec({**SPEC, "parallelism": 3, "workers": 2, "trials": 40, "pruner": "hyperband"})
    m = render_tune_job(
        spec=spec,
        notebook=TRAIN,
        params={"n_splits": 3},
        name="churn",
        image="",
        profile=slug,
        gpus=profile.gpus,
        profiles=PROFILES,
        owner="gina",
    )
    for obj in m.objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    job = m.job["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 3, 3)
    (container,) = job["template"]["spec"]["containers"]
    assert container["image"] == profile.image
    if profile.gpus:
        assert container["resources"]["limits"][profile.gpu_resource] == str(profile.gpus)
    command = container["command"]
    assert command[:3] == ["workbench", "tune", "/etc/workbench/job/train.ipynb"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags["--space"] == f"/etc/workbench/job/{SPACE_KEY}" and flags["--study"] == "churn"
    assert (flags["--trials"], flags["--workers"], flags["--pruner"]) == ("40", "2", "hyperband")
    assert yaml.safe_load(m.config_map["data"][SPACE_KEY]) == SPEC["space"]
    assert yaml.safe_load(m.config_map["data"]["params.yaml"]) == {"n_splits": 3}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"podSpec": {"hostPID": True}}, "unknown tune fields ['podSpec']"),
        ({"space": {"num_leaves": "int(1,2); rm -rf /"}}, "cannot read"),
        ({"space": {"__import__('os')": "int(1,2)"}}, "must map parameter names"),
        ({"study": "../../other-user"}, "study name"),
        ({"metric": "cv_auc --storage postgresql://evil"}, "metric name"),
        ({"parallelism": 1000}, "parallelism must be a whole number >= 1 and <= 64"),
        ({"sampler": "mine"}, "sampler must be one of"),
        ({"trials": True}, "trials must be a whole number"),
    ],
)
def test_a_tune_spec_takes_only_checked_values(change, message):
    with pytest.raises(ValueError, match=None) as info:
        parse_tune_spec({**SPEC, **change})
    assert message in str(info.value)


def test_the_request_is_planned_and_checked_here_first(tmp_path):
    options = {"text_params": {"n_splits": "3"}, "n_trials": 12, "study": "churn", "runs_dir": tmp_path}
    request = tune_request(TRAIN, {"num_leaves": "int(8,64)"}, options, parallelism=4)
    assert request["tune"]["parallelism"] == 4 and request["tune"]["metric"] == "cv_auc"
    assert request["params"] == {"n_splits": 3} and request["notebook"]["name"] == "train.ipynb"
    parse_tune_spec(request["tune"])  # what the gateway will accept
    with pytest.raises(ValueError, match="no parameter 'leaves'"):
        tune_request(TRAIN, {"leaves": "int(8,64)"}, options, parallelism=4)
    with pytest.raises(ValueError, match="shared runs volume"):
        tune_request(TRAIN, {"num_leaves": "int(8,64)"}, {**options, "storage": "sqlite:///x.db"}, parallelism=2)


PASSWORD = "Hunter2-s3cr3t"


def _render(spec: dict, owner: str = "gina"):
    return render_tune_job(
        spec=parse_tune_spec(spec), notebook=TRAIN, params={}, name="churn", image="", profile="cpu-small",
        profiles=PROFILES, owner=owner,
    )  # fmt: skip


@pytest.mark.parametrize(
    "option, env",
    [
        ("secret-ref:optuna-db", {"valueFrom": {"secretKeyRef": {"name": "optuna-db", "key": "url"}}}),
        ("secret-ref:optuna-db/dsn", {"valueFrom": {"secretKeyRef": {"name": "optuna-db", "key": "dsn"}}}),
        ("postgresql+psycopg2://db.internal:5432/optuna", {"value": "postgresql+psycopg2://db.internal:5432/optuna"}),
        ("mysql://optuna@db.internal/optuna", {"value": "mysql://optuna@db.internal/optuna"}),  # a user, no password
    ],
)
def test_storage_reaches_the_pods_as_a_secret_reference_or_a_url_without_credentials(tmp_path, option, env):
    options = {"text_params": {"n_splits": "3"}, "study": "churn", "runs_dir": tmp_path, "storage": option}
    request = tune_request(TRAIN, {"num_leaves": "int(8,64)"}, options, parallelism=2)
    m = _render(request["tune"])
    for obj in m.objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    (container,) = m.job["spec"]["template"]["spec"]["containers"]
    assert container["env"][-1] == {"name": STORAGE_ENV, **env}
    assert "--storage" not in container["command"]  # `workbench tune` in the pod reads $WORKBENCH_TUNE_STORAGE
    assert [e["name"] for e in container["env"]].count(STORAGE_ENV) == 1


def test_without_storage_the_pods_keep_the_journal_in_the_owners_own_folder():
    m = _render(SPEC, owner="gina")
    (container,) = m.job["spec"]["template"]["spec"]["containers"]
    assert STORAGE_ENV not in {e["name"] for e in container["env"]} and "--storage" not in container["command"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LOGNAME"] == env["USER"] == "gina"  # default_storage() is <runs>/<owner folder>/study-<name>/
    writable = [v for v in container["volumeMounts"] if v["name"] == "runs" and not v.get("readOnly")]
    assert writable == [{"name": "runs", "mountPath": f"{RUNS_MOUNT}/gina", "subPath": "gina"}]


@pytest.mark.parametrize(
    "storage, message",
    [
        ({"url": f"postgresql://ana:{PASSWORD}@db/optuna"}, "holds a password"),
        ({"url": f"postgresql://db/optuna?password={PASSWORD}"}, "holds a password"),
        ({"url": f"mysql://db/optuna?user=ana&passwd={PASSWORD}"}, "holds a password"),
        ({"url": f"sqlite:///{RUNS_MOUNT}/ana/study-churn/{PASSWORD}.db"}, "shared runs volume"),
        ({"url": f"{RUNS_MOUNT}/ana/study-churn/{PASSWORD}.journal"}, "shared runs volume"),
        ({"url": f"file://{RUNS_MOUNT}/ana/{PASSWORD}"}, "shared runs volume"),
        ({"url": f"redis://{PASSWORD}.example/0"}, "must name a database server"),
        ({"url": "postgresql:///optuna"}, "without a host"),
        ({"url": f"postgresql://db/x\n{PASSWORD}"}, "one line"),
        ({"secret": "optuna-db", "valueFrom": {"fieldRef": {"fieldPath": "metadata"}}}, "and nothing else"),
        ({"secret": "optuna-db", "env": [{"name": "LD_PRELOAD", "value": "/x"}]}, "and nothing else"),
        ({"url": "postgresql://db/x", "secret": "optuna-db"}, "and nothing else"),
        ({"secret": "../kube-system/token"}, "not a Kubernetes Secret name"),
        ({"secret": "optuna-db", "key": "url; rm -rf /"}, "key 'url; rm -rf /' must be"),
        ("postgresql://db/optuna", "and nothing else"),
    ],
)
def test_a_storage_field_takes_only_a_checked_reference_and_never_echoes_the_url(storage, message):
    with pytest.raises(ValueError) as info:
        parse_tune_spec({**SPEC, "storage": storage})
    assert message in str(info.value) and PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://ana:{PASSWORD}@db.internal/optuna",
        f"postgresql://db.internal/optuna?sslmode=require&password={PASSWORD}",
    ],
)
def test_workbench_tune_on_k8s_refuses_a_password_in_the_url_naming_the_secret_way(tmp_path, capsys, monkeypatch, url):
    monkeypatch.delenv("WORKBENCH_JOB_GATEWAY_URL", raising=False)  # nothing may be sent anyway
    argv = ["tune", str(TRAIN), "-s", "num_leaves=int(8,64)", "--backend", "k8s", "--storage", url]
    assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert "holds a password" in out.err and "--storage secret-ref:NAME[/KEY]" in out.err
    assert PASSWORD not in out.out + out.err


def test_locally_a_secret_reference_is_refused_and_the_environment_gives_the_url(tmp_path, capsys, monkeypatch):
    argv = ["tune", str(TRAIN), "-s", "num_leaves=int(8,64)", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main([*argv, "--storage", "secret-ref:optuna-db"]) == 2
    assert "names a Kubernetes Secret for --backend k8s" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr("workbench.jobs.tune.run_tune", lambda notebook, space, **kw: seen.update(kw) or 1 / 0)
    monkeypatch.setenv(STORAGE_ENV, f"postgresql://ana:{PASSWORD}@db/optuna")
    assert main(argv) != 0
    assert seen["storage"] == f"postgresql://ana:{PASSWORD}@db/optuna"
    assert PASSWORD not in "".join(capsys.readouterr())
