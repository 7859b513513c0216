"""Planted identities: some generated people spread over two or three persona rows.

Off by default (``identity_share`` 0): the generator's files are then exactly what they
were without this module. With a share ``s`` > 0, each clean customer or prospect is
picked with probability ``s`` (a seeded hash of its index, so the same seed picks the
same people) and gets one or two *alias* personas, extra persona rows of the same
person:

* alias 1 carries the person's email written differently (upper case; the padding
  spaces it gets are trimmed again by Spark's CSV writer), or, without an email, its phone in another format (``00`` prefix, spaces;
  ``+cc (nnn) nnn-nnn``; the national ``0…`` form when the country code is
  ``national_cc``, the identity graph's default country code);
* half of the picked people get alias 2 as well: either a phone-only persona whose
  number is a second phone on alias 1 (a transitive link: original -email- alias 1
  -phone- alias 2), or a cookie-only visitor whose cookie is also seen on a ``login``
  event of the original persona (two page views by the cookie alone, then the login).

Alias persona ids are ``P`` + the 8-digit number ``personas + 2 * index + j`` (j = 0,
1), so they follow every generated persona and the original keeps the smallest id,
which is the canonical person id the identity graph should give. Alias event ids are
``E`` + ``9 * 10^12 + 3 * index + k``, above every simulated event number.

The ground truth is written as CSV to ``<out>/identity_truth/`` (not a bronze table:
ingest never reads it): ``persona_id, person_id`` for every original and alias of a
planted person; every other persona is its own person. :func:`read_truth` reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from segengine.generate import reference as ref

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

TRUTH_DIR = "identity_truth"
ALIAS_EVENT_BASE = 9_000_000_000_000
DAY = 86400


def _unit(idx: Column, seed: int, salt: int) -> Column:
    """A uniform number in [0, 1) from a seeded hash of ``idx``."""
    return F.pmod(F.xxhash64(idx, F.lit(seed), F.lit(salt)), F.lit(1_000_003)) / F.lit(1_000_003.0)


def _pid(n: Column) -> Column:
    return F.concat(F.lit("P"), F.lpad(n.cast("string"), 8, "0"))


def _calling_code(phone: Column) -> Column:
    """The digits between the ``+`` and the last 9 digits of a generated number."""
    return F.substr(phone, F.lit(2), F.length(phone) - F.lit(10))


def _reformat(phone: Column, variant: Column, national_cc: str) -> Column:
    """An E.164 ``+<cc><9 digits>`` written another way (the generator's numbers have 9 digits)."""
    n = F.substring(phone, -9, 9)
    cc = _calling_code(phone)
    a, b, c = F.substring(n, 1, 3), F.substring(n, 4, 3), F.substring(n, 7, 3)
    spaced = F.concat(F.lit("00"), cc, F.lit(" "), a, F.lit(" "), b, F.lit(" "), c)
    bracket = F.concat(F.lit("+"), cc, F.lit(" ("), a, F.lit(") "), b, F.lit("-"), c)
    national = F.concat(F.lit("0"), a, F.lit(" "), b, c)
    return F.when((variant == 2) & (cc == F.lit(national_cc)), national).when(variant == 1, bracket).otherwise(spaced)


def plant(
    raw_personas: DataFrame, personas: int, seed: int, share: float, national_cc: str, end_day: int
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The alias persona rows, their events and the ground truth for ``raw_personas``.

    Args:
        raw_personas: the raw persona rows of clean customers and prospects (the
            generator's text columns) with their ``idx``.
        personas: the number of generated personas (alias ids start after them).
        seed: the generator's seed.
        share: probability that a person is spread over several personas.
        national_cc: calling code whose numbers may be written in national form.
        end_day: the last generated day (days since 1970-01-01); alias events fall in
            the 150 days before it.

    Returns:
        ``(alias_personas, alias_event_docs, truth)``: persona rows with the raw
        personas' columns, event JSON documents (a ``value`` column, like the events
        files), and (persona_id, person_id) rows.
    """
    c = F.col
    idx = c("idx")
    picked = raw_personas.where(_unit(idx, seed, 1) < F.lit(share)).select(
        "*",
        (_unit(idx, seed, 2) < 0.5).alias("three"),
        (_unit(idx, seed, 3) < 0.5).alias("transitive"),
        F.pmod(F.xxhash64(idx, F.lit(seed), F.lit(4)), F.lit(3)).alias("v1"),
        F.pmod(F.xxhash64(idx, F.lit(seed), F.lit(5)), F.lit(3)).alias("v2"),
    )
    has_email = c("email").isNotNull()
    # A transitive third persona needs alias 1 to carry the email (its phone slot is free).
    transitive = c("three") & c("transitive") & has_email
    cookie_alias = c("three") & ~transitive
    a1 = personas + 2 * idx
    a2 = a1 + 1
    cc = _calling_code(c("phone_any"))
    second_phone = F.concat(
        F.lit("+"),
        cc,
        F.lpad(
            (F.pmod(F.xxhash64(a1, F.lit(seed), F.lit(6)), F.lit(900_000_000)) + 100_000_000).cast("string"), 9, "0"
        ),
    )
    base = picked.withColumn(
        "phone_any",
        # The country's prefix for a second phone: the person's own phone, else the first
        # country's prefix (only emails then).
        F.coalesce(c("phone"), F.lit("+" + ref.PHONE_PREFIX[ref.COUNTRIES[0][0]] + "000000000")),
    )
    keep = ["created_at", "country", "city"]
    blank = [
        "birth_date",
        "gender",
        "consent_email",
        "consent_sms",
        "industry",
        "company_size",
        "account_owner",
        "plan",
    ]
    nulls = [F.lit(None).cast("string").alias(n) for n in blank]
    alias1 = base.select(
        _pid(a1).alias("persona_id"),
        F.when(has_email, F.concat(F.lit("  "), F.upper(c("email")), F.lit(" "))).alias("email"),
        F.when(~has_email, _reformat(c("phone"), c("v1"), national_cc)).when(transitive, second_phone).alias("phone"),
        F.lit(None).cast("string").alias("cookie_id"),
        *keep,
        *nulls,
        c("persona_id").alias("person_id"),
    )
    alias2 = base.where(c("three")).select(
        _pid(a2).alias("persona_id"),
        F.lit(None).cast("string").alias("email"),
        F.when(transitive, _reformat(second_phone, c("v2"), national_cc)).alias("phone"),
        F.when(cookie_alias, F.concat(F.lit("ck-alias-"), a2.cast("string"))).alias("cookie_id"),
        *keep,
        *nulls,
        c("persona_id").alias("person_id"),
    )
    aliases = alias1.unionByName(alias2)
    columns = [n for n in raw_personas.columns if n != "idx"]
    alias_personas = aliases.select(*columns)
    truth = aliases.select("persona_id", "person_id").unionByName(
        picked.select("persona_id", c("persona_id").alias("person_id"))
    )
    events = _alias_events(base.where(cookie_alias), a2, seed, end_day)
    return alias_personas, events, truth


def _alias_events(rows: DataFrame, a2: Column, seed: int, end_day: int) -> DataFrame:
    """Two page views of the cookie alone, then a login carrying the persona id and the cookie."""
    c = F.col
    t0 = F.lit(end_day * DAY) - F.pmod(F.xxhash64(c("idx"), F.lit(seed), F.lit(7)), F.lit(150 * DAY))
    cookie = F.concat(F.lit("ck-alias-"), a2.cast("string"))
    steps = rows.select(
        "idx",
        "persona_id",
        cookie.alias("cookie"),
        t0.alias("t0"),
        F.explode(F.array(F.lit(0), F.lit(1), F.lit(2))).alias("k"),
    )
    event_no = F.lit(ALIAS_EVENT_BASE) + 3 * c("idx") + c("k")
    doc = F.to_json(
        F.struct(
            F.concat(F.lit("E"), F.lpad(event_no.cast("string"), 13, "0")).alias("event_id"),
            F.when(c("k") == 2, c("persona_id")).alias("persona_id"),
            c("cookie").alias("cookie_id"),
            F.date_format(F.timestamp_seconds(c("t0") + 60 * c("k")), "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("event_ts"),
            F.when(c("k") == 2, F.lit("login")).otherwise(F.lit("page_view")).alias("event_type"),
            F.concat(F.lit("S"), F.lpad((F.lit(ALIAS_EVENT_BASE) + 3 * c("idx")).cast("string"), 13, "0")).alias(
                "session_id"
            ),
            F.lit(30.0).alias("duration_s"),
        )
    )
    return steps.select(doc.alias("value"))


def read_truth(spark: SparkSession, out_dir: str) -> DataFrame:
    """The planted ground truth written by the generator: (persona_id, person_id).

    Args:
        spark: the SparkSession.
        out_dir: the generator's output (raw) directory.

    Returns:
        The truth rows; personas not in it are their own person.
    """
    return (
        spark.read.option("header", True)
        .schema("persona_id string, person_id string")
        .csv(f"{out_dir.rstrip('/')}/{TRUTH_DIR}")
    )
