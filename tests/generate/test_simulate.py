"""Statistics and reproducibility of the simulation itself (numpy only, no Spark)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from segengine.generate import sim_params
from segengine.generate.simulate import (
    event_batches,
    order_batches,
    persona_batches,
    persona_block,
    survey_batches,
    ticket_batches,
)

PERSONAS = 6000


@pytest.fixture(scope="module")
def params(base_config):
    return sim_params(base_config, personas=PERSONAS, seed=11, malformed_share=0.0)


@pytest.fixture(scope="module")
def orders(params):
    return pa.Table.from_batches(order_batches(params, 0)).to_pandas()


def test_persona_type_shares_follow_config(params):
    ptype = persona_block(params, 0)["ptype"]
    shares = np.bincount(ptype, minlength=3) / len(ptype)
    assert shares == pytest.approx([0.55, 0.25, 0.20], abs=0.02)


def test_every_customer_buys_and_no_one_else_does(params, orders):
    block = persona_block(params, 0)
    buyers = set(orders.loc[orders.quantity > 0, "persona_idx"])
    assert buyers == set(block["idx"][block["ptype"] == 0])


def test_about_twenty_order_lines_per_persona(orders):
    assert 14 <= len(orders) / PERSONAS <= 28


def test_refunds_are_about_three_percent_of_lines(orders):
    assert (orders.quantity < 0).mean() == pytest.approx(0.03, abs=0.005)


def test_each_refund_returns_a_product_the_persona_bought_before(orders):
    bought = orders[orders.quantity > 0].groupby(["persona_idx", "product"]).order_s.min().rename("first_buy")
    refunds = orders[orders.quantity < 0].join(bought, on=["persona_idx", "product"], how="left")
    assert refunds.first_buy.notna().all()
    assert (refunds.order_s >= refunds.first_buy).all()


def test_december_is_the_peak_month(params, orders):
    ts = pd_ts(orders.order_s)
    per_day = orders.groupby([ts.dt.year, ts.dt.month]).size() / orders.groupby([ts.dt.year, ts.dt.month]).apply(
        lambda g: pd_ts(g.order_s).dt.days_in_month.iloc[0]
    )
    month = per_day.index.get_level_values(1)
    december = per_day[month == 12].mean()
    others = per_day[(month != 12) & (month != 11)].mean()
    assert december > 1.5 * others
    assert per_day.groupby(level=1).mean().idxmax() == 12


def test_spend_is_heavy_tailed(orders):
    spend = (orders.quantity * orders.unit_price).groupby(orders.persona_idx).sum()
    top_fifth = spend.sort_values(ascending=False).iloc[: len(spend) // 5].sum()
    assert top_fifth / spend.sum() > 0.45  # the top 20% of customers bring most of the revenue


def test_purchases_follow_personal_category_and_brand_taste(params, orders):
    block = persona_block(params, 0)
    bought = orders[orders.quantity > 0]
    pos = (bought.persona_idx - block["idx"][0]).to_numpy()
    cat = np.asarray(params.product_category)[bought["product"].to_numpy()]
    brand = np.asarray(params.product_brand)[bought["product"].to_numpy()]
    fav, second = block["fav_cat"][pos], block["second_cat"][pos]
    # Most lines come from the persona's two favourite categories (12 categories in all) ...
    assert (cat == fav).mean() > 0.6
    assert ((cat == fav) | (cat == second)).mean() > 0.85
    # ... and within the favourite category mostly from the persona's brand there.
    in_fav = cat == fav
    assert (brand[in_fav] == block["fav_brand"][pos][in_fav]).mean() > 0.6
    # Staples make customers buy the same products again.
    repeats = bought.groupby(["persona_idx", "product"]).size()
    assert (repeats > 1).mean() > 0.2


def test_b2b_attributes_on_about_a_quarter_of_known_personas(params):
    block = persona_block(params, 0)
    known = block["ptype"] < 2
    assert block["b2b"][known].mean() == pytest.approx(0.25, abs=0.02)
    assert not block["b2b"][~known].any()


def test_events_cover_web_app_and_email_with_anonymous_visitors(params):
    events = pa.Table.from_batches(event_batches(params, 0)).to_pandas()
    assert 9 <= len(events) / PERSONAS <= 15
    assert set(events.event_type) == set(range(10))  # every contract event type appears
    block = persona_block(params, 0)
    visitor_ids = set(block["idx"][block["ptype"] == 2])
    assert events.persona_idx.isna().any()
    assert not set(events.persona_idx.dropna().astype(int)) & visitor_ids


def test_same_seed_gives_identical_rows_and_another_seed_does_not(params):
    again = pa.Table.from_batches(order_batches(params, 0))
    assert pa.Table.from_batches(order_batches(params, 0)).equals(again)
    other = dataclasses.replace(params, seed=12)
    assert not pa.Table.from_batches(order_batches(other, 0)).equals(again)


def test_a_chunk_does_not_change_when_more_personas_are_generated(params):
    small = dataclasses.replace(params, personas=200, chunk_personas=100)
    large = dataclasses.replace(params, personas=900, chunk_personas=100)
    assert pa.Table.from_batches(order_batches(small, 1)).equals(pa.Table.from_batches(order_batches(large, 1)))
    assert persona_batches(small, 0)[0].equals(persona_batches(large, 0)[0])


def test_malformed_rows_follow_the_share(params):
    damaged = dataclasses.replace(params, malformed_share=0.05)
    bad = pa.Table.from_batches(order_batches(damaged, 0)).column("bad").to_numpy()
    assert (bad > 0).mean() == pytest.approx(0.05, abs=0.006)
    assert set(np.unique(bad)) == {0, 1, 2, 3, 4}


def pd_ts(seconds):
    import pandas as pd

    return pd.to_datetime(seconds, unit="s")


def test_example_segments_name_products_of_the_sample_catalogue():
    """The example segments' products exist in the data ``make demo`` generates.

    They named ``P123``, which the generator never makes (its ids are ``SKU00000`` …),
    so "Sales opportunity" and "Interested in product X" were always empty.
    """
    import re

    from segengine.config import conf_dir, load_config
    from segengine.generate import reference as ref
    from segengine.generate.simulate import product_catalogue

    gen = load_config("local", environ={}).generator
    cat = product_catalogue(gen.seed, gen.products)
    category = {f"SKU{i:05d}": ref.CATEGORIES[int(c)][0] for i, c in enumerate(cat["category"])}
    named = [
        (path.name, product)
        for path in (conf_dir() / "segments").iterdir()
        for product in re.findall(r"product: ([A-Za-z0-9_-]+)", path.read_text(encoding="utf-8"))
    ]
    assert {f for f, _ in named} == {"interested_in_product_x.yaml", "sales_opportunity.yaml"}
    assert [(f, p) for f, p in named if p not in category] == []
    # "already buy shoes, are recommended <product>": the product is a pair of shoes.
    assert {category[p] for f, p in named if f == "sales_opportunity.yaml"} == {"Shoes"}


def test_declining_customers_open_more_tickets_and_answer_lower(params):
    """Customers who stopped buying in the last 120 days (declining) opened about seven times
    as many tickets in the last 90 days as customers still buying, and answer NPS lower."""
    block = persona_block(params, 0)
    tickets = pa.Table.from_batches(ticket_batches(params, 0)).to_pandas()
    answers = pa.Table.from_batches(survey_batches(params, 0)).to_pandas()
    end = params.end_day
    customer = block["ptype"] == 0
    declining = customer & block["churn"] & (block["churn_day"] > end - 120) & (block["churn_day"] <= end)
    buying = customer & (~block["churn"] | (block["churn_day"] > end))
    recent = tickets[tickets.opened_s // 86400 > end - 90]
    per_persona = np.bincount(recent.persona_idx, minlength=len(block["idx"]))
    assert per_persona[declining].mean() > 4 * per_persona[buying].mean()
    nps = answers[(answers.kind == 1) & (answers.answered_s // 86400 > end - 90)]
    score = nps.groupby("persona_idx").score.mean()
    assert (
        score[score.index.isin(block["idx"][declining])].mean()
        < score[score.index.isin(block["idx"][buying])].mean() - 2
    )


def test_email_events_carry_a_campaign_aimed_at_a_segment(params):
    """Churned customers mostly get the win-back campaign (code 1), others never do."""
    block = persona_block(params, 0)
    events = pa.Table.from_batches(event_batches(params, 0)).to_pandas()
    mail = events[events.campaign.notna()]
    from segengine.generate.reference import EVENT_CODE

    assert set(mail.event_type) == {EVENT_CODE[k] for k in ("email_sent", "email_open", "email_click")}
    day = mail.event_s // 86400
    idx = mail.persona_idx.astype(int).to_numpy()
    churned = block["churn"][idx] & (day.to_numpy() > block["churn_day"][idx]) & (block["ptype"][idx] == 0)
    winback = mail.campaign.to_numpy() == 1
    assert winback[churned].mean() > 0.6 and winback[~churned].mean() == 0
