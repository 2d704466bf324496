"""``POST api/tunes``: a tuning study as an Indexed Job, checked like any notebook Job.

The body is a job request (notebook, params, name, profile, gpus, secrets) plus ``tune``: the
study's space, metric, direction, trials, sampler, pruner, seed, parallelism and workers per pod.
The gateway renders the Indexed Job itself (:func:`workbench.jobs.tune.k8s.render_tune_job`);
the GPUs it asks for count once per pod against ``max_gpus_per_user``. ``tune.storage`` names the
Secret (and key) holding the study's database URL, which must be on the profile's allow-list like
every other Secret, or a database URL without credentials; left out, the study's journal is the one
in the owner's own folder of the runs volume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from ...jobs.tune.k8s import TuneSpec, parse_tune_spec, render_tune_job
from .app import JobsHandler, _render
from .policy import JobRequest, Refused, parse_request


@dataclass(frozen=True)
class TuneRequest(JobRequest):
    """A job request with its study."""

    tune: TuneSpec | None = None


class TunesHandler(JobsHandler):
    def parse(self, body: Any) -> JobRequest:
        if not isinstance(body, dict) or "tune" not in body:
            raise Refused(400, "a tune request needs 'tune': {space, metric, study, ...}")
        rest = {k: v for k, v in body.items() if k != "tune"}
        if rest.get("timeout") is not None or rest.get("notify") is not None:
            raise Refused(400, "a study takes tune.timeout and tune.trial_timeout, not timeout or notify")
        req = parse_request(rest)
        try:
            spec = parse_tune_spec(body["tune"])
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        return TuneRequest(**{f: getattr(req, f) for f in JobRequest.__dataclass_fields__}, tune=spec)

    def secrets(self, req: JobRequest) -> tuple[str, ...]:
        assert isinstance(req, TuneRequest) and req.tune is not None
        storage = req.tune.storage
        return (*req.secrets, storage.secret) if storage is not None and storage.secret else req.secrets

    def pods(self, req: JobRequest) -> int:
        assert isinstance(req, TuneRequest) and req.tune is not None
        return req.tune.parallelism

    def render(self, req: JobRequest, slug: str) -> Any:
        assert isinstance(req, TuneRequest) and req.tune is not None
        tune_job = partial(render_tune_job, spec=req.tune)
        return _render(self.gateway, replace(req, name=req.tune.study), slug, self.user, tune_job)
