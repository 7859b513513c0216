"""The vectorised simulation behind the generator (numpy, one chunk of personas at a time).

Each chunk of ``chunk_personas`` consecutive personas is simulated by one Spark task
from its own random streams ``default_rng([seed, chunk, stream])``, so the output
depends only on the seed, the persona count and the chunk size, never on how Spark
schedules the tasks. Every table regenerates the persona block of its chunk from the
same stream, which is cheaper than joining personas back to their orders.

The functions here return integer codes, epoch seconds and flags as Arrow record
batches; Spark turns them into the raw files' strings with built-in functions.
A ``bad`` column (0 = clean, k = kind of damage) marks the rows the malformed share
selected; Spark applies the damage so the counts are exact.

Shoppers have personal taste, as real ones do (and as a recommender must be able to
learn): every persona has a favourite and a second-favourite category and a favourite
brand in each. New purchases come from global popularity only 15% of the time; the rest
from the favourite (70%) or second category (30%), restricted to the persona's brand there
60% of the time, each by popularity within that segment (:data:`PURCHASE_TASTE`). 30% of
lines re-buy one of three personal staples (:data:`STAPLE_TASTE`); product views and
carts follow the same taste with more exploration (:data:`BROWSE_TASTE`). An earlier
version drew half of the new purchases from global popularity and had no brand
affinity, so a popularity list was nearly as good as any personal model (precision@10
of ALS only 1.3x popularity). The taste draws come last in the persona block, so the
persona attributes, order dates and line counts of a seed did not change with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from segengine.generate import reference as ref

DAY = 86400
# Random streams of a chunk: one per table so adding events never changes orders.
STREAM_PERSONAS, STREAM_ORDERS, STREAM_EVENTS, STREAM_BAD = 0, 1, 2, 3
STREAM_TICKETS, STREAM_SURVEYS = 4, 5
# Support: tickets per customer-year, and the extra rate while a customer declines: from
# DECLINE_BEFORE days before its churn (the last purchase phase) to DECLINE_AFTER days
# after (complaints come first, then the customer stops buying); answers are lower from
# the start of that phase until a reactivation.
TICKETS_PER_YEAR = 0.6
DECLINE_TICKETS_PER_YEAR = 4.0
DECLINE_BEFORE = 60
DECLINE_AFTER = 90
NPS_PER_YEAR = 0.5
CSAT_AFTER_TICKET = 0.5
CSAT_WEIGHTS = (0.03, 0.05, 0.12, 0.35, 0.45)  # scores 1..5
CSAT_WEIGHTS_DECLINING = (0.2, 0.25, 0.25, 0.2, 0.1)
# Ids are chunk * ID_STRIDE + a counter within the chunk (unique, reproducible).
ID_STRIDE = 1_000_000_000
BATCH_ROWS = 250_000


@dataclass(frozen=True)
class SimParams:
    """Everything a task needs; small and picklable (shipped in the task closure)."""

    seed: int
    personas: int
    chunk_personas: int
    start_day: int  # days since 1970-01-01
    end_day: int  # inclusive
    customer_share: float
    prospect_share: float
    b2b_share: float
    refund_share: float
    orders_per_year: float
    lines_per_order: float
    events_per_persona: float
    malformed_share: float
    product_category: tuple[int, ...]
    product_price: tuple[float, ...]
    product_weight: tuple[float, ...]
    product_brand: tuple[int, ...] = ()  # brand index within the product's category

    @property
    def chunks(self) -> int:
        return max(1, -(-self.personas // self.chunk_personas))


def _rng(p: SimParams, chunk: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([p.seed, chunk, stream])


def _choice(rng: np.random.Generator, weights: tuple[float, ...], size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(size), side="right").clip(0, len(w) - 1)


def day_weights(start_day: int, end_day: int) -> np.ndarray:
    """Purchase intensity of every day in [start_day, end_day]: month × weekday × slow growth."""
    days = np.arange(start_day, end_day + 1)
    dates = days.astype("datetime64[D]")
    month = dates.astype("datetime64[M]").astype(int) % 12
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    growth = 1.0 + 0.25 * (days - start_day) / max(1, end_day - start_day)
    return np.asarray(ref.MONTH_WEIGHTS)[month] * np.asarray(ref.WEEKDAY_WEIGHTS)[weekday] * growth


def _sample_days(rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Draw one day offset in [lo, hi) per element, with the seasonal weights (inverse CDF)."""
    a, b = cum[lo], cum[hi]
    u = a + rng.random(len(lo)) * (b - a)
    return np.clip(np.searchsorted(cum, u, side="right") - 1, lo, np.maximum(lo, hi - 1))


