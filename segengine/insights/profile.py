"""Customer 360: everything segengine knows about one persona, as a dict.

Built to be fast for one persona: every read is filtered by ``persona_id`` and, where the
table is partitioned, pruned to the partitions that matter before any file is opened:

* ``customer_features`` and ``recommendations``: only the snapshot's partition for the
  current features; the AI segment history reads only the few columns it shows (Parquet
  column pruning) with a ``persona_id`` filter pushed into the scan;
* ``events`` (partitioned by ``event_date``): only the last ``insights.profile_event_days``
  daily partitions are read, one pruned read per day;
* ``personas``, ``order_lines``, ``audience_members``, ``support_tickets``,
  ``survey_responses``: a ``persona_id`` filter that Spark pushes down to the Parquet
  reader (row groups whose min/max exclude the id are skipped).

Only the rows of this one persona are ever collected.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any

from segengine.errors import SegengineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

IDENTITY_FIELDS = (
    "persona_id",
    "email",
    "phone",
    "cookie_id",
    "created_at",
    "birth_date",
    "gender",
    "country",
    "city",
    "industry",
    "company_size",
    "plan",
    "account_owner",
)
CONSENT_FIELDS = ("consent_email", "consent_sms")
TIER_FIELDS = ("persona_type", "value_tier", "behaviour_state", "lifecycle_stage", "ai_segment", "b2b_segment")
HISTORY_FIELDS = ("snapshot_date", "ai_segment", "value_tier", "behaviour_state", "clv_predicted")
RECENT_ORDERS = 10
RECENT_EVENTS = 20
RECENT_TICKETS = 10
RECENT_ANSWERS = 10


def _plain(value: Any) -> Any:
    """A JSON-friendly value (dates as ISO strings, decimals as floats)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _rows(df: DataFrame) -> list[dict[str, Any]]:
    # Only ever called on one persona's rows (already filtered and limited).
    return [r.asDict(recursive=True) for r in df.collect()]


def _latest_partition(lake: Lake, table: str, on_or_before: dt.date) -> dt.date | None:
    from segengine.insights.migrations import snapshot_dates

    dates = [d for d in snapshot_dates(lake, table) if d <= on_or_before]
    return max(dates) if dates else None


def _read_days(lake: Lake, table: str, column: str, days: list[dt.date]) -> DataFrame | None:
    """Union of single-partition reads (each prunes to one partition's files)."""
    frames = [lake.read(table, partitions={column: d}) for d in days]
    if not frames:
        return None
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _order_summary(lines: DataFrame) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    orders = lines.groupBy("order_id").agg(
        F.min("order_ts").alias("order_ts"),
        F.first("channel", ignorenulls=True).alias("channel"),
        F.count(F.lit(1)).alias("lines"),
        F.sum("quantity").alias("units"),
        F.round(F.sum(F.col("quantity") * F.col("unit_price")), 2).alias("value"),
    )
    recent = _rows(orders.orderBy(F.col("order_ts").desc()).limit(RECENT_ORDERS))
    value = F.col("quantity") * F.col("unit_price")
    # Orders count purchases, as the feature table's orders_lifetime does: an order with a
    # line of positive quantity. An order of refund lines only is counted apart (it was
    # counted as an order here, so a profile showed more orders than orders_lifetime).
    purchase = F.max(F.col("quantity") > 0).over(Window.partitionBy("order_id"))
    lines = lines.withColumn("_purchase", purchase)
    (totals,) = _rows(
        lines.agg(
            F.countDistinct(F.when(F.col("_purchase"), F.col("order_id"))).alias("orders"),
            F.countDistinct(F.when(~F.col("_purchase"), F.col("order_id"))).alias("refund_only_orders"),
            F.count(F.lit(1)).alias("lines"),
            # Money is shown to the cent: a double sum of 0.1 + 0.2 is 0.30000000000000004.
            F.round(F.coalesce(F.sum(value), F.lit(0.0)), 2).alias("net_revenue"),
            F.round(F.coalesce(F.sum(F.when(F.col("quantity") < 0, -value)), F.lit(0.0)), 2).alias("refunded"),
            F.min("order_ts").alias("first_order_ts"),
            F.max("order_ts").alias("last_order_ts"),
            F.sort_array(F.collect_set("channel")).alias("channels"),
        )
    )
    return totals, recent


