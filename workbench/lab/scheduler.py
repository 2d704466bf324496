"""jupyter-scheduler with workbench underneath: a notebook job created in JupyterLab is a ``workbench run``.

:class:`WorkbenchScheduler` keeps jupyter-scheduler's job list (its database in the user's home)
and replaces how a job starts, stops and reports:

- parameters are checked against the notebook's typed ``parameters`` cell
  (:func:`workbench.jobs.runner.prepare_run`) and the environment is a hub profile the user's groups
  allow; a bad value is refused with jupyter-scheduler's error dialog before anything starts;
- locally (``backend = "local"``) the job is :mod:`workbench.lab.job`, started in its own
  session, outside the server's process group, so stopping or culling the server does not stop it;
  on Kubernetes (``backend = "k8s"``) it is a Kubernetes Job submitted through the hub's job
  gateway (:class:`workbench.jobs.k8s_client.GatewayClient`);
- the run is recorded in the user's runs folder; its executed notebook and report are the job's
  outputs; stop and delete act on the real process or Job;
- job definitions with a schedule are kept by the hub (:mod:`workbench.lab.schedules`), not by
  a task runner inside the server; on Kubernetes they are one-step pipelines in calendar mode, a
  CronWorkflow created by the job gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_scheduler.exceptions import SchedulerError
from jupyter_scheduler.models import (
    CreateJob,
    CreateJobDefinition,
    DescribeJob,
    ListJobsQuery,
    ListJobsResponse,
    Status,
    UpdateJobDefinition,
)
from jupyter_scheduler.orm import Job
from jupyter_scheduler.scheduler import Scheduler
from traitlets import Enum, Unicode, default
from traitlets import Type as TType

from ..hub.lifeline import is_alive, process_start
from ..profiles import Profile, profile_env
from .environments import OUTPUT_FORMATS, user_profiles
from .job import read_run_file, write_run_file
from .status import held_devices

_CHILDREN: dict[int, subprocess.Popen] = {}
ACTIVE = (Status.CREATED, Status.QUEUED, Status.IN_PROGRESS, Status.STOPPING)


def _gateway() -> Any:
    """The job gateway of this user's pod (:class:`workbench.jobs.k8s_client.GatewayClient`)."""
    from ..jobs.k8s_client import GatewayClient

    return GatewayClient.from_env()


@contextlib.contextmanager
def _gateway_failure(what: str, *also: type[Exception]) -> Iterator[None]:
    """The block's gateway errors (and ``also``) as jupyter-scheduler's error: ``the job gateway <what>: <error>``."""
    from ..jobs.k8s_client import GatewayError

    try:
        yield
    except (GatewayError, *also) as exc:
        raise SchedulerError(f"the job gateway {what}: {exc}") from None