def _bad(p: SimParams, chunk: int, table: int, n: int, kinds: int) -> np.ndarray:
    """0 for a clean row, else the damage kind 1..kinds, for a share malformed_share of rows."""
    if p.malformed_share <= 0 or n == 0:
        return np.zeros(n, dtype=np.int8)
    rng = np.random.default_rng([p.seed, chunk, STREAM_BAD, table])
    hit = rng.random(n) < p.malformed_share
    return np.where(hit, rng.integers(1, kinds + 1, n), 0).astype(np.int8)


def persona_block(p: SimParams, chunk: int) -> dict[str, np.ndarray]:
    """The latent and observed attributes of the personas of one chunk."""
    lo = chunk * p.chunk_personas
    hi = min(p.personas, lo + p.chunk_personas)
    m = max(0, hi - lo)
    rng = _rng(p, chunk, STREAM_PERSONAS)
    u = rng.random(m)
    ptype = np.where(u < p.customer_share, 0, np.where(u < p.customer_share + p.prospect_share, 1, 2)).astype(np.int8)
    first = p.start_day - 730
    # Customers are created early enough to buy at least once before the end date.
    created_day = first + (rng.random(m) * (p.end_day - 14 - first)).astype(np.int64)
    created_s = created_day * DAY + rng.integers(0, DAY, m)
    country = _choice(rng, tuple(c[1] for c in ref.COUNTRIES), m)
    n_cities = np.array([len(c[2]) for c in ref.COUNTRIES])
    city_offset = np.concatenate([[0], np.cumsum(n_cities)[:-1]])
    city = city_offset[country] + (rng.random(m) * n_cities[country]).astype(np.int64)
    age = np.clip(rng.normal(41, 13, m), 18, 88)
    birth_day = (p.end_day - age * 365.25).astype(np.int64)
    has_birth = rng.random(m) < 0.9
    gender = _choice(rng, ref.GENDER_WEIGHTS, m)
    known = ptype < 2
    has_email = known & ((ptype == 0) | (rng.random(m) < 0.85))
    has_phone = known & ((rng.random(m) < 0.55) | ~has_email)
    has_cookie = (ptype == 2) | (rng.random(m) < 0.6)
    consent_email = has_email & (rng.random(m) < 0.65)
    consent_sms = has_phone & (rng.random(m) < 0.35)
    b2b = known & (rng.random(m) < p.b2b_share)
    industry = _choice(rng, ref.INDUSTRY_WEIGHTS, m)
    size = _choice(rng, ref.COMPANY_SIZE_WEIGHTS, m)
    plan = _choice(rng, ref.PLAN_WEIGHTS, m)
    owner = rng.integers(0, len(ref.ACCOUNT_OWNERS), m)
    name = rng.integers(0, len(ref.FIRST_NAMES) * len(ref.LAST_NAMES), m)
    messy_email = rng.random(m) < 0.05  # upper case and padding: ingest must normalise
    # Behaviour: a lognormal purchase rate, a favourite category, a preferred channel,
    # churn at some point for many, reactivation after a gap for some of those.
    rate = p.orders_per_year * np.exp(rng.normal(0.0, 0.8, m))
    fav_cat = rng.integers(0, len(ref.CATEGORIES), m)
    channel = _choice(rng, ref.CHANNEL_WEIGHTS, m)
    active_from = np.maximum(created_day, p.start_day)
    churn = rng.random(m) < 0.45
    churn_day = active_from + (rng.random(m) * (p.end_day + 1 - active_from)).astype(np.int64)
    react = churn & (rng.random(m) < 0.3)
    react_day = churn_day + rng.integers(60, 400, m)
    # Personal taste (drawn last, so the attributes above never change with it): a
    # second-favourite category and a favourite brand in each of the two categories.
    n_cat = len(ref.CATEGORIES)
    second_cat = (fav_cat + rng.integers(1, n_cat, m)) % n_cat
    n_brands = np.array([len(c[2]) for c in ref.CATEGORIES])
    fav_brand = (rng.random(m) * n_brands[fav_cat]).astype(np.int64)
    second_brand = (rng.random(m) * n_brands[second_cat]).astype(np.int64)
    return {
        "idx": np.arange(lo, hi, dtype=np.int64),
        "ptype": ptype,
        "created_day": created_day,
        "created_s": created_s,
        "country": country.astype(np.int16),
        "city": city.astype(np.int16),
        "birth_day": birth_day,
        "has_birth": has_birth,
        "gender": gender.astype(np.int8),
        "has_email": has_email,
        "has_phone": has_phone,
        "has_cookie": has_cookie,
        "consent_email": consent_email,
        "consent_sms": consent_sms,
        "b2b": b2b,
        "industry": industry.astype(np.int8),
        "company_size": size.astype(np.int8),
        "plan": plan.astype(np.int8),
        "owner": owner.astype(np.int8),
        "name": name.astype(np.int16),
        "messy_email": messy_email,
        "rate": rate,
        "fav_cat": fav_cat.astype(np.int16),
        "channel": channel.astype(np.int8),
        "active_from": active_from,
        "churn": churn,
        "churn_day": churn_day,
        "react": react,
        "react_day": react_day,
        "second_cat": second_cat.astype(np.int16),
        "fav_brand": fav_brand.astype(np.int8),
        "second_brand": second_brand.astype(np.int8),
    }


