"""The audience registry: one Delta row per saved audience, with visibility and locks.

Tables (all Delta, see ``segengine.lake.TABLES``):

* ``audiences``: the registry. One row per audience (``audience_id``); every edit
  rewrites that row with ``version + 1`` in one commit, so any earlier version is
  recoverable by Delta time travel (``lake.read("audiences", version=n)``).
* ``audience_members``: current membership (audience_id, persona_id, since).
* ``audience_changes``: who joined (``added``) or left (``removed``) on which date.
* ``audience_refreshes``: size / added / removed / seconds per audience and date.

Visibility: a ``private`` audience is visible and usable only by its owner; a
``shared`` one by everyone. Only the owner edits or deletes. ``user=None`` is the
system account the scheduled jobs run as: it sees every audience.

Locking: an audience synced to a destination (``synced_to``) cannot be edited or
deleted until sync is turned off.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from segengine.audiences.holdout import (
    Holdout,
    check_share,
    get_holdout,
    holdouts_schema,
    record_groups,
    without_holdout,
)
from segengine.errors import AudienceError, UnknownAudience, UnknownName, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from segengine.lake import Lake
    from segengine.rules.compile import Resolver
    from segengine.rules.parse import Segment

KINDS = ("static", "dynamic")
SOURCES = ("rules", "upload", "top_n", "lookalike", "set_operation")
VISIBILITIES = ("private", "shared")
SYNC_FORMATS = ("csv", "parquet")
SORT_KEYS = ("updated", "size", "source", "name", "created")
# ``synced_to`` of an audience sent to a registered destination: ``destination:NAME``.
DESTINATION_PREFIX = "destination:"


@dataclass(frozen=True)
class Audience:
    """One registry row."""

    audience_id: str
    workspace: str
    name: str
    owner: str
    visibility: str
    kind: str
    source: str
    definition: str  # JSON text
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted: bool = False
    synced_to: str | None = None
    sync_format: str | None = None
    version: int = 1

    @property
    def definition_dict(self) -> dict[str, Any]:
        """The definition parsed from its stored JSON."""
        return json.loads(self.definition) if self.definition else {}

    @property
    def locked(self) -> bool:
        """True while the audience is synced to a destination."""
        return bool(self.synced_to)


def registry_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("workspace", T.StringType()),
            T.StructField("name", T.StringType()),
            T.StructField("owner", T.StringType()),
            T.StructField("visibility", T.StringType()),
            T.StructField("kind", T.StringType()),
            T.StructField("source", T.StringType()),
            T.StructField("definition", T.StringType()),
            T.StructField("created_at", T.TimestampType()),
            T.StructField("updated_at", T.TimestampType()),
            T.StructField("deleted", T.BooleanType()),
            T.StructField("synced_to", T.StringType()),
            T.StructField("sync_format", T.StringType()),
            T.StructField("version", T.IntegerType()),
        ]
    )


def members_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("persona_id", T.StringType()),
            T.StructField("since", T.DateType()),
        ]
    )


def changes_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("persona_id", T.StringType()),
            T.StructField("change", T.StringType()),
            T.StructField("snapshot_date", T.DateType()),
        ]
    )


def refreshes_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("snapshot_date", T.DateType()),
            T.StructField("size", T.LongType()),
            T.StructField("added", T.LongType()),
            T.StructField("removed", T.LongType()),
            T.StructField("seconds", T.DoubleType()),
            T.StructField("refreshed_at", T.TimestampType()),
        ]
    )


_SCHEMAS = {
    "audiences": registry_schema,
    "audience_members": members_schema,
    "audience_changes": changes_schema,
    "audience_refreshes": refreshes_schema,
}


def ensure_tables(spark: SparkSession, lake: Lake) -> None:
    """Create the four audience tables (empty) if they do not exist yet.

    Creating them up front matters for concurrency: a merge into an existing table
    is an optimistic transaction that detects a concurrent commit, while two
    writers racing to *create* a table are not guaranteed a clean conflict.
    """
    for name, schema in _SCHEMAS.items():
        if not lake.exists(name):
            lake.write_rows([], schema(), name, operation="CREATE TABLE")


def _now() -> dt.datetime:
    # Naive UTC: Spark stores timestamps in UTC and the session may be in any zone.
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _workspace(lake: Lake, workspace: str | None) -> str:
    if workspace:
        return workspace
    cfg = getattr(lake, "config", None)
    return cfg.audiences.workspace if cfg is not None else "default"


def _rows(
    spark: SparkSession, lake: Lake, workspace: str, include_deleted: bool = False, version: int | None = None
) -> list[Audience]:
    """Every registry row of a workspace (the registry is small: read on the driver).

    A warehouse without the registry has no audiences: reading creates nothing (the
    writers call :func:`ensure_tables`).
    """
    if not lake.exists("audiences"):
        return []
    return [
        Audience(**r)
        for r in lake.read_rows("audiences", version=version)
        if r["workspace"] == workspace and (include_deleted or not r["deleted"])
    ]


def _name_taken(spark: SparkSession, lake: Lake, workspace: str, name: str, version: int | None = None) -> bool:
    """Whether a live audience of the workspace (at ``version``, default latest) has ``name``."""
    return any(a.name == name for a in _rows(spark, lake, workspace, version=version))


def _visible(aud: Audience, user: str | None) -> bool:
    return user is None or aud.visibility == "shared" or aud.owner == user


def list_audiences(
    spark: SparkSession,
    lake: Lake,
    user: str | None = None,
    sort_by: str = "updated",
    descending: bool | None = None,
    workspace: str | None = None,
) -> list[dict[str, Any]]:
    """The audiences ``user`` may see, with their latest size, sorted.

    Args:
        user: the acting user (``None``: system, sees all).
        sort_by: ``updated`` (default, newest first), ``size`` (largest first),
            ``source``, ``name`` or ``created``.
        descending: override the default direction of ``sort_by``.
        workspace: default ``config.audiences.workspace``.

    Returns:
        One dict per audience: the registry fields (definition as a dict) plus
        ``size`` and ``refreshed_for`` from the latest refresh (None if never).
    """
    if sort_by not in SORT_KEYS:
        raise AudienceError(f"cannot sort audiences by {sort_by!r}: expected one of {', '.join(SORT_KEYS)}")
    ws = _workspace(lake, workspace)
    auds = [a for a in _rows(spark, lake, ws) if _visible(a, user)]
    stats = latest_refresh_stats(spark, lake, [a.audience_id for a in auds])
    out = []
    for a in auds:
        row = asdict(a)
        row["definition"] = a.definition_dict
        row["size"], row["refreshed_for"] = stats.get(a.audience_id, (None, None))
        out.append(row)
    key_fn = {
        "updated": lambda r: r["updated_at"],
        "created": lambda r: r["created_at"],
        "size": lambda r: -1 if r["size"] is None else r["size"],
        "source": lambda r: r["source"],
        "name": lambda r: r["name"].lower(),
    }[sort_by]
    desc = descending if descending is not None else sort_by in {"updated", "size", "created"}
    # Name as the tie-break keeps the listing deterministic.
    out.sort(key=lambda r: r["name"].lower())
    out.sort(key=key_fn, reverse=desc)
    return out


def latest_refresh_stats(spark: SparkSession, lake: Lake, audience_ids: list[str]) -> dict[str, tuple[int, dt.date]]:
    """audience_id -> (size, snapshot_date) of its latest refresh (one small aggregate)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not audience_ids or not lake.exists("audience_refreshes"):
        return {}
    df = lake.read("audience_refreshes").filter(F.col("audience_id").isin(audience_ids))
    w = Window.partitionBy("audience_id").orderBy(F.col("snapshot_date").desc(), F.col("refreshed_at").desc())
    latest = df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1")
    return {r["audience_id"]: (r["size"], r["snapshot_date"]) for r in latest.collect()}


