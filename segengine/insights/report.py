"""The self-contained HTML report (inline SVG charts, no network needed to view it).

Everything drawn comes from small aggregates: the ``insights_*`` tables written by
:func:`segengine.insights.build_insights` (tens of rows per date) and one CLV histogram
computed in Spark (20 bins). No customer-level data is collected.
"""

from __future__ import annotations

import datetime as dt
import string
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.errors import SegengineError
from segengine.insights import charts as C

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CLV_BINS = 20
TIER_ORDER = ("top", "middle", "rest")
RFMT = (
    ("avg_recency_days", "Recency (days)"),
    ("avg_frequency", "Frequency"),
    ("avg_monetary", "Monetary"),
    ("avg_tenure_days", "Tenure (days)"),
)
TABLE_COLUMNS = (
    ("segment", "Segment"),
    ("size", "Size"),
    ("share", "Share"),
    ("revenue", "Revenue"),
    ("avg_revenue_per_customer", "Rev./customer"),
    ("avg_basket_value", "Basket"),
    ("avg_clv", "Avg CLV"),
    ("total_clv", "Total CLV"),
    ("retention_rate", "Retention"),
    ("size_change_30d", "30d change"),
    ("email_engaged_share", "Email engaged"),
    ("click_to_open_rate", "Click/open"),
)


def default_report_path(config: Any, snapshot_date: dt.date) -> str:
    """``<report_dir or warehouse/reports>/<report_name with _DATE before the suffix>``.

    A remote warehouse (s3a://, …) cannot take a local file, so the report then goes to
    ``reports/`` under the working directory unless ``insights.report_dir`` says otherwise.
    """
    base = config.insights.report_dir
    if not base:
        base = str(Path(config.warehouse_uri) / "reports") if config.is_local_warehouse else "reports"
    name = Path(config.insights.report_name)
    return str(Path(base.removeprefix("file:")) / f"{name.stem}_{snapshot_date.isoformat()}{name.suffix or '.html'}")


def clv_histogram(features: DataFrame, bins: int = CLV_BINS) -> tuple[list[float], list[int]]:
    """Equal-width histogram of ``clv_predicted`` (scored personas only), computed in Spark.

    Args:
        features: one ``customer_features`` snapshot.
        bins: number of bins.

    Returns:
        ``(edges, counts)`` with ``len(edges) == bins + 1``; empty lists when nothing is scored.
    """
    from pyspark.sql import functions as F

    scored = features.where(F.col("clv_predicted").isNotNull()).select(F.col("clv_predicted").cast("double").alias("v"))
    lo, hi = scored.agg(F.min("v"), F.max("v")).first()
    if lo is None:
        return [], []
    width = (hi - lo) / bins if hi > lo else 1.0
    idx = F.least(F.floor((F.col("v") - F.lit(lo)) / F.lit(width)).cast("int"), F.lit(bins - 1))
    counted = {r["b"]: r["n"] for r in scored.groupBy(idx.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()}
    return [lo + i * width for i in range(bins + 1)], [int(counted.get(i, 0)) for i in range(bins)]


def _figure(name: str, title: str, svg: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return (
        f'<figure class="chart" id="chart-{escape(name)}" data-chart="{escape(name)}">'
        f"<figcaption>{escape(title)}</figcaption>{note_html}{svg}</figure>"
    )


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column in ("share", "retention_rate", "email_engaged_share", "click_to_open_rate"):
        return f"{value:.1%}"
    if column == "size_change_30d":
        return f"{value:+d}"
    return C.fmt(value) if isinstance(value, (int, float)) else escape(str(value))


def _metrics_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(t)}</th>" for _, t in TABLE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c), c)}</td>" for c, _ in TABLE_COLUMNS) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def collect_report_data(spark: SparkSession, lake: Any, snapshot_date: dt.date) -> dict[str, Any]:
    """The small aggregates the report draws (all collected from insight tables).

    Raises:
        SegengineError: when the insights for the date have not been built.
    """
    from pyspark.sql import functions as F

    if not lake.exists("insights_segments"):
        raise SegengineError(f"insights_segments does not exist: run `segengine insights --date {snapshot_date}` first")
    segs = [r.asDict() for r in lake.read("insights_segments", partitions={"snapshot_date": snapshot_date}).collect()]
    if not segs:
        raise SegengineError(
            f"insights_segments has no rows for {snapshot_date}: run `segengine insights --date {snapshot_date}` first"
        )
    history = [
        r.asDict()
        for r in lake.read("insights_segments")
        .where(F.col("dimension").isin("audience", "all") & (F.col("snapshot_date") <= F.lit(snapshot_date)))
        .select("snapshot_date", "dimension", "segment", "size")
        .collect()
    ]
    if lake.exists("audience_refreshes") and lake.exists("audiences"):
        # Each refresh records the audience's size on its date: a true history, unlike
        # audience_members (current membership only). It replaces the audience rows above.
        refreshes = lake.read("audience_refreshes").where(F.col("snapshot_date") <= F.lit(snapshot_date))
        sizes = refreshes.groupBy("audience_id", "snapshot_date").agg(F.max_by("size", "refreshed_at").alias("size"))
        registry = lake.read("audiences")
        if "deleted" in registry.columns:
            registry = registry.where(~F.coalesce(F.col("deleted"), F.lit(False)))
        names = registry.select("audience_id", "name").dropDuplicates(["audience_id"])
        refreshed = [
            {**r.asDict(), "dimension": "audience"}
            for r in sizes.join(names, "audience_id")
            .select("snapshot_date", F.col("name").alias("segment"), "size")
            .collect()
        ]
        if refreshed:
            history = [h for h in history if h["dimension"] != "audience"] + refreshed
    matrix: list[dict[str, Any]] = []
    if lake.exists("insights_migrations"):
        matrix = [r.asDict() for r in lake.read("insights_migrations", partitions={"to_date": snapshot_date}).collect()]
    industry: list[dict[str, Any]] = []
    if lake.exists("insights_industry"):
        industry = [
            r.asDict() for r in lake.read("insights_industry", partitions={"snapshot_date": snapshot_date}).collect()
        ]
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    edges, counts = clv_histogram(features)
    return {
        "segments": segs,
        "history": history,
        "matrix": matrix,
        "industry": industry,
        "clv_edges": edges,
        "clv_counts": counts,
    }


