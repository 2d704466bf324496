"""Hiding secrets in text we print: error messages, URLs, warnings.

:func:`redact` hides, wherever they appear in a message: URL user info
(``https://user:pass@host``), query-string and fragment values (``?token=…&x=…``), values of
secret-looking names (``--token X``, ``token=X``, ``api_key: X``, ``"password": "X"``) and
credentials after ``Authorization:`` or ``Bearer``. :func:`redact_url` shortens one URL to what
is safe to show. Hidden values read ``***``, so a reader still sees which part was removed.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

HIDDEN = "***"

# Names whose values are secrets: *token*, *secret*, *password*/passwd/pwd, *apikey, and *_key / *-key
# (api_key, x-api-key, access_key, ssh_key); a bare "key" is left alone ("unknown key: gpu").
_NAME = r"[\w.-]*(?:token|secret|passw(?:or)?d|pwd|apikey|[_-]key|credentials?)"
_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|[^\s"',;&}\]]+)"""
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host or scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@"), rf"\1{HIDDEN}@"),
    # Authorization: Bearer X / Basic X / token X (header, dict or keyword form)
    (re.compile(r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)(?:\w+\s+)?[^\s"',;}]+"""), rf"\1{HIDDEN}"),
    (re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+"), rf"\1{HIDDEN}"),
    # --token X, --token=X, -password X
    (re.compile(rf"(?i)(?<![\w-])(--?{_NAME})(=|\s+)(?!-){_VALUE}"), rf"\1\2{HIDDEN}"),
    # "password": "X", {'token': 'X'}, api_key = "X"
    (re.compile(rf"""(?i)(\b{_NAME}["']?\s*[:=]\s*)(["'])[^"'\n]*\2"""), rf"\1\2{HIDDEN}\2"),
    # token=X, api_key: X
    (re.compile(rf"""(?i)(\b{_NAME}["']?\s*[:=]\s*)(?![\s"']|{re.escape(HIDDEN)}){_VALUE}"""), rf"\1{HIDDEN}"),
    # every other query-string or fragment value: ?a=1&b=2, #access_token=...
    (re.compile(r"([?&#;][\w.~%+-]+=)(?!\*\*\*)[^&#\s\"'<>]+"), rf"\1{HIDDEN}"),
)


def redact(text: str) -> str:
    """``text`` with secrets hidden: URL user info, query values, secret-named values, auth headers.

    Parameters
    ----------
    text : str
        Anything about to be printed: an error message, a URL, a command line.

    Returns
    -------
    str
        The same text with each secret replaced by ``***``.

    >>> redact("GET https://ana:pw@host/api?token=abc&page=2 failed")
    'GET https://***@host/api?token=***&page=*** failed'
    >>> redact("run --token abc --api-key=xyz, password: hunter2")
    'run --token *** --api-key=***, password: ***'
    """
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str, *, keep_path: bool = False) -> str:
    """``url`` reduced to what is safe to show: never user info, query or fragment.

    Parameters
    ----------
    url : str
        A URL that may hold credentials (webhook paths, tokens in the query, ``user:password@``).
    keep_path : bool
        Keep the path (a tracking server's ``/mlflow``, a ``sqlite:///file``); by default the
        path is shown as ``…``, since webhook paths are secrets themselves.

    Returns
    -------
    str
        ``scheme://host[:port]/…`` or, with ``keep_path``, ``scheme://host[:port]/path``.

    >>> redact_url("https://hooks.example.com/services/abc/def")
    'https://hooks.example.com/…'
    >>> redact_url("http://ana:pw@mlflow:5000/api?token=abc", keep_path=True)
    'http://mlflow:5000/api'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unparsable netloc or port: show nothing of it
        return "…"
    hostname = parts.hostname or ""
    host = (f"[{hostname}]" if ":" in hostname else hostname) + (f":{port}" if port else "")
    if keep_path:
        return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path
    return f"{parts.scheme or '?'}://{host or '?'}/…"


def redact_logging() -> None:
    """Hide secrets in every log record this process creates from now on.

    Libraries log what they were doing when something failed (urllib3 retries with the request
    path and query, a Kubernetes credential plugin's error output); this redacts each record's
    message as it is made, whichever handler prints it. Calling it again does nothing.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return record
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