def get_audience(
    spark: SparkSession,
    lake: Lake,
    audience: str | Audience,
    user: str | None = None,
    workspace: str | None = None,
) -> Audience:
    """Look up an audience by id or name, as ``user`` sees it.

    Raises:
        UnknownAudience: unknown or deleted, or private to another owner. The two read
            the same: the message does not tell another user that a private audience
            exists, nor who owns it.
    """
    if isinstance(audience, Audience):
        audience = audience.audience_id
    ws = _workspace(lake, workspace)
    rows = [a for a in _rows(spark, lake, ws) if _visible(a, user)]
    found = [a for a in rows if a.audience_id == audience] or [a for a in rows if a.name == audience]
    if not found:
        visible = [a.name for a in rows]
        raise UnknownAudience(
            f"no audience {audience!r} in workspace {ws!r}{did_you_mean(audience, visible)}", audience, visible
        )
    return found[0]


def _save(spark: SparkSession, lake: Lake, aud: Audience, operation: str) -> int:
    df = spark.createDataFrame([asdict(aud)], registry_schema())
    return lake.merge(
        df, "audiences", keys=["audience_id"], operation=operation, metadata={"audience_id": aud.audience_id}
    )


def _check_choice(value: str, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise AudienceError(f"{field}: expected one of {', '.join(allowed)}, got {value!r}")


def register_audience(
    spark: SparkSession,
    lake: Lake,
    name: str,
    owner: str,
    kind: str,
    source: str,
    definition: dict[str, Any],
    visibility: str = "shared",
    workspace: str | None = None,
) -> Audience:
    """Add a registry row (no membership); the name must be new in the workspace.

    Returns:
        The new :class:`Audience`.
    """
    _check_choice(kind, KINDS, "kind")
    _check_choice(source, SOURCES, "source")
    _check_choice(visibility, VISIBILITIES, "visibility")
    if not name or not name.strip():
        raise AudienceError("an audience needs a non-empty name")
    if not owner:
        raise AudienceError(f"audience {name!r}: an owner is required")
    ws = _workspace(lake, workspace)
    name = name.strip()
    if _name_taken(spark, lake, ws, name):
        raise AudienceError(f"an audience named {name!r} already exists in workspace {ws!r}")
    now = _now()
    aud = Audience(
        audience_id=uuid.uuid4().hex[:12],
        workspace=ws,
        name=name.strip(),
        owner=owner,
        visibility=visibility,
        kind=kind,
        source=source,
        definition=json.dumps(definition, sort_keys=True, default=str),
        created_at=now,
        updated_at=now,
    )
    version = lake.write_rows(
        [asdict(aud)],
        registry_schema(),
        "audiences",
        operation="CREATE AUDIENCE",
        metadata={"audience_id": aud.audience_id},
    )
    _settle_name_race(spark, lake, aud, version, undo=lambda: _delete_row(lake, aud))
    return aud


def _delete_row(lake: Lake, aud: Audience) -> None:
    from pyspark.sql import functions as F

    lake.delete_where("audiences", F.col("audience_id") == F.lit(aud.audience_id))


def _settle_name_race(spark: SparkSession, lake: Lake, aud: Audience, version: int, undo: Callable[[], object]) -> None:
    """Two commits giving one name (creations or renames) that both passed the check: the later loses.

    Delta appends and single-row merges of different audiences do not conflict, so the
    name check before the write cannot see a commit landing between that check and
    ours. The version just before ours holds every commit that won the race against
    us: if the name is taken there, ``undo`` takes our change back (the new row is
    removed, or the rename reverted) and the caller gets the usual "already exists"
    error. The earlier commit never sees ours in its own previous version, so exactly
    one wins, whichever mix of creations and renames raced.
    """
    if version < 1:
        return
    if _name_taken(spark, lake, aud.workspace, aud.name, version=version - 1):
        undo()
        raise AudienceError(f"an audience named {aud.name!r} already exists in workspace {aud.workspace!r}")


def _check_editable(aud: Audience, user: str | None, action: str) -> None:
    if user is not None and user != aud.owner:
        raise AudienceError(f"audience {aud.name!r} belongs to {aud.owner}; {user} cannot {action} it")
    if aud.locked:
        raise AudienceError(
            f"audience {aud.name!r} is locked: it is synced to {aud.synced_to}; turn sync off before you {action} it"
        )


def update_audience(
    spark: SparkSession,
    lake: Lake,
    audience: str | Audience,
    user: str | None,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
    visibility: str | None = None,
) -> Audience:
    """Rename, redefine or change the visibility of an audience (owner only, not while locked).

    Returns:
        The updated :class:`Audience` (``version`` + 1).
    """
    aud = get_audience(spark, lake, audience, user)
    _check_editable(aud, user, "edit")
    changes: dict[str, Any] = {}
    if name is not None and name.strip() != aud.name:
        name = name.strip()
        if _name_taken(spark, lake, aud.workspace, name):
            raise AudienceError(f"an audience named {name!r} already exists in workspace {aud.workspace!r}")
        changes["name"] = name
    if definition is not None:
        changes["definition"] = json.dumps(definition, sort_keys=True, default=str)
    if visibility is not None:
        _check_choice(visibility, VISIBILITIES, "visibility")
        changes["visibility"] = visibility
    new = replace(aud, **changes, updated_at=_now(), version=aud.version + 1)
    version = _save(spark, lake, new, "UPDATE AUDIENCE")
    if "name" in changes:
        revert = replace(new, name=aud.name, updated_at=_now(), version=new.version + 1)
        _settle_name_race(spark, lake, new, version, undo=lambda: _save(spark, lake, revert, "REVERT RENAME"))
    return new


def delete_audience(spark: SparkSession, lake: Lake, audience: str | Audience, user: str | None) -> Audience:
    """Mark an audience deleted and drop its current membership.

    The registry row stays (``deleted = true``), so it leaves lists and refreshes;
    the previous registry and membership versions remain readable by Delta time
    travel. Owner only; a synced (locked) audience must be unsynced first.
    """
    from pyspark.sql import functions as F

    aud = get_audience(spark, lake, audience, user)
    _check_editable(aud, user, "delete")
    new = replace(aud, deleted=True, updated_at=_now(), version=aud.version + 1)
    _save(spark, lake, new, "DELETE AUDIENCE")
    lake.delete_where("audience_members", F.col("audience_id") == F.lit(aud.audience_id))
    return new


def set_sync(
    spark: SparkSession,
    lake: Lake,
    audience: str | Audience,
    user: str | None,
    destination: str | None,
    fmt: str = "csv",
) -> Audience:
    """Turn sync to a file drop on (``destination`` a path/URI) or off (``None``).

    While synced the audience is locked, and every refresh rewrites the drop. Turning
    sync on writes the drop once immediately.
    """
    aud = get_audience(spark, lake, audience, user)
    if user is not None and user != aud.owner:
        raise AudienceError(f"audience {aud.name!r} belongs to {aud.owner}; {user} cannot change its sync")
    if destination is not None:
        _check_choice(fmt, SYNC_FORMATS, "sync format")
        if aud.locked and aud.synced_to != destination:
            raise AudienceError(f"audience {aud.name!r} is already synced to {aud.synced_to}; turn sync off first")
    new = replace(
        aud,
        synced_to=destination,
        sync_format=fmt if destination else None,
        updated_at=_now(),
        version=aud.version + 1,
    )
    _save(spark, lake, new, "SYNC AUDIENCE" if destination else "UNSYNC AUDIENCE")
    if destination:
        write_sync_drop(spark, lake, new)
    return new


def set_holdout(
    spark: SparkSession,
    lake: Lake,
    audience: str,
    share: float,
    user: str | None = None,
    salt: str | None = None,
    snapshot_date: dt.date | None = None,
) -> Holdout:
    """Keep ``share`` of an audience out of its exports and syncs; record every member's group.

    Args:
        share: 0 turns the holdout off.
        salt: default a new random one (or the current one, when the audience has a holdout).
        snapshot_date: the ``assigned_on`` of members recorded now (default today).

    Raises:
        AudienceError: not the owner, the audience is synced (locked), or a bad share.
    """
    check_share(share)
    aud = get_audience(spark, lake, audience, user)
    if user is not None and user != aud.owner:
        raise AudienceError(f"audience {aud.name!r} belongs to {aud.owner}; {user} cannot change its holdout")
    if aud.locked:
        raise AudienceError(
            f"audience {aud.name!r} is synced to {aud.synced_to} and locked; turn sync off before changing its holdout"
        )
    current = get_holdout(lake, aud.audience_id)
    salt = salt or (current.salt if current else uuid.uuid4().hex[:8])
    lake.write_rows(
        [(aud.audience_id, float(share), salt, user or "system", _now())],
        holdouts_schema(),
        "audience_holdouts",
        operation="SET HOLDOUT",
        metadata={"audience_id": aud.audience_id},
    )
    if share:
        record_groups(spark, lake, aud.audience_id, snapshot_date or dt.date.today())
    return Holdout(aud.audience_id, float(share), salt)


def write_sync_drop(spark: SparkSession, lake: Lake, aud: Audience) -> None:
    """Write the audience's current members, less its holdout, to its file drop (overwritten each time).

    An audience synced to a registered destination (``destination:NAME``) is sent by
    :mod:`segengine.audiences.destinations` instead.
    """
    if not aud.synced_to or aud.synced_to.startswith(DESTINATION_PREFIX):
        return
    df = without_holdout(lake, aud.audience_id, stored_members(lake, aud.audience_id).select("persona_id", "since"))
    writer = df.coalesce(1).write.mode("overwrite")
    if aud.sync_format == "parquet":
        writer.parquet(aud.synced_to)
    else:
        writer.option("header", True).csv(aud.synced_to)


def stored_members(lake: Lake, audience_id: str) -> DataFrame:
    """The stored membership rows of one audience (no visibility check)."""
    return lake.read("audience_members", partitions={"audience_id": audience_id})


def members(spark: SparkSession, lake: Lake, audience_id_or_name: str, user: str | None = None) -> DataFrame:
    """Current members of an audience ``user`` may use.

    Returns:
        DataFrame(persona_id string, since date): one row per member.
    """
    aud = get_audience(spark, lake, audience_id_or_name, user)
    return stored_members(lake, aud.audience_id).select("persona_id", "since")


def resolver(spark: SparkSession, lake: Lake, user: str | None = None) -> Resolver:
    """A name -> Segment callable for the rule compiler's ``in_segment``.

    Only rule-defined audiences resolve (their definition is a segment document);
    any other audience, or one ``user`` cannot see, is a SegmentDefinitionError.
    """
    from segengine.errors import SegmentDefinitionError

    def resolve(name: str) -> Segment:
        from segengine.rules import parse_segment

        try:
            aud = get_audience(spark, lake, name, user)
        except UnknownAudience as exc:
            raise UnknownName(name, exc.candidates) from None
        except AudienceError as exc:
            raise SegmentDefinitionError(f"in_segment: {exc}") from exc
        if aud.source != "rules":
            raise SegmentDefinitionError(
                f"in_segment: audience {name!r} is a {aud.source} audience; only rule-defined audiences can be nested"
            )
        return parse_segment(aud.definition_dict)

    return resolve
