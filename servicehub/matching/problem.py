"""The matching problem as plain data: needs to place, contract lines that could serve them, and
what is known of each organisation. Pure module (no Flask, no SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

Point = tuple[float, float]


@dataclass(frozen=True)
class NeedCase:
    """One open need, with what the rules and the score look at."""

    need_id: int
    recipient_id: int
    service_type: str
    assistance_class: str
    town_code: str
    area_code: str
    location: Point
    start: date
    end: date | None
    monthly_units: float  # expected units a month (visits, hours, meals or days: the type's unit)
    urgent: bool = False
    required_qualification: str | None = None
    carer_gender: str | None = None  # "male" / "female" when the recipient asks for one
    serving_organisations: frozenset[int] = frozenset()  # organisations already serving the recipient
    declined_by: frozenset[int] = frozenset()  # organisations that declined this need
    has_live_referral: bool = False  # a referral of this need is offered, accepted or active
    locked_line_id: int | None = None  # a manager's locked choice


@dataclass(frozen=True)
class LineOption:
    """A contract line an organisation could serve a need with, and how much of it is left."""

    line_id: int
    contract_id: int
    contract_code: str
    organisation_id: int
    service_type: str
    unit_price_fen: int
    reference_price_fen: int
    contract_start: date
    contract_end: date
    contract_active: bool
    area_codes: frozenset[str]  # towns or communities covered (a district code covers everything)
    eligible_classes: frozenset[str]
    remaining_units: float


@dataclass(frozen=True)
class OrganisationProfile:
    """An organisation as matching sees it."""

    organisation_id: int
    name: str
    active: bool
    bases: tuple[Point, ...]  # stations and worker start points
    # qualification code (None: any worker) -> genders of the active workers holding it
    qualified_genders: dict[str | None, frozenset[str]] = field(default_factory=dict)
    performance: float | None = None  # 0..1 from evaluation; None: not evaluated yet
    load: float = 0.0  # live referrals per active worker
