"""Helpers for tests of visit verification: recipients' confirmation cards and their codes, positions as a phone
at the door reads them (a few metres off the address: the address's own coordinates count as typed in), today's
roster published (the `day` fixture, shared through tests/visits/conftest.py) and the API calls of a phone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from servicehub.auth.models import User
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.registry.models import Recipient
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation
from servicehub.visits.models import ServiceRecord
from tests.scheduling.fixtures import district_today

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


@pytest.fixture
def day(app, served, client):
    """Today's roster published and the recipients' confirmation cards printed; the demo caregiver is the worker
    with the most visits today. `mine`: their stops in route order."""
    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        busiest = db.session.execute(select(Visit.worker_id, func.count()).where(
            Visit.service_date == district_today(), Visit.worker_id.is_not(None))
            .group_by(Visit.worker_id).order_by(func.count().desc())).first()[0]
        user = db.session.scalar(select(User).where(User.username == "caregiver"))
        user.worker_id = busiest
        db.session.commit()
        secrets = issue_cards(served["recipients"])
        mine = db.session.scalars(select(Visit).where(Visit.worker_id == busiest,
                                                      Visit.service_date == district_today())
                                  .order_by(Visit.sequence)).all()
        others = db.session.scalars(select(Visit).where(Visit.worker_id != busiest,
                                                        Visit.service_date == district_today())).all()
        return {"mine": stops_of(mine, secrets), "others": [v.id for v in others], "worker": busiest,
                "secrets": secrets}


def post(client, served, path, body, who="caregiver", headers=None):
    return client.post(path, json=body, headers={**served[who], **(headers or key())})


def check_in(client, served, stop, who="caregiver", **extra):
    return post(client, served, f"/api/v1/visits/{stop.id}/check-in", {"lat": stop.lat, "lon": stop.lon, **extra},
                who=who)


def check_out(client, served, stop, moment, who="caregiver", **extra):
    """Check out with the code the family's phone shows at `moment` (the time pinned for the request)."""
    body = {"lat": stop.lat, "lon": stop.lon, "tasks": ["floors"], "confirmation_method": "code",
            "confirmation_code": stop.code(moment), "satisfaction": 5, "notes": "一切正常", **extra}
    return post(client, served, f"/api/v1/visits/{stop.id}/check-out", body, who=who)


def deliver(client, served, stop, arrive=3, leave=58, **extra):
    """Check in `arrive` minutes after the planned start and out `leave` minutes after it; the delivery."""
    with clock_at(stop.start + timedelta(minutes=arrive)):
        arrived = check_in(client, served, stop)
        assert arrived.status_code == 201, arrived.get_json()
    with clock_at(stop.start + timedelta(minutes=leave)) as now:
        done = check_out(client, served, stop, now, **extra)
        assert done.status_code == 201, done.get_json()
    return done.get_json()


def ledger_size(app):
    with app.app_context():
        return db.session.scalar(select(func.count(ServiceRecord.id)))


def visit_status(app, visit_id):
    with app.app_context():
        return db.session.get(Visit, visit_id).status
