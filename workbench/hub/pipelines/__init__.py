"""The pipelines service: calendar and webhook modes of pipelines on one machine, and users' own schedules.

A hub service (``pipelines``, at ``/services/pipelines/``) started by
:func:`workbench.hub.configure` in local mode. It

- loads the *declared* pipelines, one pipeline file per application in the hub's pipelines folder
  (``workbench hub --pipelines-dir DIR``, ``$WORKBENCH_HUB_PIPELINES_DIR``; default
  ``<state-dir>/pipelines``), each validated at start: a bad file is reported (status page and
  ``GET api/pipelines``) and skipped, never fatal for the hub;
- starts a declared pipeline with a ``schedule:`` at its cron times (UTC), and one with a
  ``webhook:`` on an authenticated ``POST``; team pipelines run as the owner :data:`TEAM_OWNER`
  (runs-root folder ``team-2f-pipelines``; no hub user name holds a ``/``), as its own system
  account when the hub runs as root (never as root itself);
- keeps the users' own schedules (a notebook or a pipeline of their home, with parameters, a cron
  and a profile; what JupyterLab's scheduler saves) and fires them from the same calendar, each run
  executing as that user's system account with that user's runs folder, whether or not the user's
  server is running.

Calendar rules: a missed fire while the hub was down is not replayed as a backlog; at most one
catch-up run starts when the service comes back (if a fire fell due since the last one recorded).
A run never overlaps itself: a fire while the previous run of the same pipeline (or schedule) is
still running is skipped, and the skip is recorded (``skipped`` notes in the status).

Every run records what started it, as the executor's ``trigger``:
``{"kind": "schedule", "by": "<cron>", ...}``, ``{"kind": "webhook", "by": "<token owner>", ...}``
or ``{"kind": "user", "by": "<user>", ...}``, plus ``"id"``, the launch id below.

HTTP API (below ``/services/pipelines/``; JSON bodies; errors ``{"error": "..."}``). Every ``api/``
route authenticates a hub API token, ``Authorization: token <token>``: no token or one the hub does
not accept is **401**; a token without the route's scope is **403**.

Scopes (custom scopes the hub defines):

- :data:`TRIGGER_SCOPE` ``custom:workbench-pipelines:trigger``: start webhook runs. Granted by the
  role ``workbench-pipelines-trigger`` to the members of the hub group ``pipeline-triggers``: an
  admin adds a user (e.g. ``ci-bot``) to that group and issues it a token with that scope
  (``POST /hub/api/users/ci-bot/tokens`` with ``{"scopes": ["custom:workbench-pipelines:trigger"]}``).
- :data:`SCHEDULES_SCOPE` ``custom:workbench-pipelines:schedules``: manage one's own schedules.
  Every user has it (role ``user``), and so does every notebook server's ``$JUPYTERHUB_API_TOKEN``.
- Admin: a token with ``admin:users`` (an admin's full token) may list and read every user's
  schedules and delete them; it creates schedules only for its own user.

Routes:

``GET /services/pipelines/``
    Status page (hub login): declared pipelines, load errors, schedules, recent launches.
``GET api/pipelines``  (any accepted token)
    ``{"pipelines": [{"name", "file", "schedule", "next_fire", "webhook": {"parameters": [...]} | null}],
    "errors": [{"file", "error"}]}``.
``POST api/pipelines/<name>/runs``  (:data:`TRIGGER_SCOPE`)
    Body ``{"parameters": {"<name>": <value>, ...}}`` (optional; a string value is taken as on the
    command line's ``-p``, any other JSON value as its YAML/JSON text). Only parameters the
    pipeline's ``webhook:`` allows; values checked against the declared types. **202**
    ``{"id": "<launch id>", "pipeline": "<name>", "owner", "trigger": {...}, "state": "running",
    "run": "<pipeline run id>"}`` (answered once the pipeline run folder exists; ``run`` is null if
    that takes over 20 s, and ``GET api/runs/<id>`` gives it later);
    **400** naming the parameter; **404** unknown pipeline or one without ``webhook:``;
    **409** its previous run is still running.
``GET api/runs/<launch id>``  (any accepted token of the launch's requester or owner, or admin)
    ``{"id", "key", "pipeline", "owner", "trigger", "state": "running"|"succeeded"|"failed"|"interrupted",
    "returncode", "run": "<pipeline run id>"|null, "error", "uid", "pid", "started", "finished"}``
    (``uid``: the user id the run executed as; ``run``: the pipeline run whose ``trigger.id`` is the
    launch id). Launches are kept in the service's state folder (the last 500), so they outlive a
    restart of the service; one whose process ended while the service was down is settled from its
    pipeline run (``interrupted`` when that did not finish).
``GET api/runs``  (any accepted token)
    ``{"launches": [<launch>, ...]}``, newest first: those the caller requested or owns; an admin's
    token: all.
``GET api/schedules``  (:data:`SCHEDULES_SCOPE`)
    ``{"schedules": [<schedule>, ...]}``: one's own; an admin's token: everyone's.
``GET api/schedules/<user>``  (:data:`SCHEDULES_SCOPE`; own, or admin)
``GET api/schedules/<user>/<name>``  (own, or admin) → ``<schedule>``; **404** if none.
``PUT api/schedules/<user>/<name>``  (:data:`SCHEDULES_SCOPE`; own only)
    Create or replace. Body, one of::

        {"cron": "0 6 * * 1-5", "notebook": "work/train.ipynb", "parameters": {"n_estimators": 300},
         "profile": "cpu-small", "enabled": true, "description": "..."}
        {"cron": "0 6 * * *", "pipeline": "work/pipeline.yaml", "parameters": {...}, "profile": "..."}

    ``notebook``/``pipeline`` is a path relative to the user's home (no ``..``, no absolute path,
    no symlink leaving the home); ``parameters`` are checked against the notebook's (or the
    pipeline's) parameters before saving; ``profile`` must be one the user's groups may use
    (default: the default profile). A notebook schedule is a one-step pipeline named ``<name>``.
    **200** (replaced) or **201** (created) with the stored ``<schedule>``; **400** naming the
    problem; **403** for another user's name.
``DELETE api/schedules/<user>/<name>``  (own, or admin) → **204**; **404** if none.
``POST api/schedules/<user>/<name>/runs``  (:data:`SCHEDULES_SCOPE`; own only) → **202** launch, as for webhooks
    (trigger ``{"kind": "user", "by": "<user>"}``): "run now".

``<schedule>``: ``{"user", "name", "cron", "notebook"|"pipeline", "parameters", "profile", "enabled",
"description", "created", "updated", "next_fire", "last": {"id", "state", "fired"}|null}``.
Names (``<name>``) match ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``; a user holds at most
:data:`MAX_SCHEDULES` schedules; a body is at most 64 KiB.

On Kubernetes the calendar and webhook modes of declared pipelines are Argo's (``CronWorkflow``,
``WorkflowEventBinding``); this service runs in local mode only.
"""

SERVICE = "pipelines"
"""The service's name in the hub (its prefix is ``/services/pipelines/``)."""

TRIGGER_SCOPE = "custom:workbench-pipelines:trigger"
"""The custom scope a hub token needs to start a declared pipeline's webhook run."""

SCHEDULES_SCOPE = "custom:workbench-pipelines:schedules"
"""The custom scope a hub token needs to manage its user's own schedules."""

ADMIN_SCOPE = "admin:users"
"""A token with this scope acts as an admin here (lists and reads everyone's schedules)."""

TRIGGER_GROUP = "pipeline-triggers"
"""Hub group whose members may hold :data:`TRIGGER_SCOPE` tokens."""

TEAM_OWNER = "team/pipelines"
"""The owner of the declared (team) pipelines' runs: a name no hub user can have (``/``)."""

MAX_SCHEDULES = 50
"""Most schedules one user may hold."""

__all__ = [
    "ADMIN_SCOPE",
    "MAX_SCHEDULES",
    "SCHEDULES_SCOPE",
    "SERVICE",
    "TEAM_OWNER",
    "TRIGGER_GROUP",
    "TRIGGER_SCOPE",
]
