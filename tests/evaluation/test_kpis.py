"""The KPI arithmetic on plain facts: each figure on a small case where it alone decides, grouping by every
dimension and period, and sums that always add up to the total (hypothesis)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicehub.evaluation import kpis, score
from servicehub.evaluation.kpis import DELIVERED, MISSED, Grouping, LineFact, NeedFact, Period, VisitFact

DAY = date(2026, 10, 14)
OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def visit(visit_id=1, outcome=DELIVERED, day=DAY, start=(9, 0), minutes=60, late_by=0, **overrides) -> VisitFact:
    expected = at(day, *start)
    started = expected + timedelta(minutes=late_by)
    values = dict(visit_id=visit_id, organisation=1, contract=10, line=100, need=1000 + visit_id, service_type="LC02",
                  category="LC", town=5, recipient=visit_id, recipient_class="dibao", worker=7, service_date=day,
                  outcome=outcome, expected_start=expected, units=1.0, unit_price_fen=6000, certified=True)
    if outcome == DELIVERED:
        values.update(started_at=started, ended_at=started + timedelta(minutes=minutes),
                      received_at=started + timedelta(minutes=minutes, seconds=5), satisfaction=5)
    values.update(overrides)
    return VisitFact(**values)


def line(**overrides) -> LineFact:
    values = dict(line_id=100, contract=10, organisation=1, service_type="LC02", category="LC", contracted_units=365,
                  unit_price_fen=6000, contract_start=date(2026, 1, 1), contract_end=date(2026, 12, 31),
                  contract_budget_fen=365 * 10_000)
    values.update(overrides)
    return LineFact(**values)


def need(need_id=1001, recipient=1, **overrides) -> NeedFact:
    values = dict(need_id=need_id, recipient=recipient, town=5, recipient_class="dibao", service_type="LC02",
                  category="LC", period="week", registered=date(2026, 9, 1), starts=date(2026, 9, 1), ends=None,
                  organisation=1, contract=10)
    values.update(overrides)
    return NeedFact(**values)


def total(visits=(), needs=(), lines=(), period=OCTOBER, grouping=Grouping()):
    return kpis.kpi_report(visits, needs, lines, period, grouping).total


def test_a_period_without_records_gives_zeros_and_no_rates():
    figures = total()
    assert figures["person_times"] == 0 and figures["recipients"] == 0 and figures["missed"] == 0
    assert figures["delivered_value_fen"] == 0 and figures["service_hours"] == 0
    assert figures["on_time_rate"] is None and figures["missed_rate"] is None and figures["coverage"] is None


def test_person_times_count_deliveries_only_and_recipients_are_distinct():
    visits = [visit(1), visit(2, recipient=1), visit(3, outcome=MISSED), visit(4, outcome=kpis.CANCELLED)]
    figures = total(visits)
    assert figures["person_times"] == 2
    assert figures["recipients"] == 1
    assert figures["missed"] == 1
    assert figures["missed_rate"] == pytest.approx(1 / 3, abs=1e-4)  # cancelled visits are left out


def test_service_hours_come_from_the_times_in_force():
    assert total([visit(1, minutes=90), visit(2, minutes=30)])["service_hours"] == 2.0


def test_late_is_the_alerts_definition_with_the_meal_grace():
    visits = [visit(1, late_by=15), visit(2, late_by=16), visit(3, late_by=6, meal=True), visit(4, late_by=5, meal=True)]
    figures = total(visits)
    assert figures["late_rate"] == 0.5 and figures["on_time_rate"] == 0.5


def test_contract_completion_prorates_the_line_to_the_period():
    # 365 units a year: 31 in October; 31 deliveries of one unit complete October exactly.
    visits = [visit(k, day=date(2026, 10, k)) for k in range(1, 32)]
    figures = total(visits, lines=[line()])
    assert figures["contracted_units"] == pytest.approx(31)
    assert figures["contract_completion"] == pytest.approx(1.0)
    assert figures["delivered_value_fen"] == 31 * 6000
    assert figures["budget_fen"] == 31 * 10_000
    assert figures["budget_execution"] == pytest.approx(0.6)


def test_a_visit_outside_its_contract_counts_as_a_person_time_but_for_no_line():
    figures = total([visit(1, contract=None, line=None)], lines=[line()])
    assert figures["person_times"] == 1 and figures["delivered_units"] == 0 and figures["delivered_value_fen"] == 0


def test_coverage_asks_whether_every_need_of_a_recipient_was_served():
    needs = [need(1001, recipient=1), need(1002, recipient=1), need(1003, recipient=3)]
    visits = [visit(1, need=1001), visit(3, recipient=3, need=1003)]
    assert total(visits, needs)["coverage"] == 0.5  # recipient 1's second need was never served


def test_monthly_needs_do_not_count_in_a_week_and_nothing_counts_per_day():
    needs = [need(1001, period="month")]
    week = kpis.kpi_report([], needs, [], OCTOBER, Grouping((), "week"))
    assert all(g[1]["coverage"] is None for g in week.groups)
    day = kpis.kpi_report([visit(1, need=1001)], needs, [], OCTOBER, Grouping((), "day"))
    assert all(g[1]["coverage"] is None for g in day.groups)
    assert week.total["coverage"] == 0.0


def test_quality_rates():
    visits = [visit(1, satisfaction=5, exception=True), visit(2, satisfaction=3, corrected=True),
              visit(3, satisfaction=None, certified=False), visit(4, satisfaction=4)]
    figures = total(visits)
    assert figures["satisfaction_mean"] == 4.0
    assert figures["satisfaction_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}
    assert figures["exception_rate"] == 0.25 and figures["corrected_rate"] == 0.25
    assert figures["certified_share"] == 0.75
    assert figures["manual_or_edited_rate"] == 0.0


def test_the_manual_or_edited_share_counts_deliveries_entered_for_the_caregiver_or_retimed():
    # A delivery entered from an office or with its times edited carries exceptions too; a corrected one whose times
    # were not changed (tasks, notes) is corrected but not edited; a missed visit is no person-time.
    visits = [visit(1, manual=True, exception=True), visit(2, manual=True, exception=True, corrected=True),
              visit(3, corrected=True), visit(4), visit(5, outcome=MISSED)]
    figures = total(visits)
    assert figures["manual_or_edited_rate"] == 0.5 and figures["exception_rate"] == 0.5
    assert figures["corrected_rate"] == 0.5
    assert total([visit(1, outcome=MISSED)])["manual_or_edited_rate"] is None  # no person-times: no rate


def test_continuity_counts_the_two_most_frequent_workers_of_each_recipient():
    visits = [visit(k, recipient=1, worker=w) for k, w in enumerate([7, 7, 7, 8, 9], start=1)]
    assert total(visits)["continuity"] == 0.8


def test_records_submitted_within_24_hours():
    late = visit(2, received_at=at(DAY, 10) + timedelta(hours=25))
    assert total([visit(1), late])["submitted_24h_rate"] == 0.5


def test_days_to_first_visit_counts_needs_first_served_in_the_period():
    needs = [need(1001, registered=date(2026, 10, 4), first_delivery=date(2026, 10, 14)),
             need(1002, recipient=2, registered=date(2026, 9, 1), first_delivery=date(2026, 9, 3))]
    assert total(needs=needs)["days_to_first_visit"] == 10.0


def test_cost_and_travel():
    figures = total([visit(1, travel_min=20, minutes=60), visit(2, recipient=1, travel_min=40, minutes=60)])
    assert figures["cost_per_person_time_fen"] == 6000 and figures["cost_per_recipient_fen"] == 12000
    assert figures["travel_share"] == pytest.approx(60 / 180, abs=1e-4)


@pytest.mark.parametrize("dimension", kpis.DIMENSIONS)
def test_every_dimension_groups(dimension):
    visits = [visit(1), visit(2, **{dimension: 99 if dimension not in ("service_type", "category",
                                                                         "recipient_class") else "ZZ99"})]
    report = kpis.kpi_report(visits, [], [], OCTOBER, Grouping((dimension,)))
    assert len(report.groups) == 2
    assert sum(g[1]["person_times"] for g in report.groups) == 2


@pytest.mark.parametrize(("granularity", "labels"), [
    ("day", ["2026-10-14", "2026-11-02"]), ("week", ["2026-W42", "2026-W45"]), ("month", ["2026-10", "2026-11"]),
    ("quarter", ["2026-Q4"]), ("year", ["2026"])])
def test_periods_label_their_buckets(granularity, labels):
    visits = [visit(1), visit(2, day=date(2026, 11, 2))]
    report = kpis.kpi_report(visits, [], [], Period(date(2026, 10, 1), date(2026, 11, 30)), Grouping((), granularity))
    assert [key[-1] for key, _ in report.groups] == labels


def test_lines_split_by_contract_and_period_but_not_by_town():
    by_month = kpis.kpi_report([], [], [line()], Period(date(2026, 10, 1), date(2026, 11, 30)),
                               Grouping(("contract",), "month"))
    assert [round(g[1]["contracted_units"]) for g in by_month.groups] == [31, 30]
    by_town = kpis.kpi_report([visit(1)], [], [line()], OCTOBER, Grouping(("town",)))
    assert by_town.groups[0][1]["contract_completion"] is None and by_town.total["contract_completion"] is not None
    by_type = kpis.kpi_report([visit(1)], [], [line()], OCTOBER, Grouping(("service_type",)))
    assert by_type.groups[0][1]["contracted_units"] == pytest.approx(31) and by_type.groups[0][1]["budget_fen"] is None


def test_grouping_refuses_unknown_and_repeated_names():
    assert Grouping.parse(["organisation", "month"]) == Grouping(("organisation",), "month")
    for bad in (["nonsense"], ["organisation", "organisation"], ["month", "week"]):
        with pytest.raises(ValueError):
            Grouping.parse(bad)


def test_every_definition_is_complete_and_every_figure_is_defined():
    figures = total([visit(1)])
    assert set(figures) - {"satisfaction_distribution"} == set(kpis.FIGURES) - {"satisfaction_distribution"}
    for definition in kpis.DEFINITIONS:
        assert definition.name_zh and definition.name_en and definition.text_zh and definition.text_en


facts = st.builds(
    lambda k, org, day, outcome, minutes, late, worker: visit(
        k, organisation=org, day=date(2026, 10, 1) + timedelta(days=day), outcome=outcome, minutes=minutes,
        late_by=late, worker=worker, recipient=k % 7),
    st.integers(1, 10_000), st.integers(1, 3), st.integers(0, 60), st.sampled_from([DELIVERED, DELIVERED, MISSED]),
    st.integers(5, 240), st.integers(-30, 60), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(st.lists(facts, max_size=40, unique_by=lambda f: f.visit_id),
       st.sampled_from([("organisation",), ("worker",), ("organisation", "month"), ("service_type", "week")]))
def test_groups_add_up_to_the_total_and_each_group_is_the_sum_of_its_records(visits, names):
    report = kpis.kpi_report(visits, [], [], Period(date(2026, 10, 1), date(2026, 11, 30)), Grouping.parse(names))
    for code in ("person_times", "missed", "delivered_value_fen"):
        assert sum(g[1][code] for g in report.groups) == report.total[code]
    assert sum(g[1]["service_hours"] for g in report.groups) == pytest.approx(report.total["service_hours"], abs=0.05)
    grouping = Grouping.parse(names)
    for key, figures in report.groups:
        members = [f for f in visits if kpis.in_group(f, grouping, key)]
        assert figures["person_times"] == sum(kpis.contribution(f)["person_times"] for f in members)
        assert figures["delivered_value_fen"] == sum(kpis.contribution(f)["delivered_value_fen"] for f in members)


def test_the_score_is_a_weighted_mean_of_what_there_is():
    figures = {"person_times": 100, "on_time_rate": 1.0, "missed_rate": 0.0, "satisfaction_mean": 5.0,
               "continuity": 1.0, "contract_completion": 1.4, "submitted_24h_rate": 1.0, "exception_rate": 0.0}
    assert score.composite_score(figures) == 1.0
    assert score.composite_score({**figures, "missed_rate": 1.0}) == pytest.approx(0.75)
    assert score.composite_score({**figures, "continuity": None, "missed_rate": 1.0}) == pytest.approx(0.65 / 0.9,
                                                                                                      abs=1e-4)
    assert score.composite_score({**figures, "person_times": score.MIN_PERSON_TIMES - 1}) is None


def test_score_weights_refuse_unknown_components_and_negative_weights():
    assert score.checked_weights({"satisfaction": 0.5})["satisfaction"] == 0.5
    with pytest.raises(ValueError, match="Unknown"):
        score.checked_weights({"speed": 1})
    with pytest.raises(ValueError, match="negative"):
        score.checked_weights({"satisfaction": -1})


def test_docs_state_every_definition_word_for_word():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "kpis.md").read_text()
    for definition in kpis.DEFINITIONS:
        assert f"`{definition.code}`" in text
        assert definition.text_zh in text and definition.text_en in text, definition.code
