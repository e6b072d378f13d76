"""A day for browser tests that start from recorded visits: the demo provider in service on a server of its own,
today's roster published, and its caregivers' check-ins and check-outs written through the services."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from servicehub.auth.permissions import Principal, Role
from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation, services
from tests.scheduling.test_pages import serve_district


def first_published_visit() -> tuple[Visit, str]:
    """Serve the demo provider and publish today's roster (inside an app context); its first visit with a worker
    and the secret of a card printed for its recipient."""
    district = serve_district()
    run = scheduling.start_run(district.provider, district.own, district.today, time_limit_s=1)
    scheduling.publish_run(district.provider, run.id)
    visit = db.session.scalars(select(Visit).where(Visit.service_date == district.today,
                                                   Visit.status == "published", Visit.worker_id.is_not(None))
                               .order_by(Visit.planned_start, Visit.id)).first()
    _, _, secret = cards.new_card(visit.recipient, services.SYSTEM)
    db.session.commit()
    return visit, secret


def record_cleanly(visit: Visit, secret: str, late: timedelta = timedelta(0)) -> None:
    """The visit's own caregiver, `late` after the planned start, ~20 m from the door, every task, the recipient's
    phone code, for the planned duration."""
    caregiver = Principal(user_id=None, username=visit.worker.name, role=Role.CAREGIVER,
                          organisation_id=visit.organisation_id, worker_id=visit.worker_id)
    lat, lon = visit.recipient.lat + 0.00018, visit.recipient.lon
    arrived = visit.planned_start + late
    left = arrived + timedelta(minutes=visit.duration_min)
    with clock_at(arrived):
        services.check_in(caregiver, visit.id, str(uuid.uuid4()), lat, lon)
    with clock_at(left):
        services.check_out(caregiver, visit.id, str(uuid.uuid4()), {
            "lat": lat, "lon": lon, "tasks": [item["code"] for item in visit.service_type.checklist],
            "confirmation_method": "code", "confirmation_code": confirmation.phone_code(secret, left),
            "satisfaction": 5, "notes": ""})