def persona_batches(p: SimParams, chunk: int) -> list[pa.RecordBatch]:
    """Arrow batches of the persona rows of one chunk."""
    b = persona_block(p, chunk)
    known = b["ptype"] < 2
    cols = {
        "idx": b["idx"],
        "ptype": b["ptype"],
        "created_s": b["created_s"],
        "country": b["country"],
        "city": b["city"],
        "birth_day": pa.array(b["birth_day"].astype(np.int32), mask=~b["has_birth"]),
        "gender": b["gender"],
        "has_email": b["has_email"],
        "has_phone": b["has_phone"],
        "has_cookie": b["has_cookie"],
        "consent_email": pa.array(b["consent_email"], mask=~known),
        "consent_sms": pa.array(b["consent_sms"], mask=~known),
        "b2b": b["b2b"],
        "industry": b["industry"],
        "company_size": b["company_size"],
        "plan": b["plan"],
        "owner": b["owner"],
        "name": b["name"],
        "messy_email": b["messy_email"],
        "bad": _bad(p, chunk, 0, len(b["idx"]), 3),
    }
    return [pa.RecordBatch.from_pydict(cols)]


@dataclass(frozen=True)
class Taste:
    """How one product draw follows the persona's taste (shares of the draws).

    Args:
        global_share: drawn from global popularity (trends, gifts, discovery).
        first_share: of the personal draws, from the favourite category (the rest from
            the second favourite).
        brand_share: of the personal draws, only among the persona's brand in that
            category (the rest: the whole category, by popularity).
    """

    global_share: float
    first_share: float
    brand_share: float


# New purchases mostly follow personal taste; staples (repeat buys) are favourites;
# browsing explores more than buying does.
PURCHASE_TASTE = Taste(global_share=0.15, first_share=0.7, brand_share=0.6)
STAPLE_TASTE = Taste(global_share=0.0, first_share=1.0, brand_share=0.8)
BROWSE_TASTE = Taste(global_share=0.3, first_share=0.6, brand_share=0.4)
MAX_BRANDS = 8  # brands per category fit in this many codes (segment keys cat * MAX_BRANDS + brand)


