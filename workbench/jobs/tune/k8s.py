"""Tuning on Kubernetes: an Indexed Job whose pods each run ``workbench tune`` workers against the
study's journal on the shared runs volume, submitted through the job gateway.

The Job is the notebook Job of :func:`workbench.jobs.k8s_manifest.render_job` (curated image,
the profile's resources and GPUs, the owner's runs folder, no service account token) with
``completionMode: Indexed``, ``parallelism`` pods, and the search space shipped in its ConfigMap.
Every pod continues the same study, so the pods together run the study's trials. The study lives
in its journal in the owner's folder of the runs volume, or in a database whose URL the pods read
from a Secret (:mod:`.k8s_storage`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ...data.validation import check_whole_number
from ...models.space import parse_space
from ...models.trial import PRUNERS, SAMPLERS
from ..k8s_manifest import JOB_MOUNT, RUNS_MOUNT, JobManifests, render_job
from .k8s_storage import STORAGE_ENV, StorageRef, parse_storage, storage_ref
from .storage import check_study_name

SPACE_KEY = "space.yaml"
MAX_PARALLELISM = 64
MAX_WORKERS_PER_POD = 16
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class TuneSpec:
    """What a tune submission may choose (checked; the rest is the notebook Job's)."""

    space: dict[str, str]
    metric: str
    study: str
    direction: str = "maximize"
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    parallelism: int = 1
    workers: int = 1
    timeout: int | None = None
    trial_timeout: int | None = None
    storage: StorageRef | None = None  # None: the journal in the owner's folder of the runs volume


def parse_tune_spec(data: Any) -> TuneSpec:
    """A :class:`TuneSpec` from plain data (a gateway request's ``tune``), or ``ValueError`` naming the field."""
    if not isinstance(data, Mapping):
        raise ValueError("tune must be an object: space, metric, study, trials, sampler, pruner, parallelism, ...")
    unknown = set(data) - set(TuneSpec.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown tune fields {sorted(unknown)}; allowed: {sorted(TuneSpec.__dataclass_fields__)}")
    space = data.get("space")
    if not isinstance(space, Mapping) or not all(isinstance(k, str) and k.isidentifier() for k in space):
        raise ValueError("tune.space must map parameter names to dimensions such as 'int(8,64)'")
    dims = parse_space({k: v for k, v in space.items()})
    metric = data.get("metric")
    if not isinstance(metric, str) or not _METRIC.match(metric):
        raise ValueError(f"tune.metric must be a metric name, got {metric!r}")
    choices = {"direction": ("maximize", "minimize"), "sampler": SAMPLERS, "pruner": PRUNERS}
    for key, allowed in choices.items():
        if key in data and data[key] not in allowed:
            raise ValueError(f"tune.{key} must be one of {', '.join(allowed)}, got {data[key]!r}")
    optional = {
        k: check_whole_number(data[k], f"tune.{k}", 1) for k in ("timeout", "trial_timeout") if data.get(k) is not None
    }
    return TuneSpec(
        space={k: str(d) for k, d in dims.items()},
        metric=metric,
        study=check_study_name(data.get("study")),
        direction=data.get("direction", "maximize"),
        trials=check_whole_number(data.get("trials", 20), "tune.trials", 1, 100_000),
        sampler=data.get("sampler", "tpe"),
        pruner=data.get("pruner", "median"),
        seed=check_whole_number(data.get("seed", 0), "tune.seed", 0),
        storage=parse_storage(data.get("storage")),
        parallelism=check_whole_number(data.get("parallelism", 1), "tune.parallelism", 1, MAX_PARALLELISM),
        workers=check_whole_number(data.get("workers", 1), "tune.workers", 1, MAX_WORKERS_PER_POD),
        **optional,
    )


def _tune_command(notebook: str, spec: TuneSpec) -> list[str]:
    command = ["workbench", "tune", notebook, "-f", f"{JOB_MOUNT}/params.yaml", "--space", f"{JOB_MOUNT}/{SPACE_KEY}"]
    command += ["--metric", spec.metric, "--direction", spec.direction, "--trials", str(spec.trials)]
    command += ["--sampler", spec.sampler, "--pruner", spec.pruner, "--seed", str(spec.seed)]
    command += ["--study", spec.study, "--workers", str(spec.workers), "--runs-dir", RUNS_MOUNT, "--no-progress"]
    if spec.timeout is not None:
        command += ["--timeout", str(spec.timeout)]
    if spec.trial_timeout is not None:
        command += ["--trial-timeout", str(spec.trial_timeout)]
    return command


def render_tune_job(*, spec: TuneSpec, **job: Any) -> JobManifests:
    """The Indexed Job (and ConfigMap) of a study: ``job`` are :func:`render_job`'s arguments.

    .. code-block:: python

        spec = parse_tune_spec({"space": {"num_leaves": "int(8,64)"}, "metric": "cv_auc", "study": "s",
                                "parallelism": 4})
        print(render_tune_job(spec=spec, notebook="notebooks/train.ipynb", params={}, name="s",
                              image="workbench/base:0.1.0").to_yaml())
    """
    base = render_job(**{**job, "timeout": None, "notify": None})
    jobj, config_map = copy.deepcopy(base.job), copy.deepcopy(base.config_map)
    container = jobj["spec"]["template"]["spec"]["containers"][0]
    container["command"] = _tune_command(container["command"][2], spec)
    config_map["data"][SPACE_KEY] = yaml.safe_dump(spec.space, sort_keys=False)
    for meta in (jobj["metadata"], jobj["spec"]["template"]["metadata"], config_map["metadata"]):
        meta["annotations"] = {**meta["annotations"], "workbench/study": spec.study}
    if spec.storage is not None:  # the pods' `workbench tune` reads it when --storage is left out
        container["env"] = [*container["env"], spec.storage.env()]
    jobj["spec"].update(completionMode="Indexed", completions=spec.parallelism, parallelism=spec.parallelism)
    return replace(base, job=jobj, config_map=config_map)


def tune_request(notebook: Path, space: Mapping[str, Any], options: Mapping[str, Any], **k8s: Any) -> dict[str, Any]:
    """The gateway request of a study planned by :func:`~workbench.jobs.tune.plan_tune`."""
    from ..k8s_client import notebook_payload
    from .driver import plan_tune

    storage = storage_ref(options["storage"]) if options.get("storage") else None
    config = plan_tune(notebook, space, **{k: v for k, v in options.items() if k not in ("runs_dir", "storage")})
    tune = {
        "space": {k: str(d) for k, d in config.space.items()},
        "metric": config.metric,
        "study": config.study,
        "direction": config.direction,
        "trials": config.n_trials,
        "sampler": config.sampler,
        "pruner": config.pruner,
        "seed": config.seed,
        "parallelism": k8s["parallelism"],
        "workers": k8s.get("workers", 1),
    }
    if options.get("timeout"):
        tune["timeout"] = int(options["timeout"])
    if options.get("trial_timeout"):
        tune["trial_timeout"] = int(options["trial_timeout"])
    if storage is not None:
        tune["storage"] = storage.to_json()
    return {
        "notebook": notebook_payload(notebook),
        "params": config.params,
        "name": config.study,
        "profile": k8s.get("profile"),
        "gpus": k8s.get("gpus", 0),
        "secrets": [],
        "tune": tune,
    }


def submit_tune(
    notebook: Path,
    space: Mapping[str, Any],
    *,
    parallelism: int,
    workers: int = 1,
    profile: str | None = None,
    gpus: int = 0,
    **options: Any,
) -> int:
    """Submit the study as an Indexed Job through the job gateway and follow it; the exit status."""
    from ..k8s_client import EXIT_FAILED, EXIT_OK, GatewayClient, follow_submission

    request = tune_request(
        notebook, space, options, parallelism=parallelism, workers=workers, profile=profile, gpus=gpus
    )
    code = follow_submission(GatewayClient.submit_tune, request)
    if code in (EXIT_OK, EXIT_FAILED):  # followed to its end
        study = request["tune"]["study"]
        where = f" (with ${STORAGE_ENV} set to its database URL)" if "storage" in request["tune"] else ""
        print(f"study {study}: workbench tune show {study}{where}")
    return code
