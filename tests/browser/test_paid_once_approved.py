"""Only verified visits are paid, in real Chromium: a caregiver's late visit waits in the exception queue and out
of the month's settlement; the provider explains it from the queue page, a district manager approves it from the
queue page, and the settlement page then owes exactly that visit more — no other figure moves."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from servicehub.auth.permissions import Principal, Role
from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.matching.models import Referral
from servicehub.registry.models import ContractLine
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation, services
from servicehub.visits.models import EvvException
from tests.browser.conftest import live_app, serving, sign_in
from tests.scheduling.test_pages import serve_district

LATE = timedelta(minutes=25)  # past the 15-minute grace, within the 30-minute tolerance of the end


def _late_but_otherwise_clean(visit: Visit, secret: str) -> None:
    """The visit's own caregiver, 25 minutes late, ~20 m from the door, every task, the recipient's phone code."""
    caregiver = Principal(user_id=None, username=visit.worker.name, role=Role.CAREGIVER,
                          organisation_id=visit.organisation_id, worker_id=visit.worker_id)
    lat, lon = visit.recipient.lat + 0.00018, visit.recipient.lon
    arrived = visit.planned_start + LATE
    left = arrived + timedelta(minutes=visit.duration_min)
    with clock_at(arrived):
        services.check_in(caregiver, visit.id, str(uuid.uuid4()), lat, lon)
    with clock_at(left):
        services.check_out(caregiver, visit.id, str(uuid.uuid4()), {
            "lat": lat, "lon": lon, "tasks": [item["code"] for item in visit.service_type.checklist],
            "confirmation_method": "code", "confirmation_code": confirmation.phone_code(secret, left),
            "satisfaction": 5, "notes": ""})


@pytest.fixture(scope="module")
def late_visit(tmp_path_factory):
    """The demo provider in service on a server of its own, today's roster published, and one visit recorded
    late by its caregiver: its only exception is `late_start`."""
    directory = tmp_path_factory.mktemp("paid-live")
    app = live_app(directory, SERVICEHUB_RUN_INLINE=True)
    with app.app_context():
        district = serve_district()
        run = scheduling.start_run(district.provider, district.own, district.today, time_limit_s=1)
        scheduling.publish_run(district.provider, run.id)
        visit = db.session.scalars(select(Visit).where(Visit.service_date == district.today,
                                                       Visit.status == "published", Visit.worker_id.is_not(None))
                                   .order_by(Visit.planned_start, Visit.id)).first()
        _, _, secret = cards.new_card(visit.recipient, services.SYSTEM)
        db.session.commit()
        _late_but_otherwise_clean(visit, secret)
        codes = set(db.session.scalars(select(EvvException.code).where(EvvException.visit_id == visit.id)))
        assert codes == {"late_start"}, codes
        referral = db.session.get(Referral, visit.referral_id)
        price = db.session.get(ContractLine, referral.contract_line_id).unit_price_fen
        facts = {"visit": visit.id, "contract": referral.contract_id, "month": district.today.strftime("%Y-%m"),
                 "price_fen": price}
    with serving(app) as server:
        yield server, facts


def _settlement(page, server, facts) -> dict:
    """The settlement page's figures for the visit's contract and month."""
    page.goto(f"{server.url}/reports/settlement?contract_id={facts['contract']}&month={facts['month']}")
    shown = page.locator("[data-testid=settlement]")
    total = page.locator("tr[data-testid=settlement-total]")
    return {"total_fen": int(shown.get_attribute("data-total-fen")),
            "verified": int(total.locator("[data-figure=verified]").inner_text()),
            "unverified": int(total.locator("[data-figure=unverified]").inner_text()),
            "delivered": int(total.locator("[data-figure=delivered]").inner_text()),
            "waiting": page.locator(f"table[data-testid=unsettled] tr[data-visit='{facts['visit']}']").count()}


@pytest.mark.browser
def test_a_visit_is_paid_once_the_provider_explains_it_and_the_bureau_approves_it(page, late_visit):
    server, facts = late_visit

    # The manager's settlement of the month: the late visit is delivered, not verified, not paid.
    sign_in(page, server, "manager")
    page.wait_for_url(f"{server.url}/")
    before = _settlement(page, server, facts)
    assert before["waiting"] == 1 and before["unverified"] >= 1
    row = page.locator(f"table[data-testid=unsettled] tr[data-visit='{facts['visit']}']")
    assert row.locator("[data-code=late_start][data-status=open]").count() == 1

    # The provider explains it on the queue page.
    page.context.clear_cookies()
    sign_in(page, server, "provider")
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/exceptions")
    late = page.locator(f"tr[data-exception][data-code=late_start][data-visit='{facts['visit']}']")
    late.locator("[data-step=resolve]").click()
    late.locator("select[name=reason_code]").select_option("traffic_delay")
    late.locator("textarea[name=note]").fill("上一户服务延时，路上堵车，已电话告知家属")
    late.locator("[data-confirm-step=resolve]").click()
    page.wait_for_load_state()
    assert late.count() == 0  # explained: off the provider's list of what to explain
    page.goto(f"{server.url}/exceptions?status=resolved")
    assert late.get_attribute("data-status") == "resolved"
    # Explained is not paid: the organisation cannot approve its own exception, and the page offers it no way to.
    assert late.locator("[data-step=decide]").count() == 0
    page.context.clear_cookies()
    sign_in(page, server, "manager")
    page.wait_for_url(f"{server.url}/")
    assert _settlement(page, server, facts) == before

    # The district manager approves it on the queue page.
    page.goto(f"{server.url}/exceptions?status=resolved")
    late = page.locator(f"tr[data-exception][data-code=late_start][data-visit='{facts['visit']}']")
    assert "上一户服务延时" in late.locator("[data-testid=explanation]").inner_text()
    late.locator("[data-step=decide]").click()
    late.locator("button[data-decision=approve]").click()
    page.wait_for_load_state()
    assert page.locator(".flash.success").count() == 1
    assert page.locator(f"tr[data-exception][data-visit='{facts['visit']}']").count() == 0  # decided: off the list

    # The settlement owes exactly that visit more (a cleaning visit pays its line's price): nothing else moved.
    after = _settlement(page, server, facts)
    assert after == {**before, "total_fen": before["total_fen"] + facts["price_fen"],
                     "verified": before["verified"] + 1, "unverified": before["unverified"] - 1, "waiting": 0}
    assert re.search(r"\d", page.locator("[data-testid=total]").inner_text())
