"""Shared scheduling fixtures: the demo provider with three carers and five daily needs, visits generated."""

from datetime import time as clock
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.database import utcnow
from servicehub.matching import services as matching
from servicehub.registry.demo_loader import link_demo_caregiver
from servicehub.scheduling import services
from tests.registry import factories as f

EVERY_DAY = {day: [["08:00", "12:00"], ["13:30", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
PLACES = [(32.200, 119.680), (32.205, 119.690), (32.210, 119.685), (32.198, 119.692), (32.207, 119.678)]


@pytest.fixture
def inline(app):
    """Solver runs finish inside the request (restored afterwards)."""
    app.config["SERVICEHUB_RUN_INLINE"] = True
    yield app
    app.config["SERVICEHUB_RUN_INLINE"] = False


def accept_all(organisation_id: int, need_ids: list[int]) -> None:
    """Match the needs, offer the proposals and accept them as the organisation: active referrals."""
    matching.run_matching(COMMAND_LINE, need_ids=need_ids)
    proposals = [r.id for r in matching.list_referrals(COMMAND_LINE, status="proposed", page_size=500)[0]]
    matching.offer_many(COMMAND_LINE, proposals)
    provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=organisation_id)
    for referral_id in proposals:
        matching.act(provider, referral_id, "accept")


@pytest.fixture
def served(inline, demo, auth_headers):
    """The demo provider with three carers (one a man) every day, five recipients needing daily cleaning
    (one asks for a male carer), all referred to it and accepted; visits generated over the horizon."""
    app = inline
    with app.app_context():
        org = f.organisation_ids()[0]
        workers = [f.worker(org, name=name, gender=gender, availability=EVERY_DAY, start_lat=32.203, start_lon=119.684,
                            employee_no=f"A{k}")
                   for k, (name, gender) in enumerate([("张护理", "female"), ("李护理", "female"), ("王护理", "male")])]
        f.contract(org)
        people = [f.recipient(name=f"对象{k}", id_number=f.id_number(female=k % 2 == 0), lat=lat, lon=lon,
                              carer_gender="male" if k == 4 else "any")
                  for k, (lat, lon) in enumerate(PLACES)]
        needs = [f.need(p.id, quantity=7, window_start=clock(8, 30), window_end=clock(16, 30), duration_min=60).id
                 for p in people]
        accept_all(org, needs)
        link_demo_caregiver()
        report = services.generate_visits(COMMAND_LINE)
        return {"org": org, "workers": [w.id for w in workers], "recipients": [p.id for p in people],
                "needs": needs, "generated": report.created, "provider": auth_headers("provider"),
                "caregiver": auth_headers("caregiver"), "auditor": auth_headers("auditor"),
                "admin": auth_headers("admin"),
                "manager": auth_headers("manager"), "manager.dagang": auth_headers("manager.dagang")}


def district_today():
    return utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()  # the suite's clock (tests/conftest.py)


def tomorrow():
    return district_today() + timedelta(days=1)


