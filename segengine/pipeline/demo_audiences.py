"""The demo's audiences: one of each kind, refreshed over two dates, exported, expanded."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

OWNER = "demo"


def _segment_doc(config: Config, file_name: str) -> dict[str, Any]:
    from segengine.config import conf_dir

    doc: dict[str, Any] = yaml.safe_load((conf_dir() / "segments" / file_name).read_text(encoding="utf-8"))
    return doc


def build_demo_audiences(
    spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Create static, dynamic, uploaded, top-N and set-operation audiences on ``snapshot_date``."""
    from segengine.audiences import combine_audiences, create_audience, top_n_audience, upload_audience
    from segengine.rules import (
        compile_segment,
        count_by_persona_type,
        directory_resolver,
        evaluate_segment,
        parse_segment,
    )

    made: dict[str, Any] = {}
    files = directory_resolver(_segments_dir())
    echo("   example segments (conf/segments): validate, explain, count")
    for file_name in sorted(os.listdir(_segments_dir())):
        # validate: parse and compile against the feature catalog (no Spark work yet)
        seg = parse_segment(_segment_doc(config, file_name))
        compiled = compile_segment(seg, snapshot_date, resolver=files)
        echo(f"   ok: {file_name} ({seg.condition_count} conditions)")
        # explain: the conditions in words (the SQL of the first one is shown in full)
        words = compiled.explain().split("\nSQL:\n")
        shown = compiled.explain() if file_name == "churn_risk.yaml" else words[0]
        echo("\n".join("      " + line for line in shown.splitlines()))
        counts = count_by_persona_type(evaluate_segment(spark, lake, seg, snapshot_date, resolver=files))
        echo("      count: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
        made.setdefault("segment_counts", {})[file_name] = counts
    churn = _segment_doc(config, "churn_risk.yaml")
    made["dynamic"] = create_audience(
        spark, lake, config, "churn_risk", OWNER, "dynamic", "rules", churn, snapshot_date=snapshot_date
    )
    made["static"] = create_audience(
        spark, lake, config, "Churn risk frozen", OWNER, "static", "rules", churn, snapshot_date=snapshot_date
    )
    sales = _segment_doc(config, "sales_opportunity.yaml")
    made["sales"] = create_audience(
        spark, lake, config, "Sales opportunity", OWNER, "dynamic", "rules", sales, snapshot_date=snapshot_date
    )
    # An uploaded list: emails of some customers, in mixed case with stray spaces, plus junk.
    upload_path = os.path.join(config.warehouse_uri, "uploads", "vip_list.csv")
    os.makedirs(os.path.dirname(upload_path), exist_ok=True)
    sample = (
        lake.read("personas")
        .filter("email IS NOT NULL")
        .orderBy("persona_id")
        .select("email")
        .limit(200)
        .collect()  # 200 rows by construction
    )
    with open(upload_path, "w", encoding="utf-8") as fh:
        fh.write("Email Address\n")
        for i, row in enumerate(sample):
            fh.write(f"  {row['email'].upper() if i % 3 == 0 else row['email']} \n")
        fh.write("not-an-email\nnobody@unknown.example\n")
    up = upload_audience(spark, lake, config, upload_path, "VIP upload", OWNER, snapshot_date=snapshot_date)
    made["upload"] = up["audience_id"]
    echo(f"   upload: {up}")
    made["top_n"] = top_n_audience(
        spark,
        lake,
        config,
        made["dynamic"],
        100,
        "clv_predicted",
        "desc",
        "Top 100 churn risks by CLV",
        OWNER,
        snapshot_date=snapshot_date,
    )
    made["exclude"] = combine_audiences(
        spark,
        lake,
        config,
        "exclude",
        [made["dynamic"], made["upload"]],
        "Churn risk without VIPs",
        OWNER,
        kind="dynamic",
        snapshot_date=snapshot_date,
    )
    # Sales opportunity excludes churn risks by its own rule, so it cannot be intersected
    # with them (that demo audience was always empty): the VIPs at risk are.
    made["intersect"] = combine_audiences(
        spark,
        lake,
        config,
        "intersect",
        [made["upload"], made["dynamic"]],
        "VIPs at churn risk",
        OWNER,
        snapshot_date=snapshot_date,
    )
    return made


def finish_demo_audiences(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    made: dict[str, Any],
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """After the second day's refresh: show changes, export, expand a lookalike."""
    from pyspark.sql import functions as F

    from segengine.audiences import list_audiences

    out: dict[str, Any] = {}
    changes = lake.read("audience_changes").filter(F.col("snapshot_date") == F.lit(snapshot_date))
    echo("   changes on the second day (added / removed per audience):")
    changes.groupBy("audience_id", "change").count().orderBy("audience_id", "change").show(truncate=False)
    for aud in list_audiences(spark, lake, user=OWNER, sort_by="size"):
        echo(
            f"   audience {aud.get('name')!s:32s} {aud.get('kind')!s:8s} {aud.get('source')!s:14s} size={aud.get('size')}"
        )
    out.update(export_demo_files(spark, lake, config, made["dynamic"], snapshot_date))
    echo(f"   exported: {out['csv']['path']} ({out['csv']['rows']} rows), {out['xlsx']['path']}")
    from segengine.models.lookalike import expand_audience

    by = ["recency_days", "frequency", "monetary", "tenure_days", "engagement_score"]
    out["lookalike"] = expand_audience(
        spark,
        lake,
        config,
        made["dynamic"],
        500,
        by,
        snapshot_date,
        name="Churn risk lookalike",
        owner=OWNER,
        user=OWNER,
    )
    echo(f"   lookalike of 'churn_risk': {out['lookalike']}")
    return out


def _segments_dir() -> Any:
    from segengine.config import conf_dir

    return str(conf_dir() / "segments")


# The columns of the demo's CSV and Excel exports.
DEMO_EXPORT_COLUMNS = ["persona_id", "email", "persona_type", "value_tier", "clv_predicted"]


def export_demo_files(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    audience: str,
    snapshot_date: dt.date,
    columns: list[str] | None = None,
    user: str = OWNER,
) -> dict[str, Any]:
    """Export ``audience`` to ``<warehouse>/exports/churn_risk.csv`` and ``.xlsx`` (the
    folder is the demo's own: created when missing). Returns ``{"csv": …, "xlsx": …}``."""
    from segengine.audiences import export_audience

    columns = columns or DEMO_EXPORT_COLUMNS
    export_dir = os.path.join(config.warehouse_uri, "exports")
    return {
        fmt: export_audience(
            spark,
            lake,
            config,
            audience,
            os.path.join(export_dir, f"churn_risk.{fmt}"),
            fmt,
            columns=columns,
            single_file=fmt == "csv",  # one CSV file, not Spark's folder of parts
            user=user,
            mkdir=True,
            snapshot_date=snapshot_date,
        )
        for fmt in ("csv", "xlsx")
    }