def customer_profile(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    persona_id: str,
    snapshot_date: dt.date | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """The 360 profile of one persona.

    Args:
        spark: the session.
        lake: the Lake.
        config: the Config (``insights.profile_event_days`` bounds the recent events).
        persona_id: the persona to describe.
        snapshot_date: features as of this date (default: the latest snapshot).
        user: who asks: ``audiences`` leaves out the private audiences of other owners.
            None is the system (a scheduled job, the demo), which sees them all.

    Returns:
        A JSON-serialisable dict with ``identity``, ``consents``, ``orders`` (summary and
        recent orders), ``recent_events``, ``features``, ``tiers``, ``segment_history``,
        ``clv``, ``propensity``, ``recommendations``, ``audiences``, and the latest ``support_tickets``
        and ``survey_responses`` up to the snapshot day. Sections whose table does not
        exist yet are empty.

    Raises:
        SegengineError: when the persona is in neither ``personas`` nor ``customer_features``.
    """
    from pyspark.sql import functions as F

    from segengine.insights.migrations import snapshot_dates

    pid = F.col("persona_id") == F.lit(persona_id)
    dates = snapshot_dates(lake)
    if snapshot_date is None:
        snapshot_date = max(dates) if dates else dt.date.today()
    elif dates and snapshot_date not in dates:
        from segengine.features.snapshots import require_feature_partition

        require_feature_partition(lake, snapshot_date)  # the shared check and message

    person: dict[str, Any] = {}
    if lake.exists("personas"):
        found = _rows(lake.read("personas").where(pid).limit(1))
        person = found[0] if found else {}
    features: dict[str, Any] = {}
    if snapshot_date in dates:
        found = _rows(lake.read("customer_features", partitions={"snapshot_date": snapshot_date}).where(pid).limit(1))
        features = found[0] if found else {}
    if not person and not features:
        raise SegengineError(f"persona {persona_id!r} not found in personas or customer_features ({snapshot_date})")
    merged = {**features, **person}

    history: list[dict[str, Any]] = []
    if dates:
        hist = lake.read("customer_features").where(pid)
        cols = [c for c in HISTORY_FIELDS if c in hist.columns]
        history = _rows(hist.select(*cols).orderBy("snapshot_date"))

    orders: dict[str, Any] = {"summary": {}, "recent": []}
    if lake.exists("order_lines"):
        end = dt.datetime.combine(snapshot_date + dt.timedelta(days=1), dt.time())
        lines = lake.read("order_lines").where(pid & (F.col("order_ts") < F.lit(end)))
        orders["summary"], orders["recent"] = _order_summary(lines)

    events: list[dict[str, Any]] = []
    if lake.exists("events"):
        days = [snapshot_date - dt.timedelta(days=i) for i in range(config.insights.profile_event_days)]
        ev = _read_days(lake, "events", "event_date", days)
        if ev is not None:
            cols = [c for c in ("event_ts", "event_type", "product_id", "session_id", "duration_s") if c in ev.columns]
            events = _rows(ev.where(pid).select(*cols).orderBy(F.col("event_ts").desc()).limit(RECENT_EVENTS))

    end_of_day = dt.datetime.combine(snapshot_date + dt.timedelta(days=1), dt.time())
    tickets: list[dict[str, Any]] = []
    if lake.exists("support_tickets"):
        t = lake.read("support_tickets").where(pid & (F.col("opened_at") < F.lit(end_of_day)))
        cols = ["ticket_id", "opened_at", "closed_at", "channel", "priority", "category", "status"]
        tickets = _rows(t.select(*cols).orderBy(F.col("opened_at").desc()).limit(RECENT_TICKETS))
    answers: list[dict[str, Any]] = []
    if lake.exists("survey_responses"):
        a = lake.read("survey_responses").where(pid & (F.col("answered_at") < F.lit(end_of_day)))
        cols = ["response_id", "answered_at", "kind", "score"]
        answers = _rows(a.select(*cols).orderBy(F.col("answered_at").desc()).limit(RECENT_ANSWERS))

    recs: list[dict[str, Any]] = []
    rec_date = _latest_partition(lake, "recommendations", snapshot_date) if lake.exists("recommendations") else None
    if rec_date is not None:
        rec = lake.read("recommendations", partitions={"snapshot_date": rec_date}).where(pid)
        rec = rec.select("product_id", "rank", "score", "recommender")
        if lake.exists("products"):
            products = lake.read("products")
            keep = [c for c in ("product_id", "name", "category", "brand", "price") if c in products.columns]
            rec = rec.join(products.select(*keep), "product_id", "left")
        recs = _rows(rec.orderBy("rank"))

    audiences: list[dict[str, Any]] = []
    if lake.exists("audience_members"):
        mem = lake.read("audience_members").where(pid).select("audience_id").distinct()
        if lake.exists("audiences"):
            reg = lake.read("audiences")
            if "deleted" in reg.columns:
                reg = reg.where(~F.coalesce(F.col("deleted"), F.lit(False)))
            if user is not None and "visibility" in reg.columns:
                reg = reg.where((F.col("visibility") != F.lit("private")) | (F.col("owner") == F.lit(user)))
                mem = mem.join(reg.select("audience_id").distinct(), "audience_id", "left_semi")
            reg_keep = [c for c in ("audience_id", "name", "kind", "source", "owner") if c in reg.columns]
            mem = mem.join(reg.select(*reg_keep).dropDuplicates(["audience_id"]), "audience_id", "left")
        audiences = _rows(mem.orderBy("audience_id"))

    profile = {
        "persona_id": persona_id,
        "snapshot_date": snapshot_date,
        "identity": {k: merged.get(k) for k in IDENTITY_FIELDS if k in merged},
        "consents": {k: merged.get(k) for k in CONSENT_FIELDS if k in merged},
        "tiers": {k: features.get(k) for k in TIER_FIELDS if k in features},
        "clv": {"predicted": features.get("clv_predicted"), "percentile": features.get("clv_percentile")},
        # Calibrated probabilities (null until scored, or outside the model's population).
        "propensity": {
            "purchase_30d": features.get("purchase_propensity_30d"),
            "purchase_30d_percentile": features.get("purchase_propensity_30d_pct"),
            "churn_risk": features.get("churn_risk"),
            "churn_risk_percentile": features.get("churn_risk_pct"),
        },
        "features": features,
        "orders": orders,
        "recent_events": events,
        "support_tickets": tickets,
        "survey_responses": answers,
        "segment_history": history,
        "recommendations": recs,
        "recommendations_date": rec_date,
        "audiences": audiences,
    }
    plain: dict[str, Any] = _plain(profile)
    return plain


def profile_json(profile: dict[str, Any]) -> str:
    """The profile as indented JSON (what ``segengine profile --json`` prints)."""
    return json.dumps(profile, indent=2, sort_keys=False, default=str)


def format_profile(profile: dict[str, Any]) -> str:
    """A human-readable, sectioned text rendering of :func:`customer_profile`.

    Args:
        profile: the dict returned by :func:`customer_profile`.

    Returns:
        Text for a terminal.
    """

    def kv(d: dict[str, Any]) -> list[str]:
        return [f"  {k:24s} {'-' if v is None else v}" for k, v in d.items()]

    out = [f"Persona {profile['persona_id']}  (snapshot {profile['snapshot_date']})", "", "Identity"]
    out += kv(profile["identity"]) + ["", "Consents"] + kv(profile["consents"])
    out += ["", "Tiers and segments"] + kv(profile["tiers"])
    out += ["", "Predicted CLV"] + kv(profile["clv"])
    out += ["", "Orders"] + kv(profile["orders"]["summary"])
    if profile["orders"]["summary"]:
        out.append("  (orders are purchases, as orders_lifetime counts them: orders with a line of positive quantity)")
    for o in profile["orders"]["recent"]:
        out.append(f"    {o['order_ts']}  {o['order_id']:>12}  {o.get('channel') or '-':8s} {o['value']:>10.2f}")
    out += ["", f"Recent events ({len(profile['recent_events'])})"]
    for e in profile["recent_events"]:
        out.append(f"    {e.get('event_ts')}  {e.get('event_type')}  {e.get('product_id') or ''}")
    out += ["", f"Support tickets ({len(profile.get('support_tickets') or [])} latest)"]
    for t in profile.get("support_tickets") or []:
        closed = t.get("closed_at") or "open"
        out.append(
            f"    {t.get('opened_at')}  {t.get('ticket_id')}  {t.get('category') or '-'}  "
            f"{t.get('priority') or '-'}  closed: {closed}"
        )
    out += ["", f"Survey answers ({len(profile.get('survey_responses') or [])} latest)"]
    for r in profile.get("survey_responses") or []:
        out.append(f"    {r.get('answered_at')}  {r.get('kind')}  {r.get('score')}")
    out += ["", "AI segment history"]
    for h in profile["segment_history"]:
        out.append(f"    {h.get('snapshot_date')}  {h.get('ai_segment') or '-'}  {h.get('value_tier') or '-'}")
    out += ["", f"Recommendations ({profile.get('recommendations_date') or 'none'})"]
    for r in profile["recommendations"]:
        out.append(f"    #{r['rank']:<3} {r['product_id']:10s} score {r['score']:>3}  {r.get('name') or ''}")
    out += ["", "Audiences"]
    for a in profile["audiences"]:
        out.append(f"    {a['audience_id']}  {a.get('name') or ''}")
    out += ["", "Features"] + kv({k: v for k, v in profile["features"].items() if k not in profile["tiers"]})
    return "\n".join(out)
