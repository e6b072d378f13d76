"""One test per hard rule: a case where only that rule decides."""

from dataclasses import replace
from datetime import date

import pytest

from servicehub.matching import eligibility as e
from servicehub.matching.problem import LineOption, NeedCase, OrganisationProfile

TODAY = date(2026, 11, 29)
NEED = NeedCase(
    need_id=1, recipient_id=1, service_type="LC03", assistance_class="dibao", town_code="321191001",
    area_code="321191001003", location=(32.20, 119.68), start=date(2026, 12, 1), end=None, monthly_units=4.33,
    required_qualification=None,
)
LINE = LineOption(
    line_id=10, contract_id=5, contract_code="C-1", organisation_id=7, service_type="LC03", unit_price_fen=10000,
    reference_price_fen=10000, contract_start=date(2026, 1, 1), contract_end=date(2026, 12, 31),
    contract_active=True, area_codes=frozenset({"321191001"}), eligible_classes=frozenset({"dibao"}),
    remaining_units=100,
)
ORG = OrganisationProfile(
    organisation_id=7, name="乐龄", active=True, bases=((32.21, 119.69),),
    qualified_genders={None: frozenset({"female", "male"}), "rehab_therapist": frozenset({"male"})},
)


def test_the_base_case_is_eligible():
    assert e.first_refusal(NEED, LINE, ORG, TODAY) is None


@pytest.mark.parametrize(
    ("need", "line", "org", "rule"),
    [
        (NEED, LINE, replace(ORG, active=False), "organisation_inactive"),
        (NEED, replace(LINE, contract_active=False), ORG, "contract_inactive"),
        (NEED, replace(LINE, contract_end=date(2026, 11, 30)), ORG, "contract_period"),
        (replace(NEED, start=date(2027, 1, 5)), LINE, ORG, "contract_period"),
        (NEED, replace(LINE, service_type="LC02"), ORG, "no_line"),
        (NEED, replace(LINE, remaining_units=3), ORG, "line_exhausted"),
        (NEED, replace(LINE, area_codes=frozenset({"321191002"})), ORG, "area_not_covered"),
        (NEED, replace(LINE, eligible_classes=frozenset({"tekun"})), ORG, "class_not_covered"),
        (replace(NEED, required_qualification="doctor"), LINE, ORG, "no_qualified_worker"),
        (replace(NEED, required_qualification="rehab_therapist", carer_gender="female"), LINE, ORG,
         "no_worker_of_gender"),
        (replace(NEED, declined_by=frozenset({7})), LINE, ORG, "declined_before"),
        (replace(NEED, has_live_referral=True), LINE, ORG, "already_referred"),
    ],
)
def test_each_rule_rules_out_its_case(need, line, org, rule):
    refusal = e.first_refusal(need, line, org, TODAY)
    assert refusal is not None and refusal.rule == rule and refusal.message


def test_each_rule_on_its_own():
    assert e.organisation_is_active(NEED, LINE, replace(ORG, active=False), TODAY).rule == "organisation_inactive"
    assert e.contract_active_over_need_period(NEED, replace(LINE, contract_start=date(2027, 1, 1)), ORG, TODAY)
    assert e.line_has_service_type(NEED, LINE, ORG, TODAY) is None
    assert e.line_has_remaining_quantity(NEED, replace(LINE, remaining_units=4.41), ORG, TODAY) is None
    assert e.contract_covers_area(NEED, replace(LINE, area_codes=frozenset({"321191001003"})), ORG, TODAY) is None
    assert e.contract_covers_area(NEED, replace(LINE, area_codes=frozenset({"321191"})), ORG, TODAY) is None
    assert e.contract_covers_class(NEED, LINE, ORG, TODAY) is None
    assert e.organisation_has_qualified_worker(replace(NEED, carer_gender="male"), LINE, ORG, TODAY) is None
    assert e.not_declined_before(NEED, LINE, ORG, TODAY) is None
    assert e.no_live_referral(NEED, LINE, ORG, TODAY) is None


def test_units_until_the_contract_ends():
    # from 1 Dec to 31 Dec: 31 days of 30.44 a month
    assert e.units_until_contract_end(NEED, LINE, TODAY) == pytest.approx(4.33 * 31 / 30.44, abs=0.01)
    whole_year = replace(LINE, contract_end=date(2027, 11, 30))
    assert e.units_until_contract_end(NEED, whole_year, TODAY) == pytest.approx(4.33 * 365 / 30.44, rel=0.01)
    short_need = replace(NEED, end=date(2026, 12, 15))  # half a month still counts as one
    assert e.units_until_contract_end(short_need, whole_year, TODAY) == pytest.approx(4.33)
