"""Destinations: send each audience's joins and leaves since the last sync.

A destination is a registry row (``destinations``: name, kind, settings, owner). An
audience is attached to one with ``attach`` (``segengine audience sync NAME
--destination DEST``): its ``synced_to`` becomes ``destination:DEST``, which locks it
against edits as every sync does. A private audience cannot be attached.

Kinds:

* ``files``: a folder per sync under ``settings.path``/<audience_id>/, named
  ``v<from>-<to>``: ``snapshot.<fmt>`` on the first sync, then ``adds.<fmt>`` and
  ``removes.<fmt>`` (CSV or Parquet, ``settings.columns``), and ``manifest.json``
  (audience, version range, row counts, sha256 of each file) written last, by an
  atomic rename: a folder without a manifest is a drop still being written.
* ``webhook``: the changes as JSON POSTs of ``settings.batch_size`` to
  ``settings.url``, each with an ``Idempotency-Key`` header (also in the body) derived
  from (destination, audience, version range, batch number), retried with
  exponential back-off (``max_retries``, ``backoff_seconds``, ``timeout_seconds``) on
  timeouts, dropped connections, 429 and 5xx. A batch that still fails is written to
  ``destination_dead_letters`` and the sync of that audience stops there: the batches
  after it wait, so a consumer never sees a member leave before it joined.
* ``delta``: a Delta table ``<path>/members`` with the members sent (one partition per
  audience, replaced on each sync) and ``<path>/changes`` with every join and leave
  and its version range; ``settings.path`` defaults to ``<warehouse>/destinations/NAME``.

Watermarks: ``destination_syncs`` has a row per sync attempt of an (audience,
destination): the ``audience_members`` versions it covers (``from_version`` is -1 for
the first, full sync), its status (``pending`` before sending, ``done``, ``failed``)
and how many webhook batches were acknowledged. The watermark is the ``to_version`` of
the latest ``done`` row. A sync after a failure (or a crash, which leaves
``pending``) first finishes the same version range from the first batch not
acknowledged, with the same idempotency keys, then catches up to the current version.
The diff is read from the two versions of ``audience_members`` (time travel), so a
watermark must stay within VACUUM's retention (``maintenance.retention_hours``).

The holdout of an audience (:mod:`segengine.audiences.holdout`) is never sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from segengine.audiences.holdout import without_holdout
from segengine.audiences.registry import (
    DESTINATION_PREFIX,
    Audience,
    _now,
    _rows,
    _save,
    _workspace,
    get_audience,
    latest_refresh_stats,
)
from segengine.errors import AudienceError, SegengineError, did_you_mean

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)

KINDS = ("files", "webhook", "delta")
FILE_FORMATS = ("csv", "parquet")
# Every setting a kind accepts, with its default (None: required).
SETTINGS: dict[str, dict[str, Any]] = {
    "files": {"path": None, "format": "csv", "columns": ["persona_id"]},
    "webhook": {
        "url": None,
        "batch_size": 500,
        "max_retries": 5,
        "backoff_seconds": 0.5,
        "timeout_seconds": 10.0,
        "headers": {},
    },
    "delta": {"path": ""},
}
RETRY_STATUSES = (429, 500, 502, 503, 504)
FIRST_SYNC = -1  # from_version of a full first sync


@dataclass(frozen=True)
class Destination:
    """One registry row; ``settings`` holds every setting of its kind (defaults filled in)."""

    name: str
    kind: str
    settings: dict[str, Any]
    owner: str
    created_at: dt.datetime
    deleted: bool = False


def destinations_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("name", T.StringType()),
            T.StructField("kind", T.StringType()),
            T.StructField("settings", T.StringType()),
            T.StructField("owner", T.StringType()),
            T.StructField("created_at", T.TimestampType()),
            T.StructField("deleted", T.BooleanType()),
        ]
    )


def syncs_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("destination", T.StringType()),
            T.StructField("audience_id", T.StringType()),
            T.StructField("sync_id", T.StringType()),
            T.StructField("from_version", T.LongType()),
            T.StructField("to_version", T.LongType()),
            T.StructField("status", T.StringType()),
            T.StructField("batches_sent", T.IntegerType()),
            T.StructField("adds", T.LongType()),
            T.StructField("removes", T.LongType()),
            T.StructField("recorded_at", T.TimestampType()),
            T.StructField("seq", T.LongType()),
            T.StructField("message", T.StringType()),
        ]
    )


def dead_letters_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("destination", T.StringType()),
            T.StructField("audience_id", T.StringType()),
            T.StructField("sync_id", T.StringType()),
            T.StructField("batch", T.IntegerType()),
            T.StructField("idempotency_key", T.StringType()),
            T.StructField("payload", T.StringType()),
            T.StructField("error", T.StringType()),
            T.StructField("failed_at", T.TimestampType()),
        ]
    )


# ---------------------------------------------------------------- registry


def _check_settings(name: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    if kind not in KINDS:
        raise AudienceError(f"destination {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = SETTINGS[kind]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise AudienceError(
            f"destination {name!r}: unknown {kind} setting(s) {', '.join(unknown)}; expected {', '.join(allowed)}"
        )
    out = {**allowed, **settings}
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise AudienceError(f"destination {name!r}: a {kind} destination needs {', '.join(missing)}")
    if kind == "files":
        if out["format"] not in FILE_FORMATS:
            raise AudienceError(f"destination {name!r}: format must be csv or parquet, got {out['format']!r}")
        if "://" in str(out["path"]) and not str(out["path"]).startswith("file:"):
            raise AudienceError(
                f"destination {name!r}: a files destination writes to a local or mounted folder, got {out['path']!r}"
            )
        if isinstance(out["columns"], str):
            out["columns"] = [c.strip() for c in out["columns"].split(",") if c.strip()]
        if "persona_id" not in out["columns"]:
            out["columns"] = ["persona_id", *out["columns"]]
    if kind == "webhook":
        if not str(out["url"]).startswith(("http://", "https://")):
            raise AudienceError(f"destination {name!r}: url must start with http:// or https://, got {out['url']!r}")
        for key, cast in (
            ("batch_size", int),
            ("max_retries", int),
            ("backoff_seconds", float),
            ("timeout_seconds", float),
        ):
            try:
                out[key] = cast(out[key])
            except (TypeError, ValueError):
                raise AudienceError(f"destination {name!r}: {key} must be a number, got {out[key]!r}") from None
        if out["batch_size"] < 1 or out["max_retries"] < 0 or out["timeout_seconds"] <= 0:
            raise AudienceError(
                f"destination {name!r}: batch_size >= 1, max_retries >= 0 and timeout_seconds > 0 are required"
            )
    return out


def create_destination(
    spark: SparkSession, lake: Lake, name: str, kind: str, settings: dict[str, Any], owner: str
) -> Destination:
    """Register a destination; the name must be new.

    Args:
        kind: ``files``, ``webhook`` or ``delta``.
        settings: the kind's settings (see :data:`SETTINGS`); unknown keys are errors.
    """
    if not name or not name.strip() or "," in name:
        raise AudienceError(f"a destination needs a non-empty name without commas, got {name!r}")
    name = name.strip()
    full = _check_settings(name, kind, settings)
    if any(d.name == name for d in list_destinations(lake)):
        raise AudienceError(f"a destination named {name!r} already exists")
    ensure_tables(lake)
    dest = Destination(name, kind, full, owner, _now())
    lake.write_rows([_row(dest)], destinations_schema(), "destinations", operation="CREATE DESTINATION")
    return dest


def _row(dest: Destination) -> dict[str, Any]:
    row = asdict(dest)
    row["settings"] = json.dumps(dest.settings, sort_keys=True)
    return row


def ensure_tables(lake: Lake) -> None:
    """Create the destination registry, sync log and dead-letter tables if missing."""
    for table, schema in (
        ("destinations", destinations_schema),
        ("destination_syncs", syncs_schema),
        ("destination_dead_letters", dead_letters_schema),
    ):
        if not lake.exists(table):
            lake.write_rows([], schema(), table, operation="CREATE TABLE")


def list_destinations(lake: Lake) -> list[Destination]:
    """Every live destination (the latest row per name; a small table read on the driver)."""
    if not lake.exists("destinations"):
        return []
    latest: dict[str, dict[str, Any]] = {}
    for r in lake.read_rows("destinations"):
        if r["name"] not in latest or r["created_at"] >= latest[r["name"]]["created_at"]:
            latest[r["name"]] = r
    return [
        Destination(r["name"], r["kind"], json.loads(r["settings"]), r["owner"], r["created_at"])
        for r in sorted(latest.values(), key=lambda r: r["name"])
        if not r["deleted"]
    ]


def get_destination(lake: Lake, name: str) -> Destination:
    """The live destination ``name``; an unknown one is an error with a "did you mean"."""
    found = {d.name: d for d in list_destinations(lake)}
    if name not in found:
        raise AudienceError(f"no destination {name!r}{did_you_mean(name, found)}")
    return found[name]


def delete_destination(spark: SparkSession, lake: Lake, name: str, user: str | None = None) -> Destination:
    """Delete a destination no audience is attached to (owner only)."""
    dest = get_destination(lake, name)
    if user is not None and user != dest.owner:
        raise AudienceError(f"destination {name!r} belongs to {dest.owner}; {user} cannot delete it")
    attached = [a.name for a in attached_audiences(spark, lake, name)]
    if attached:
        raise AudienceError(f"destination {name!r} still syncs {', '.join(attached)}; detach them first")
    gone = replace(dest, deleted=True, created_at=_now())
    lake.write_rows([_row(gone)], destinations_schema(), "destinations", operation="DELETE DESTINATION")
    return gone


def attached_audiences(spark: SparkSession, lake: Lake, destination: str | None = None) -> list[Audience]:
    """The audiences of the workspace attached to ``destination`` (default: to any)."""
    target = DESTINATION_PREFIX + destination if destination else None
    return [
        a
        for a in _rows(spark, lake, _workspace(lake, None))
        if a.synced_to and a.synced_to.startswith(DESTINATION_PREFIX) and (target is None or a.synced_to == target)
    ]


def _destination_of(aud: Audience) -> str:
    """The destination name of an audience from :func:`attached_audiences` (which keeps only those with one)."""
    if aud.synced_to is None:
        raise AudienceError(f"audience {aud.name} is not synced to a destination")
    return aud.synced_to.removeprefix(DESTINATION_PREFIX)


def attach(spark: SparkSession, lake: Lake, audience: str, destination: str, user: str | None = None) -> Audience:
    """Sync ``audience`` to ``destination`` from now on (locks the audience).

    Raises:
        AudienceError: not the owner, a private audience, an unknown destination, or an
            audience already synced elsewhere.
    """
    aud = get_audience(spark, lake, audience, user)
    dest = get_destination(lake, destination)
    if user is not None and user != aud.owner:
        raise AudienceError(f"audience {aud.name!r} belongs to {aud.owner}; {user} cannot change its sync")
    if aud.visibility != "shared":
        raise AudienceError(f"audience {aud.name!r} is private; only a shared audience can be synced to a destination")
    target = DESTINATION_PREFIX + dest.name
    if aud.synced_to == target:
        return aud
    if aud.locked:
        raise AudienceError(f"audience {aud.name!r} is already synced to {aud.synced_to}; turn sync off first")
    new = replace(aud, synced_to=target, sync_format=None, updated_at=_now(), version=aud.version + 1)
    _save(spark, lake, new, "SYNC AUDIENCE")
    return new


# ---------------------------------------------------------------- watermarks and diffs


def sync_log(lake: Lake, destination: str, audience_id: str) -> list[dict[str, Any]]:
    """The sync rows of one (destination, audience), oldest first."""
    if not lake.exists("destination_syncs"):
        return []
    rows = [
        r
        for r in lake.read_rows("destination_syncs")
        if r["destination"] == destination and r["audience_id"] == audience_id
    ]
    return sorted(rows, key=lambda r: r["seq"])


def watermark(lake: Lake, destination: str, audience_id: str) -> int | None:
    """The ``audience_members`` version last delivered to the destination, or None (never)."""
    done = [r for r in sync_log(lake, destination, audience_id) if r["status"] == "done"]
    return done[-1]["to_version"] if done else None


def versions_to_keep(spark: SparkSession, lake: Lake) -> dict[str, int]:
    """``{"audience_members": v}``: the oldest version a sync of an attached audience still
    diffs from (its watermark, or the start of its unfinished range); {} when none does.

    ``maintain(keep_versions=...)`` lengthens VACUUM's retention of that table so the
    version stays readable and the next sync can still compute its changes.
    """
    if not lake.exists("destination_syncs"):
        return {}
    attached = {(_destination_of(a), a.audience_id) for a in attached_audiences(spark, lake)}
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(lake.read_rows("destination_syncs"), key=lambda r: r["seq"]):
        last[(row["destination"], row["audience_id"])] = row
    needed = [
        row["to_version"] if row["status"] == "done" else row["from_version"]
        for key, row in last.items()
        if key in attached
    ]
    needed = [v for v in needed if v is not None and v != FIRST_SYNC]
    return {"audience_members": min(needed)} if needed else {}


def _version_readable(lake: Lake, audience_id: str, version: int) -> bool:
    """False when ``version`` of the audience's members is gone (past the log, or files vacuumed).

    Only a local warehouse can be checked file by file; elsewhere this says True.
    """
    try:
        files = lake.files("audience_members", version=version, partitions={"audience_id": audience_id})
    except Exception:  # noqa: BLE001 - any failure to load that version means it is gone
        return False
    root = lake.uri("audience_members")
    if "://" in root and not root.startswith("file:"):
        return True
    root = root.removeprefix("file://").removeprefix("file:")
    return all(os.path.exists(os.path.join(root, unquote(f["path"]))) for f in files)


def _record(lake: Lake, dest: str, audience_id: str, sync_id: str, span: tuple[int, int], **fields: Any) -> None:
    row = {
        "destination": dest,
        "audience_id": audience_id,
        "sync_id": sync_id,
        "from_version": span[0],
        "to_version": span[1],
        "status": fields["status"],
        "batches_sent": fields.get("batches_sent", 0),
        "adds": fields.get("adds"),
        "removes": fields.get("removes"),
        "recorded_at": _now(),
        "seq": time.time_ns(),
        "message": fields.get("message", ""),
    }
    lake.write_rows([row], syncs_schema(), "destination_syncs", operation="DESTINATION SYNC")


def member_diff(lake: Lake, audience_id: str, from_version: int, to_version: int) -> DataFrame:
    """Joins and leaves of an audience between two ``audience_members`` versions, holdout left out.

    Args:
        from_version: :data:`FIRST_SYNC` for a full snapshot (every member a join).
        to_version: the version to reach.

    Returns:
        persona_id, since, change (``join`` / ``leave``): one row per persona.
    """
    from pyspark.sql import functions as F

    def at(version: int) -> DataFrame:
        df = lake.read("audience_members", version=version, partitions={"audience_id": audience_id})
        return without_holdout(lake, audience_id, df.select("persona_id", "since"))

    after = at(to_version)
    if from_version == FIRST_SYNC:
        return after.withColumn("change", F.lit("join"))
    before = at(from_version)
    joins = after.join(before.select("persona_id"), "persona_id", "left_anti").withColumn("change", F.lit("join"))
    leaves = before.join(after.select("persona_id"), "persona_id", "left_anti").withColumn("change", F.lit("leave"))
    return joins.unionByName(leaves)


def batch_key(destination: str, audience_id: str, from_version: int, to_version: int, batch: int) -> str:
    """The idempotency key of one batch: the same on every retry and every resumed sync."""
    text = f"{destination}|{audience_id}|{from_version}|{to_version}|{batch}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------- delivery


@dataclass
class Outcome:
    """What one delivery of a version range achieved."""

    done: bool
    batches_sent: int = 0
    message: str = ""


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


def _deliver_files(
    spark: SparkSession, lake: Lake, dest: Destination, aud: Audience, span: tuple[int, int], diff: DataFrame
) -> tuple[Outcome, dict[str, int]]:
    """Write the drop folder of a version range, its manifest last (a rerun rewrites it whole)."""
    from pyspark.sql import functions as F

    s = dest.settings
    fmt = s["format"]
    folder = (
        Path(str(s["path"]).removeprefix("file://").removeprefix("file:")) / aud.audience_id / f"v{span[0]}-{span[1]}"
    )
    if folder.exists():
        shutil.rmtree(folder)  # a rerun of an unfinished drop starts over
    folder.mkdir(parents=True)
    joins = _with_columns(spark, lake, aud, diff.where(F.col("change") == "join"), s["columns"])
    parts = (
        [("snapshot", joins)]
        if span[0] == FIRST_SYNC
        else [
            ("adds", joins),
            ("removes", diff.where(F.col("change") == "leave").select("persona_id")),
        ]
    )
    files, counts = [], {}
    for label, df in parts:
        target = folder / f"{label}.{fmt}"
        rows = _write_one_file(df, target, fmt)
        counts[label] = rows
        files.append({"name": target.name, "change": label, "rows": rows, "sha256": _sha256(target)})
    manifest = {
        "destination": dest.name,
        "audience_id": aud.audience_id,
        "audience": aud.name,
        "from_version": None if span[0] == FIRST_SYNC else span[0],
        "to_version": span[1],
        "kind": "snapshot" if span[0] == FIRST_SYNC else "diff",
        "format": fmt,
        "columns": list(joins.columns),
        "files": files,
        "written_at": _now().isoformat() + "Z",
    }
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, folder / "manifest.json")
    adds = counts.get("snapshot", counts.get("adds", 0))
    return Outcome(True), {"adds": adds, "removes": counts.get("removes", 0)}


def _with_columns(spark: SparkSession, lake: Lake, aud: Audience, joins: DataFrame, columns: list[str]) -> DataFrame:
    """The joins with the chosen columns: persona_id, since, and attributes of the latest refresh's features."""
    extra = [c for c in columns if c not in ("persona_id", "since")]
    if extra:
        day = latest_refresh_stats(spark, lake, [aud.audience_id]).get(aud.audience_id, (None, None))[1]
        if day is None or not lake.exists("customer_features"):
            raise AudienceError(
                f"audience {aud.name!r}: columns {', '.join(extra)} need a refreshed audience and features"
            )
        feats = lake.read("customer_features", partitions={"snapshot_date": day})
        unknown = [c for c in extra if c not in feats.columns]
        if unknown:
            raise AudienceError(f"destination columns {', '.join(unknown)} are not in customer_features")
        joins = joins.join(feats.select("persona_id", *extra), "persona_id", "left")
    return joins.select(*columns)


