"""Slack-compatible webhook messages: a real local HTTP server receives them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from workbench.jobs.notify import notify_url, post_message, redact_url, run_message, sweep_message
from workbench.runs import RunRecord


class Webhook:
    """A local HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def test_run_message_reaches_the_webhook(webhook, tmp_path):
    rec = RunRecord(
        path=tmp_path / "20250101-000000-train-abc123",
        run_id="abc123",
        name="train",
        notebook="t.ipynb",
        state="succeeded",
        duration_s=75.5,
        metrics={"cv_auc": 0.851234567, "folds": [1, 2], "rows": 10},
    )
    assert post_message(webhook.url, run_message(rec))
    path, body = webhook.received[0]
    assert path == "/services/T000/B000/secret-token"
    assert "train" in body["text"] and "succeeded" in body["text"] and "1m15.5s" in body["text"]
    assert "cv_auc=0.851235" in body["text"] and "rows=10" in body["text"] and str(rec.path) in body["text"]
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*cv_auc*\n0.851235", "*rows*\n10"]


def test_failed_run_and_sweep_messages(webhook, tmp_path):
    rec = RunRecord(
        path=tmp_path,
        run_id="x",
        name="stack",
        notebook="s.ipynb",
        state="failed",
        duration_s=3.0,
        error={"summary": "cell 3 raised KeyError: 'oof'"},
    )
    post_message(webhook.url, run_message(rec))
    rows = [
        {"run": "r1", "state": "succeeded", "param.lr": 0.1, "metric.score": 0.9},
        {"run": "r2", "state": "failed", "param.lr": 0.3, "metric.score": None},
    ]
    post_message(webhook.url, sweep_message("lr-sweep", rows, 12.0, "/runs", sort="score"))
    (_, failed), (_, swept) = webhook.received
    assert "failed" in failed["text"] and "cell 3 raised KeyError" in failed["text"]
    assert "1 of 2 runs succeeded" in swept["text"] and "best by score: r1 score=0.9 (lr=0.1)" in swept["text"]


def test_a_dead_webhook_warns_without_leaking_the_url(capsys):
    dead = "http://127.0.0.1:9/services/T000/B000/secret-token"  # port 9 (discard): nothing listens
    assert post_message(dead, {"text": "hello"}, timeout=2) is False
    err = capsys.readouterr().err
    assert "notification to http://127.0.0.1:9/… failed" in err and "secret-token" not in err
    assert redact_url("https://hooks.slack.com/services/T/B/xyz?token=1") == "https://hooks.slack.com/…"
    assert post_message("http://ana:S3CR3T@127.0.0.1:9/hook?token=S3CR3T", {"text": "x"}, timeout=2) is False
    assert "S3CR3T" not in capsys.readouterr().err


def test_notify_url_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORKBENCH_NOTIFY_URL", raising=False)
    assert notify_url(None) is None
    monkeypatch.setenv("WORKBENCH_NOTIFY_URL", "https://example.invalid/hook")
    assert notify_url(None) == "https://example.invalid/hook" and notify_url("http://x/y") == "http://x/y"


def test_after_run_hooks_never_fail_the_run(webhook, tmp_path, monkeypatch):
    """MLflow logging (when configured) and the webhook run after each run; their failures only warn."""
    import sys
    import types

    from workbench.jobs.runner import _after_run

    rec = RunRecord(path=tmp_path, run_id="x", name="train", notebook="t.ipynb", state="succeeded", duration_s=1.0)
    calls = []
    fake = types.ModuleType("workbench.jobs.mlflow_sync")
    fake.log_run = lambda run_dir: calls.append(run_dir) or "mlflow-run-id"
    monkeypatch.setitem(sys.modules, "workbench.jobs.mlflow_sync", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _after_run(rec, webhook.url)
    assert calls == [] and len(webhook.received) == 1  # no tracking URI: MLflow is not touched
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}/mlruns")
    _after_run(rec, None)
    assert calls == [tmp_path]

    def broken(run_dir):
        raise ConnectionError("tracking server down")

    fake.log_run = broken
    with pytest.warns(UserWarning, match="logging run .* to MLflow failed: ConnectionError"):
        _after_run(rec, None)
    monkeypatch.setitem(sys.modules, "workbench.jobs.mlflow_sync", None)  # not installed: skipped silently
    _after_run(rec, None)
