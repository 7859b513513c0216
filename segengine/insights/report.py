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

    from segengine.config import Config
    from segengine.lake import Lake

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
SUPPORT_COLUMNS = (
    ("segment", "Segment"),
    ("size", "Size"),
    ("revenue", "Revenue"),
    ("retention_rate", "Retention"),
    ("expansion_revenue", "Expansion rev."),
    ("expanding_customers", "Expanding"),
    ("tickets_per_100", "Tickets /100 (90d)"),
    ("csat_avg", "CSAT avg"),
    ("csat_responses", "CSAT n"),
    ("nps", "NPS"),
    ("nps_responses", "NPS n"),
)
CAMPAIGN_TABLE = (
    ("campaign_id", "Campaign"),
    ("segment", "Group"),
    ("members_reached", "Reached"),
    ("sends", "Sends"),
    ("opens", "Opens"),
    ("clicks", "Clicks"),
    ("conversions", "Conversions"),
    ("open_rate", "Open rate"),
    ("click_rate", "Click rate"),
    ("conversion_rate", "Conv./click"),
)
BOUNDARY_TABLE = (
    ("audience", "Segment"),
    ("attribute", "Attribute"),
    ("op", "Op"),
    ("threshold", "Threshold"),
    ("members", "Members"),
    ("members_near", "Within margin"),
    ("near_share", "Share near"),
    ("percentile_now", "Percentile now"),
    ("percentile_before", "A quarter ago"),
    ("drift_points", "Drift (points)"),
    ("suggestion", "Suggestion"),
)
RATE_COLUMNS = (
    "share",
    "retention_rate",
    "email_engaged_share",
    "click_to_open_rate",
    "open_rate",
    "click_rate",
    "conversion_rate",
    "near_share",
)
# A saved segment is outlined around the matrix cells holding at least this share of its members.
OUTLINE_MIN_SHARE = 0.1


def default_report_path(config: Config, snapshot_date: dt.date) -> str:
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
    row = scored.agg(F.min("v"), F.max("v")).first()
    assert row is not None  # a global aggregate has exactly one row
    lo, hi = row
    if lo is None:
        return [], []
    width = (hi - lo) / bins if hi > lo else 1.0
    idx = F.least(F.floor((F.col("v") - F.lit(lo)) / F.lit(width)).cast("int"), F.lit(bins - 1))
    counted = {r["b"]: r["n"] for r in scored.groupBy(idx.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()}
    return [lo + i * width for i in range(bins + 1)], [int(counted.get(i, 0)) for i in range(bins)]


PROBABILITY_BINS = 10


def probability_histogram(
    features: DataFrame, column: str, bins: int = PROBABILITY_BINS
) -> tuple[list[float], list[int]]:
    """Histogram of a probability column (e.g. ``churn_risk``) in ``bins`` equal bins of [0, 1], in Spark.

    Args:
        features: one ``customer_features`` snapshot.
        column: a probability attribute.
        bins: number of bins.

    Returns:
        ``(edges, counts)``; empty lists when the column is missing or nothing is scored.
    """
    from pyspark.sql import functions as F

    if column not in features.columns:
        return [], []
    v = F.col(column).cast("double")
    idx = F.least(F.floor(v * F.lit(bins)).cast("int"), F.lit(bins - 1))
    rows = features.where(v.isNotNull()).groupBy(idx.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()
    counted = {r["b"]: r["n"] for r in rows}  # at most ``bins`` rows
    if not counted:
        return [], []
    return [i / bins for i in range(bins + 1)], [int(counted.get(i, 0)) for i in range(bins)]


def _figure(name: str, title: str, svg: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return (
        f'<figure class="chart" id="chart-{escape(name)}" data-chart="{escape(name)}">'
        f"<figcaption>{escape(title)}</figcaption>{note_html}{svg}</figure>"
    )


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column in RATE_COLUMNS:
        return f"{value:.1%}"
    if column == "size_change_30d":
        return f"{value:+d}"
    return C.fmt(value) if isinstance(value, (int, float)) else escape(str(value))


def _metrics_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...] = TABLE_COLUMNS) -> str:
    head = "".join(f"<th>{escape(t)}</th>" for _, t in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c), c)}</td>" for c, _ in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _band_labels(bins: int) -> list[str]:
    width = 100 / bins
    return [f"{round(i * width)}-{round((i + 1) * width)}" for i in range(bins)]


def matrix_outline(
    cells: list[dict[str, Any]], bins: int, min_share: float = OUTLINE_MIN_SHARE
) -> tuple[int, int, int, int] | None:
    """Where a segment sits on the scoring matrix: the smallest box of cells around those
    holding at least ``min_share`` of its scored members.

    Args:
        cells: the segment's ``insights_matrix`` rows (fit_bin, engagement_bin, personas).
        bins: bands per axis.
        min_share: the share of members a cell needs to count.

    Returns:
        ``(first_row, last_row, first_col, last_col)`` in chart order (rows: high fit on
        top; columns: low engagement left), or None for a segment with no scored member.
    """
    total = sum(c["personas"] for c in cells)
    if not total:
        return None
    kept = [c for c in cells if c["personas"] / total >= min_share] or [max(cells, key=lambda c: c["personas"])]
    rows = [bins - 1 - c["fit_bin"] for c in kept]
    cols = [c["engagement_bin"] for c in kept]
    return min(rows), max(rows), min(cols), max(cols)


