"""The settlement arithmetic on plain records (no Flask, no database): per-visit and per-minute billing, rounding
half up, hourly units, the minimum share through a short visit's exception, which exception statuses let a visit be
paid, a funding split that adds up to the total to the fen; and the capital numerals a settlement sheet prints."""

import subprocess
import sys
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicehub.evaluation import settlement
from servicehub.evaluation.settlement import Funding, LineTerms, SettlementVisit

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
DAY = date(2026, 11, 12)


def terms(line_id=1, service_type="LC02", unit="visit", price=6000, billing="visit", step=15, share=0.5):
    return LineTerms(line_id, service_type, unit, price, 500, billing, step, share)


def visit(visit_id=1, line_id=1, minutes=60.0, planned=60, outcome="delivered", day=DAY, exceptions=()):
    return SettlementVisit(visit_id, line_id, day, recipient=100 + visit_id, worker=7, planned_min=planned,
                           outcome=outcome, served_s=minutes * 60, exceptions=tuple(exceptions))


def settle(lines, visits, fundings=()):
    return settlement.settle(9, FIRST, LAST, lines, visits, fundings)


def test_the_module_is_pure():
    code = ("import importlib, sys\nimportlib.import_module('servicehub.evaluation.settlement')\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'sqlalchemy', 'marshmallow'}))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


# --- what one verified visit pays -----------------------------------------------------------------------------


def test_per_visit_pays_the_visit_whatever_its_length_and_per_minute_the_minutes_rounded_to_the_step():
    short = visit(minutes=52)  # 52 minutes of a planned hour: 45 at a 15-minute step (3.47 steps -> 3)
    assert settlement.billable_units(short, terms()) == 1.0
    assert settlement.visit_amount_fen(short, terms()) == 6000
    per_minute = terms(billing="minute")
    assert settlement.billed_minutes(short.served_s, 15) == 45
    assert settlement.billable_units(short, per_minute) == 0.75  # of the planned length (the unit is a visit)
    assert settlement.visit_amount_fen(short, per_minute) == 4500
    long = visit(minutes=80)  # 80 minutes: 75 (5.33 steps -> 5), 1.25 visits
    assert settlement.visit_amount_fen(long, per_minute) == 7500
    assert settlement.visit_amount_fen(long, terms()) == 6000


@pytest.mark.parametrize(("minutes", "step", "billed"), [
    (22.5, 15, 30),  # exactly half a step: up
    (22.49, 15, 15),
    (7.5, 15, 15),
    (7.49, 15, 0),
    (60, 15, 60),
    (62.5, 5, 65),
    (62.49, 5, 60),
    (59.5, 1, 60),
    (30, 60, 60),  # half an hour at an hourly step: up
])
def test_minutes_are_rounded_to_the_step_half_up(minutes, step, billed):
    assert settlement.billed_minutes(minutes * 60, step) == billed


def test_amounts_round_half_up_to_the_fen_and_are_exact_for_any_price():
    hourly = terms(service_type="RH04", unit="hour", billing="minute", step=10, price=3003)
    assert settlement.visit_amount_fen(visit(minutes=10, planned=180), hourly) == 501  # 500.5 fen: up, not to even
    # 25 minutes of a ¥300 hour are ¥125.00 exactly: never units rounded to four decimals (0.4167) times the price
    pricey = terms(service_type="RH04", unit="hour", billing="minute", step=5, price=30000)
    one = visit(minutes=25, planned=180)
    assert settlement.billable_units(one, pricey) == 0.4167
    assert settlement.visit_amount_fen(one, pricey) == 12500


def test_hourly_services_pay_whole_hours_of_the_plan_per_visit_or_the_verified_hours_per_minute():
    per_visit = terms(service_type="RH04", unit="hour", price=4000)
    assert settlement.billable_units(visit(minutes=170, planned=180), per_visit) == 3.0
    assert settlement.billable_units(visit(minutes=170, planned=150), per_visit) == 3.0  # 2.5 hours planned: 3
    assert settlement.visit_amount_fen(visit(minutes=170, planned=180), per_visit) == 12000
    per_minute = terms(service_type="RH04", unit="hour", price=4000, billing="minute")
    served = visit(minutes=100, planned=180)  # 100 minutes: 105 at a 15-minute step, 1.75 hours
    assert settlement.billable_units(served, per_minute) == 1.75
    assert settlement.visit_amount_fen(served, per_minute) == 7000


# --- which visits are paid ------------------------------------------------------------------------------------


def test_a_visit_below_the_minimum_share_is_paid_only_once_its_short_visit_is_approved():
    line = terms(billing="minute", share=0.5)
    short = [("short_visit", "open")]
    waiting = settle([line], [visit(1, minutes=20, exceptions=short), visit(2, minutes=60)])
    got = waiting.lines[0]
    assert (got.delivered, got.verified, got.unverified) == (2, 1, 1)
    assert got.amount_fen == waiting.total_fen == 6000
    assert got.unverified_fen == 1500  # 15 minutes of the hour, once approved
    assert waiting.unsettled == [{"visit_id": 1, "service_date": DAY.isoformat(), "line_id": 1, "recipient": 101,
                                  "worker": 7, "units": 0.25, "amount_fen": 1500,
                                  "exceptions": [{"code": "short_visit", "status": "open"}]}]
    approved = settle([line], [visit(1, minutes=20, exceptions=[("short_visit", "approved")]), visit(2, minutes=60)])
    assert approved.total_fen == 7500 and approved.unsettled == []


@pytest.mark.parametrize(("statuses", "paid", "rejected"), [
    ((), True, 0),
    (("approved",), True, 0),
    (("waived",), True, 0),
    (("approved", "waived"), True, 0),
    (("cleared",), True, 0),  # no longer applies
    (("open",), False, 0),
    (("resolved",), False, 0),  # explained, the bureau has not decided
    (("rejected",), False, 1),
    (("approved", "resolved"), False, 0),  # every exception must be approved
    (("approved", "rejected"), False, 1),
])
def test_only_a_visit_whose_every_exception_is_approved_or_waived_is_paid(statuses, paid, rejected):
    codes = ("late_start", "far_check_in")
    one = visit(exceptions=list(zip(codes, statuses, strict=False)))
    result = settle([terms()], [one])
    line = result.lines[0]
    assert result.total_fen == (6000 if paid else 0)
    assert (line.verified, line.unverified, line.rejected) == ((1, 0, 0) if paid else (0, 1, rejected))
    assert settlement.is_verified(one) is paid
    if not paid:
        assert [e["status"] for e in result.unsettled[0]["exceptions"]] == [s for s in statuses if s not in
                                                                            ("approved", "waived", "cleared")]


def test_only_delivered_visits_of_the_month_on_the_contract_s_lines_count():
    lines = [terms(1), terms(2, "LC03", price=10000)]
    visits = [visit(1), visit(2, outcome="missed"), visit(3, outcome="cancelled"), visit(4, day=date(2026, 12, 1)),
              visit(5, line_id=99), visit(6, line_id=2)]
    result = settle(lines, visits)
    assert [(line.terms.service_type, line.delivered, line.amount_fen) for line in result.lines] == [
        ("LC02", 1, 6000), ("LC03", 1, 10000)]
    assert result.total_fen == 16000
    document = result.as_dict()
    assert document["delivered"] == 2 and document["verified"] == 2 and document["unverified"] == 0
    assert [line["billing"] for line in document["lines"]] == ["visit", "visit"]


# --- the split by funding source ------------------------------------------------------------------------------


def test_the_split_follows_the_funding_amounts_and_gives_leftover_fen_to_the_largest_remainders():
    fundings = [Funding("government", "民政局", 8_000_000), Funding("charity", "慈善总会", 2_000_000)]
    assert [p["amount_fen"] for p in settlement.split_by_funding(12345, fundings)] == [9876, 2469]
    thirds = [Funding("government", "a", 1), Funding("charity", "b", 1), Funding("other", "c", 1)]
    assert [p["amount_fen"] for p in settlement.split_by_funding(100, thirds)] == [34, 33, 33]  # ties: in order
    skewed = [Funding("government", "a", 1), Funding("charity", "b", 2)]
    assert [p["amount_fen"] for p in settlement.split_by_funding(100, skewed)] == [33, 67]  # 33.33 / 66.67
    assert settlement.split_by_funding(100, []) == []
    assert [p["share"] for p in settlement.split_by_funding(0, fundings)] == [0.8, 0.2]


@given(st.integers(min_value=0, max_value=10**11),
       st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=6))
