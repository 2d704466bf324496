"""Notebook jobs from JupyterLab on Kubernetes: Jobs through the real job gateway (real hub tokens), kmock as the API."""

from __future__ import annotations

import asyncio
import json

import nbformat
import pytest
from jupyter_scheduler.exceptions import SchedulerError
from jupyter_scheduler.models import CreateJob, Status
from jupyter_scheduler.orm import create_tables

from tests.hub.test_gateway import ANA, NS, _jobs, gateway, hub  # noqa: F401 (fixtures)
from workbench.jobs.k8s_client import GATEWAY_URL_ENV, TOKEN_ENV
from workbench.lab.environments import ProfileEnvironments
from workbench.lab.scheduler import WorkbenchScheduler

pytestmark = pytest.mark.hub
ARGO = "argoproj.io/v1alpha1"


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("lr: float = 0.1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(lr)")]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    (tmp_path / "home").mkdir()
    path = tmp_path / "home" / "train.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def scheduler(gateway, notebook, tmp_path, monkeypatch):  # noqa: F811
    """A Kubernetes-backend scheduler acting as ana, whose server token reaches the real gateway."""
    monkeypatch.setenv(GATEWAY_URL_ENV, gateway["url"])
    monkeypatch.setenv(TOKEN_ENV, gateway["tokens"][ANA])
    monkeypatch.setenv("WORKBENCH_USER_GROUPS", "")
    monkeypatch.delenv("WORKBENCH_PROFILES", raising=False)
    db = f"sqlite:///{tmp_path / 'scheduler.sqlite'}"
    create_tables(db)
    return WorkbenchScheduler(
        root_dir=str(notebook.parent),
        environments_manager=ProfileEnvironments(),
        db_url=db,
        staging_path=str(tmp_path / "staging"),
        backend="k8s",
    )


@pytest.mark.asyncio
async def test_a_lab_job_is_a_kubernetes_job_through_the_gateway(gateway, notebook, scheduler):  # noqa: F811
    kmock = gateway["kmock"]

    def job(**params: str) -> CreateJob:
        return CreateJob(input_uri=notebook.name, runtime_environment_name="cpu-small", name="churn", parameters=params)

    with pytest.raises(SchedulerError, match="'lr'"):
        await asyncio.to_thread(scheduler.create_job, job(lr="fast"))
    assert _jobs(kmock) == []  # refused before anything reached the cluster

    job_id = await asyncio.to_thread(scheduler.create_job, job(lr="0.3"))
    (name,) = _jobs(kmock)
    manifest = kmock.objects["batch/v1/jobs", NS, name]
    assert manifest["metadata"]["annotations"]["workbench/owner"] == ANA
    assert (await asyncio.to_thread(scheduler.get_job, job_id)).status == Status.QUEUED
    manifest.patch({"status": {"active": 0, "conditions": [{"type": "Complete", "status": "True"}]}})
    assert (await asyncio.to_thread(scheduler.get_job, job_id)).status == Status.COMPLETED

    other = await asyncio.to_thread(scheduler.create_job, job(lr="0.5"))
    (second,) = [n for n in _jobs(kmock) if n != name]
    kmock.objects["batch/v1/jobs", NS, second].patch({"status": {"active": 1}})
    assert (await asyncio.to_thread(scheduler.get_job, other)).status == Status.IN_PROGRESS
    await asyncio.to_thread(scheduler.stop_job, other)  # stop in the UI deletes the Kubernetes Job
    assert kmock.objects["batch/v1/jobs", NS, second].deleted and not kmock.objects["batch/v1/jobs", NS, name].deleted
    assert (await asyncio.to_thread(scheduler.get_job, other)).status == Status.STOPPED


@pytest.mark.asyncio
async def test_a_lab_schedule_is_a_cron_workflow_through_the_gateway(gateway, notebook, scheduler):  # noqa: F811
    from argo_schema import validate as argo_validate
    from jupyter_scheduler.models import CreateJobDefinition

    kmock = gateway["kmock"]
    for plural in ("workflows", "cronworkflows", "workflowtemplates", "workfloweventbindings"):
        kmock.resources[f"{ARGO}/{plural}"] = {"namespaced": True}
    model = CreateJobDefinition(
        input_uri=notebook.name,
        runtime_environment_name="cpu-small",
        name="nightly",
        parameters={"lr": "0.3"},
        schedule="0 3 * * *",
    )
    definition_id = await asyncio.to_thread(scheduler.create_job_definition, model)
    crons = [name for (res, _ns, name) in kmock.objects if res.plural == "cronworkflows"]
    assert len(crons) == 1 and crons[0].startswith(f"lab-{definition_id}")
    cron = kmock.objects[f"{ARGO}/cronworkflows", NS, crons[0]]
    raw = cron.history[0].raw
    argo_validate(raw)
    assert raw["spec"]["schedules"] == ["0 3 * * *"] and raw["metadata"]["annotations"]["workbench/owner"] == ANA
    assert "0.3" in json.dumps(raw)  # the typed parameter travels with the step
    await asyncio.to_thread(scheduler.delete_job_definition, definition_id)
    assert cron.deleted
