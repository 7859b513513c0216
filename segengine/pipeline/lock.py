"""One run at a time per (pipeline, date): a lock kept in the warehouse's ``run_locks`` table.

A scheduler that retries, a backfill and a person at a terminal can all start the
daily pipeline for the same date; two such runs would race on every table they
rewrite. Before its first step a run takes the lock of (pipeline, date); a second
run of the same date stops with :class:`RunLocked` (exit code 3) naming the run that
holds it.

The lock is an append-only Delta table, so it is exactly as safe as the lake's own
commits, on every backend and store the lake supports, and needs no lock service:

1. *announce*: append ``acquire`` (run id, expiry) and note the version of that commit;
2. *decide*: read the table **as of that version**. If another run's lock is active
   there, this run lost: it appends its ``release`` and stops. Otherwise it holds the lock.

Commit versions are a total order, so of two runs that announce at once only the one
with the lower version can see no rival (the other sees its row): at most one wins. A
lock is active until its run appends ``release`` or its expiry (``pipeline.lock_timeout_minutes``
after the last ``renew``) passes, so a crashed run blocks the date for at most that
long; ``segengine pipeline unlock --date D`` frees it at once. A run renews its lock
between steps once a quarter of the timeout has passed, so the timeout only has to be
longer than the longest single step.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import RunLocked, WriteConflict

if TYPE_CHECKING:
    from segengine.lake import Lake

TABLE = "run_locks"
SCHEMA = (
    "pipeline string, snapshot_date date, run_id string, event string, "
    "at timestamp, expires_at timestamp, holder string"
)
ACQUIRE, RENEW, RELEASE = "acquire", "renew", "release"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Holder:
    """An active lock: who holds it, since when, until when (UTC)."""

    run_id: str
    since: dt.datetime
    expires_at: dt.datetime
    holder: str


def active_holders(
    rows: Iterable[dict[str, Any]], pipeline: str, snapshot_date: dt.date, now: dt.datetime
) -> list[Holder]:
    """The runs holding the lock of (``pipeline``, ``snapshot_date``) at ``now``, oldest first.

    A run holds it from its ``acquire`` until its ``release``, or until the latest
    expiry of its ``acquire``/``renew`` rows has passed.
    """
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["pipeline"] != pipeline or row["snapshot_date"] != snapshot_date:
            continue
        run = runs.setdefault(row["run_id"], {"since": None, "expires_at": None, "released": False, "holder": ""})
        if row["event"] == RELEASE:
            run["released"] = True
            continue
        if row["event"] == ACQUIRE:
            run["since"], run["holder"] = row["at"], row["holder"] or ""
        if run["expires_at"] is None or row["expires_at"] > run["expires_at"]:
            run["expires_at"] = row["expires_at"]
    held = [
        Holder(run_id, r["since"], r["expires_at"], r["holder"])
        for run_id, r in runs.items()
        if r["since"] is not None and not r["released"] and r["expires_at"] > now
    ]
    return sorted(held, key=lambda h: (h.since, h.run_id))


def _holder_text() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class RunLock:
    """The lock of one run; :func:`hold` takes and frees it."""

    def __init__(
        self,
        lake: Lake,
        pipeline: str,
        snapshot_date: dt.date,
        timeout: dt.timedelta,
        run_id: str | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
    ):
        self.lake, self.pipeline, self.snapshot_date, self.timeout = lake, pipeline, snapshot_date, timeout
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.now = now
        self.renewed_at: dt.datetime | None = None

    def _append(self, event: str) -> int:
        at = self.now()
        row = (self.pipeline, self.snapshot_date, self.run_id, event, at, at + self.timeout, _holder_text())
        version = self.lake.write_rows([row], SCHEMA, TABLE, operation=f"RUN LOCK {event.upper()}")
        if event != RELEASE:
            self.renewed_at = at
        return version

    def announce(self) -> int:
        """Append this run's ``acquire``; the version of that commit."""
        try:
            return self._append(ACQUIRE)
        except WriteConflict:  # two first writers of the table: the loser appends again
            return self._append(ACQUIRE)

    def decide(self, version: int) -> None:
        """Hold the lock if no other run's lock is active as of ``version``, else release and raise."""
        rows = self.lake.read_rows(TABLE, version=version)
        rivals = [
            h for h in active_holders(rows, self.pipeline, self.snapshot_date, self.now()) if h.run_id != self.run_id
        ]
        if rivals:
            self.release()
            first = rivals[0]
            raise RunLocked(
                f"the {self.pipeline} pipeline for {self.snapshot_date} is already running: run {first.run_id} "
                f"({first.holder}) since {first.since:%Y-%m-%d %H:%M:%S} UTC, lock expires "
                f"{first.expires_at:%Y-%m-%d %H:%M:%S} UTC; wait for it, or if that run died: "
                f"segengine pipeline unlock --date {self.snapshot_date}"
            )

    def acquire(self) -> None:
        self.decide(self.announce())

    def renew_if_due(self) -> None:
        """Extend the expiry once a quarter of the timeout has passed since the last renewal."""
        if self.renewed_at is None or self.now() - self.renewed_at >= self.timeout / 4:
            self._append(RENEW)

    def release(self) -> None:
        self._append(RELEASE)


@contextmanager
def hold(
    lake: Lake, pipeline: str, snapshot_date: dt.date, timeout_minutes: float, run_id: str | None = None
) -> Iterator[RunLock]:
    """Hold the lock of (``pipeline``, ``snapshot_date``) for the ``with`` block.

    Raises:
        RunLocked: another run of that pipeline and date holds it.
    """
    lock = RunLock(lake, pipeline, snapshot_date, dt.timedelta(minutes=timeout_minutes), run_id)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def unlock(lake: Lake, pipeline: str, snapshot_date: dt.date) -> list[Holder]:
    """Release every active lock of (``pipeline``, ``snapshot_date``); the holders released."""
    if not lake.exists(TABLE):
        return []
    now = _utcnow()
    held = active_holders(lake.read_rows(TABLE), pipeline, snapshot_date, now)
    if held:
        rows = [(pipeline, snapshot_date, h.run_id, RELEASE, now, now, f"unlocked by {_holder_text()}") for h in held]
        lake.write_rows(rows, SCHEMA, TABLE, operation="RUN LOCK RELEASE")
    return held
