"""Tuning on Kubernetes: the Indexed Job validates strictly for every profile, and a tune
submission's fields are checked as an attacker would fill them."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from workbench.jobs.tune.k8s import SPACE_KEY, parse_tune_spec, render_tune_job, tune_request
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
