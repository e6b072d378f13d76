"""Recurring visit plans: a need's frequency as an RRULE, and the days it falls on minus exceptions."""

from datetime import date

import pytest

from servicehub.scheduling.recurrence import horizon, need_rrule, occurrences, spread_days

DECEMBER = (date(2026, 12, 1), date(2026, 12, 31))


@pytest.mark.parametrize(("count", "preferred", "expected"), [
    (1, [], [1]), (2, [], [1, 5]), (3, [], [1, 3, 5]), (5, [], [1, 2, 3, 4, 5]),
    (2, [2], [2, 5]),  # the preferred day kept, the other far from it
    (2, [1, 2, 3, 4, 5], [1, 5]),  # more preferred days than visits: spread among them
    (7, [], [1, 2, 3, 4, 5, 6, 7]),
])
def test_weekly_days_keep_the_preferred_ones_and_spread_the_rest(count, preferred, expected):
    assert spread_days(count, preferred) == expected


def test_three_a_week_falls_on_monday_wednesday_friday():
    rule = need_rrule(3, "week")
    assert rule == "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    days = occurrences(rule, date(2026, 11, 1), *DECEMBER)
    assert len(days) == 13 and {d.isoweekday() for d in days} == {1, 3, 5}


@pytest.mark.parametrize("quantity", [1, 2, 3, 4, 8, 20])
def test_a_monthly_need_gives_exactly_its_count_each_month(quantity):
    days = occurrences(need_rrule(quantity, "month", [2]), date(2026, 1, 1), *DECEMBER)
    assert len(days) == quantity


def test_occurrences_respect_the_start_the_end_and_exception_ranges():
    rule = need_rrule(1, "week", [1])
    days = occurrences(rule, date(2026, 12, 8), *DECEMBER, until=date(2026, 12, 28),
                       exceptions=[(date(2026, 12, 14), date(2026, 12, 20))])
    assert days == [date(2026, 12, 28)] or days == [date(2026, 12, 21), date(2026, 12, 28)]
    assert date(2026, 12, 14) not in days and all(date(2026, 12, 8) <= d <= date(2026, 12, 28) for d in days)
    assert occurrences(rule, date(2027, 1, 1), *DECEMBER) == []


def test_the_rolling_horizon_counts_today():
    assert horizon(date(2026, 11, 30), 14) == (date(2026, 11, 30), date(2026, 12, 13))
