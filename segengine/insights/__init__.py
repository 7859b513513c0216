"""Insights: per-group metrics, segment migrations, the customer 360 profile, the HTML report.

``build_insights`` is the scheduled job. For one snapshot date it writes, each as one
atomic partition overwrite (a rerun replaces, never duplicates):

* ``insights_segments`` (by ``snapshot_date``): the metrics of every group (see
  :mod:`segengine.insights.metrics` for the definitions);
* ``insights_migrations`` (by ``to_date``): the AI segment transition matrix from the
  previous snapshot to this one;
* ``insights_industry`` (by ``snapshot_date``): average transaction value by industry
  and month over the last 12 months;
* ``insights_matrix`` (by ``snapshot_date``): the fit x engagement scoring matrix per
  group (:mod:`segengine.insights.engagement`);
* ``insights_campaigns`` (by ``snapshot_date``): campaign engagement per group and
  campaign over the last 30 days (when events carry ``campaign_id``);
* ``insights_boundaries`` (by ``snapshot_date``): the boundary review of the numeric
  thresholds of saved rule audiences (:mod:`segengine.insights.boundaries`).

The report (:func:`segengine.insights.report.render_report`) and the profile
(:func:`segengine.insights.profile.customer_profile`) read these tables.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)

__all__ = ["build_insights", "add_months"]


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` shifted by ``months`` calendar months (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _latest_on_or_before(dates: list[dt.date], limit: dt.date) -> dt.date | None:
    earlier = [d for d in dates if d <= limit]
    return max(earlier) if earlier else None


def build_insights(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Compute and write the insight tables for one snapshot date.

    Args:
        spark: the session.
        lake: the Lake.
        config: the Config (``features.cycle_months`` sets the retention look-back).
        snapshot_date: a date with a ``customer_features`` partition.

    Returns:
        A summary: rows written per table, the reference dates used and the AI segment
        stability since the previous snapshot.

    Raises:
        FeatureSnapshotMissing: when ``customer_features`` has no partition for the date
            (the shared check of every command that reads features).
    """
    from pyspark.sql import functions as F

    from segengine.features.snapshots import feature_snapshot_dates, require_feature_partition
    from segengine.insights import metrics as M
    from segengine.insights.migrations import migrations, stability

    snapshot_date = require_feature_partition(lake, snapshot_date)
    dates = feature_snapshot_dates(lake)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date}).cache()
    try:
        total = features.count()
        groups = M.explode_groups(features)
        has_audiences = lake.exists("audience_members")
        registry = lake.read("audiences") if has_audiences and lake.exists("audiences") else None
        if has_audiences:
            aud = M.audience_groups(features, _audience_members_on(lake, snapshot_date), registry)
            groups = groups.unionByName(aud)
        sources = [t for t in M.SOURCE_METRICS if lake.exists(t)]
        metrics = M.aggregate_groups(groups, total, sources)

        earlier = [d for d in dates if d < snapshot_date]
        ref_date = _latest_on_or_before(earlier, add_months(snapshot_date, -config.features.cycle_months))
        retention_df = None
        if ref_date is not None:
            ref = lake.read("customer_features", partitions={"snapshot_date": ref_date})
            retention_df = M.retention(M.explode_groups(ref), features, ref_date)

        ref30 = _latest_on_or_before(earlier, snapshot_date - dt.timedelta(days=30))
        sizes_30d = None
        if ref30 is not None:
            old = lake.read("customer_features", partitions={"snapshot_date": ref30})
            sizes_30d = M.group_sizes(M.explode_groups(old))
            if has_audiences and lake.exists("audience_changes"):
                # Membership on that date, rebuilt from the recorded joins and leaves.
                past = M.audience_groups(old, _audience_members_on(lake, ref30), registry)
                sizes_30d = sizes_30d.unionByName(M.group_sizes(past))
            elif has_audiences and lake.exists("insights_segments"):
                # No change history: take the size from the insights written for that date.
                past = (
                    lake.read("insights_segments", partitions={"snapshot_date": ref30})
                    .where(F.col("dimension") == M.AUDIENCE_DIMENSION)
                    .select("dimension", "segment", "size")
                )
                sizes_30d = sizes_30d.unionByName(past)

        table = M.finish_metrics(metrics, snapshot_date, retention_df, sizes_30d)
        # New metric columns are added to a table written by an older version.
        lake.write(
            table,
            "insights_segments",
            mode="overwrite",
            replace_partitions={"snapshot_date": snapshot_date},
            evolve_schema=True,
        )
        written = {
            "insights_segments": lake.read("insights_segments", partitions={"snapshot_date": snapshot_date}).count()
        }

        summary: dict[str, Any] = {
            "snapshot_date": str(snapshot_date),
            "personas": total,
            "retention_reference": str(ref_date) if ref_date else None,
            "size_change_reference": str(ref30) if ref30 else None,
        }
        if earlier:
            prev = max(earlier)
            matrix = migrations(spark, lake, prev, snapshot_date).cache()
            lake.overwrite_partition(matrix, "insights_migrations", to_date=snapshot_date)
            summary["migration_from"] = str(prev)
            summary["stability"] = stability(matrix.select("from_segment", "to_segment", "count", "share"))["stability"]
            written["insights_migrations"] = matrix.count()
            matrix.unpersist()

        if lake.exists("order_lines") and lake.exists("personas"):
            trends = M.industry_value_trends(lake.read("order_lines"), lake.read("personas"), snapshot_date)
            lake.overwrite_partition(trends, "insights_industry", snapshot_date=snapshot_date)
            written["insights_industry"] = lake.read(
                "insights_industry", partitions={"snapshot_date": snapshot_date}
            ).count()
        written.update(_engagement_tables(spark, lake, config, snapshot_date, groups, features, dates, registry))
        summary["rows"] = written
        log.info("insights %s: %s", snapshot_date, summary)
        return summary
    finally:
        features.unpersist()


