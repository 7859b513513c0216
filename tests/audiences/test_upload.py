"""Uploads: id column detection, normalisation, malformed and unmatched rows."""

from __future__ import annotations

import csv

import pytest

from segengine.audiences import members, upload_audience
from segengine.errors import AudienceError

from .conftest import D1, ids


def _csv(path, header, values):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for v in values:
            w.writerow(v if isinstance(v, list) else [v])
    return path


def test_email_upload_matches_case_and_whitespace_insensitively(spark, personas, config, tmp_path):
    f = _csv(
        tmp_path / "list.csv",
        ["E-mail", "note"],
        [
            [" ANN@example.com ", "a"],
            ["bob@example.COM", "b"],
            ["nobody@example.com", "c"],
            ["not-an-email", "d"],
            ["", "e"],
            ["ann@example.com", "f"],
        ],
    )
    out = upload_audience(spark, personas, config, f, "list", "ann", snapshot_date=D1)
    assert (out["column"], out["id_type"]) == ("E-mail", "email")
    assert (out["rows"], out["members"], out["malformed"], out["unmatched"], out["duplicates"]) == (6, 2, 2, 1, 1)
    assert ids(members(spark, personas, "list")) == ["p1", "p2"]
    with open(out["rejects_file"]) as fh:
        rejects = list(csv.DictReader(fh))
    assert [(r["line"], r["value"], r["reason"]) for r in rejects] == [
        ("4", "nobody@example.com", "no persona with this email"),
        ("5", "not-an-email", "not an email address"),
        ("6", "", "empty value"),
    ]


def test_phone_column_detected_by_content_and_matched_on_digits(spark, personas, config, tmp_path):
    f = _csv(tmp_path / "phones.csv", ["contact"], ["+44 (20) 7946-0001", "555.010.9999", "12"])
    out = upload_audience(spark, personas, config, f, "phones", "ann", snapshot_date=D1)
    assert out["id_type"] == "phone"
    assert ids(members(spark, personas, "phones")) == ["p1", "p4"]
    assert (out["malformed"], out["unmatched"]) == (1, 0)


def test_persona_ids_recognised_by_matching_personas(spark, personas, config, tmp_path):
    f = _csv(tmp_path / "ids.csv", ["whatever"], ["p3", " p5 ", "p99"])
    out = upload_audience(spark, personas, config, f, "ids", "ann", snapshot_date=D1)
    assert (out["id_type"], out["members"], out["unmatched"]) == ("persona_id", 2, 1)


def test_excel_upload_of_cookie_ids(spark, personas, config, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Cookie"])
    for v in ["c-1", "C-6 ", "c-6"]:
        ws.append([v])
    wb.save(tmp_path / "cookies.xlsx")
    out = upload_audience(spark, personas, config, tmp_path / "cookies.xlsx", "cookies", "ann", snapshot_date=D1)
    # cookie ids are trimmed but case-sensitive: "C-6" is not "c-6".
    assert (out["id_type"], out["members"], out["unmatched"]) == ("cookie_id", 2, 1)
    assert ids(members(spark, personas, "cookies")) == ["p1", "p6"]


def test_file_without_an_id_column_names_file_and_headers(spark, personas, config, tmp_path):
    f = _csv(tmp_path / "junk.csv", ["colour", "size"], [["red", "L"], ["blue", "M"]])
    with pytest.raises(AudienceError, match=r"junk.csv: no recognisable id column; headers are \['colour', 'size'\]"):
        upload_audience(spark, personas, config, f, "junk", "ann")


def test_an_upload_where_no_row_matches_is_an_error_and_creates_nothing(spark, personas, config, tmp_path):
    f = _csv(tmp_path / "strangers.csv", ["email"], ["nobody@example.com", "noone@example.org", "not-an-email"])
    with pytest.raises(AudienceError) as err:
        upload_audience(spark, personas, config, f, "strangers", "ann")
    assert str(err.value) == (
        f"{f}: none of the 3 rows matches a persona by email (column 'email': 2 unmatched, 1 malformed); "
        f"rejected rows in {tmp_path / 'strangers.rejected.csv'}; no audience created"
    )
    assert not personas.exists("audiences") and not personas.exists("audience_members")
