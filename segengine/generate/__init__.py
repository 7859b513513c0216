"""Seeded, scalable sample data: raw files in the formats real deliveries come in.

``generate_raw`` writes, under ``out_dir``:

* ``personas/``    CSV with a header (customers, prospects, visitors; B2B attributes on a share)
* ``products/``    CSV with a header (categories, brands, heavy-tailed popularity)
* ``order_lines/`` Parquet (seasonal orders, lognormal purchase rates, churn and
  reactivation, personal category/brand taste, repeat buying, ~3% refund lines as
  negative quantities)
* ``events/``      JSON lines (web/app sessions, email sends/opens/clicks with the
  ``campaign_id`` of a campaign aimed at the persona's segment)
* ``support_tickets/``  CSV (customers open more tickets in the months before they churn)
* ``survey_responses/`` CSV (CSAT after a share of closed tickets, NPS a few times a
  year; lower answers from declining customers)

The simulation runs in numpy inside ``mapInArrow``, one task per chunk of personas
with its own seeded random streams (see :mod:`segengine.generate.simulate`), so the
same seed and persona count always give the same rows, and 1M personas take
minutes on two cores. Spark turns codes into strings and writes the files.

With ``malformed_share`` > 0 a known share of rows per table is damaged in one way
each (unparseable timestamps, missing keys, negative prices, zero quantities,
unknown event types, bad emails, truncated JSON lines); the result reports exactly
how many per table, so ingest's quarantine can be checked against it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from segengine.frames import one_row
from segengine.generate import reference as ref
from segengine.session import jvm_of

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

__all__ = ["generate_raw", "generate_bronze", "sim_params"]

RAW_TABLES = ("personas", "products", "order_lines", "events", "support_tickets", "survey_responses")

_PERSONA_SCHEMA = (
    "idx bigint, ptype tinyint, created_s bigint, country smallint, city smallint, birth_day int, "
    "gender tinyint, has_email boolean, has_phone boolean, has_cookie boolean, consent_email boolean, "
    "consent_sms boolean, b2b boolean, industry tinyint, company_size tinyint, plan tinyint, owner tinyint, "
    "name smallint, messy_email boolean, bad tinyint"
)
_ORDER_SCHEMA = (
    "order_no bigint, line_no int, persona_idx bigint, order_s bigint, channel tinyint, product int, "
    "quantity int, unit_price double, bad tinyint"
)
_EVENT_SCHEMA = (
    "event_no bigint, persona_idx bigint, cookie boolean, event_s bigint, event_type tinyint, product int, "
    "session_no bigint, duration_s double, bad tinyint, campaign tinyint"
)
_TICKET_SCHEMA = (
    "ticket_no bigint, persona_idx bigint, opened_s bigint, closed_s bigint, channel tinyint, priority tinyint, "
    "category tinyint, is_open boolean, bad tinyint"
)
_SURVEY_SCHEMA = "response_no bigint, persona_idx bigint, answered_s bigint, kind tinyint, score int, bad tinyint"


def _epoch_day(text: str) -> int:
    return (dt.date.fromisoformat(text) - dt.date(1970, 1, 1)).days


def sim_params(
    config: Config, personas: int | None = None, seed: int | None = None, malformed_share: float | None = None
) -> Any:
    """The simulation parameters for ``config.generator`` with optional overrides.

    Args:
        config: the loaded configuration (``generator`` section).
        personas: number of personas (default ``generator.personas``).
        seed: random seed (default ``generator.seed``).
        malformed_share: share of damaged rows per table (default ``generator.malformed_share``).

    Returns:
        A :class:`~segengine.generate.simulate.SimParams`.
    """
    from segengine.errors import ConfigError
    from segengine.generate.simulate import SimParams, product_catalogue

    g = config.generator
    personas = g.personas if personas is None else personas
    seed = g.seed if seed is None else seed
    malformed = g.malformed_share if malformed_share is None else malformed_share
    if personas < 1:
        raise ConfigError(f"generator.personas: expected at least 1, got {personas}")
    if not 0.0 <= malformed < 1.0:
        raise ConfigError(f"generator.malformed_share: expected a share in [0, 1), got {malformed}")
    if g.customer_share + g.prospect_share > 1.0:
        raise ConfigError("generator.customer_share + generator.prospect_share must not exceed 1")
    if g.products < 1 or g.chunk_personas < 1:
        raise ConfigError("generator.products and generator.chunk_personas must be at least 1")
    try:
        start, end = _epoch_day(g.start_date), _epoch_day(g.end_date)
    except ValueError as exc:
        raise ConfigError(f"generator.start_date/end_date: expected YYYY-MM-DD: {exc}") from None
    if end - start < 30:
        raise ConfigError("generator.end_date must be at least 30 days after generator.start_date")
    cat = product_catalogue(seed, g.products)
    return SimParams(
        seed=seed,
        personas=personas,
        chunk_personas=g.chunk_personas,
        start_day=start,
        end_day=end,
        customer_share=g.customer_share,
        prospect_share=g.prospect_share,
        b2b_share=g.b2b_share,
        refund_share=g.refund_share,
        orders_per_year=g.orders_per_year,
        lines_per_order=g.lines_per_order,
        events_per_persona=g.events_per_persona,
        malformed_share=malformed,
        product_category=tuple(int(x) for x in cat["category"]),
        product_price=tuple(float(x) for x in cat["price"]),
        product_weight=tuple(float(x) for x in cat["weight"]),
        product_brand=tuple(int(x) for x in cat["brand"]),
    )


# ----------------------------------------------------------------- Spark side


def _simulate(spark: SparkSession, params: Any, kind: str) -> DataFrame:
    """One row per simulated record: mapInArrow over one task per chunk."""
    from segengine.generate import simulate

    fn, schema = {
        "personas": (simulate.persona_batches, _PERSONA_SCHEMA),
        "order_lines": (simulate.order_batches, _ORDER_SCHEMA),
        "events": (simulate.event_batches, _EVENT_SCHEMA),
        "support_tickets": (simulate.ticket_batches, _TICKET_SCHEMA),
        "survey_responses": (simulate.survey_batches, _SURVEY_SCHEMA),
    }[kind]

    def run(batches: Any) -> Any:
        for batch in batches:
            for chunk in batch.column(0).to_pylist():
                yield from fn(params, int(chunk))

    chunks = spark.range(0, params.chunks, 1, numPartitions=params.chunks)
    return chunks.mapInArrow(run, schema)


def _lookup(values: tuple[str, ...], code: Column) -> Column:
    """Code (0-based) → string, via one array literal."""
    from segengine.codes import code_name

    return code_name(values, code.cast("int") + 1)


def _pid(idx: Column) -> Column:
    from pyspark.sql import functions as F

    return F.concat(F.lit("P"), F.lpad(idx.cast("string"), 8, "0"))


def _cookie(idx: Column) -> Column:
    from pyspark.sql import functions as F

    return F.concat(F.lit("ck"), F.lower(F.hex(F.abs(F.xxhash64(idx)) % F.lit(16**8))), F.lit("-"), idx.cast("string"))


def _ts(seconds: Column, bad: Column, fmt: str = "yyyy-MM-dd HH:mm:ss") -> Column:
    """Timestamp text; a damaged row gets a day-first format no timestamp parser accepts."""
    from pyspark.sql import functions as F

    t = F.timestamp_seconds(seconds)
    return F.when(bad, F.date_format(t, "dd/MM/yyyy HH:mm")).otherwise(F.date_format(t, fmt))


def _personas_raw(df: DataFrame, seed: int) -> DataFrame:
    from pyspark.sql import functions as F

    c = F.col
    n_first, n_last = len(ref.FIRST_NAMES), len(ref.LAST_NAMES)
    local = F.concat(
        _lookup(ref.FIRST_NAMES, c("name") % n_first),
        F.lit("."),
        _lookup(ref.LAST_NAMES, (c("name") / n_first).cast("int") % n_last),
        c("idx").cast("string"),
    )
    domain = _lookup(ref.EMAIL_DOMAINS, c("idx") % len(ref.EMAIL_DOMAINS))
    email = F.concat(local, F.lit("@"), domain)
    email = F.when(c("messy_email"), F.concat(F.initcap(local), F.lit("@"), F.upper(domain))).otherwise(email)
    email = F.when(c("bad") == 2, F.concat(local, F.lit(" at "), domain)).when(c("has_email"), email)
    country = _lookup(tuple(x[0] for x in ref.COUNTRIES), c("country"))
    cities = tuple(city for x in ref.COUNTRIES for city in x[2])
    prefix = F.element_at(F.create_map(*[F.lit(x) for kv in ref.PHONE_PREFIX.items() for x in kv]), country)
    phone = F.concat(
        F.lit("+"), prefix, F.lpad((F.abs(F.xxhash64(c("idx"), F.lit(seed))) % 1_000_000_000).cast("string"), 9, "0")
    )
    b2b = c("b2b")
    return df.select(
        F.when(c("bad") != 1, _pid(c("idx"))).alias("persona_id"),
        email.alias("email"),
        F.when(c("has_phone"), phone).alias("phone"),
        F.when(c("has_cookie"), _cookie(c("idx"))).alias("cookie_id"),
        _ts(c("created_s"), c("bad") == 3).alias("created_at"),
        country.alias("country"),
        _lookup(cities, c("city")).alias("city"),
        F.date_format(F.date_from_unix_date(c("birth_day")), "yyyy-MM-dd").alias("birth_date"),
        _lookup(ref.GENDERS, c("gender")).alias("gender"),
        c("consent_email").cast("string").alias("consent_email"),
        c("consent_sms").cast("string").alias("consent_sms"),
        F.when(b2b, _lookup(ref.INDUSTRIES, c("industry"))).alias("industry"),
        F.when(b2b, _lookup(ref.COMPANY_SIZES, c("company_size"))).alias("company_size"),
        F.when(b2b, _lookup(ref.ACCOUNT_OWNERS, c("owner"))).alias("account_owner"),
        F.when(b2b, _lookup(ref.PLANS, c("plan"))).alias("plan"),
    )


def _product_id(code: Column) -> Column:
    from pyspark.sql import functions as F

    return F.concat(F.lit("SKU"), F.lpad(code.cast("string"), 5, "0"))


def _orders_raw(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    c = F.col
    return df.select(
        F.concat(F.lit("O"), F.lpad(c("order_no").cast("string"), 13, "0")).alias("order_id"),
        c("line_no"),
        F.when(c("bad") != 2, _pid(c("persona_idx"))).alias("persona_id"),
        # Timestamps as text: exports often carry them so, and it lets a bad one exist.
        _ts(c("order_s"), c("bad") == 1).alias("order_ts"),
        _lookup(ref.CHANNELS, c("channel")).alias("channel"),
        _product_id(c("product")).alias("product_id"),
        F.when(c("bad") == 4, F.lit(0)).otherwise(c("quantity")).cast("int").alias("quantity"),
        F.when(c("bad") == 3, -F.abs(c("unit_price")) - F.lit(0.01)).otherwise(c("unit_price")).alias("unit_price"),
    )


def _events_raw(df: DataFrame) -> DataFrame:
    """One JSON document per event (absent keys for nulls); kind-4 damage truncates the line."""
    from pyspark.sql import functions as F

    c = F.col
    doc = F.to_json(
        F.struct(
            F.when(c("bad") != 3, F.concat(F.lit("E"), F.lpad(c("event_no").cast("string"), 13, "0"))).alias(
                "event_id"
            ),
            _pid(c("persona_idx")).alias("persona_id"),
            F.when(c("cookie"), _cookie(F.coalesce(c("persona_idx"), c("event_no")))).alias("cookie_id"),
            _ts(c("event_s"), c("bad") == 1, "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("event_ts"),
            F.when(c("bad") == 2, F.lit("page_visit"))
            .otherwise(_lookup(ref.EVENT_TYPES, c("event_type")))
            .alias("event_type"),
            _product_id(c("product")).alias("product_id"),
            F.concat(F.lit("S"), F.lpad(c("session_no").cast("string"), 13, "0")).alias("session_id"),
            c("duration_s"),
            F.when(c("campaign").isNotNull(), _lookup(ref.CAMPAIGNS, c("campaign"))).alias("campaign_id"),
        )
    )
    # Every document is longer than 40 characters, so the cut one never parses.
    return df.select(F.when(c("bad") == 4, F.substring(doc, 1, 40)).otherwise(doc).alias("value"))


def _tickets_raw(df: DataFrame) -> DataFrame:
    """Ticket rows as text; damage 1 closes a ticket before it opened, 2 drops the persona."""
    from pyspark.sql import functions as F

    c = F.col
    closed = F.when(c("bad") == 1, c("opened_s") - F.lit(3600)).otherwise(c("closed_s"))
    return df.select(
        F.concat(F.lit("T"), F.lpad(c("ticket_no").cast("string"), 13, "0")).alias("ticket_id"),
        F.when(c("bad") != 2, _pid(c("persona_idx"))).alias("persona_id"),
        _ts(c("opened_s"), F.lit(False)).alias("opened_at"),
        F.when(closed.isNotNull(), _ts(closed, F.lit(False))).alias("closed_at"),
        _lookup(ref.TICKET_CHANNELS, c("channel")).alias("channel"),
        _lookup(ref.TICKET_PRIORITIES, c("priority")).alias("priority"),
        _lookup(ref.TICKET_CATEGORIES, c("category")).alias("category"),
        F.when(c("is_open"), F.lit("open")).otherwise(F.lit("closed")).alias("status"),
    )


def _surveys_raw(df: DataFrame) -> DataFrame:
    """Survey rows as text; damage 1 puts a CSAT-scale answer out of range, 2 an unknown kind."""
    from pyspark.sql import functions as F

    c = F.col
    kind = F.when(c("bad") == 2, F.lit("ces")).otherwise(_lookup(ref.SURVEY_KINDS, c("kind")))
    score = F.when(c("bad") == 1, F.lit(11)).otherwise(c("score"))
    return df.select(
        F.concat(F.lit("R"), F.lpad(c("response_no").cast("string"), 13, "0")).alias("response_id"),
        _pid(c("persona_idx")).alias("persona_id"),
        _ts(c("answered_s"), F.lit(False)).alias("answered_at"),
        kind.alias("kind"),
        score.cast("string").alias("score"),
    )


def _products_raw(spark: SparkSession, params: Any) -> tuple[DataFrame, int]:
    """The catalogue (small, built on the driver) and its number of damaged rows."""
    import numpy as np

    from segengine.generate.simulate import product_catalogue

    n = len(params.product_price)
    cat = product_catalogue(params.seed, n)
    rng = np.random.default_rng([params.seed, 9_999_998])
    bad = (
        np.where(rng.random(n) < params.malformed_share, rng.integers(1, 3, n), 0)
        if params.malformed_share > 0
        else np.zeros(n, int)
    )
    rows = []
    for i in range(n):
        category, _median, brands = ref.CATEGORIES[int(cat["category"][i])]
        brand = brands[int(cat["brand"][i])]
        price = float(cat["price"][i])
        rows.append(
            (
                None if bad[i] == 1 else f"SKU{i:05d}",
                f"{brand} {ref.ADJECTIVES[int(cat['adjective'][i])]} {category.rstrip('s')} {i}",
                category,
                brand,
                f"{-price:.2f}" if bad[i] == 2 else f"{price:.2f}",
            )
        )
    schema = "product_id string, name string, category string, brand string, price string"
    return spark.createDataFrame(rows, schema).coalesce(1), int((bad > 0).sum())


def _counts(df: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = one_row(df.agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(F.col("bad") > 0, 1).otherwise(0)).alias("bad")))
    return int(row["n"]), int(row["bad"] or 0)


def _rename_parts(spark: SparkSession, directory: str, old: str, new: str) -> None:
    """Rename Spark's ``part-*.txt`` files to ``.jsonl`` (Hadoop FS: works on any URI)."""
    jvm = jvm_of(spark, f"renaming files in {directory}")
    path = jvm.org.apache.hadoop.fs.Path(directory)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if name.endswith(old):
            fs.rename(status.getPath(), jvm.org.apache.hadoop.fs.Path(directory, name[: -len(old)] + new))


