import copy
from pathlib import Path

import pytest
import yaml

from workbench.hub import load_profiles, parse_memory, parse_profiles

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.mark.parametrize(("value", "expected"), [("4G", 4 * 10**9), ("512Mi", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)), (1024, 1024)])
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


def _broken(mutate):
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["profiles"][0].pop("image"), "profile 'cpu-small': missing required key 'image'"),
    (lambda d: d["profiles"][1].update(gpus=-1), "gpus must be a whole number"),
    (lambda d: d["profiles"][1].update(slug="CPU Large"), "slug must be lowercase"),
    (lambda d: d["profiles"][2].update(memory={"limit": "8G", "guarantee": "16G"}), "exceeds the limit"),
    (lambda d: d["profiles"][2].update(colour="red"), r"unknown keys \['colour'\]"),
    (lambda d: d["profiles"][3].update(slug="gpu-t4"), "duplicate profile slugs"),
    (lambda d: d["profiles"][1].update(default=True), "only one profile may be the default"),
    (lambda d: d["profiles"][0].update(memory={"limit": "lots"}), "cannot read memory size 'lots'"),
])  # fmt: skip
def test_invalid_profiles_are_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        parse_profiles(_broken(mutate))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="WORKBENCH_PROFILES"):
        load_profiles(tmp_path / "nope.yaml")
