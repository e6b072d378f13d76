"""The pure registry rules."""

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicehub.registry import rules

BOX = rules.BoundingBox(32.05, 119.40, 32.35, 119.95)


def test_bounding_box_parse_and_contains():
    box = rules.BoundingBox.parse("32.05,119.40,32.35,119.95")
    assert box == BOX and box.contains(32.2, 119.6) and not box.contains(31.2, 121.5)
    with pytest.raises(ValueError):
        rules.BoundingBox.parse("32.35,119.40,32.05,119.95")


def test_coordinates():
    assert rules.coordinates_problems(32.2, 119.6, BOX) == {}
    assert "outside the district" in rules.coordinates_problems(31.23, 121.47, BOX)["lat"][0]
    assert "start_lat" in rules.coordinates_problems(None, 119.6, BOX, prefix="start_")


@pytest.mark.parametrize(("value", "mobile_only", "ok"), [
    ("13812345678", True, True), ("0511-88886666", True, False), ("0511-88886666", False, True),
    ("12345", False, False), ("", True, True),
])
def test_phones(value, mobile_only, ok):
    assert (rules.phone_problems("phone", value, mobile_only=mobile_only) == {}) is ok


def test_id_number_agrees_with_gender_and_birth_date():
    assert rules.id_number_problems("11010519491231002X", "female", date(1949, 12, 31)) == {}
    assert "gender" in rules.id_number_problems("11010519491231002X", "male")
    assert "birth_date" in rules.id_number_problems("11010519491231002X", None, date(1950, 1, 1))
    assert "id_number" in rules.id_number_problems("110105194912310021")


def test_windows():
    assert rules.window_problems(time(10, 30), time(12, 30), 15) == {}
    assert "window" in rules.window_problems(time(12, 30), time(10, 30), 15)
    assert "duration_min" in rules.window_problems(time(10, 30), time(11, 0), 45)


def test_periods():
    assert rules.period_problems(date(2026, 1, 1), None) == {}
    assert "end_date" in rules.period_problems(date(2026, 2, 1), date(2026, 1, 1))


def test_availability():
    assert rules.availability_problems({"mon": [["08:00", "12:00"], ["13:30", "17:30"]]}) == {}
    assert rules.availability_problems({"funday": [["08:00", "12:00"]]})
    assert rules.availability_problems({"mon": [["12:00", "08:00"]]})
    assert rules.availability_problems({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]})
    assert rules.availability_problems({"mon": [["8am", "noon"]]})


def test_funding_adds_up_and_lines_fit_the_budget():
    fundings = [{"amount_fen": 700}, {"amount_fen": 300}]
    assert rules.funding_problems(1000, fundings, [{"unit_price_fen": 10, "contracted_quantity": 100}]) == {}
    assert "fundings" in rules.funding_problems(1200, fundings, [])
    assert "lines" in rules.funding_problems(1000, fundings, [{"unit_price_fen": 11, "contracted_quantity": 100}])


def test_need_frequency():
    assert rules.need_frequency_problems(2, "week", [1, 4]) == {}
    assert "quantity" in rules.need_frequency_problems(3, "week", [1, 4])
    assert rules.need_frequency_problems(8, "month", [1]) == {}
    assert "preferred_days" in rules.need_frequency_problems(1, "week", [1, 1])


# --- properties of the time-window and period rules --------------------------------------------------------

times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(times, times, st.integers(min_value=1, max_value=24 * 60))
def test_a_window_is_refused_exactly_when_it_is_empty_or_too_short(start, end, duration):
    problems = rules.window_problems(start, end, duration)
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if start >= end:
        assert set(problems) == {"window"}
    elif duration > minutes:
        assert set(problems) == {"duration_min"} and str(duration) in problems["duration_min"][0]
    else:
        assert problems == {}
    if start < end:
        assert rules.window_problems(start, end, duration, must_fit=False) == {}


@given(st.dates(), st.one_of(st.none(), st.dates()))
def test_a_period_is_refused_exactly_when_it_ends_before_it_starts(start, end):
    assert bool(rules.period_problems(start, end)) == (end is not None and end < start)


@given(st.dictionaries(st.sampled_from(["mon", "tue", "sun", "xyz"]),
                       st.lists(st.tuples(times, times).map(lambda p: [p[0].strftime("%H:%M"), p[1].strftime("%H:%M")]),
                                max_size=4)))
def test_availability_is_refused_exactly_when_a_day_is_unknown_or_its_intervals_do_not_follow_each_other(week):
    def fine(intervals):
        ends = [None, *(i[1] for i in intervals)]
        return all(i[0] < i[1] and (prev is None or i[0] >= prev) for i, prev in zip(intervals, ends, strict=False))

    expected_ok = all(day != "xyz" and fine(intervals) for day, intervals in week.items())
    assert (rules.availability_problems(week) == {}) == expected_ok