def generate_raw(
    spark: SparkSession,
    config: Config,
    out_dir: str,
    personas: int | None = None,
    seed: int | None = None,
    malformed_share: float | None = None,
    identity_share: float = 0.0,
) -> dict[str, Any]:
    """Generate the raw files of every bronze table under ``out_dir/<table>/``.

    Existing files of those tables under ``out_dir`` are replaced.

    Args:
        spark: the SparkSession.
        config: the configuration (``generator`` section).
        out_dir: local path or Hadoop URI of the raw landing directory.
        personas: number of personas (default ``generator.personas``).
        seed: random seed (default ``generator.seed``); same seed and count → same data.
        malformed_share: share of damaged rows per table (default ``generator.malformed_share``).
        identity_share: share of clean customers and prospects spread over two or three
            persona rows, with the ground truth in ``out_dir/identity_truth``
            (:mod:`segengine.generate.identities`); 0 (the default) writes exactly the
            files of a generator without planted identities.

    Returns:
        ``{"out_dir", "seed", "rows": {table: n}, "malformed": {table: n},
        "formats": {table: fmt}, "seconds": {table: s, "total": s},
        "rows_per_second", "personas_per_second"}``, and with ``identity_share`` > 0
        ``"identity": {"people", "alias_personas", "alias_events", "truth_dir"}``.
    """
    params = sim_params(config, personas, seed, malformed_share)
    if not 0.0 <= identity_share <= 1.0:
        from segengine.errors import ConfigError

        raise ConfigError(f"identity share: expected a share in [0, 1], got {identity_share}")
    out = out_dir.rstrip("/")
    rows: dict[str, int] = {}
    bad: dict[str, int] = {}
    seconds: dict[str, float] = {}
    started = time.time()

    t = time.time()
    sim = _simulate(spark, params, "personas")
    rows["personas"], bad["personas"] = _counts(sim)
    raw_personas = _personas_raw(sim, params.seed)
    planted = None
    if identity_share > 0:
        from segengine.generate.identities import TRUTH_DIR

        planted = _plant_identities(sim, params, identity_share, config.identity.default_country_code)
        raw_personas = raw_personas.unionByName(planted[0])
        planted[2].coalesce(1).write.mode("overwrite").option("header", True).csv(f"{out}/{TRUTH_DIR}")
    raw_personas.write.mode("overwrite").option("header", True).csv(f"{out}/personas")
    seconds["personas"] = time.time() - t

    t = time.time()
    products, bad["products"] = _products_raw(spark, params)
    rows["products"] = len(params.product_price)
    products.write.mode("overwrite").option("header", True).csv(f"{out}/products")
    seconds["products"] = time.time() - t

    t = time.time()
    sim = _simulate(spark, params, "order_lines")
    rows["order_lines"], bad["order_lines"] = _counts(sim)
    _orders_raw(sim).write.mode("overwrite").parquet(f"{out}/order_lines")
    seconds["order_lines"] = time.time() - t

    t = time.time()
    sim = _simulate(spark, params, "events")
    rows["events"], bad["events"] = _counts(sim)
    raw_events = _events_raw(sim)
    if planted is not None:
        raw_events = raw_events.unionByName(planted[1])
    raw_events.write.mode("overwrite").text(f"{out}/events")
    _rename_parts(spark, f"{out}/events", ".txt", ".jsonl")
    seconds["events"] = time.time() - t

    for table, to_raw in (("support_tickets", _tickets_raw), ("survey_responses", _surveys_raw)):
        t = time.time()
        sim = _simulate(spark, params, table)
        rows[table], bad[table] = _counts(sim)
        to_raw(sim).write.mode("overwrite").option("header", True).csv(f"{out}/{table}")
        seconds[table] = time.time() - t

    identity: dict[str, Any] = {}
    if planted is not None:
        from pyspark.sql import functions as F

        from segengine.generate.identities import read_truth

        truth = read_truth(spark, out)
        counts = one_row(truth.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("person_id").alias("people")))
        people, aliases = int(counts["people"]), int(counts["rows"]) - int(counts["people"])
        alias_events = planted[1].count()
        rows["personas"] += aliases
        rows["events"] += alias_events
        identity = {
            "identity": {
                "people": people,
                "alias_personas": aliases,
                "alias_events": alias_events,
                "truth_dir": f"{out}/{TRUTH_DIR}",
            }
        }

    total = time.time() - started
    seconds["total"] = total
    return {
        **identity,
        "out_dir": out,
        "seed": params.seed,
        "personas": params.personas,
        "rows": rows,
        "malformed": bad,
        "formats": {
            "personas": "csv",
            "products": "csv",
            "order_lines": "parquet",
            "events": "json",
            "support_tickets": "csv",
            "survey_responses": "csv",
        },
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "rows_per_second": round(sum(rows.values()) / total, 1) if total > 0 else None,
        "personas_per_second": round(params.personas / total, 1) if total > 0 else None,
    }