def _engagement_tables(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    groups: Any,
    features: Any,
    dates: list[dt.date],
    registry: Any,
) -> dict[str, int]:
    """Write the scoring matrix, the campaign engagement and the boundary review of the date.

    Returns:
        Rows written per table (a table whose input is missing is not written).
    """
    # Imported here like the rest of this module's work, so `import segengine.insights` stays cheap.
    from pyspark.sql import functions as F

    from segengine.errors import ConfigError
    from segengine.features.behaviour import event_date_range
    from segengine.features.build import session_timezone
    from segengine.features.refresh import local_day_bounds
    from segengine.features.support import campaign_touches, campaign_window, has_campaigns
    from segengine.insights import boundaries as B
    from segengine.insights import engagement as E

    bins = config.insights.matrix_bins
    if bins < 1:
        raise ConfigError(f"insights.matrix_bins: expected at least 1, got {bins}")
    written: dict[str, int] = {}
    matrix = E.scoring_matrix(groups, snapshot_date, bins)
    lake.overwrite_partition(matrix, "insights_matrix", snapshot_date=snapshot_date)
    written["insights_matrix"] = lake.read("insights_matrix", partitions={"snapshot_date": snapshot_date}).count()

    events = lake.read("events") if lake.exists("events") else None
    if has_campaigns(events):
        tz = config.features.timezone
        first, last = campaign_window(snapshot_date)
        touches = campaign_touches(
            lake.read("events", where={"event_date": event_date_range(first, last)}),
            lake.read("order_lines", where={"order_ts": local_day_bounds(first, last, tz)}),
            snapshot_date,
            tz,
            session_timezone(spark),
        )
        table = E.campaign_engagement(groups, touches, snapshot_date)
        lake.overwrite_partition(table, "insights_campaigns", snapshot_date=snapshot_date)
        written["insights_campaigns"] = lake.read(
            "insights_campaigns", partitions={"snapshot_date": snapshot_date}
        ).count()

    if registry is not None and "definition" in registry.columns:
        live = registry.where((F.col("source") == "rules") & ~F.coalesce(F.col("deleted"), F.lit(False)))
        # The registry is small (one row per saved audience): read on the driver.
        cuts = [
            cut
            for row in live.select("name", "definition").collect()
            for cut in B.numeric_cuts(row["name"], json.loads(row["definition"] or "{}"))
        ]
        members = groups.where(F.col("dimension") == "audience").select("segment", "persona_id")
        ref = _latest_on_or_before([d for d in dates if d < snapshot_date], add_months(snapshot_date, -3))
        before = lake.read("customer_features", partitions={"snapshot_date": ref}) if ref else None
        rows = B.boundary_review(
            features,
            before,
            members,
            cuts,
            snapshot_date,
            ref,
            config.insights.boundary_margin,
            config.insights.boundary_drift_points,
        )
        df = spark.createDataFrame(rows, B.BOUNDARY_SCHEMA)
        lake.overwrite_partition(df, "insights_boundaries", snapshot_date=snapshot_date)
        written["insights_boundaries"] = len(rows)
    return written


def _audience_members_on(lake: Lake, snapshot_date: dt.date) -> DataFrame:
    """Audience membership on ``snapshot_date``: from ``audience_changes`` when recorded.

    The current ``audience_members`` only describes the latest refresh; insights for an
    earlier date (a backfill, or the 30-day comparison) need the membership of that
    date, which the change history gives. Without a history the current one is used.
    """
    from segengine.audiences.membership import members_as_of

    if lake.exists("audience_changes"):
        return members_as_of(lake.read("audience_changes"), snapshot_date)
    return lake.read("audience_members")
