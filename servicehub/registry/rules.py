"""Registry validation rules a civil-affairs office would trust. Pure module: plain values in,
`{field: [reason]}` out (empty when the value is acceptable).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time

from servicehub.registry.identifiers import (
    id_number_birth_date,
    id_number_gender,
    id_number_problem,
    mobile_problem,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANDLINE = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}")
Errors = dict[str, list[str]]


@dataclass(frozen=True)
class BoundingBox:
    """The district's extent: coordinates outside it are typing mistakes."""

    lat_min: float
    lon_min: float
    lat_max: float
    lon_max: float

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """From 'lat_min,lon_min,lat_max,lon_max'."""
        parts = [float(p) for p in text.split(",")]
        if len(parts) != 4 or parts[0] >= parts[2] or parts[1] >= parts[3]:
            raise ValueError("a bounding box is lat_min,lon_min,lat_max,lon_max with min < max")
        return cls(*parts)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies inside."""
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


def merge(*parts: Errors) -> Errors:
    """Combine error dicts, keeping every message."""
    merged: Errors = {}
    for part in parts:
        for field, messages in part.items():
            merged.setdefault(field, []).extend(messages)
    return merged


def coordinates_problems(lat: float | None, lon: float | None, box: BoundingBox, prefix: str = "") -> Errors:
    """Both coordinates present and inside the district."""
    if lat is None or lon is None:
        return {f"{prefix}lat": ["Latitude and longitude are both required."]}
    if not box.contains(lat, lon):
        return {
            f"{prefix}lat": [
                f"({lat:.5f}, {lon:.5f}) is outside the district "
                f"({box.lat_min}–{box.lat_max} N, {box.lon_min}–{box.lon_max} E)."
            ]
        }
    return {}


def phone_problems(field: str, value: str | None, *, mobile_only: bool = False) -> Errors:
    """A mainland mobile number (or, unless mobile_only, a landline like 0511-88886666); empty is fine."""
    if not value:
        return {}
    if mobile_problem(value) is None or (not mobile_only and LANDLINE.fullmatch(value)):
        return {}
    kind = "a mainland mobile number (11 digits, 13–19…)" if mobile_only else "a mobile or landline number"
    return {field: [f"Expected {kind}."]}


def id_number_problems(value: str, gender: str | None = None, birth_date: date | None = None, today: date | None = None) -> Errors:
    """A valid resident ID number, agreeing with the gender and birth date given (if any)."""
    problem = id_number_problem(value, today)
    if problem:
        return {"id_number": [problem]}
    errors: Errors = {}
    if gender and id_number_gender(value) != gender:
        errors["gender"] = [f"The ID number is a {id_number_gender(value)}'s; the gender given is {gender}."]
    if birth_date and id_number_birth_date(value) != birth_date:
        errors["birth_date"] = ["The birth date differs from the one inside the ID number."]
    return errors


def window_problems(start: time, end: time, duration_min: int, field: str = "window", must_fit: bool = True) -> Errors:
    """A time window that starts before it ends and (for visits, not stays at a centre) fits the duration."""
    if start >= end:
        return {field: ["The window must start before it ends."]}
    if not must_fit:
        return {}
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if duration_min > minutes:
        return {"duration_min": [f"{duration_min} minutes do not fit in a {minutes}-minute window."]}
    return {}


def period_problems(start: date | None, end: date | None, field: str = "end_date") -> Errors:
    """An end date, if any, not before the start date."""
    if start and end and end < start:
        return {field: ["The end date is before the start date."]}
    return {}


def availability_problems(availability: Mapping[str, Iterable], field: str = "availability") -> Errors:
    """Weekly availability: weekday keys, ordered non-overlapping HH:MM intervals each day."""
    problems = []
    for day, intervals in availability.items():
        if day not in WEEKDAYS:
            problems.append(f"Unknown weekday {day!r}; use {', '.join(WEEKDAYS)}.")
            continue
        previous_end = None
        for interval in intervals:
            try:
                start, end = (time.fromisoformat(v) for v in interval)
            except (TypeError, ValueError):
                problems.append(f"{day}: {interval!r} is not a pair of HH:MM times.")
                continue
            if start >= end:
                problems.append(f"{day}: {interval[0]}–{interval[1]} ends before it starts.")
            elif previous_end and start < previous_end:
                problems.append(f"{day}: intervals overlap or are out of order.")
            previous_end = end
    return {field: problems} if problems else {}


def funding_problems(budget_fen: int, fundings: list[Mapping], lines: list[Mapping]) -> Errors:
    """Funding sources add up to the budget; the contracted lines do not exceed it."""
    errors: Errors = {}
    funded = sum(f["amount_fen"] for f in fundings)
    if funded != budget_fen:
        errors["fundings"] = [f"The funding sources add up to {funded} fen, not the budget of {budget_fen} fen."]
    contracted = sum(line["unit_price_fen"] * line["contracted_quantity"] for line in lines)
    if contracted > budget_fen:
        errors["lines"] = [f"The contracted lines are worth {contracted} fen, more than the budget of {budget_fen} fen."]
    return errors


def need_frequency_problems(quantity: int, period: str, preferred_days: list[int]) -> Errors:
    """A weekly quantity that the preferred days can hold (one visit a day)."""
    if period == "week" and preferred_days and quantity > len(preferred_days):
        return {"quantity": [f"{quantity} a week cannot fit on {len(preferred_days)} preferred day(s)."]}
    if len(set(preferred_days)) != len(preferred_days):
        return {"preferred_days": ["A day is listed twice."]}
    return {}


WEEKS_PER_MONTH = 52 / 12


def units_per_delivery(unit: str, duration_min: int) -> int:
    """How many contracted units one delivery uses: whole hours for hourly types, else one."""
    return math.ceil(duration_min / 60) if unit == "hour" else 1


def monthly_units(quantity: int, period: str, unit: str, duration_min: int) -> float:
    """The units a need is expected to use in an average month."""
    deliveries = quantity * WEEKS_PER_MONTH if period == "week" else quantity
    return round(deliveries * units_per_delivery(unit, duration_min), 2)
