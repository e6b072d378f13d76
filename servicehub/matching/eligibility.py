"""Hard rules: may this organisation's contract line serve this need? Pure module.

Each rule is a named function returning None when it holds, or a `Refusal` saying why not. The first
refusal of an option is what a manager sees for an organisation that was ruled out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from servicehub.matching.problem import LineOption, NeedCase, OrganisationProfile


@dataclass(frozen=True)
class Refusal:
    """Why an option cannot serve a need: a stable rule code and a sentence."""

    rule: str
    message: str


def units_until_contract_end(need: NeedCase, line: LineOption, today: date) -> float:
    """What the need will consume from the line until the contract ends: monthly units x months left (min 1)."""
    start = max(need.start, today, line.contract_start)
    end = min(need.end or line.contract_end, line.contract_end)
    months = max(1.0, ((end - start).days + 1) / 30.44)
    return round(need.monthly_units * months, 2)


def organisation_is_active(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date) -> Refusal | None:
    """The organisation may be given work."""
    return None if org.active else Refusal("organisation_inactive", f"{org.name} is not active.")


def contract_active_over_need_period(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The contract is active when the need's service would begin."""
    begin = max(need.start, today)
    if not line.contract_active:
        return Refusal("contract_inactive", f"Contract {line.contract_code} is not active.")
    if not (line.contract_start <= begin <= line.contract_end):
        return Refusal(
            "contract_period",
            f"Contract {line.contract_code} runs {line.contract_start}–{line.contract_end}; the need starts {begin}.",
        )
    return None


def line_has_service_type(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The contract has a line for the need's service type."""
    if line.service_type != need.service_type:
        return Refusal("no_line", f"Contract {line.contract_code} has no {need.service_type} line.")
    return None


def line_has_remaining_quantity(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """What is left on the line covers the need until the contract ends."""
    wanted = units_until_contract_end(need, line, today)
    if line.remaining_units < wanted:
        return Refusal(
            "line_exhausted",
            f"Contract {line.contract_code} has {line.remaining_units:g} {need.service_type} units left; "
            f"the need takes {wanted:g}.",
        )
    return None


def contract_covers_area(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The contract covers the recipient's community, town or the whole district."""
    covered = line.area_codes
    if need.area_code in covered or need.town_code in covered or any(need.town_code.startswith(c) for c in covered):
        return None
    return Refusal("area_not_covered", f"Contract {line.contract_code} does not cover {need.town_code}.")


def contract_covers_class(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The contract serves the recipient's assistance class."""
    if need.assistance_class in line.eligible_classes:
        return None
    return Refusal("class_not_covered", f"Contract {line.contract_code} does not serve {need.assistance_class}.")


def organisation_has_qualified_worker(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """A worker holds the qualification the type requires, of the gender the recipient asks for."""
    genders = org.qualified_genders.get(need.required_qualification, frozenset())
    if not genders:
        what = need.required_qualification or "any"
        return Refusal("no_qualified_worker", f"{org.name} has no active worker with the {what} qualification.")
    if need.carer_gender and need.carer_gender not in genders:
        return Refusal("no_worker_of_gender", f"{org.name} has no qualified {need.carer_gender} worker.")
    return None


def not_declined_before(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The organisation has not declined this need already."""
    if org.organisation_id in need.declined_by:
        return Refusal("declined_before", f"{org.name} declined this need before.")
    return None


def no_live_referral(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date):
    """The need has no other offered, accepted or active referral."""
    if need.has_live_referral:
        return Refusal("already_referred", "The need already has a live referral.")
    return None


RULES: tuple[Callable[..., Refusal | None], ...] = (
    no_live_referral,
    line_has_service_type,
    organisation_is_active,
    contract_active_over_need_period,
    contract_covers_area,
    contract_covers_class,
    organisation_has_qualified_worker,
    not_declined_before,
    line_has_remaining_quantity,
)


def first_refusal(need: NeedCase, line: LineOption, org: OrganisationProfile, today: date) -> Refusal | None:
    """The first rule that rules the option out, or None if the option is eligible."""
    for rule in RULES:
        refusal = rule(need, line, org, today)
        if refusal is not None:
            return refusal
    return None
