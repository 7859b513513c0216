"""The compiled SQL agrees with an independent pandas evaluation on a generated feature table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from segengine.rules import TableViews, compile_segment

SNAP = dt.date(2025, 6, 30)
N = 3000
VIEWS = TableViews(
    features="t_eq_features",
    order_lines="t_eq_order_lines",
    events="t_eq_events",
    recommendations="t_eq_recs",
    products="t_eq_products",
)


@pytest.fixture(scope="module")
def generated(spark):
    rng = np.random.default_rng(7)
    ids = [f"p{i:05d}" for i in range(N)]

    def with_nulls(values, share=0.1):
        values = pd.Series(values, dtype="object")
        values[rng.random(N) < share] = None
        return values

    feats = pd.DataFrame(
        {
            "persona_id": ids,
            "snapshot_date": [SNAP] * N,
            "persona_type": rng.choice(["customer", "prospect", "visitor"], N, p=[0.6, 0.3, 0.1]),
            "fit_score": with_nulls(rng.integers(0, 101, N)),
            "monetary": with_nulls(np.round(rng.gamma(2.0, 50.0, N), 2)),
            "plan": with_nulls(rng.choice(["free", "basic", "pro", "enterprise"], N)),
            "consent_email": with_nulls(rng.random(N) < 0.5),
            "last_purchase_date": with_nulls([SNAP - dt.timedelta(days=int(d)) for d in rng.integers(0, 400, N)]),
            "favourite_category": with_nulls(rng.choice(["Shoes", "Bags", "Hats"], N)),
            "email": with_nulls([f"u{i}@{d}" for i, d in enumerate(rng.choice(["x.com", "y.org"], N))]),
        }
    )
    ddl = (
        "persona_id string, snapshot_date date, persona_type string, fit_score int, monetary double, plan string, "
        "consent_email boolean, last_purchase_date date, favourite_category string, email string"
    )
    spark.createDataFrame(feats.astype(object).where(feats.notna(), None).values.tolist(), ddl).createOrReplaceTempView(
        VIEWS.features
    )
    n_lines = 6000
    lines = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n_lines)],
            "persona_id": rng.choice(ids, n_lines),
            "order_ts": [
                dt.datetime.combine(SNAP, dt.time(12)) - dt.timedelta(days=int(d))
                for d in rng.integers(-20, 200, n_lines)
            ],
            "product_id": rng.choice(["P1", "P2", "P3"], n_lines),
            "quantity": rng.choice([1, 2, -1], n_lines, p=[0.6, 0.3, 0.1]),
            "unit_price": rng.choice([10.0, 25.0, 60.0], n_lines),
        }
    )
    rows = [
        (r.order_id, r.persona_id, r.order_ts.to_pydatetime(), r.product_id, int(r.quantity), float(r.unit_price))
        for r in lines.itertuples()
    ]
    spark.createDataFrame(
        rows,
        "order_id string, persona_id string, order_ts timestamp, product_id string, quantity int, unit_price double",
    ).createOrReplaceTempView(VIEWS.order_lines)
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "category": ["Shoes", "Bags", "Shoes"]})
    spark.createDataFrame(products.values.tolist(), "product_id string, category string").createOrReplaceTempView(
        VIEWS.products
    )
    return feats, lines, products


def _cmp(series: pd.Series, fn) -> pd.Series:
    """Two-valued comparison: null attribute -> False."""
    return series.notna() & series.map(lambda v: v is not None and bool(fn(v)))


def pandas_purchased(lines, products, within_days, category, min_count):
    df = lines.merge(products, on="product_id")
    day = pd.to_datetime(df["order_ts"]).dt.date
    keep = (day <= SNAP) & (day >= SNAP - dt.timedelta(days=within_days)) & (df["category"] == category)
    df = df[keep & (df["quantity"] > 0)]
    counts = df.groupby("persona_id")["order_id"].nunique()
    return set(counts[counts >= min_count].index)


CASES = {
    "numeric_and_string": (
        {
            "persona_types": ["customer", "prospect"],
            "where": {
                "all": [
                    {"attr": "fit_score", "op": ">=", "value": 40},
                    {
                        "any": [
                            {"attr": "plan", "op": "in", "value": ["free", "basic"]},
                            {"attr": "monetary", "op": "between", "value": [50, 150]},
                        ]
                    },
                    {"not": {"attr": "email", "op": "ends_with", "value": ".org"}},
                ]
            },
        },
        lambda f, lines, prods: f[
            f.persona_type.isin(["customer", "prospect"])
            & _cmp(f.fit_score, lambda v: v >= 40)
            & (_cmp(f.plan, lambda v: v in ("free", "basic")) | _cmp(f.monetary, lambda v: 50 <= v <= 150))
            & ~_cmp(f.email, lambda v: v.endswith(".org"))
        ],
    ),
    "dates_booleans_nulls": (
        {
            "where": {
                "any": [
                    {
                        "all": [
                            {"attr": "last_purchase_date", "op": "within_last_days", "value": 30},
                            {"attr": "consent_email", "op": "=", "value": True},
                        ]
                    },
                    {"attr": "favourite_category", "op": "is_null"},
                    {"attr": "plan", "op": "!=", "value": "pro"},
                ]
            }
        },
        lambda f, lines, prods: f[
            (
                _cmp(f.last_purchase_date, lambda d: SNAP - dt.timedelta(days=30) <= d <= SNAP)
                & _cmp(f.consent_email, lambda v: v is True)
            )
            | f.favourite_category.isna()
            | _cmp(f.plan, lambda v: v != "pro")
        ],
    ),
    "purchased_and_attribute": (
        {
            "where": {
                "all": [
                    {"purchased": {"category": "Shoes"}, "within_days": 90, "min_count": 2},
                    {"attr": "fit_score", "op": "not_between", "value": [20, 60]},
                ]
            }
        },
        lambda f, lines, prods: f[
            f.persona_id.isin(pandas_purchased(lines, prods, 90, "Shoes", 2))
            & _cmp(f.fit_score, lambda v: not 20 <= v <= 60)
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_sql_matches_pandas_on_generated_features(spark, generated, case):
    doc, expected_fn = CASES[case]
    feats, lines, products = generated
    expected = set(expected_fn(feats, lines, products).persona_id)
    sql = compile_segment({"name": case, **doc}, SNAP, views=VIEWS).sql
    got = {r["persona_id"] for r in spark.sql(sql).collect()}
    assert 50 < len(expected) < N - 50  # the rule is selective, so agreement means something
    assert got == expected


def test_top_n_matches_pandas_sort_with_persona_id_tie_break(spark, generated):
    feats = generated[0]
    doc = {"name": "top", "persona_types": ["customer"], "top": {"n": 25, "by": "fit_score", "order": "desc"}}
    sql = compile_segment(doc, SNAP, views=VIEWS).sql
    got = [r["persona_id"] for r in spark.sql(sql).collect()]
    cust = feats[(feats.persona_type == "customer") & feats.fit_score.notna()].copy()
    cust["fit"] = cust.fit_score.astype(int)
    expected = list(cust.sort_values(["fit", "persona_id"], ascending=[False, True]).persona_id[:25])
    assert got == expected