def _write_one_file(df: DataFrame, target: Path, fmt: str) -> int:
    """One file (Spark writes one part, which is moved to ``target``); returns its rows."""
    parts = target.parent / f".{target.name}.parts-{uuid.uuid4().hex[:8]}"
    df = df.orderBy("persona_id").coalesce(1).localCheckpoint(eager=True)
    rows = df.count()
    writer = df.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(str(parts))
    else:
        writer.option("header", True).csv(str(parts))
    produced = sorted(parts.glob("part-*"))
    if produced:
        os.replace(produced[0], target)
    elif fmt == "csv":  # Spark writes a header-only part for an empty frame; this is a fallback
        target.write_text(",".join(df.columns) + "\n", encoding="utf-8")
    else:
        raise AudienceError(f"{target}: Spark wrote no Parquet file for {rows} rows")
    shutil.rmtree(parts, ignore_errors=True)
    return rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def delta_paths(lake: Lake, dest: Destination) -> tuple[str, str]:
    """The members and changes tables of a ``delta`` destination."""
    base = dest.settings.get("path") or f"{lake.config.warehouse_uri}/destinations/{dest.name}"
    return base.rstrip("/") + "/members", base.rstrip("/") + "/changes"


def _deliver_delta(
    spark: SparkSession, lake: Lake, dest: Destination, aud: Audience, span: tuple[int, int], diff: DataFrame
) -> Outcome:
    """Replace the audience's slice of ``members`` and append its changes (a rerun replaces them)."""
    from pyspark.sql import functions as F

    members_uri, changes_uri = delta_paths(lake, dest)
    current = lake.read("audience_members", version=span[1], partitions={"audience_id": aud.audience_id})
    current = without_holdout(lake, aud.audience_id, current.select("audience_id", "persona_id", "since"))
    if lake.exists(members_uri):
        lake.write(
            current,
            members_uri,
            mode="overwrite",
            partition_by=["audience_id"],
            replace_partitions={"audience_id": aud.audience_id},
            operation="DESTINATION MEMBERS",
        )
    else:
        lake.write(current, members_uri, mode="append", partition_by=["audience_id"], operation="DESTINATION MEMBERS")
    changes = diff.select(
        F.lit(aud.audience_id).alias("audience_id"),
        "persona_id",
        "change",
        F.lit(span[0]).cast("long").alias("from_version"),
        F.lit(span[1]).cast("long").alias("to_version"),
        F.lit(_now()).alias("synced_at"),
    )
    if lake.exists(changes_uri):
        lake.delete_where(
            changes_uri, (F.col("audience_id") == F.lit(aud.audience_id)) & (F.col("to_version") == F.lit(span[1]))
        )
    lake.write(changes, changes_uri, mode="append", partition_by=["audience_id"], operation="DESTINATION CHANGES")
    return Outcome(True)