def test_the_split_adds_up_to_the_total_and_each_part_is_within_a_fen_of_its_exact_share(total, amounts):
    fundings = [Funding("other", str(k), amount) for k, amount in enumerate(amounts)]
    parts = [p["amount_fen"] for p in settlement.split_by_funding(total, fundings)]
    assert sum(parts) == total
    for part, amount in zip(parts, amounts, strict=True):
        exact = Fraction(total * amount, sum(amounts))
        assert exact - 1 < part < exact + 1


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=600), st.sampled_from(["visit", "minute"]),
                          st.sampled_from(["approved", "open", "waived", "rejected"])), max_size=30))
def test_the_total_is_the_sum_of_the_verified_visits_amounts(rows):
    lines = [terms(1, billing="visit"), terms(2, "RH04", unit="hour", billing="minute", step=15, price=4000)]
    visits = [visit(k, line_id=1 if billing == "visit" else 2, minutes=minutes, planned=60,
                    exceptions=[("late_start", status)]) for k, (minutes, billing, status) in enumerate(rows)]
    result = settle(lines, visits, [Funding("government", "a", 3), Funding("charity", "b", 1)])
    by_line = {line.terms.line_id: line.terms for line in result.lines}
    paid = sum(settlement.visit_amount_fen(v, by_line[v.line_id]) for v in visits if settlement.is_verified(v))
    assert result.total_fen == paid == sum(line.amount_fen for line in result.lines)
    assert sum(p["amount_fen"] for p in result.by_funding) == result.total_fen
    assert len(result.unsettled) == sum(1 for v in visits if not settlement.is_verified(v))


# --- the total in capitals (the PDF) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fen", "words"), [
    (0, "零元整"),
    (5, "伍分"),
    (56, "伍角陆分"),
    (100, "壹元整"),
    (150, "壹元伍角整"),
    (1005, "壹拾元零伍分"),
    (123456, "壹仟贰佰叁拾肆元伍角陆分"),
    (100000, "壹仟元整"),
    (101000, "壹仟零壹拾元整"),
    (1000100, "壹万零壹元整"),
    (2030000, "贰万零叁佰元整"),
    (10001000, "壹拾万零壹拾元整"),
    (100000000, "壹佰万元整"),
    (10000000100, "壹亿零壹元整"),
    (1234567890, "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角整"),
])
def test_an_amount_in_capitals(fen, words):
    from servicehub.evaluation.exports import fen_in_words

    assert fen_in_words(fen) == words
