"""The destination registry: kinds and their settings, the tables, create / list / delete, attach."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from segengine.audiences.registry import DESTINATION_PREFIX, Audience, _now, _rows, _save, _workspace, get_audience
from segengine.errors import AudienceError, did_you_mean

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from segengine.lake import Lake


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
