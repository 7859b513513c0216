"""One evaluation window: fit ALS up to a cutoff, score ALS and both baselines on the purchases after it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from segengine.features.snapshots import feature_snapshot_dates
from segengine.models.recommend.als import RecommendModel, train_model
from segengine.models.recommend.fallback import (
    SEGMENTATION_NONE,
    fallback_lists,
    segment_of,
    segmentation_of,
    top_from_list,
)
from segengine.models.recommend.feedback import _end_of, interactions
from segengine.models.recommend.metrics import (
    GROUP_ALL,
    GROUP_COLD,
    GROUP_KNOWN,
    GROUPS,
    METHODS,
    per_user_metrics,
    ranking_metrics,
)
from segengine.models.recommend.scoring import recommend

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.config import RecommendConfig
    from segengine.lake import Lake

log = logging.getLogger(__name__)


def segments_as_of(lake: Lake, as_of: dt.date) -> tuple[DataFrame | None, str, dt.date | None]:
    """The segments an evaluation may use when its model is trained up to ``as_of``.

    The latest ``customer_features`` partition on or before ``as_of``: a later one (the
    evaluation date's) has value tiers and AI segments that already count the purchases
    the evaluation tests on, a leak in favour of popular-in-segment.

    Args:
        lake: the Lake.
        as_of: the training cutoff (last day of training data).

    Returns:
        (DataFrame(persona_id, segment) or None, segmentation name, the partition date or None);
        without such a partition a warning is logged and the segmentation is ``"none"``.
    """
    dates = [d for d in feature_snapshot_dates(lake) if d <= as_of]
    if not dates:
        log.warning(
            "recommendation evaluation trained up to %s without a segmentation (no customer_features partition "
            "on or before %s; run `segengine features --date %s`): popular_in_segment is the popularity "
            "baseline over one segment of everyone",
            as_of,
            as_of,
            as_of,
        )
        return None, SEGMENTATION_NONE, None
    features = lake.read("customer_features", partitions={"snapshot_date": dates[-1]})
    return segment_of(features), segmentation_of(features), dates[-1]


@dataclass
class _Inputs:
    order_lines: DataFrame
    events: DataFrame | None
    products: DataFrame | None
    personas: DataFrame | None
    catalog: int | None


def _window_truth(
    order_lines: DataFrame, inter: DataFrame, train_end: dt.date, end: dt.date, cfg: RecommendConfig
) -> DataFrame:
    """Purchases after ``train_end`` up to the end of ``end`` (minus items bought before, when excluded)."""
    truth = (
        order_lines.where(
            (F.col("order_ts") >= _end_of(train_end)) & (F.col("order_ts") < _end_of(end)) & (F.col("quantity") > 0)
        )
        .select("persona_id", "product_id")
        .distinct()
    )
    if cfg.exclude_purchased:
        truth = truth.join(
            inter.where(F.col("bought")).select("persona_id", "product_id"), ["persona_id", "product_id"], "left_anti"
        )
    return truth


def _score_window(
    lake: Lake,
    inputs: _Inputs,
    cfg: RecommendConfig,
    split: str,
    train_end: dt.date,
    end: dt.date,
    k: int,
    compare: dict[str, RecommendModel] | None = None,
) -> tuple[dict[str, Any], DataFrame, RecommendModel]:
    """Fit ALS up to ``train_end`` and score ALS and both baselines on the purchases of (train_end, end].

    Every user with a purchase in the window (of an item not bought before, when
    ``exclude_purchased``) is scored: users ALS knows get ALS (filled from the segment
    list if short), users it does not know (cold start) get the popular-in-segment
    fallback, exactly as :func:`recommend` serves them. Segments come from
    :func:`segments_as_of` ``train_end``.

    Returns:
        (the window's result without intervals, the per-user table (cached: persona_id,
        group, ``<method>_precision|recall|ap``), the fitted model).
    """
    inter = interactions(inputs.order_lines, inputs.events, train_end, cfg, inputs.personas).cache()
    model = train_model(inter, cfg)
    truth = _window_truth(inputs.order_lines, inter, train_end, end, cfg).cache()
    segments, segmentation, seg_date = segments_as_of(lake, train_end)
    if segments is None:
        segments = inter.select("persona_id").distinct().withColumn("segment", F.lit("all"))
    known = model.users.select("persona_id", F.lit(True).alias("_known"))
    users = (
        truth.select("persona_id")
        .distinct()
        .join(segments, "persona_id", "left")
        .join(known, "persona_id", "left")
        .select(
            "persona_id",
            F.coalesce("segment", F.lit("unknown" if segmentation != SEGMENTATION_NONE else "all")).alias("segment"),
            F.when(F.col("_known"), F.lit(GROUP_KNOWN)).otherwise(F.lit(GROUP_COLD)).alias("group"),
        )
        .cache()
    )
    # Segment lists are ranked over the whole population of the partition; users the
    # partition does not have (personas created after it) are in "unknown", whose list is
    # the global one.
    members = segments.unionByName(users.where(F.col("segment") == "unknown").select("persona_id", "segment"))
    bought = inter.where(F.col("bought")).select("persona_id", "product_id") if cfg.exclude_purchased else None
    targets = users.select("persona_id", "segment")
    global_top, seg_list = fallback_lists(inter, inputs.products, members)
    recs = {
        "als": recommend(model, targets, inter, inputs.products, cfg, k=k, segments=members),
        "popularity": top_from_list(targets, global_top, bought, k, key=None),
        "popular_in_segment": top_from_list(targets, seg_list, bought, k, key="segment"),
    }
    per_user = users.select("persona_id", "group")
    for method, df in recs.items():
        m = per_user_metrics(df, truth, k)
        per_user = per_user.join(
            m.select(
                "persona_id",
                *[F.col(c).alias(f"{method}_{c}") for c in ("precision", "recall", "ap")],
            ),
            "persona_id",
            "left",
        )
    per_user = per_user.fillna(0.0).cache()
    sums = (
        per_user.groupBy("group")
        .agg(
            F.count(F.lit(1)).alias("n"),
            *[F.sum(f"{m}_{c}").alias(f"{m}_{c}") for m in METHODS for c in ("precision", "recall", "ap")],
        )
        .collect()
    )
    totals: dict[str, dict[str, float]] = {g: {"n": 0.0} for g in GROUPS}
    for row in sums:
        for g in (row["group"], GROUP_ALL):
            for name, value in row.asDict().items():
                if name != "group":
                    totals[g][name] = totals[g].get(name, 0.0) + float(value or 0)
    coverage: dict[str, dict[str, float]] = {}
    for method, df in recs.items():
        cov = (
            df.where(F.col("rank") <= k)
            .join(users.select("persona_id", "group"), "persona_id")
            .rollup("group")
            .agg(F.countDistinct("product_id").alias("c"))
            .collect()
        )
        coverage[method] = {(r["group"] or GROUP_ALL): r["c"] / float(inputs.catalog) for r in cov if inputs.catalog}
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    lift: dict[str, dict[str, float]] = {}
    for g in GROUPS:
        n = totals[g]["n"]
        metrics[g] = {
            m: {
                "precision_at_k": totals[g].get(f"{m}_precision", 0.0) / n if n else float("nan"),
                "recall_at_k": totals[g].get(f"{m}_recall", 0.0) / n if n else float("nan"),
                "map_at_k": totals[g].get(f"{m}_ap", 0.0) / n if n else float("nan"),
                "coverage": coverage[m].get(g, float("nan")) if n else float("nan"),
                "users": n,
            }
            for m in METHODS
        }
        als_p = metrics[g]["als"]["precision_at_k"]
        lift[g] = {
            f"vs_{base}": als_p / metrics[g][base]["precision_at_k"]
            if n and metrics[g][base]["precision_at_k"] > 0
            else float("nan")
            for base in ("popularity", "popular_in_segment")
        }
    result: dict[str, Any] = {
        "split": split,
        "train_end": train_end.isoformat(),
        "window": [(train_end + dt.timedelta(days=1)).isoformat(), end.isoformat()],
        "segmentation": segmentation,
        "segments_as_of": seg_date.isoformat() if seg_date else None,
        "users": {
            "scored": int(totals[GROUP_ALL]["n"]),
            GROUP_KNOWN: int(totals[GROUP_KNOWN]["n"]),
            GROUP_COLD: int(totals[GROUP_COLD]["n"]),
        },
        "metrics": metrics,
        "lift": lift,
    }
    if compare:
        result["compare"] = {
            name: ranking_metrics(
                recommend(other, targets, inter, inputs.products, cfg, k=k, segments=members),
                truth,
                k,
                inputs.catalog,
            )
            for name, other in compare.items()
        }
    per_user.count()
    for df in (inter, truth, users):
        df.unpersist()
    return result, per_user, model