def _products(p: SimParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Products sorted by (category, brand) with cumulative popularity.

    Returns:
        (order, cum, starts, ends): ``order[i]`` is the product at sorted position i,
        ``cum`` the cumulative popularity over sorted positions (length n + 1);
        ``starts``/``ends`` the sorted position range of every category (index ``c``)
        and of every (category, brand) (index ``len(CATEGORIES) + c * MAX_BRANDS + b``).
    """
    cat = np.asarray(p.product_category, dtype=np.int64)
    brand = np.asarray(p.product_brand, dtype=np.int64) if p.product_brand else np.zeros(len(cat), np.int64)
    key = cat * MAX_BRANDS + brand
    order = np.lexsort((brand, cat))
    w = np.asarray(p.product_weight)[order]
    cum = np.concatenate([[0.0], np.cumsum(w)])
    n_cat = len(ref.CATEGORIES)
    cats = np.arange(n_cat)
    keys = np.arange(n_cat * MAX_BRANDS)
    starts = np.concatenate(
        [np.searchsorted(cat[order], cats, side="left"), np.searchsorted(key[order], keys, side="left")]
    )
    ends = np.concatenate(
        [np.searchsorted(cat[order], cats, side="right"), np.searchsorted(key[order], keys, side="right")]
    )
    return order, cum, starts, ends


def _pick_products(
    rng: np.random.Generator, p: SimParams, b: dict[str, np.ndarray], who: np.ndarray, taste: Taste
) -> np.ndarray:
    """One product per element of ``who`` (positions in the persona block ``b``), by taste.

    Heavy-tailed popularity within the segment chosen for each draw: the whole
    catalogue (``global_share``), else the favourite or second category, narrowed to
    the persona's brand there for a share ``brand_share``. An empty segment falls
    back to the next wider one. Always four random draws per element.
    """
    order, cum, starts, ends = _products(p)
    n = len(who)
    n_cat = len(ref.CATEGORIES)
    personal = rng.random(n) >= taste.global_share
    first = rng.random(n) < taste.first_share
    by_brand = rng.random(n) < taste.brand_share
    cat = np.where(first, b["fav_cat"][who], b["second_cat"][who]).astype(np.int64)
    brand = np.where(first, b["fav_brand"][who], b["second_brand"][who]).astype(np.int64)
    seg = np.where(by_brand, n_cat + cat * MAX_BRANDS + np.minimum(brand, MAX_BRANDS - 1), cat)
    seg = np.where(starts[seg] < ends[seg], seg, cat)
    ok = personal & (starts[seg] < ends[seg])
    lo = np.where(ok, cum[starts[seg]], 0.0)
    hi = np.where(ok, cum[ends[seg]], cum[-1])
    u = lo + rng.random(n) * (hi - lo)
    pos = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(order) - 1)
    return order[pos]


def order_batches(p: SimParams, chunk: int) -> list[pa.RecordBatch]:
    """Arrow batches of the order lines (purchases and refunds) of one chunk's customers."""
    b = persona_block(p, chunk)
    rng = _rng(p, chunk, STREAM_ORDERS)
    cust = np.flatnonzero(b["ptype"] == 0)
    if len(cust) == 0:
        return []
    end = p.end_day + 1
    a1 = b["active_from"][cust]
    e1 = np.where(b["churn"][cust], np.maximum(b["churn_day"][cust], a1 + 1), end).clip(max=end)
    a2 = np.minimum(b["react_day"][cust], end)
    len1 = (e1 - a1).clip(min=1)
    len2 = np.where(b["react"][cust], end - a2, 0).clip(min=0)
    n_orders = np.maximum(1, rng.poisson(b["rate"][cust] * (len1 + len2) / 365.25))
    who = np.repeat(np.arange(len(cust)), n_orders)
    second = rng.random(len(who)) < (len2 / (len1 + len2))[who]
    lo = np.where(second, a2[who], a1[who]) - p.start_day
    hi = np.where(second, end, e1[who]) - p.start_day
    cum = np.concatenate([[0.0], np.cumsum(day_weights(p.start_day, p.end_day))])
    day = _sample_days(rng, cum, lo, hi) + p.start_day
    hour = _choice(rng, ref.HOUR_WEIGHTS, len(who))
    order_s = day * DAY + hour * 3600 + rng.integers(0, 3600, len(who))
    chan = np.where(rng.random(len(who)) < 0.75, b["channel"][cust][who], _choice(rng, ref.CHANNEL_WEIGHTS, len(who)))
    # Lines: 1 + Poisson; B2B buyers order larger quantities.
    n_lines = 1 + rng.poisson(max(0.0, p.lines_per_order - 1.0), len(who))
    line_order = np.repeat(np.arange(len(who)), n_lines)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    line_no = np.arange(len(line_order)) - starts[line_order] + 1
    lw = who[line_order]
    person = cust[lw]
    # Repeat buying: each customer has three staples they come back to.
    staples = _pick_products(rng, p, b, np.repeat(cust, 3), STAPLE_TASTE).reshape(-1, 3)
    fresh = _pick_products(rng, p, b, person, PURCHASE_TASTE)
    repeat = rng.random(len(lw)) < 0.3
    product = np.where(repeat, staples[lw, rng.integers(0, 3, len(lw))], fresh)
    b2b = b["b2b"][person]
    qty = 1 + np.where(b2b, rng.poisson(2.0, len(lw)), rng.poisson(0.3, len(lw)))
    price = np.asarray(p.product_price)[product]
    discount = np.where(rng.random(len(lw)) < 0.2, 1.0 - rng.uniform(0.1, 0.3, len(lw)), 1.0)
    unit_price = np.round(price * discount, 2)
    order_no = chunk * ID_STRIDE + line_order
    ts = order_s[line_order]
    ch = chan[line_order]
    # Refunds: a share of purchased lines comes back 1-30 days later as its own order
    # with a negative quantity, so refunds always reference a product the persona bought.
    share = p.refund_share / max(1e-9, 1.0 - p.refund_share)
    refunded = np.flatnonzero(rng.random(len(lw)) < share)
    r_ts = np.minimum(ts[refunded] + rng.integers(1, 31, len(refunded)) * DAY, end * DAY - 1)
    cols = {
        "order_no": np.concatenate([order_no, chunk * ID_STRIDE + len(who) + np.arange(len(refunded))]),
        "line_no": np.concatenate([line_no, np.ones(len(refunded), dtype=np.int64)]).astype(np.int32),
        "persona_idx": np.concatenate([b["idx"][person], b["idx"][person[refunded]]]),
        "order_s": np.concatenate([ts, r_ts]),
        "channel": np.concatenate([ch, ch[refunded]]).astype(np.int8),
        "product": np.concatenate([product, product[refunded]]).astype(np.int32),
        "quantity": np.concatenate([qty, -qty[refunded]]).astype(np.int32),
        "unit_price": np.concatenate([unit_price, unit_price[refunded]]),
    }
    cols["bad"] = _bad(p, chunk, 2, len(cols["order_no"]), 4)
    return _batches(cols)


def event_batches(p: SimParams, chunk: int) -> list[pa.RecordBatch]:
    """Arrow batches of the web, app and email events of one chunk."""
    b = persona_block(p, chunk)
    rng = _rng(p, chunk, STREAM_EVENTS)
    m = len(b["idx"])
    if m == 0:
        return []
    factor = np.array([1.3, 0.9, 0.5])[b["ptype"]]
    n_sess = rng.poisson(p.events_per_persona / 3.2 * factor)
    who = np.repeat(np.arange(m), n_sess)
    ns = len(who)
    # Session kind: 0 web, 1 app, 2 email (only for personas with an email address).
    u = rng.random(ns)
    kind = np.where(b["has_email"][who] & (u < 0.3), 2, np.where((b["ptype"][who] < 2) & (u > 0.72), 1, 0))
    uu = rng.random(ns)
    length = np.where(
        kind == 2, 1 + (uu < 0.45) + (uu < 0.15), 1 + rng.poisson(np.where(kind == 1, 2.0, 2.6), ns)
    ).astype(np.int64)
    lo = np.maximum(b["created_day"][who], p.start_day) - p.start_day
    hi = np.full(ns, p.end_day + 1 - p.start_day)
    lo = np.minimum(lo, hi - 1)
    cum = np.concatenate([[0.0], np.cumsum(day_weights(p.start_day, p.end_day))])
    day = _sample_days(rng, cum, lo, hi) + p.start_day
    start_s = day * DAY + _choice(rng, ref.HOUR_WEIGHTS, ns) * 3600 + rng.integers(0, 3600, ns)
    ev_sess = np.repeat(np.arange(ns), length)
    n = len(ev_sess)
    first = np.concatenate([[0], np.cumsum(length)[:-1]])
    pos = np.arange(n) - first[ev_sess]
    k = kind[ev_sess]
    ew = who[ev_sess]
    b2b = b["b2b"][ew]
    code = ref.EVENT_CODE
    web_next = np.array([code["page_view"], code["product_view"], code["search"], code["add_to_cart"]])
    web_pick = web_next[_choice(rng, (0.35, 0.4, 0.12, 0.13), n)]
    app_next = np.array([code["product_view"], code["add_to_cart"], code["search"], code["page_view"]])
    app_pick = app_next[_choice(rng, (0.5, 0.2, 0.15, 0.15), n)]
    b2b_pick = np.where(rng.random(n) < 0.7, code["feature_use"], code["page_view"])
    email_seq = np.array([code["email_sent"], code["email_open"], code["email_click"]])
    etype = np.select(
        [
            k == 2,
            (k == 1) & (pos == 0),
            (k == 1) & b2b,
            k == 1,
            pos == 0,
        ],
        [
            email_seq[np.minimum(pos, 2)],
            np.where(b2b, code["login"], code["app_open"]),
            b2b_pick,
            app_pick,
            code["page_view"],
        ],
        web_pick,
    ).astype(np.int8)
    duration = np.round(rng.exponential(40.0, n), 1)
    # Within a session events follow each other; emails are opened hours after sending.
    step = np.where(k == 2, rng.integers(600, 36000, n), duration.astype(np.int64) + 1)
    step_cum = np.cumsum(step) - step
    offset = step_cum - step_cum[first[ev_sess]]
    ts = np.minimum(start_s[ev_sess] + offset, (p.end_day + 1) * DAY - 1)
    with_product = (etype == code["product_view"]) | (etype == code["add_to_cart"])
    product = _pick_products(rng, p, b, ew, BROWSE_TASTE)
    anon = b["ptype"][ew] == 2  # visitors are only known by their cookie
    cookie = b["has_cookie"][ew] & (k != 2)
    cols = {
        "event_no": chunk * ID_STRIDE + np.arange(n, dtype=np.int64),
        "persona_idx": pa.array(b["idx"][ew], mask=anon),
        "cookie": cookie,
        "event_s": ts,
        "event_type": etype,
        "product": pa.array(product.astype(np.int32), mask=~with_product),
        "session_no": pa.array(chunk * ID_STRIDE + ev_sess.astype(np.int64), mask=(k == 2)),
        "duration_s": pa.array(duration, mask=(k == 2)),
    }
    cols["bad"] = _bad(p, chunk, 3, n, 4)
    # Campaigns target segments (drawn last, so the events above never change with it):
    # churned personas get the win-back, new ones the welcome series, B2B and frequent
    # buyers the upsell, everyone else (and a share of each) the newsletter.
    sess_day = start_s // DAY
    churned = b["churn"][who] & (sess_day > b["churn_day"][who]) & (b["ptype"][who] == 0)
    new = (sess_day - b["created_day"][who]) < 90
    upsell = b["b2b"][who] | (b["rate"][who] > 2.0 * p.orders_per_year)
    targeted = rng.random(ns) < 0.7
    campaign = np.where(targeted & churned, 1, np.where(targeted & new, 0, np.where(targeted & upsell, 2, 3))).astype(
        np.int8
    )
    cols["campaign"] = pa.array(campaign[ev_sess], mask=(k != 2))
    return _batches(cols)


def _in_decline(b: dict[str, np.ndarray], who: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each persona was declining on ``day``: from DECLINE_BEFORE days before its churn
    on, until a reactivation."""
    return (
        b["churn"][who]
        & (day >= b["churn_day"][who] - DECLINE_BEFORE)
        & (~b["react"][who] | (day < b["react_day"][who]))
    )


def _tickets(p: SimParams, chunk: int, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The support tickets of one chunk's customers (see :func:`ticket_batches`)."""
    rng = _rng(p, chunk, STREAM_TICKETS)
    cust = np.flatnonzero(b["ptype"] == 0)
    end = p.end_day + 1
    a = b["active_from"][cust]
    base_years = (end - a).clip(min=1) / 365.25
    d_lo = np.maximum(a, b["churn_day"][cust] - DECLINE_BEFORE)
    d_hi = np.minimum(end, b["churn_day"][cust] + DECLINE_AFTER)
    d_len = np.where(b["churn"][cust], (d_hi - d_lo).clip(min=0), 0)
    n_base = rng.poisson(TICKETS_PER_YEAR * base_years)
    n_decl = rng.poisson(DECLINE_TICKETS_PER_YEAR * d_len / 365.25)
    who = np.concatenate([np.repeat(cust, n_base), np.repeat(cust, n_decl)])
    lo = np.concatenate([np.repeat(a, n_base), np.repeat(d_lo, n_decl)])
    span = np.concatenate([np.repeat(end - a, n_base), np.repeat(d_len, n_decl)]).clip(min=1)
    n = len(who)
    day = lo + (rng.random(n) * span).astype(np.int64)
    opened_s = day * DAY + rng.integers(6 * 3600, 22 * 3600, n)
    priority = _choice(rng, (0.3, 0.45, 0.2, 0.05), n).astype(np.int8)
    # Hours to close: lognormal, median ~20 h, urgent ones faster.
    hours = np.exp(rng.normal(3.0, 1.0, n)) / (1.0 + priority)
    closed_s = opened_s + (hours * 3600).astype(np.int64) + 60
    still_open = closed_s >= end * DAY
    return {
        "who": who,
        "opened_s": opened_s,
        "closed_s": closed_s,
        "open": still_open,
        "channel": _choice(rng, (0.45, 0.2, 0.3, 0.05), n).astype(np.int8),
        "priority": priority,
        "category": _choice(rng, (0.25, 0.2, 0.25, 0.1, 0.15, 0.05), n).astype(np.int8),
        "declining": _in_decline(b, who, day),
    }


def ticket_batches(p: SimParams, chunk: int) -> list[pa.RecordBatch]:
    """Arrow batches of the support tickets of one chunk's customers.

    Every customer opens tickets at :data:`TICKETS_PER_YEAR`, and a churning one at
    :data:`DECLINE_TICKETS_PER_YEAR` more from :data:`DECLINE_BEFORE` days before it stops
    buying to :data:`DECLINE_AFTER` days after. A ticket still open at the end date has no
    ``closed_at``.
    """
    b = persona_block(p, chunk)
    t = _tickets(p, chunk, b)
    n = len(t["who"])
    if n == 0:
        return []
    cols = {
        "ticket_no": chunk * ID_STRIDE + np.arange(n, dtype=np.int64),
        "persona_idx": b["idx"][t["who"]],
        "opened_s": t["opened_s"],
        "closed_s": pa.array(t["closed_s"], mask=t["open"]),
        "channel": t["channel"],
        "priority": t["priority"],
        "category": t["category"],
        "is_open": t["open"],
        "bad": _bad(p, chunk, 4, n, 2),
    }
    return _batches(cols)


def survey_batches(p: SimParams, chunk: int) -> list[pa.RecordBatch]:
    """Arrow batches of the CSAT and NPS answers of one chunk's customers.

    Half the closed tickets get a CSAT answer a day later; every customer answers the
    NPS survey about :data:`NPS_PER_YEAR` times a year. Declining customers answer
    lower (:data:`CSAT_WEIGHTS_DECLINING`, NPS centred on 5 instead of 8.5).
    """
    b = persona_block(p, chunk)
    t = _tickets(p, chunk, b)
    rng = _rng(p, chunk, STREAM_SURVEYS)
    end = p.end_day + 1
    answered = ~t["open"] & (rng.random(len(t["who"])) < CSAT_AFTER_TICKET)
    c_who = t["who"][answered]
    c_s = np.minimum(t["closed_s"][answered] + rng.integers(3600, DAY, len(c_who)), end * DAY - 1)
    c_decl = t["declining"][answered]
    good = _choice(rng, CSAT_WEIGHTS, len(c_who)) + 1
    bad = _choice(rng, CSAT_WEIGHTS_DECLINING, len(c_who)) + 1
    c_score = np.where(c_decl, bad, good)
    cust = np.flatnonzero(b["ptype"] == 0)
    a = b["active_from"][cust]
    n_nps = rng.poisson(NPS_PER_YEAR * (end - a).clip(min=1) / 365.25)
    n_who = np.repeat(cust, n_nps)
    n_day = np.repeat(a, n_nps) + (rng.random(len(n_who)) * np.repeat(end - a, n_nps)).astype(np.int64)
    n_s = n_day * DAY + rng.integers(0, DAY, len(n_who))
    n_decl = _in_decline(b, n_who, n_day)
    centre = np.where(n_decl, 5.0, 8.5)
    n_score = np.clip(np.round(rng.normal(centre, 1.6)), 0, 10).astype(np.int64)
    who = np.concatenate([c_who, n_who])
    if len(who) == 0:
        return []
    cols = {
        "response_no": chunk * ID_STRIDE + np.arange(len(who), dtype=np.int64),
        "persona_idx": b["idx"][who],
        "answered_s": np.concatenate([c_s, n_s]),
        "kind": np.concatenate([np.zeros(len(c_who), np.int8), np.ones(len(n_who), np.int8)]),
        "score": np.concatenate([c_score, n_score]).astype(np.int32),
        "bad": _bad(p, chunk, 5, len(who), 2),
    }
    return _batches(cols)


def _batches(cols: dict[str, Any]) -> list[pa.RecordBatch]:
    """Slice columns into Arrow batches of at most BATCH_ROWS rows."""
    table = pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in cols.items()})
    return table.to_batches(max_chunksize=BATCH_ROWS)


def product_catalogue(seed: int, n: int) -> dict[str, np.ndarray]:
    """The product catalogue (small: config.generator.products rows) with popularity weights."""
    rng = np.random.default_rng([seed, 9_999_999])
    cat = rng.integers(0, len(ref.CATEGORIES), n)
    median = np.array([c[1] for c in ref.CATEGORIES])[cat]
    price = np.round(median * np.exp(rng.normal(0.0, 0.6, n)), 2) + 0.99
    brand = np.array([rng.integers(0, len(ref.CATEGORIES[c][2])) for c in cat])
    adjective = rng.integers(0, len(ref.ADJECTIVES), n)
    # Zipf-like popularity over a random permutation: a few best sellers, a long tail.
    rank = rng.permutation(n) + 1
    weight = 1.0 / rank**1.1
    return {"category": cat, "price": price, "brand": brand, "adjective": adjective, "weight": weight}
