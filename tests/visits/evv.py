"""Helpers for tests of visit verification: recipients' confirmation cards and their codes, and positions as a
phone at the door reads them (a few metres off the address: the address's own coordinates count as typed in)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.registry.models import Recipient
from servicehub.visits import cards, confirmation

METRES_PER_DEGREE = 111_320


def near(lat: float, lon: float, metres: float = 20.0) -> tuple[float, float]:
    """A phone's reading `metres` north of a place."""
    return lat + metres / METRES_PER_DEGREE, lon


def issue_cards(recipient_ids) -> dict[int, str]:
    """A confirmation card for each recipient, as the bureau prints them (inside an app context): their secrets."""
    secrets = {}
    for recipient_id in recipient_ids:
        recipient = db.session.scalar(select(Recipient).where(Recipient.id == recipient_id))
        _card, _replaced, secrets[recipient_id] = cards.new_card(recipient, COMMAND_LINE)
    db.session.commit()
    return secrets


def wrong_code(secret: str, moment: datetime) -> str:
    """Six digits that are none of the card's codes near `moment` (so they can only be wrong)."""
    taken = {confirmation.phone_code(secret, moment + timedelta(seconds=30 * k)) for k in range(-25, 26)}
    taken |= set(confirmation.printed_list(secret))
    return next(f"{n:06d}" for n in range(123456, 1_000_000) if f"{n:06d}" not in taken)


@dataclass(frozen=True)
class Stop:
    """A visit of the day as a caregiver's phone sees it: where it reads the door, the recipient's card."""

    id: int
    lat: float
    lon: float
    secret: str
    start: datetime  # the planned start
    end: datetime  # the planned end
    recipient_id: int
    address: tuple[float, float]

    def code(self, moment: datetime) -> str:
        """The code the family's phone shows at `moment`."""
        return confirmation.phone_code(self.secret, moment)

    def printed(self, number: int) -> str:
        """The printed card's code `number` (from 0)."""
        return confirmation.printed_code(self.secret, number)


def stops_of(visits, secrets: dict[int, str]) -> list[Stop]:
    """The visits as stops (inside an app context)."""
    return [Stop(v.id, *near(v.recipient.lat, v.recipient.lon), secrets[v.recipient_id], v.planned_start,
                 v.planned_end, v.recipient_id, (v.recipient.lat, v.recipient.lon)) for v in visits]


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}
