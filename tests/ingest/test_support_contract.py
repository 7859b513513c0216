"""The optional support_tickets and survey_responses tables: checks across columns."""

from __future__ import annotations

from segengine.contract import contract, optional_tables
from segengine.ingest.validate import REASON, ROW, validate


def _raw(spark, table, rows):
    tc = contract(table)
    cols = [c.name for c in tc.columns]
    data = [(*r, None, "f.csv", i + 1) for i, r in enumerate(rows)]
    schema = ", ".join(f"`{c}` string" for c in cols) + ", _corrupt_record string, _source_file string, _row long"
    return spark.createDataFrame(data, schema), tc


def test_support_and_survey_tables_are_optional_and_events_take_a_campaign_id():
    assert set(optional_tables()) == {"events", "support_tickets", "survey_responses"}
    assert not contract("events").column("campaign_id").required


def test_ticket_closed_before_it_opened_and_survey_scores_outside_their_kind_are_rejected(spark):
    tickets, tc = _raw(
        spark,
        "support_tickets",
        [
            ("T1", "P1", "2025-06-01 10:00:00", "2025-06-02 10:00:00", "email", "high", "billing", "closed"),
            ("T2", "P1", "2025-06-01 10:00:00", None, "chat", "low", "product", "open"),
            ("T3", "P1", "2025-06-01 10:00:00", "2025-05-31 10:00:00", "fax", "low", "product", "closed"),
        ],
    )
    got = {r[ROW]: r[REASON] for r in validate(tickets, tc).select(ROW, REASON).collect()}
    assert got == {
        1: None,
        2: None,
        3: "channel is not one of email, phone, chat, web; closed_at is before opened_at",
    }
    answers, tc = _raw(
        spark,
        "survey_responses",
        [
            ("R1", "P1", "2025-06-01 10:00:00", "csat", "5"),
            ("R2", "P1", "2025-06-01 10:00:00", "csat", "7"),
            ("R3", "P1", "2025-06-01 10:00:00", "nps", "0"),
            ("R4", "P1", "2025-06-01 10:00:00", "nps", "11"),
            ("R5", "P1", "2025-06-01 10:00:00", "ces", "3"),
            ("R6", "P1", "2025-06-01 10:00:00", "csat", "0"),
        ],
    )
    got = {r[ROW]: r[REASON] for r in validate(answers, tc).select(ROW, REASON).collect()}
    assert got == {
        1: None,
        2: "score is outside 1-5 for kind csat",
        3: None,
        4: "score is outside 0-10 for kind nps",
        5: "kind is not one of csat, nps",
        6: "score is outside 1-5 for kind csat",
    }
