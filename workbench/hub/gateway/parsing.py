"""Reading a gateway request: its size, its JSON, an object of known fields, and the fields' types.

Shared by every route that takes a body (:mod:`.policy` for Jobs and studies, :mod:`.pipelines`),
so each refuses a hostile body the same way. A refusal is a :class:`Refused` with the HTTP status
and a sentence naming the problem and the way out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..._checks import InvalidParameterError, check_whole_number

MAX_BODY_BYTES = 2 * 1024 * 1024
"""The largest body a handler reads; a larger one is refused with 413."""

SERVER_BODY_CAP = 2 * MAX_BODY_BYTES
"""What the HTTP server reads at most; it drops a larger body unread (tornado's bare 400)."""


class Refused(Exception):
    """A request the gateway will not carry out: ``status`` (400, 403, 404, 413, 502) and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def bad(message: str) -> Refused:
    """A 400 refusal: the request itself is malformed."""
    return Refused(400, message)


def check_size(body: bytes, limit: int = MAX_BODY_BYTES) -> None:
    """Refuse (413) a body over ``limit`` bytes."""
    if len(body) > limit:
        raise Refused(
            413,
            f"the request body is {len(body)} bytes; the gateway takes at most {limit} "
            "(ship smaller notebooks: clear their outputs, or read data from the runs volume)",
        )


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise bad(f"the number {text[:40]} is too large for a float; send a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise bad(f"the request body holds {name}, which is not JSON; send a finite number or null")


def decode_json(body: bytes, limit: int = MAX_BODY_BYTES) -> Any:
    """The body's JSON value: at most ``limit`` bytes (413), strict JSON without NaN or Infinity (400).

    Examples
    --------
    >>> decode_json(b'{"gpus": 1}')
    {'gpus': 1}
    >>> decode_json(b'{"gpus": NaN}')
    Traceback (most recent call last):
    ...
    workbench.hub.gateway.parsing.Refused: the request body holds NaN, which is not JSON; send a finite number or null
    """
    check_size(body, limit)
    try:
        return json.loads(body or b"null", parse_constant=_no_constant, parse_float=_finite)
    except ValueError:
        raise bad("the request body is not JSON") from None
    except RecursionError:
        raise bad("the request body nests too deeply; send a flat JSON object") from None


def json_object(body: Any, fields: Iterable[str], what: str) -> Mapping[str, Any]:
    """``body`` when it is a JSON object with no field outside ``fields`` (400 otherwise)."""
    if not isinstance(body, Mapping):
        raise bad("the request body must be a JSON object")
    allowed = set(fields)
    unknown = set(body) - allowed
    if unknown:
        raise bad(f"unknown fields {sorted(unknown)}; a {what} has only {sorted(allowed)}")
    return body


def name_list(value: Any, message: str) -> tuple[str, ...]:
    """A list of strings (absent or null: none) as a tuple; ``message`` is the 400's sentence."""
    value = value or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(message)
    return tuple(value)


def optional_text(value: Any, message: str) -> str | None:
    """A string or ``None``; ``message`` is the 400's sentence."""
    if value is not None and not isinstance(value, str):
        raise bad(message)
    return value


def whole(value: Any, what: str, minimum: int) -> int:
    """A whole number of at least ``minimum``; JSON's ``2.0`` counts as 2 (400 otherwise)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return check_whole_number(value, what, minimum)
    except InvalidParameterError as exc:
        raise bad(str(exc)) from None