def render_html(data: dict[str, Any], snapshot_date: dt.date) -> str:
    """Render the report from :func:`collect_report_data` output (pure: no Spark).

    Args:
        data: the aggregates.
        snapshot_date: the date in the title.

    Returns:
        The complete HTML document.
    """
    segs = data["segments"]
    by_dim: dict[str, list[dict[str, Any]]] = {}
    for r in segs:
        by_dim.setdefault(r["dimension"], []).append(r)
    ai = sorted(by_dim.get("ai_segment", []), key=lambda r: -r["size"])
    everyone = (by_dim.get("all") or [{}])[0]
    figures: list[str] = []

    labels = [r["segment"] for r in ai]
    figures.append(
        _figure(
            "segment-sizes",
            "AI segment sizes",
            C.bar_chart("segment-sizes", labels, [r["size"] for r in ai], "personas"),
        )
    )
    figures.append(
        _figure(
            "segment-revenue",
            "Revenue by AI segment (current cycle)",
            C.bar_chart("segment-revenue", labels, [r["revenue"] for r in ai], "revenue"),
        )
    )

    # RFMT: each column coloured on its own min-max scale (units differ), labelled with the mean.
    cells: dict[tuple[str, str], tuple[float, str]] = {}
    for col, title in RFMT:
        vals = [r.get(col) for r in ai if r.get(col) is not None]
        lo, hi = (min(vals), max(vals)) if vals else (0.0, 0.0)
        for r in ai:
            v = r.get(col)
            if v is not None:
                cells[(r["segment"], title)] = ((v - lo) / (hi - lo) if hi > lo else 0.5, C.fmt(v))
    figures.append(
        _figure(
            "rfmt-profile",
            "RFMT profile per AI segment",
            C.heatmap(
                "rfmt-profile",
                labels,
                [t for _, t in RFMT],
                cells,
                "segment",
                "mean per segment",
                legend=("low", "high"),
            ),
            "Darker = higher within the column.",
        )
    )

    matrix = data["matrix"]
    from_date = matrix[0]["from_date"] if matrix else None
    rows = sorted({m["from_segment"] for m in matrix})
    cols = sorted({m["to_segment"] for m in matrix})
    mcells = {(m["from_segment"], m["to_segment"]): (m["share"], C.share_label(m["share"])) for m in matrix}
    stay = [m for m in matrix if "(none)" not in (m["from_segment"], m["to_segment"])]
    compared = sum(m["count"] for m in stay)
    stayed = sum(m["count"] for m in stay if m["from_segment"] == m["to_segment"])
    stability = stayed / compared if compared else None
    note = (
        f"From {from_date} (rows) to {snapshot_date} (columns); row shares. Stability: "
        f"{stability:.1%} of {compared} scored personas stayed."
        if matrix and stability is not None
        else "Needs two scored snapshots."
    )
    figures.append(
        _figure(
            "migration-heatmap",
            "AI segment migrations",
            C.heatmap("migration-heatmap", rows, cols, mcells, "from", "to", legend=("0% of the row", "100%"))
            if matrix
            else C.empty_chart("migration-heatmap", "No earlier snapshot yet"),
            note,
        )
    )
    figures.append(
        _figure(
            "clv-distribution",
            "Predicted CLV distribution",
            C.histogram(
                "clv-distribution",
                data["clv_edges"],
                data["clv_counts"],
                "predicted CLV",
                y_title="personas (log scale)",
                log_scale=True,
            )
            if data["clv_counts"]
            else C.empty_chart("clv-distribution", "CLV not scored yet"),
        )
    )

    tiers = {r["segment"]: r for r in by_dim.get("value_tier", [])}
    order = [t for t in TIER_ORDER if t in tiers] + sorted(set(tiers) - set(TIER_ORDER))
    bars = [
        (label, {t: tiers[t].get(col) or 0.0 for t in order})
        for label, col in (("Personas", "size"), ("Revenue", "revenue"), ("Predicted CLV", "total_clv"))
    ]
    figures.append(
        _figure("value-tiers", "Value tier breakdown", C.stacked_bars("value-tiers", bars if tiers else [], order))
    )

    history = data["history"]
    dates = sorted({h["snapshot_date"] for h in history})
    auds = sorted({h["segment"] for h in history if h["dimension"] == "audience"})
    size_at = {(h["dimension"], h["segment"], h["snapshot_date"]): h["size"] for h in history}
    # The 10 largest audiences on the latest date (was the first 10 by name).
    latest = dates[-1] if dates else None
    largest = sorted(auds, key=lambda a: (-(size_at.get(("audience", a, latest)) or 0), a))[:10]
    series = {a: [size_at.get(("audience", a, d)) for d in dates] for a in largest}
    figures.append(
        _figure(
            "audience-sizes",
            "Audience sizes over time",
            C.line_chart("audience-sizes", [str(d) for d in dates], series, "members")
            if series
            else C.empty_chart("audience-sizes", "No audiences yet"),
            "" if len(auds) <= 10 else f"The 10 largest of {len(auds)} audiences on {latest}.",
        )
    )

    industry = data["industry"]
    months = sorted({i["month"] for i in industry})
    revenue_by: dict[str, float] = {}
    for i in industry:
        revenue_by[i["industry"]] = revenue_by.get(i["industry"], 0.0) + (i["revenue"] or 0.0)
    top_ind = sorted(revenue_by, key=lambda k: -revenue_by[k])[:6]
    atv = {(i["industry"], i["month"]): i["avg_transaction_value"] for i in industry}
    ind_series = {k: [atv.get((k, m)) for m in months] for k in top_ind}
    figures.append(
        _figure(
            "industry-trends",
            "Average transaction value by industry",
            C.line_chart("industry-trends", [m.strftime("%Y-%m") for m in months], ind_series, "per order")
            if ind_series
            else C.empty_chart("industry-trends", "No B2B orders yet"),
            "Six largest industries by revenue, last 12 months.",
        )
    )

    kpis = [
        ("Personas", C.fmt(everyone.get("size"))),
        ("Customers", C.fmt(everyone.get("customers"))),
        ("Revenue (cycle)", C.fmt(everyone.get("revenue"))),
        ("Avg predicted CLV", C.fmt(everyone.get("avg_clv"))),
        ("Retention", f"{everyone['retention_rate']:.1%}" if everyone.get("retention_rate") is not None else "-"),
        ("Segment stability", f"{stability:.1%}" if stability is not None else "-"),
    ]
    kpi_html = (
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{v}</b><span>{escape(k)}</span></div>' for k, v in kpis)
        + "</div>"
    )
    tables = []
    for dim, title in (
        ("ai_segment", "AI segments"),
        ("value_tier", "Value tiers"),
        ("behaviour_state", "Behaviour states"),
        ("lifecycle_stage", "Lifecycle stages"),
        ("persona_type", "Persona types"),
        ("audience", "Audiences"),
    ):
        if by_dim.get(dim):
            tables.append(f"<h2>{escape(title)}</h2>" + _metrics_table(sorted(by_dim[dim], key=lambda r: -r["size"])))
    body = kpi_html + '<div class="grid">' + "".join(figures) + "</div>" + "".join(tables)
    template = string.Template(
        resources.files("segengine").joinpath("templates/insights_report.html").read_text("utf-8")
    )
    return template.substitute(
        title=escape(f"segengine insights — {snapshot_date}"),
        subtitle=escape(f"Snapshot {snapshot_date}; generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"),
        body=body,
    )


def render_report(
    spark: SparkSession, lake: Any, config: Any, snapshot_date: dt.date, out_path: str | None = None
) -> str:
    """Write the HTML report for one snapshot date.

    Args:
        spark: the session.
        lake: the Lake.
        config: the Config (for the default output path).
        snapshot_date: a date whose insights were built by :func:`segengine.insights.build_insights`.
        out_path: the file to write (default :func:`default_report_path`).

    Returns:
        The path written.

    Raises:
        SegengineError: when the insights for the date are missing.
    """
    out = Path(out_path or default_report_path(config, snapshot_date))
    html = render_html(collect_report_data(spark, lake, snapshot_date), snapshot_date)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return str(out)
