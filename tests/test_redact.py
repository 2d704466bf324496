"""Secrets hidden by pattern in whatever we print: URLs, error messages, log records."""

import logging

import pytest

from workbench._redact import redact, redact_logging, redact_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # URL user info, with and without a password
        ("GET https://ana:hunter2@host:8443/api failed", "GET https://***@host:8443/api failed"),
        ("git clone https://ghp_S3CR3T@github.com/o/r.git", "git clone https://***@github.com/o/r.git"),
        # query strings and fragments, in a URL or in a bare request path
        ("http://h/api?token=S3CR3T&page=2#x", "http://h/api?token=***&page=***#x"),
        ("url: /?token=S3CR3T/api/2.0/runs&experiment=e (Caused by", "url: /?token=***&experiment=*** (Caused by"),
        ("callback#access_token=S3CR3T&state=1", "callback#access_token=***&state=***"),
        # secret-named parameters: flags, assignments, YAML, JSON and Python reprs
        ("workbench hub --token S3CR3T --port 1", "workbench hub --token *** --port 1"),
        ("--api-key=S3CR3T", "--api-key=***"),
        ("token=S3CR3T other", "token=*** other"),
        ("api_key: S3CR3T", "api_key: ***"),
        ('{"password": "S3CR3T", "user": "ana"}', '{"password": "***", "user": "ana"}'),
        ("{'client_secret': 'S3CR3T'}", "{'client_secret': '***'}"),
        (
            "JUPYTERHUB_API_TOKEN=S3CR3T AWS_SECRET_ACCESS_KEY=S3CR3T2",
            "JUPYTERHUB_API_TOKEN=*** AWS_SECRET_ACCESS_KEY=***",
        ),
        ("X-Api-Key: S3CR3T", "X-Api-Key: ***"),
        # authorization headers
        ("Authorization: Bearer S3CR3T.jwt", "Authorization: ***"),
        ('headers={"Authorization": "token S3CR3T"}', 'headers={"Authorization": "***"}'),
        ("sent Bearer S3CR3T", "sent Bearer ***"),
    ],
)
def test_each_secret_pattern_is_hidden(text, shown):
    assert redact(text) == shown
    assert "S3CR3T" not in redact(text)
    assert redact(redact(text)) == redact(text)  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "parameter 'lr' expects float (declared in the parameters cell); got 'x': pass a number such as 0.1",
        "profiles.yaml: unknown key: gpu; the token file /etc/hub/token is missing",
        "the secret kaggle-api was not found in namespace 'ml'",
        "sqlite:////srv/mlflow/mlflow.db",
        "see http://127.0.0.1:5000/#/experiments/1",
    ],
)
def test_ordinary_messages_are_left_alone(text):
    assert redact(text) == text


def test_urls_shown_as_scheme_host_and_optionally_path():
    assert redact_url("https://hooks.slack.com/services/T/B/xyz?token=1") == "https://hooks.slack.com/…"
    assert redact_url("http://ana:pw@mlflow:5000/track?token=SECRET#f", keep_path=True) == "http://mlflow:5000/track"
    assert redact_url("http://a:b@[::1]:5000/m?t=1") == "http://[::1]:5000/…"
    assert redact_url("sqlite:////srv/mlflow.db", keep_path=True) == "sqlite:////srv/mlflow.db"
    assert redact_url("http://host:99999999/x") == "…"  # unparsable port: nothing of it shown


def test_log_records_are_redacted_whoever_prints_them(caplog):
    redact_logging()
    redact_logging()  # once is enough; twice changes nothing
    with caplog.at_level(logging.WARNING):
        logging.getLogger("urllib3.connectionpool").warning(
            "Retrying after %s: %s", "connection broken", "/api?token=SECRET"
        )
        logging.getLogger().error("exec: process returned 1. login failed for --token SECRET")
    assert "SECRET" not in caplog.text
    assert "/api?token=***" in caplog.text and "--token ***" in caplog.text
