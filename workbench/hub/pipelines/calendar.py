"""The calendar: fire each entry at its cron times, from a loop whose clock and sleep are injected.

Times are UTC. Each entry remembers when it last fired (kept in a small JSON state file when one is
given), so that after a restart a fire that fell due while the service was down is made up once,
never as a backlog: the next fire after that is the first cron time after *now*.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..._io import atomic_write_json

log = logging.getLogger("workbench.hub.pipelines")

Fire = Callable[[str, datetime], Any]
"""``fire(key, due)``: start what entry ``key`` names; may be a coroutine function."""

MAX_SLEEP = 30.0
"""Longest the loop sleeps between looks at the clock (seconds)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def check_cron(cron: Any) -> str:
    """``cron`` if it is a valid five-field cron expression; ``ValueError`` naming the problem otherwise.

    Examples
    --------
    >>> check_cron("*/15 6-18 * * 1-5")
    '*/15 6-18 * * 1-5'
    >>> check_cron("61 * * * *")
    Traceback (most recent call last):
    ...
    ValueError: cron '61 * * * *' is not a valid cron expression (five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * 1-5')
    """
    from croniter import croniter

    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValueError(
            f"cron {cron!r} is not a valid cron expression (five fields: minute hour day-of-month month "
            "day-of-week, e.g. '0 6 * * 1-5')"
        )
    return cron


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that matches ``cron`` (UTC).

    Examples
    --------
    >>> next_fire("0 6 * * *", datetime(2026, 1, 1, 6, 0, tzinfo=UTC)).isoformat()
    '2026-01-02T06:00:00+00:00'
    """
    from croniter import croniter

    return croniter(cron, after.astimezone(UTC)).get_next(datetime).astimezone(UTC)


@dataclass
class Entry:
    """One calendar entry: its cron, what it fires, and when it fires next."""

    key: str
    cron: str
    fire: Fire
    next: datetime
    last: datetime | None = None


class Calendar:
    """Entries fired at their cron times by :meth:`run`; ``now`` and ``sleep`` are injectable.

    Parameters
    ----------
    now
        The clock (timezone-aware).
    sleep
        ``await sleep(seconds)``; the loop sleeps at most :data:`MAX_SLEEP` at a time, and a change of
        entries wakes it.
    state
        JSON file remembering each entry's last fire (cron and time), for catch-up after a restart.

    Examples
    --------
    >>> fired = []
    >>> clock = [datetime(2026, 1, 1, 5, 59, 30, tzinfo=UTC)]
    >>> cal = Calendar(now=lambda: clock[0])
    >>> cal.set("nightly", "0 6 * * *", lambda key, due: fired.append((key, due.hour))).next.hour
    6
    >>> clock[0] = datetime(2026, 1, 1, 6, 0, 1, tzinfo=UTC)
    >>> _ = asyncio.run(cal.tick())
    >>> fired
    [('nightly', 6)]
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        self.now, self.sleep = now, sleep
        self.state = Path(state) if state is not None else None
        self.entries: dict[str, Entry] = {}
        self._remembered = self._read_state()
        self._wake: asyncio.Event | None = None

    def _read_state(self) -> dict[str, dict[str, str]]:
        if self.state is None or not self.state.is_file():
            return {}
        try:
            data = json.loads(self.state.read_text())
        except (OSError, ValueError) as exc:
            log.warning("calendar state %s unreadable (%s); no catch-up fires", self.state, exc)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def _write_state(self) -> None:
        if self.state is not None:
            atomic_write_json(self.state, self._remembered, mode=0o600)

    def set(self, key: str, cron: str, fire: Fire) -> Entry:
        """Add or replace entry ``key``; its next fire follows its last recorded fire with the same cron.

        A fire that fell due between that last fire and now is due at once (one catch-up); with no
        record, or a changed cron, the entry starts from now.
        """
        check_cron(cron)
        now = self.now()
        last = None
        seen = self._remembered.get(key)
        if seen and seen.get("cron") == cron:
            try:
                last = datetime.fromisoformat(seen["last"])
            except (KeyError, TypeError, ValueError):
                last = None
        current = self.entries.get(key)
        if current is not None and current.cron == cron:
            entry = Entry(key, cron, fire, current.next, current.last)
        else:
            entry = Entry(key, cron, fire, next_fire(cron, last or now), last)
        self.entries[key] = entry
        self._poke()
        return entry

    def remove(self, key: str) -> None:
        """Forget entry ``key`` (and its last fire)."""
        self.entries.pop(key, None)
        if self._remembered.pop(key, None) is not None:
            self._write_state()
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def tick(self) -> list[tuple[str, Any]]:
        """Fire every entry that is due now, once each; returns ``(key, what fire returned)``."""
        now = self.now()
        done = []
        for entry in [e for e in self.entries.values() if e.next <= now]:
            due = entry.next
            entry.last, entry.next = now, next_fire(entry.cron, now)  # a backlog collapses into this one fire
            self._remembered[entry.key] = {"cron": entry.cron, "last": now.isoformat()}
            try:
                result = entry.fire(entry.key, due)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:  # one entry's failure never stops the calendar
                log.exception("calendar entry %s failed to fire", entry.key)
                result = exc
            done.append((entry.key, result))
        if done:
            self._write_state()
        return done

    def seconds_to_next(self) -> float:
        """Seconds until the earliest next fire, at most :data:`MAX_SLEEP`, never negative."""
        if not self.entries:
            return MAX_SLEEP
        soonest = min(e.next for e in self.entries.values())
        return max(0.0, min(MAX_SLEEP, (soonest - self.now()).total_seconds()))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Fire entries at their times until ``stop`` is set."""
        self._wake = asyncio.Event()
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.tick()
            self._wake.clear()
            nap = asyncio.ensure_future(self.sleep(self.seconds_to_next()))
            woken = asyncio.ensure_future(self._wake.wait())
            halted = asyncio.ensure_future(stop.wait())
            await asyncio.wait([nap, woken, halted], return_when=asyncio.FIRST_COMPLETED)
            for task in (nap, woken, halted):
                task.cancel()
