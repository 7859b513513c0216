import datetime as dt

from segengine.features.windows import add_months, cycle_start, last_days_start


def test_cycle_start_is_six_months_back_inclusive():
    assert cycle_start(dt.date(2025, 6, 30), 6) == dt.date(2024, 12, 30)


def test_add_months_clamps_to_month_end():
    assert add_months(dt.date(2025, 8, 31), -6) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2024, 8, 31), -6) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2025, 1, 15), -13) == dt.date(2023, 12, 15)


def test_last_30_days_window_includes_snapshot_day():
    assert last_days_start(dt.date(2025, 6, 30), 30) == dt.date(2025, 6, 1)