def scoring_matrix_figure(data: dict[str, Any]) -> str:
    """The fit x engagement heatmap of every persona, with the saved segments outlined."""
    bins = int(data.get("matrix_bins") or 5)
    cells = data.get("score_matrix") or []
    everyone = [c for c in cells if c["dimension"] == "all"]
    if not everyone:
        return _figure(
            "scoring-matrix", "Scoring matrix: fit x engagement", C.empty_chart("scoring-matrix", "No scores yet")
        )
    bands = _band_labels(bins)
    rows = list(reversed(bands))  # high fit on top
    most = max(c["personas"] for c in everyone)
    grid = {
        (bands[c["fit_bin"]], bands[c["engagement_bin"]]): (
            c["personas"] / most,
            C.fmt(c["personas"], 0),
        )
        for c in everyone
    }
    stats = {r["segment"]: r for r in data["segments"] if r["dimension"] == "audience"}
    outlines = []
    for name in sorted({c["segment"] for c in cells if c["dimension"] == "audience"}):
        box = matrix_outline([c for c in cells if c["dimension"] == "audience" and c["segment"] == name], bins)
        if box is None:
            continue
        s = stats.get(name, {})
        label = (
            f"{name}: {C.fmt(s.get('size'), 0)} members, median fit {C.fmt(s.get('median_fit_score'))}, "
            f"median engagement {C.fmt(s.get('median_engagement_score'))}"
        )
        outlines.append((label, *box))
    revenue = sum(c["revenue"] or 0.0 for c in everyone)
    note = (
        f"Personas per cell (rows: fit score band, columns: engagement score band; revenue in the grid "
        f"{C.fmt(revenue)}). Each saved segment is framed around the cells holding at least "
        f"{OUTLINE_MIN_SHARE:.0%} of its members. High fit + high engagement + low spend: sales opportunity; "
        "high fit + low engagement: churn risk."
    )
    svg = C.heatmap(
        "scoring-matrix",
        rows,
        bands,
        grid,
        "fit score",
        "engagement score",
        cell_width=72,
        legend=("few", "most personas"),
        outlines=outlines,
    )
    return _figure("scoring-matrix", "Scoring matrix: fit x engagement", svg, note)


def support_figure(segs: list[dict[str, Any]]) -> str:
    """Tickets per 100 members and NPS per value tier and AI segment (bars)."""
    rows = [r for r in segs if r["dimension"] in ("value_tier", "ai_segment") and r.get("tickets_per_100") is not None]
    if not rows:
        return _figure(
            "support-volume",
            "Support tickets per 100 members (90 days)",
            C.empty_chart("support-volume", "No support_tickets table"),
        )
    rows.sort(key=lambda r: (r["dimension"], -r["size"]))
    labels = [f"{'tier' if r['dimension'] == 'value_tier' else 'AI'}: {r['segment']}" for r in rows]
    return _figure(
        "support-volume",
        "Support tickets per 100 members (90 days)",
        C.bar_chart("support-volume", labels, [r["tickets_per_100"] for r in rows], "tickets per 100"),
        "Value tiers and AI segments; the table below adds CSAT, NPS and expansion revenue.",
    )


def collect_report_data(spark: SparkSession, lake: Lake, snapshot_date: dt.date) -> dict[str, Any]:
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

    def date_rows(table: str, where: Any = None) -> list[dict[str, Any]]:
        if not lake.exists(table):
            return []
        df = lake.read(table, partitions={"snapshot_date": snapshot_date})
        return [r.asDict() for r in (df.where(where) if where is not None else df).collect()]

    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    edges, counts = clv_histogram(features)
    churn_edges, churn_counts = probability_histogram(features, "churn_risk")
    overlap = report_overlap(lake, history, snapshot_date)
    return {
        "score_matrix": date_rows("insights_matrix", F.col("dimension").isin("all", "audience")),
        "campaigns": date_rows("insights_campaigns", F.col("dimension").isin("all", "value_tier", "audience")),
        "boundaries": date_rows("insights_boundaries"),
        "segments": segs,
        "history": history,
        "matrix": matrix,
        "industry": industry,
        "clv_edges": edges,
        "clv_counts": counts,
        "churn_edges": churn_edges,
        "churn_counts": churn_counts,
        "overlap": overlap,
    }


OVERLAP_AUDIENCES = 10


