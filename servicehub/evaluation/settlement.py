"""The monthly settlement of a contract (结算): what the bureau owes the organisation for verified visits. Pure
module: plain records in, the settlement out.

A delivered visit is **verified** when every exception it has is approved (or was waived); only verified visits
are paid. How much each pays is its contract line's choice (`LineTerms.billing`):

- `visit`: the units one delivery counts for (whole hours of the plan for an hourly service, else one);
- `minute`: the verified minutes, rounded to the line's step (half up), as a share of the unit (an hour for an
  hourly service, the planned length otherwise).

Below the line's minimum share of the planned length nothing is paid without the bureau's approval: such a visit
has a `short_visit` exception (its threshold is the higher of the service type's and the line's), so it is not
verified until that is approved.

Money is integer fen, computed exactly: each visit's amount is its units (as an exact fraction: billed minutes
over the minutes of a unit) times the unit price, rounded half up to the fen once, for that visit; a line's amount
and the total are sums of those. Units are shown to four decimals, but never multiplied in that rounded form. The
amount owed is split between the contract's funding sources in proportion to their amounts, to the fen: each
gets the whole fen of its exact share and the fen left over go to the largest remainders (ties: the order the
contract lists them), so the parts always add up to the total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from servicehub.registry.rules import units_per_delivery

DELIVERED = "delivered"
# Exception statuses that no longer stand between a visit and its payment (the rest do).
SETTLED = frozenset({"approved", "waived"})
GONE = "cleared"


@dataclass(frozen=True)
class LineTerms:
    """A contract line's price and how it pays."""

    line_id: int
    service_type: str
    unit: str  # visit | hour | meal | day
    unit_price_fen: int
    contracted_quantity: int
    billing: str = "visit"  # visit | minute
    step_min: int = 15
    min_share: float = 0.5


@dataclass(frozen=True)
class SettlementVisit:
    """One visit of the month against a line: delivered or not, its minutes in force and its exceptions."""

    visit_id: int
    line_id: int
    service_date: date
    recipient: int
    worker: int | None
    planned_min: int
    outcome: str  # delivered | missed | cancelled
    served_s: float = 0.0  # check-in to check-out, in force
    exceptions: tuple[tuple[str, str], ...] = ()  # (code, status), cleared ones left out


@dataclass(frozen=True)
class Funding:
    """One of the contract's funding sources."""

    source: str
    funder: str
    amount_fen: int


def half_up(value: Fraction) -> int:
    """An exact non-negative amount rounded half up to a whole number (0.5 fen is 1 fen)."""
    return math.floor(value + Fraction(1, 2))


def billed_minutes(served_s: float, step_min: int) -> int:
    """The verified minutes rounded to the step, half up (22.5 minutes at a 15-minute step are 30)."""
    return half_up(Fraction(served_s) / (60 * step_min)) * step_min


def exact_units(visit: SettlementVisit, terms: LineTerms) -> Fraction:
    """The units a verified visit pays under its line's terms, exactly."""
    if terms.billing == "minute":
        per_unit = 60 if terms.unit == "hour" else visit.planned_min
        return Fraction(billed_minutes(visit.served_s, terms.step_min), per_unit)
    return Fraction(units_per_delivery(terms.unit, visit.planned_min))


def billable_units(visit: SettlementVisit, terms: LineTerms) -> float:
    """The units a verified visit pays under its line's terms (to four decimals, as shown)."""
    return round(float(exact_units(visit, terms)), 4)


def visit_amount_fen(visit: SettlementVisit, terms: LineTerms) -> int:
    """What a verified visit pays: its exact units times the unit price, rounded half up to the fen."""
    return half_up(exact_units(visit, terms) * terms.unit_price_fen)


def undecided(visit: SettlementVisit) -> tuple[tuple[str, str], ...]:
    """The visit's exceptions that still stand between it and its payment."""
    return tuple((code, status) for code, status in visit.exceptions if status not in SETTLED and status != GONE)


def is_verified(visit: SettlementVisit) -> bool:
    """Delivered, and each of its exceptions approved or waived."""
    return visit.outcome == DELIVERED and not undecided(visit)


