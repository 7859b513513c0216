"""``webhook`` delivery: batches POSTed with idempotency keys and retries; dead letters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from segengine.audiences.destinations.registry import RETRY_STATUSES, Destination, dead_letters_schema
from segengine.audiences.destinations.watermarks import Outcome, batch_key
from segengine.audiences.registry import Audience, _now

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.lake import Lake


def _deliver_webhook(
    lake: Lake, dest: Destination, aud: Audience, span: tuple[int, int], diff: DataFrame, start_batch: int, sync_id: str
) -> Outcome:
    """POST the diff in batches from ``start_batch``; dead-letter the first batch that keeps failing."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util import Retry

    s = dest.settings
    size = int(s["batch_size"])
    retry = Retry(
        total=int(s["max_retries"]),
        connect=int(s["max_retries"]),
        read=int(s["max_retries"]),
        status=int(s["max_retries"]),
        backoff_factor=float(s["backoff_seconds"]),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # POST too: the idempotency key makes a repeat harmless
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    rows = diff.orderBy("persona_id").select("persona_id", "change").toLocalIterator(prefetchPartitions=False)
    sent = start_batch
    try:
        for number, batch in enumerate(_batches(rows, size)):
            if number < start_batch:
                continue
            key = batch_key(dest.name, aud.audience_id, span[0], span[1], number)
            payload = {
                "destination": dest.name,
                "audience_id": aud.audience_id,
                "audience": aud.name,
                "from_version": span[0],
                "to_version": span[1],
                "batch": number,
                "idempotency_key": key,
                "changes": batch,
            }
            error = _post(session, s, key, payload)
            if error is not None:
                _dead_letter(lake, dest.name, aud.audience_id, sync_id, number, key, payload, error)
                return Outcome(False, sent, f"batch {number} failed after {s['max_retries']} retries: {error}")
            sent = number + 1
    finally:
        session.close()
    return Outcome(True, sent)


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for r in rows:
        batch.append({"persona_id": r["persona_id"], "change": r["change"]})
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _post(session: Any, settings: dict[str, Any], key: str, payload: dict[str, Any]) -> str | None:
    """One batch, retried by urllib3's Retry; None when acknowledged (2xx), else the error."""
    import requests

    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **settings.get("headers", {})}
    try:
        resp = session.post(
            settings["url"], data=json.dumps(payload), headers=headers, timeout=float(settings["timeout_seconds"])
        )
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    if 200 <= resp.status_code < 300:
        return None
    return f"HTTP {resp.status_code}: {resp.text[:200]}"


def _dead_letter(
    lake: Lake, dest: str, audience_id: str, sync_id: str, batch: int, key: str, payload: dict[str, Any], error: str
) -> None:
    row = (dest, audience_id, sync_id, batch, key, json.dumps(payload), error, _now())
    lake.write_rows([row], dead_letters_schema(), "destination_dead_letters", operation="DEAD LETTER")


def dead_letters(lake: Lake, destination: str | None = None) -> list[dict[str, Any]]:
    """Dead-lettered batches (payload included), newest first; a small table."""
    if not lake.exists("destination_dead_letters"):
        return []
    rows = [r for r in lake.read_rows("destination_dead_letters") if destination in (None, r["destination"])]
    return sorted(rows, key=lambda r: r["failed_at"], reverse=True)