def _reap() -> None:
    """Collect the exit status of finished job processes this server started (no zombies)."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


class WorkbenchScheduler(Scheduler):
    """jupyter-scheduler's ``Scheduler`` whose jobs are workbench runs (see the module docstring)."""

    backend = Enum(("local", "k8s"), "local", help="Where jobs run: local processes or Kubernetes Jobs.").tag(
        config=True
    )
    task_runner_class = TType(
        None, allow_none=True, klass="jupyter_scheduler.task_runner.BaseTaskRunner", help="None: the hub schedules."
    ).tag(config=True)
    python = Unicode(help="The Python that runs local jobs (default: the server's).").tag(config=True)

    @default("python")
    def _python(self) -> str:
        return sys.executable

    # -- checks -------------------------------------------------------------------------------------
    def profile(self, slug: str) -> Profile:
        """The profile ``slug`` (or display name) if the user's groups allow it; else a :class:`SchedulerError`."""
        _, allowed = user_profiles()
        for profile in allowed:
            if slug in (profile.slug, profile.display_name):
                return profile
        names = ", ".join(p.slug for p in allowed) or "none"
        raise SchedulerError(f"environment {slug!r} is not a profile you may use; choose one of: {names}")

    def notebook_path(self, input_uri: str) -> Path:
        """The notebook below the server's root (absolute paths: a job definition's staged copy)."""
        path = Path(input_uri) if os.path.isabs(input_uri) else Path(self.root_dir) / input_uri
        if not path.is_file():
            raise SchedulerError(f"notebook {input_uri!r} does not exist")
        return path

    def validate(self, notebook: Path, parameters: dict[str, str] | None, profile: Profile) -> dict[str, Any]:
        """Check the parameters against the notebook's ``parameters`` cell and the profile against this server.

        Returns the notebook's parameters, typed (the cell's values with ``parameters`` applied).
        """
        from ..jobs.runner import prepare_run

        try:
            typed = prepare_run(notebook, text_params=dict(parameters or {}), workdir=notebook.parent).params
        except ValueError as exc:
            raise SchedulerError(f"{notebook.name}: {exc}") from None
        if self.backend == "local" and profile.gpus:
            held = held_devices()
            if len(held) < profile.gpus:
                raise SchedulerError(
                    f"environment {profile.slug!r} needs {profile.gpus} GPU(s) but this server holds {len(held)}; "
                    "start your server on a GPU profile to run GPU jobs, or choose a CPU profile"
                )
        return typed

    def _checked(self, model: CreateJob | CreateJobDefinition) -> tuple[Profile, Path, dict[str, Any]]:
        """A new job's or job definition's profile, notebook and typed parameters, all checked.

        Its output formats are narrowed to those a workbench run produces (all of them if none is asked).
        """
        profile = self.profile(model.runtime_environment_name)
        notebook = self.notebook_path(model.input_uri)
        typed = self.validate(notebook, model.parameters, profile)
        model.output_formats = [f for f in (model.output_formats or list(OUTPUT_FORMATS)) if f in OUTPUT_FORMATS]
        return profile, notebook, typed

    # -- jobs ---------------------------------------------------------------------------------------
    def create_job(self, model: CreateJob) -> str:
        profile, notebook, typed = self._checked(model)
        with self.db_session() as session:
            job = Job(**model.dict(exclude_none=True, exclude={"input_uri"}), status=Status.QUEUED)
            session.add(job)
            session.commit()
            staging_paths = self.get_staging_paths(DescribeJob.from_orm(job))
            self.copy_input_file(str(notebook), staging_paths["input"])
            try:
                job.pid = self.start(
                    job.job_id, job.name, notebook, model.parameters or {}, profile, staging_paths, typed
                )
            except SchedulerError as exc:
                job.status, job.status_message = Status.FAILED, str(exc)
                session.commit()
                raise
            session.commit()
            return job.job_id

    def start(
        self,
        job_id: str,
        name: str,
        notebook: Path,
        parameters: dict[str, str],
        profile: Profile,
        staging_paths: dict[str, str],
        typed: dict[str, Any],
    ) -> int | None:
        """Start the job on the configured backend; returns the local process id (``None`` on Kubernetes).

        ``parameters`` are the dialog's text (a local job checks them again itself); ``typed`` are the
        notebook's parameters as :meth:`validate` returned them (what a Kubernetes Job is sent).
        """
        staging = Path(staging_paths["input"]).parent
        if self.backend == "k8s":
            self._start_k8s(name, notebook, typed, profile, staging)
            return None
        outputs = {f: p for f, p in staging_paths.items() if f in OUTPUT_FORMATS}
        cmd = [
            self.python, "-m", "workbench.lab.job", "--db-url", self.db_url, "--job-id", job_id,
            "--notebook", str(notebook), "--staging", str(staging), "--outputs", json.dumps(outputs), "--name", name,
        ]  # fmt: skip
        cmd += [arg for key, value in parameters.items() for arg in ("--param", f"{key}={value}")]
        if not profile.gpus:
            cmd += ["--memory-limit", str(profile.mem_limit_bytes)]
        with open(staging / "job.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env={**os.environ, **profile_env(profile)},
                cwd=notebook.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and process group: the server's stop does not reach it
                close_fds=True,
            )
        _CHILDREN[proc.pid] = proc
        write_run_file(staging, backend="local", pid=proc.pid, start=process_start(proc.pid))
        return proc.pid

    def _start_k8s(self, name: str, notebook: Path, values: dict[str, Any], profile: Profile, staging: Path) -> None:
        from ..jobs.k8s_client import notebook_payload

        request = {"notebook": notebook_payload(notebook), "params": values, "name": name, "profile": profile.slug}
        request |= {"gpus": profile.gpus, "secrets": [], "timeout": None, "notify": None}
        with _gateway_failure("refused the job"):
            created = _gateway().submit(request)
        write_run_file(staging, backend="k8s", job=created["name"], summary=created.get("summary", ""))

    def _staging(self, model: Any) -> Path:
        """The staging folder of a job or job definition."""
        return Path(self.get_staging_paths(model)["input"]).parent

    def refresh(self, job: DescribeJob) -> DescribeJob:
        """Bring an active job's status in line with its real process or Kubernetes Job."""
        if job.status not in ACTIVE:
            return job
        info = read_run_file(self._staging(job))
        update: dict[str, Any] = {}
        if info.get("backend") == "local":
            _reap()
            if not is_alive(int(info.get("pid", 0)), info.get("start")):
                fresh = self._describe(job.job_id)
                if fresh.status not in ACTIVE:
                    return fresh
                update = {
                    "status": Status.FAILED,
                    "status_message": "the job's process ended without a result; see job.log",
                }
        elif info.get("backend") == "k8s":
            update = self._k8s_status(info["job"])
        if update:
            self._set(job.job_id, update)
            return self._describe(job.job_id)
        return job

    def _k8s_status(self, name: str) -> dict[str, Any]:
        from ..jobs.k8s_client import GatewayError

        try:
            status = _gateway().status(name)
        except GatewayError as exc:
            return {"status_message": f"job gateway: {exc}"}
        state = status.get("state")
        if state == "running":
            return {"status": Status.IN_PROGRESS}
        if state in ("succeeded", "failed"):
            done = Status.COMPLETED if state == "succeeded" else Status.FAILED
            return {"status": done, "status_message": status.get("summary", "")[:1000]}
        return {}

    def _set(self, job_id: str, values: dict[str, Any]) -> None:
        """Set columns of job ``job_id`` in the job list."""
        with self.db_session() as session:
            session.query(Job).filter(Job.job_id == job_id).update(values)
            session.commit()

    def _describe(self, job_id: str) -> DescribeJob:
        """The job as recorded, without its files and without :meth:`refresh` (jupyter-scheduler's own ``get_job``)."""
        return super().get_job(job_id, job_files=False)

    def get_job(self, job_id: str, job_files: bool | None = True) -> DescribeJob:
        model = self.refresh(self._describe(job_id))
        if job_files:
            self.add_job_files(model=model)
        return model

    def list_jobs(self, query: ListJobsQuery) -> ListJobsResponse:
        _reap()
        response = super().list_jobs(query)
        for i, job in enumerate(response.jobs):
            fresh = self.refresh(job)
            if fresh is not job:  # re-read: the base class gave the listed record its files, not this one
                self.add_job_files(model=fresh)
                response.jobs[i] = fresh
        return response

    def stop_job(self, job_id: str) -> None:
        job = self._describe(job_id)
        if job.status not in ACTIVE:
            return
        info = read_run_file(self._staging(job))
        if info.get("backend") == "local":
            pid = int(info.get("pid", 0))
            if is_alive(pid, info.get("start")):
                os.killpg(pid, signal.SIGTERM)  # the job's own process group: the job and its kernel
        elif info.get("backend") == "k8s":
            with _gateway_failure(f"could not stop {info['job']}"):
                _gateway().stop(info["job"])
        self._set(job_id, {"status": Status.STOPPED})

    def update_job(self, job_id: str, model: Any) -> None:
        if model.status == Status.STOPPED:
            self.stop_job(job_id)
            model.status = None
        super().update_job(job_id, model)

    def delete_job(self, job_id: str) -> None:
        self.stop_job(job_id)
        super().delete_job(job_id)

    # -- schedules ----------------------------------------------------------------------------------
    def create_job_definition(self, model: CreateJobDefinition) -> str:
        profile, notebook, typed = self._checked(model)
        definition_id = super().create_job_definition(model)
        if model.schedule:
            try:
                if self.backend == "k8s":
                    given = {k: typed[k] for k in model.parameters or {}}
                    self._cron_workflow(definition_id, notebook, given, model.schedule, profile)
                else:
                    from .schedules import put_schedule

                    put_schedule(definition_id, model.input_uri, model.parameters or {}, model.schedule, profile.slug)
            except SchedulerError:
                super().delete_job_definition(definition_id)
                raise
        return definition_id

    def _cron_workflow(
        self, definition_id: str, notebook: Path, parameters: dict[str, Any], cron: str, profile: Profile
    ) -> None:
        """On Kubernetes a schedule is a one-step pipeline in calendar mode: a CronWorkflow through the gateway.

        ``parameters``: the values the definition gives, typed.
        """
        import yaml

        from ..jobs.pipeline.argo_follow import pipeline_request
        from ..jobs.pipeline.spec import load_pipeline
        from .schedules import schedule_name

        name = schedule_name(definition_id)
        staging = self._staging(self.get_job_definition(definition_id))
        step = {"notebook": notebook.name, "parameters": parameters, "profile": profile.slug}
        source = staging / f"{name}.yaml"
        source.write_text(yaml.safe_dump({"name": name, "schedule": cron, "steps": {"notebook": step}}))
        shutil.copyfile(notebook, staging / notebook.name)
        with _gateway_failure("refused the schedule", ValueError):
            request = pipeline_request(source, load_pipeline(source), {}, mode="calendar")
            created = _gateway().submit_pipeline(request)
        write_run_file(staging, backend="k8s", pipeline=created["name"])

    def update_job_definition(self, job_definition_id: str, model: UpdateJobDefinition) -> None:
        if self.backend == "k8s" and self.get_job_definition(job_definition_id).schedule:
            raise SchedulerError(
                "a schedule on Kubernetes is a CronWorkflow the job gateway created; it cannot be paused or "
                "changed from here: delete the job definition and create it again"
            )
        super().update_job_definition(job_definition_id, model)
        definition = self.get_job_definition(job_definition_id)
        if definition.schedule:
            from .schedules import put_schedule

            notebook = os.path.relpath(self.get_staging_paths(definition)["input"], self.root_dir)
            source = model.input_uri or self._schedule_notebook(definition, notebook)
            put_schedule(
                job_definition_id,
                source,
                definition.parameters or {},
                definition.schedule,
                definition.runtime_environment_name,
                enabled=definition.active,
            )

    def _schedule_notebook(self, definition: Any, fallback: str) -> str:
        from .schedules import get_schedule

        return (get_schedule(definition.job_definition_id) or {}).get("notebook", fallback)

    def delete_job_definition(self, job_definition_id: str) -> None:
        definition = self.get_job_definition(job_definition_id)
        info = read_run_file(self._staging(definition))
        super().delete_job_definition(job_definition_id)
        if info.get("backend") == "k8s":
            with _gateway_failure(f"could not delete {info['pipeline']}"):
                _gateway().stop_pipeline(info["pipeline"])
        elif definition.schedule:
            from .schedules import delete_schedule

            delete_schedule(job_definition_id)