# ---------------------------------------------------------------- sync


def sync_audience(spark: SparkSession, lake: Lake, dest: Destination, aud: Audience) -> list[dict[str, Any]]:
    """Bring one audience's destination up to the current ``audience_members`` version.

    Finishes an unfinished (failed or crashed) version range first, from its first
    unacknowledged batch, then sends the range from the watermark to now.

    Returns:
        One dict per version range attempted: from/to version, status, adds, removes,
        batches_sent, message. The last is ``failed`` when a batch was dead-lettered.
    """
    ensure_tables(lake)
    results: list[dict[str, Any]] = []
    for _ in range(2):  # the unfinished range (if any), then the new one
        log_rows = sync_log(lake, dest.name, aud.audience_id)
        last = log_rows[-1] if log_rows else None
        current = lake.version("audience_members")
        if last is not None and last["status"] != "done":
            span, start, sync_id = (
                (last["from_version"], last["to_version"]),
                last["batches_sent"] or 0,
                last["sync_id"],
            )
        else:
            start_from = FIRST_SYNC if last is None else last["to_version"]
            if start_from == current:
                break
            span, start, sync_id = (start_from, current), 0, uuid.uuid4().hex[:12]
            _record(lake, dest.name, aud.audience_id, sync_id, span, status="pending")
        try:
            diff = member_diff(lake, aud.audience_id, *span).localCheckpoint(eager=True)
        except Exception as exc:
            if span[0] != FIRST_SYNC and not _version_readable(lake, aud.audience_id, span[0]):
                raise SegengineError(
                    f"destination {dest.name}: audience {aud.name!r} was last synced at version {span[0]} of "
                    f"audience_members, which is no longer readable (files vacuumed or commit past the log's "
                    f"retention): the changes since cannot be computed, and a full resend is not built yet"
                ) from exc
            raise
        counts = {r["change"]: r["count"] for r in diff.groupBy("change").count().collect()}
        adds, removes = counts.get("join", 0), counts.get("leave", 0)
        if dest.kind == "webhook":
            outcome = _deliver_webhook(lake, dest, aud, span, diff, start, sync_id)
        elif dest.kind == "files":
            outcome, _ = _deliver_files(spark, lake, dest, aud, span, diff)
        else:
            outcome = _deliver_delta(spark, lake, dest, aud, span, diff)
        status = "done" if outcome.done else "failed"
        _record(
            lake,
            dest.name,
            aud.audience_id,
            sync_id,
            span,
            status=status,
            batches_sent=outcome.batches_sent,
            adds=adds,
            removes=removes,
            message=outcome.message,
        )
        results.append(
            {
                "audience": aud.name,
                "destination": dest.name,
                "from_version": None if span[0] == FIRST_SYNC else span[0],
                "to_version": span[1],
                "status": status,
                "adds": adds,
                "removes": removes,
                "batches_sent": outcome.batches_sent,
                "message": outcome.message,
            }
        )
        if not outcome.done:
            break
    return results


