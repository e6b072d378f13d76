"""Only verified visits are paid, in real Chromium: a caregiver's late visit waits in the exception queue and out
of the month's settlement; the provider explains it from the queue page, a district manager approves it from the
queue page, and the settlement page then owes exactly that visit more — no other figure moves."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from servicehub.extensions import db
from servicehub.matching.models import Referral
from servicehub.registry.models import ContractLine
from servicehub.visits.models import EvvException
from tests.browser.conftest import live_app, serving, sign_in
from tests.browser.recorded import first_published_visit, record_cleanly

LATE = timedelta(minutes=25)  # past the 15-minute grace, within the 30-minute tolerance of the end


@pytest.fixture(scope="module")
def late_visit(tmp_path_factory):
    """The demo provider in service on a server of its own, today's roster published, and one visit recorded
    late by its caregiver: its only exception is `late_start`."""
    directory = tmp_path_factory.mktemp("paid-live")
    app = live_app(directory, SERVICEHUB_RUN_INLINE=True)
    with app.app_context():
        visit, secret = first_published_visit()
        record_cleanly(visit, secret, late=LATE)
        codes = set(db.session.scalars(select(EvvException.code).where(EvvException.visit_id == visit.id)))
        assert codes == {"late_start"}, codes
        referral = db.session.get(Referral, visit.referral_id)
        price = db.session.get(ContractLine, referral.contract_line_id).unit_price_fen
        facts = {"visit": visit.id, "contract": referral.contract_id, "month": visit.service_date.strftime("%Y-%m"),
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