def _plant_identities(sim: DataFrame, params: Any, share: float, national_cc: str) -> tuple[Any, Any, Any]:
    """Alias personas, their events and the truth for the clean customers and prospects of ``sim``."""
    from pyspark.sql import functions as F

    from segengine.generate.identities import plant

    clean = sim.where((F.col("bad") == 0) & (F.col("ptype") < 2))
    originals = _personas_raw(clean, params.seed).withColumn("idx", F.substring("persona_id", 2, 20).cast("bigint"))
    return plant(originals, params.personas, params.seed, share, national_cc, params.end_day)


def generate_bronze(
    spark: SparkSession, lake: Lake, config: Config, personas: int, seed: int = 42, identity_share: float = 0.0
) -> dict[str, Any]:
    """Generate raw files under ``<warehouse>/raw`` (or ``ingest.raw_dir``) and ingest them.

    Args:
        spark: the SparkSession.
        lake: the Lake to load the bronze tables into.
        config: the configuration.
        personas: number of personas.
        seed: random seed.
        identity_share: people spread over several personas (see :func:`generate_raw`).

    Returns:
        ``{"generate": <generate_raw result>, "ingest": <ingest result>}``.
    """
    from segengine.ingest import default_raw_dir, ingest

    raw_dir = default_raw_dir(config)
    generated = generate_raw(spark, config, raw_dir, personas=personas, seed=seed, identity_share=identity_share)
    loaded = ingest(spark, lake, config, raw_dir)
    return {"generate": generated, "ingest": loaded}