@dataclass
class LineSettlement:
    """One line's month."""

    terms: LineTerms
    delivered: int = 0
    verified: int = 0
    units: float = 0.0
    amount_fen: int = 0
    unverified: int = 0
    unverified_units: float = 0.0  # what they would pay once approved
    unverified_fen: int = 0
    rejected: int = 0  # of the unverified, those with a rejected exception

    def as_dict(self) -> dict:
        """Plain JSON-ready data."""
        t = self.terms
        return {"line_id": t.line_id, "service_type": t.service_type, "unit": t.unit, "billing": t.billing,
                "step_min": t.step_min, "min_share": t.min_share, "unit_price_fen": t.unit_price_fen,
                "contracted_quantity": t.contracted_quantity, "delivered": self.delivered, "verified": self.verified,
                "units": round(self.units, 4), "amount_fen": self.amount_fen, "unverified": self.unverified,
                "unverified_units": round(self.unverified_units, 4), "unverified_fen": self.unverified_fen,
                "rejected": self.rejected}


@dataclass(frozen=True)
class Settlement:
    """A contract's month: per line, the total owed, its split by funding source and the visits not yet paid."""

    contract: int
    first: date
    last: date
    lines: list[LineSettlement]
    total_fen: int
    by_funding: list[dict]
    unsettled: list[dict] = field(default_factory=list)  # delivered visits with undecided exceptions

    def as_dict(self) -> dict:
        """Plain JSON-ready data."""
        return {"contract_id": self.contract, "from": self.first.isoformat(), "to": self.last.isoformat(),
                "lines": [line.as_dict() for line in self.lines], "total_fen": self.total_fen,
                "delivered": sum(line.delivered for line in self.lines),
                "verified": sum(line.verified for line in self.lines),
                "unverified": sum(line.unverified for line in self.lines),
                "unverified_fen": sum(line.unverified_fen for line in self.lines),
                "by_funding": self.by_funding, "unsettled": self.unsettled}


def split_by_funding(total_fen: int, fundings: Sequence[Funding]) -> list[dict]:
    """The total shared between the funding sources in proportion to their amounts, to the fen: each gets the
    whole fen of its share, and the fen left over go to the largest remainders (ties: the order given). Integer
    arithmetic throughout, so the parts add up to the total whatever the amounts."""
    whole = sum(f.amount_fen for f in fundings)
    if not fundings or whole <= 0:
        return []
    parts, remainders = zip(*(divmod(total_fen * f.amount_fen, whole) for f in fundings), strict=True)
    parts = list(parts)
    for index in sorted(range(len(fundings)), key=lambda i: -remainders[i])[:total_fen - sum(parts)]:
        parts[index] += 1
    return [{"source": f.source, "funder": f.funder, "share": round(f.amount_fen / whole, 4), "amount_fen": part}
            for f, part in zip(fundings, parts, strict=True)]


def settle(contract: int, first: date, last: date, lines: Iterable[LineTerms], visits: Iterable[SettlementVisit],
           fundings: Sequence[Funding] = ()) -> Settlement:
    """The settlement of a contract's month from its lines, the month's visits against them and its funding."""
    by_line = {terms.line_id: LineSettlement(terms) for terms in lines}
    unsettled = []
    for visit in visits:
        line = by_line.get(visit.line_id)
        if line is None or visit.outcome != DELIVERED or not first <= visit.service_date <= last:
            continue
        units = billable_units(visit, line.terms)
        amount = visit_amount_fen(visit, line.terms)
        line.delivered += 1
        standing = undecided(visit)
        if not standing:
            line.verified += 1
            line.units += units
            line.amount_fen += amount
            continue
        line.unverified += 1
        line.unverified_units += units
        line.unverified_fen += amount
        line.rejected += any(status == "rejected" for _, status in standing)
        unsettled.append({"visit_id": visit.visit_id, "service_date": visit.service_date.isoformat(),
                          "line_id": visit.line_id, "recipient": visit.recipient, "worker": visit.worker,
                          "units": units, "amount_fen": amount, "exceptions": [{"code": c, "status": s} for c, s in standing]})
    ordered = sorted(by_line.values(), key=lambda line: line.terms.service_type)
    total = sum(line.amount_fen for line in ordered)
    unsettled.sort(key=lambda row: (row["service_date"], row["visit_id"]))
    return Settlement(contract, first, last, ordered, total, split_by_funding(total, fundings), unsettled)