def report_overlap(lake: Lake, history: list[dict[str, Any]], snapshot_date: dt.date) -> list[dict[str, Any]]:
    """Pairwise overlap of the current members of the largest audiences on ``snapshot_date``
    (:func:`segengine.audiences.overlap.overlap_counts`, one Spark job); [] without audiences."""
    from pyspark.sql import functions as F

    from segengine.audiences.overlap import overlap_counts, overlap_table

    if not (lake.exists("audiences") and lake.exists("audience_members")):
        return []
    live = {r["name"]: r["audience_id"] for r in lake.read_rows("audiences") if not r.get("deleted")}
    sizes = {
        h["segment"]: h["size"] or 0
        for h in history
        if h["dimension"] == "audience" and h["snapshot_date"] == snapshot_date
    }
    largest = sorted((n for n in sizes if n in live), key=lambda n: (-sizes[n], n))[:OVERLAP_AUDIENCES]
    if len(largest) < 2:
        return []
    names = {live[n]: n for n in largest}
    members = lake.read("audience_members", partitions={"audience_id": list(names)}).where(
        F.col("audience_id").isin(list(names))
    )
    return overlap_table([r.asDict() for r in overlap_counts(members).collect()], names)


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
        vals = [v for r in ai if (v := r.get(col)) is not None]
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
    figures.append(scoring_matrix_figure(data))
    figures.append(support_figure(segs))
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
    figures.append(
        _figure(
            "churn-risk-distribution",
            "Churn risk of customers (calibrated probability)",
            C.histogram(
                "churn-risk-distribution",
                data.get("churn_edges") or [],
                data.get("churn_counts") or [],
                "churn risk",
                y_title="customers",
            )
            if data.get("churn_counts")
            else C.empty_chart("churn-risk-distribution", "Churn risk not scored yet"),
            "churn_risk: probability of no purchase in the next propensity.churn_days days.",
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

    overlap = data.get("overlap") or []
    if overlap:
        names = list(dict.fromkeys(o["a"] for o in overlap))
        ocells = {
            (o["a"], o["b"]): (o["share_a_in_b"] or 0.0, C.share_label(o["share_a_in_b"] or 0.0)) for o in overlap
        }
        figures.append(
            _figure(
                "audience-overlap",
                "Audience overlap",
                C.heatmap(
                    "audience-overlap", names, names, ocells, "audience A", "audience B", legend=("0% of A", "100%")
                ),
                "Share of the members of A (rows) who are also in B (columns); current members of the "
                f"{len(names)} largest audiences.",
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
    tables.append(_support_section(by_dim))
    tables.append(_campaign_section(data.get("campaigns") or []))
    tables.append(_boundary_section(data.get("boundaries") or []))
    body = kpi_html + '<div class="grid">' + "".join(figures) + "</div>" + "".join(tables)
    template = string.Template(
        resources.files("segengine").joinpath("templates/insights_report.html").read_text("utf-8")
    )
    return template.substitute(
        title=escape(f"segengine insights — {snapshot_date}"),
        subtitle=escape(f"Snapshot {snapshot_date}; generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"),
        body=body,
    )


def _support_section(by_dim: dict[str, list[dict[str, Any]]]) -> str:
    rows = [r for dim in ("all", "value_tier", "ai_segment", "audience") for r in by_dim.get(dim, [])]
    note = (
        "Tickets opened in the last 90 days per 100 members; CSAT: mean of the members' latest answer (1-5); "
        "NPS: % promoters - % detractors of the latest answers; n: members who answered. Expansion revenue: "
        "this cycle's spend minus the previous cycle's, of members who were customers before the cycle. "
        "'-': no data (an absent support_tickets or survey_responses table gives '-', never 0)."
    )
    return (
        '<h2 id="support">Support, satisfaction and expansion</h2>'
        f'<p class="note">{escape(note)}</p>' + _metrics_table(rows, SUPPORT_COLUMNS)
    )


def _campaign_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return (
            '<h2 id="campaigns">Campaign engagement</h2>'
            '<p class="note">No campaign events (events without campaign_id).</p>'
        )
    order = {"all": 0, "value_tier": 1, "audience": 2}
    rows = sorted(rows, key=lambda r: (r["campaign_id"], order.get(r["dimension"], 3), r["segment"]))
    labelled = [{**r, "segment": "everyone" if r["dimension"] == "all" else r["segment"]} for r in rows]
    return (
        '<h2 id="campaigns">Campaign engagement (last 30 days)</h2>'
        '<p class="note">Per campaign: everyone, each value tier and each saved audience. Conversions: orders '
        "within 7 days after a click on the campaign (the latest click before the order).</p>"
        + _metrics_table(labelled, CAMPAIGN_TABLE)
    )


def _boundary_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return (
            '<h2 id="boundaries">Boundary review</h2>'
            '<p class="note">No saved rule audience with a numeric threshold.</p>'
        )
    rows = sorted(rows, key=lambda r: (r["audience"], r["attribute"], r["threshold"]))
    return (
        '<h2 id="boundaries">Boundary review</h2>'
        '<p class="note">Numeric thresholds of saved rule audiences: members within the margin of the threshold, '
        "the threshold's percentile in the segment's population now and a quarter ago, and a suggested value "
        "when it drifted.</p>" + _metrics_table(rows, BOUNDARY_TABLE)
    )


def render_report(
    spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date, out_path: str | None = None
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
    data = collect_report_data(spark, lake, snapshot_date)
    data["matrix_bins"] = config.insights.matrix_bins
    html = render_html(data, snapshot_date)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return str(out)
