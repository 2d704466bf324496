"""The gateway's request reading, fed what an attacker would send: a huge body, JSON that is no
object, wrong types, NaN and Infinity, numbers too large for a float, nesting deep enough to break
a recursive parser. Each is refused with its status and a sentence; the served app refuses an
oversized body before it asks the hub about the token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workbench.hub.config import free_port
from workbench.hub.gateway.app import Gateway, listen, make_app
from workbench.hub.gateway.parsing import (
    MAX_BODY_BYTES,
    SERVER_BODY_CAP,
    Refused,
    decode_json,
    json_object,
    name_list,
    optional_text,
    whole,
)
from workbench.hub.gateway.pipelines import parse_pipeline_request
from workbench.hub.gateway.policy import parse_request
from workbench.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
JOB = {"notebook": {"path": "/opt/nb.ipynb"}, "name": "churn", "params": {"lr": 0.1}}
PIPELINE = {"pipeline": {"name": "p.yaml", "content": "steps: []"}, "notebooks": {}}


def _refused(call, *args) -> Refused:
    with pytest.raises(Refused) as err:
        call(*args)
    return err.value


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_decoded():
    huge = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    err = _refused(decode_json, huge)
    assert err.status == 413 and f"{len(huge)} bytes" in err.reason and f"at most {MAX_BODY_BYTES}" in err.reason
    assert decode_json(b'{"name": "' + b"x" * (MAX_BODY_BYTES - 20) + b'"}')["name"].startswith("xxx")


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{not json", "the request body is not JSON"),
        (b"\xff\xfe{}", "the request body is not JSON"),
        (b'{"gpus": 1' + b"0" * 5000 + b"}", "the request body is not JSON"),  # past int's digit limit
        (b'{"params": {"lr": NaN}}', "holds NaN, which is not JSON"),
        (b'{"gpus": Infinity}', "holds Infinity, which is not JSON"),
        (b'{"params": {"lr": -Infinity}}', "holds -Infinity, which is not JSON"),
        (b'{"params": {"lr": 1e400}}', "the number 1e400 is too large for a float"),
        (b"[" * 200_000 + b"]" * 200_000, "nests too deeply"),
    ],
)
def test_bodies_that_are_not_strict_json_are_refused(raw, reason):
    err = _refused(decode_json, raw)
    assert err.status == 400 and reason in err.reason


def test_an_empty_body_is_null_and_plain_json_decodes():
    assert decode_json(b"") is None
    assert decode_json(b'{"gpus": 2.0, "params": {"lr": 0.5}}') == {"gpus": 2.0, "params": {"lr": 0.5}}


@pytest.mark.parametrize("body", [None, [], [JOB], "job", 3, True])
def test_both_parsers_refuse_json_that_is_not_an_object(body):
    for parse in (parse_request, parse_pipeline_request):
        err = _refused(parse, body)
        assert (err.status, err.reason) == (400, "the request body must be a JSON object")


def test_unknown_fields_are_named_with_the_fields_allowed():
    err = _refused(json_object, {"name": "x", "spec": {}, "image": "evil"}, {"name"}, "job request")
    assert err.reason == "unknown fields ['image', 'spec']; a job request has only ['name']"
    assert "a pipeline request has only" in _refused(parse_pipeline_request, {**PIPELINE, "spec": {}}).reason


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"secrets": "kaggle-api"}, "secrets must be a list of Secret names"),
        ({"secrets": ["ok", 3]}, "secrets must be a list of Secret names"),
        ({"secrets": {"name": "kaggle-api"}}, "secrets must be a list of Secret names"),
        ({"profile": ["cpu-small"]}, "profile must be a profile slug or null"),
        ({"notify": 1}, "notify must be a webhook URL or null"),
        ({"gpus": "1"}, "gpus must be a whole number >= 0, got '1'"),
        ({"gpus": True}, "gpus must be a whole number >= 0, got True"),
        ({"gpus": 1.5}, "gpus must be a whole number >= 0, got 1.5"),
        ({"gpus": -1}, "gpus must be a whole number >= 0, got -1"),
        ({"gpus": float("nan")}, "gpus must be a whole number >= 0, got nan"),
        ({"timeout": 0}, "timeout must be a whole number >= 1, got 0"),
        ({"timeout": float("inf")}, "timeout must be a whole number >= 1, got inf"),
        ({"timeout": [600]}, "timeout must be a whole number >= 1, got [600]"),
    ],
)
def test_a_job_request_with_a_field_of_the_wrong_type_is_refused(override, reason):
    err = _refused(parse_request, {**JOB, **override})
    assert (err.status, err.reason) == (400, reason)


def test_the_pipeline_request_refuses_wrong_types_with_the_same_sentences():
    for secrets in ("kaggle-api", [None]):
        err = _refused(parse_pipeline_request, {**PIPELINE, "secrets": secrets})
        assert (err.status, err.reason) == (400, "secrets must be a list of Secret names")


def test_good_values_pass_through():
    req = parse_request({**JOB, "gpus": 2.0, "timeout": 600, "secrets": ["kaggle-api"], "profile": None})
    assert (req.gpus, type(req.gpus), req.timeout, req.secrets, req.profile) == (2, int, 600, ("kaggle-api",), None)
    assert parse_pipeline_request({**PIPELINE, "secrets": None}).secrets == ()
    assert name_list(None, "m") == () and optional_text("x", "m") == "x" and whole(0, "gpus", 0) == 0


@pytest.mark.asyncio
async def test_the_served_gateway_refuses_an_oversized_body_before_asking_the_hub():
    """No hub behind it (``hub_auth=None``): a body that reached the token check would fail with 500."""
    gw = Gateway(profiles=load_profiles(ROOT / "hub" / "profiles.yaml"), namespace="ns", api=None, hub_auth=None)
    port = free_port()
    server = listen(make_app(gw), port, "127.0.0.1")

    def post(size: int) -> tuple[int, bytes]:
        data = json.dumps({"name": "x" * size}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/services/job-gateway/api/jobs", data=data)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (ConnectionError, urllib.error.URLError):
            return 0, b""  # the server dropped the connection unread

    try:
        status, body = await asyncio.to_thread(post, MAX_BODY_BYTES + 1)
        assert status == 413 and "the gateway takes at most" in json.loads(body)["error"]
        for path in ("api/tunes", "api/pipelines"):
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/services/job-gateway/{path}", data=b"[" * (MAX_BODY_BYTES + 1)
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                await asyncio.to_thread(urllib.request.urlopen, req, None, 30)
            assert err.value.code == 413
        status, body = await asyncio.to_thread(post, SERVER_BODY_CAP + 1)
        assert status in (0, 400) and b"{" not in body  # never read, never parsed
    finally:
        server.stop()
