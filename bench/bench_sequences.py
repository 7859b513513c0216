"""Sequence conditions: the two compilations (window functions, self-joins) side by side.

A synthetic event log of ``scale`` personas (10 events and 2 order lines each on average,
spread over 60 days before the snapshot, built with ``spark.range``, cached and
materialised first) and two segments: the abandoned cart of ``conf/segments`` (2 steps,
``then_not``) and a 3-step funnel (view, cart within 1 day, purchase within 3 days); and the abandoned
cart again on a few heavy personas (thousands of carts and orders each, whatever
``scale``), where a self-join's time grows with the square of a persona's rows.
Each is counted with ``sequence_strategy`` ``window`` and ``join`` in turn, three times,
and the median kept, once with Spark's broadcast joins and once without (the plan a
self-join gets when neither side is small, as at 1M personas); both strategies must
select the same personas.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

SNAP = dt.date(2025, 6, 30)
EVENTS_PER_PERSONA = 10
LINES_PER_PERSONA = 2
DAYS = 60

FUNNEL = {
    "name": "View, cart, buy",
    "where": {
        "sequence": [
            {"did": "product_view"},
            {"did": "add_to_cart", "within_days": 1},
            {"purchased": "any", "within_days": 3},
        ],
        "within_days": 30,
    },
}


HEAVY_PERSONAS = 20
HEAVY_ROWS = 20_000  # carts, and order lines, of each heavy persona in the last 14 days


def _views(spark, scale: int, heavy: bool = False):
    """Cached views of ``scale`` personas, or (``heavy``) of HEAVY_PERSONAS personas with
    HEAVY_ROWS carts and order lines each, as a bot or a reseller account might have."""
    from pyspark.sql import functions as F

    from segengine.rules import TableViews

    prefix = "bench_seq_heavy" if heavy else "bench_seq"
    views = TableViews(
        features=f"{prefix}_features",
        order_lines=f"{prefix}_order_lines",
        events=f"{prefix}_events",
        recommendations=f"{prefix}_recs",
        products=f"{prefix}_products",
    )
    days = 14 if heavy else DAYS
    start = int(dt.datetime.combine(SNAP - dt.timedelta(days=days - 1), dt.time()).timestamp())
    span = days * 86_400
    n_events = HEAVY_PERSONAS * HEAVY_ROWS if heavy else scale * EVENTS_PER_PERSONA
    n_lines = HEAVY_PERSONAS * HEAVY_ROWS if heavy else scale * LINES_PER_PERSONA
    if heavy:
        scale = HEAVY_PERSONAS

    def persona(n: int):
        return F.format_string("p%08d", (F.col("id") % F.lit(n)).cast("long"))

    feats = spark.range(scale).select(
        persona(scale).alias("persona_id"),
        F.lit(SNAP).alias("snapshot_date"),
        F.lit("customer").alias("persona_type"),
        F.lit(None).cast("string").alias("cookie_id"),
    )
    mix = ("add_to_cart",) if heavy else ("product_view", "product_view", "add_to_cart", "page_view")
    kinds = F.array(*(F.lit(k) for k in mix))
    events = (
        spark.range(n_events)
        .select(
            F.col("id").cast("string").alias("event_id"),
            persona(scale).alias("persona_id"),
            F.lit(None).cast("string").alias("cookie_id"),
            F.timestamp_seconds(F.lit(start) + (F.rand(1) * span).cast("long")).alias("event_ts"),
            F.element_at(kinds, (F.rand(2) * len(mix)).cast("int") + 1).alias("event_type"),
            F.format_string("SKU%05d", (F.rand(3) * 50).cast("int")).alias("product_id"),
        )
        .withColumn("event_date", F.to_date("event_ts"))
    )
    lines = spark.range(n_lines).select(
        F.col("id").cast("string").alias("order_id"),
        persona(scale).alias("persona_id"),
        F.timestamp_seconds(F.lit(start) + (F.rand(4) * span).cast("long")).alias("order_ts"),
        F.format_string("SKU%05d", (F.rand(5) * 50).cast("int")).alias("product_id"),
        F.when(F.rand(6) < 0.9, 1).otherwise(-1).alias("quantity"),
        F.lit(20.0).alias("unit_price"),
    )
    products = spark.range(50).select(
        F.format_string("SKU%05d", "id").alias("product_id"), F.lit("Shoes").alias("category")
    )
    cached = []
    for df, name in (
        (feats, views.features),
        (events, views.events),
        (lines, views.order_lines),
        (products, views.products),
    ):
        df = df.cache()
        df.count()
        df.createOrReplaceTempView(name)
        cached.append(df)
    return views, cached


def run(spark, config, workdir: str, scale: int) -> list[dict]:
    """Time both compilations of two sequence segments; returns result rows (see bench/run.py)."""
    from segengine.config import conf_dir
    from segengine.rules import compile_segment, parse_segment

    views, cached = _views(spark, scale)
    heavy_views, heavy_cached = _views(spark, scale, heavy=True)
    cached += heavy_cached
    cart = parse_segment(conf_dir() / "segments" / "abandoned_cart.yaml")
    segments = {
        "abandoned_cart": (cart, views),
        "funnel_3_steps": (parse_segment(FUNNEL), views),
        "abandoned_cart_heavy_personas": (cart, heavy_views),
    }
    results = []
    threshold_key = "spark.sql.autoBroadcastJoinThreshold"
    threshold = spark.conf.get(threshold_key)
    for name, (segment, on) in segments.items():
        sql = {s: compile_segment(segment, SNAP, views=on, sequence_strategy=s).sql for s in ("window", "join")}
        rows = (
            f"{HEAVY_PERSONAS} personas with {HEAVY_ROWS} carts and {HEAVY_ROWS} order lines each in 14 days"
            if on is heavy_views
            else f"{scale * EVENTS_PER_PERSONA} events, {scale * LINES_PER_PERSONA} order lines"
        )
        # With broadcasts (Spark's default: small sides of a join are broadcast) and
        # without, which is the plan the join takes once a side exceeds the threshold.
        for broadcast in (True, False):
            spark.conf.set(threshold_key, threshold if broadcast else "-1")
            try:
                samples: dict[str, list[float]] = {"window": [], "join": []}
                counts: dict[str, int] = {}
                for _ in range(3):  # alternate, so a slow spell of the machine hits both
                    for strategy in ("window", "join"):
                        t0 = time.perf_counter()
                        counts[strategy] = spark.sql(sql[strategy]).count()
                        samples[strategy].append(time.perf_counter() - t0)
            finally:
                spark.conf.set(threshold_key, threshold)
            if counts["window"] != counts["join"]:
                raise AssertionError(f"{name}: window selects {counts['window']}, join {counts['join']}")
            medians = {s: statistics.median(v) for s, v in samples.items()}
            suffix = "" if broadcast else "_no_broadcast"
            note = (
                f"{rows} cached; {counts['window']} selected; broadcast joins {'on' if broadcast else 'off'}; "
                "median of 3"
            )
            for strategy, value in medians.items():
                results.append(
                    {
                        "benchmark": f"rules_sequence_{name}",
                        "metric": f"{strategy}{suffix}_median_seconds",
                        "value": value,
                        "unit": "s",
                        "notes": f"{note}; runs {', '.join(f'{x:.2f}' for x in samples[strategy])}",
                    }
                )
            results.append(
                {
                    "benchmark": f"rules_sequence_{name}",
                    "metric": f"join_over_window{suffix}",
                    "value": medians["join"] / medians["window"] if medians["window"] else float("nan"),
                    "unit": "x",
                    "notes": note,
                }
            )
    for df in cached:
        df.unpersist()
    return results
