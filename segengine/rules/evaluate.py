"""Run compiled segments on Spark: register the temp views once, evaluate, count.

``register_views`` caches the feature partition of the snapshot date and exposes the
order lines, events (both cut at the snapshot date), recommendations of that date and
products as temp views, so every segment evaluated afterwards shares one scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.errors import SegengineError, SegmentDefinitionError, UnknownName
from segengine.features.snapshots import require_feature_partition
from segengine.rules.compile import Resolver, TableViews, _as_date, compile_segment
from segengine.rules.parse import Segment, parse_segment, slugify

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake

# view name -> the DataFrame cached for it, so re-registering unpersists the old one.
_CACHED: dict[tuple[int, str], Any] = {}

_RECOMMENDATIONS_DDL = (
    "persona_id string, product_id string, rank int, score int, recommender string, snapshot_date date"
)


def check_session(spark: SparkSession) -> None:
    """Refuse sessions whose SQL parser would read escaped string literals differently.

    ``literal()`` escapes quotes and backslashes with backslashes, which Spark honours
    unless ``spark.sql.parser.escapedStringLiterals`` is true.
    """
    if str(spark.conf.get("spark.sql.parser.escapedStringLiterals", "false")).lower() == "true":
        raise SegengineError(
            "spark.sql.parser.escapedStringLiterals=true is not supported by the rule compiler; set it to false"
        )


def _empty(spark: SparkSession, name: str) -> DataFrame:
    if name == "recommendations":
        return spark.createDataFrame([], _RECOMMENDATIONS_DDL)
    from segengine.contract import spark_schema

    schema = spark_schema(name)
    if name == "events" and "event_date" not in schema.fieldNames():
        from pyspark.sql.types import DateType

        schema = schema.add("event_date", DateType())
    return spark.createDataFrame([], schema)


def register_views(
    spark: SparkSession,
    lake: Lake,
    snapshot_date: dt.date | str,
    views: TableViews | None = None,
    features: DataFrame | None = None,
) -> TableViews:
    """Register the temp views compiled segments read, for one snapshot date.

    Args:
        spark: the session.
        lake: the :class:`~segengine.lake.Lake`.
        snapshot_date: the feature snapshot to segment.
        views: view names (default :class:`TableViews`).
        features: the ``customer_features`` partition of the date, already read (and
            cached) by the caller, who then owns it: it is used as it is, neither read
            again nor unpersisted here (the studio's warm cache passes its frame).

    Returns:
        The view names registered.

    Raises:
        FeatureSnapshotMissing: when ``customer_features`` has no partition for the
        date (a missing snapshot is never read as an empty one). Missing behaviour
        tables (events, recommendations, …) are registered empty.
    """
    from pyspark.sql import functions as F

    check_session(spark)
    views = views or TableViews()
    day = _as_date(snapshot_date)
    owned = features is None
    if features is None:
        require_feature_partition(lake, day)
        features = lake.read("customer_features", partitions={"snapshot_date": day}).cache()
    key = (id(spark), views.features)
    old = _CACHED.pop(key, None)
    if old is not None and old is not features:
        old.unpersist()
    if owned:
        _CACHED[key] = features
    features.createOrReplaceTempView(views.features)

    def table(name: str) -> DataFrame:
        return lake.read(name) if lake.exists(name) else _empty(spark, name)

    next_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    table("order_lines").where(F.col("order_ts") < F.lit(next_day)).createOrReplaceTempView(views.order_lines)
    table("events").where(F.col("event_date") <= F.lit(day)).createOrReplaceTempView(views.events)
    recs = table("recommendations").where(F.col("snapshot_date") == F.lit(day))
    recs.createOrReplaceTempView(views.recommendations)
    table("products").createOrReplaceTempView(views.products)
    return views


def evaluate_segment(
    spark: SparkSession,
    lake: Lake,
    segment: Segment | dict[str, Any] | str | Path,
    snapshot_date: dt.date | str,
    resolver: Resolver | None = None,
    views_registered: bool = False,
    views: TableViews | None = None,
) -> DataFrame:
    """The personas in ``segment`` on ``snapshot_date``.

    Args:
        spark: the session.
        lake: the Lake (used only when the views are not registered yet).
        segment: a :class:`Segment` or a document :func:`parse_segment` accepts.
        snapshot_date: the snapshot to evaluate.
        resolver: resolves ``in_segment`` names (e.g. ``segengine.audiences.resolver``).
        views_registered: True when :func:`register_views` already ran for this date.
        views: view names (default :class:`TableViews`).

    Returns:
        DataFrame(persona_id, persona_type), lazily evaluated.
    """
    compiled = compile_segment(segment, snapshot_date, views=views, resolver=resolver)
    if not views_registered:
        register_views(spark, lake, compiled.snapshot_date, views)
    else:
        check_session(spark)
    return spark.sql(compiled.sql)


def count_by_persona_type(members: DataFrame) -> dict[str, int]:
    """``{persona_type: count, ..., "total": n}`` for a segment's members (one small collect)."""
    rows = members.groupBy("persona_type").count().collect()
    counts = {str(r["persona_type"]): int(r["count"]) for r in sorted(rows, key=lambda r: str(r["persona_type"]))}
    counts["total"] = sum(counts.values())
    return counts


def directory_resolver(directory: str | Path, fallback: Resolver | None = None) -> Resolver:
    """Resolve ``in_segment`` names to the segment files of one directory.

    A name matches a file ``<name>.yaml|.yml|.json`` or a document whose ``name`` has the
    same slug (``Churn risk`` ≙ ``churn_risk``). Unmatched names go to ``fallback``.

    Args:
        directory: where the segment files live.
        fallback: another resolver (e.g. the audiences registry).

    Returns:
        A callable name → :class:`Segment` raising :class:`~segengine.errors.UnknownName`
        (a ``KeyError``, with the known names) when unknown.
    """
    root = Path(directory)
    by_slug: dict[str, Path] | None = None

    def index() -> dict[str, Path]:
        nonlocal by_slug
        if by_slug is None:
            by_slug = {}
            files = sorted(p for ext in ("*.yaml", "*.yml", "*.json") for p in root.glob(ext))
            for path in files:
                by_slug.setdefault(slugify(path.stem), path)
            for path in files:
                try:
                    name = parse_segment(path).name
                except SegmentDefinitionError:
                    continue  # reported when that file itself is used
                by_slug.setdefault(slugify(name), path)
        return by_slug

    def known() -> list[str]:
        return sorted({p.stem for p in index().values()})

    def resolve(name: str) -> Segment:
        path = index().get(slugify(name))
        if path is not None:
            return parse_segment(path)
        if fallback is not None:
            try:
                return fallback(name)
            except UnknownName as exc:
                raise UnknownName(name, [*known(), *exc.candidates]) from None
        raise UnknownName(name, known())

    return resolve


def chain_resolvers(*resolvers: Callable[[str], Segment] | None) -> Resolver:
    """Try each resolver in turn; ``KeyError`` when none knows the name."""
    active = [r for r in resolvers if r is not None]

    def resolve(name: str) -> Segment:
        candidates: list[str] = []
        for r in active:
            try:
                found = r(name)
            except LookupError as exc:
                candidates.extend(getattr(exc, "candidates", ()))
                continue
            if found is not None:
                return found
        raise UnknownName(name, candidates)

    return resolve