def sync_destinations(
    spark: SparkSession,
    lake: Lake,
    destination: str | None = None,
    audiences: list[str] | None = None,
) -> dict[str, Any]:
    """Sync every attached audience (or those of one destination, or named ones).

    A failing audience does not stop the others; the summary lists every range sent.

    Returns:
        ``{"synced": [per range], "failed": [audience names], "audiences": n}``.
    """
    if destination is not None:
        get_destination(lake, destination)  # an unknown one is an error, with a "did you mean"
    if not lake.exists("destinations"):
        return {"synced": [], "failed": [], "audiences": 0}
    dests = {d.name: d for d in list_destinations(lake)}
    auds = attached_audiences(spark, lake, destination)
    if audiences:
        auds = [a for a in auds if a.name in audiences or a.audience_id in audiences]
    synced: list[dict[str, Any]] = []
    failed: list[str] = []
    for aud in sorted(auds, key=lambda a: a.name):
        name = _destination_of(aud)
        if name not in dests:
            failed.append(aud.name)
            synced.append(
                {"audience": aud.name, "destination": name, "status": "failed", "message": "no such destination"}
            )
            continue
        try:
            got = sync_audience(spark, lake, dests[name], aud)
        except Exception as exc:  # noqa: BLE001 - one destination down must not stop the others
            log.exception("sync of %s to %s failed", aud.name, name)
            got = [
                {
                    "audience": aud.name,
                    "destination": name,
                    "status": "failed",
                    "message": f"{type(exc).__name__}: {exc}",
                }
            ]
        synced.extend(got)
        if got and got[-1]["status"] != "done":
            failed.append(aud.name)
    return {"synced": synced, "failed": failed, "audiences": len(auds)}


def sync_step(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """The daily pipeline's ``sync_destinations`` step: fails (after syncing the rest) if any audience did."""
    summary = sync_destinations(spark, lake)
    if summary["failed"]:
        raise AudienceError(
            f"{len(summary['failed'])} of {summary['audiences']} audiences did not reach their destination: "
            + ", ".join(summary["failed"])
            + " (see `segengine destination dead-letters`; the next sync resumes where they stopped)"
        )
    return {**summary, "rows": sum(int(s.get("adds") or 0) + int(s.get("removes") or 0) for s in summary["synced"])}
