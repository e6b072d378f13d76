"""Registry pages in real Chromium: a manager works a need list, a provider admin sees its own
organisation, and the recipient page fits a phone."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.conftest import sign_in
from tests.registry import factories as make


def unique(name: str) -> str:
    """A name no other test on the shared live server uses."""
    return f"{name}{uuid.uuid4().hex[:4]}"


@pytest.mark.browser
def test_a_manager_filters_opens_a_recipient_and_adds_a_need(page, live_server):
    family = unique("")  # both names carry it, so a search finds just these two whatever else is registered
    with live_server.app.app_context():
        waiting = make.recipient(name=f"王秀英{family}")
        make.need(waiting.id)
        served = make.recipient(name=f"李国华{family}")
        waiting_id, served_id = waiting.id, served.id
    sign_in(page, live_server, "manager")
    page.wait_for_url(f"{live_server.url}/")
    page.click("nav [data-nav=recipients]")
    page.wait_for_url(re.compile(r"/recipients$"))
    page.fill("input[name=q]", family)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(rf"q={family}"))
    assert page.locator("table[data-testid=recipients] tr[data-recipient]").count() == 2

    page.select_option("select[name=has_unmet_need]", "yes")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(r"has_unmet_need=yes"))
    assert page.locator("table[data-testid=recipients] tr[data-recipient]").count() == 1
    assert page.locator(f"tr[data-recipient='{served_id}']").count() == 0
    row = page.locator(f"tr[data-recipient='{waiting_id}']")
    assert row.locator("[data-testid=open-needs]").inner_text() == "1"

    row.locator("a").click()
    page.wait_for_url(f"{live_server.url}/recipients/{waiting_id}")
    # A district manager sees the ID number in full.
    assert "*" not in page.locator("[data-testid=id-number]").inner_text()
    form = page.locator("[data-testid=need-form]")
    form.locator("select[name=service_type]").select_option("LC01")
    # Choosing the service fills in its usual window and duration (servicehub.js).
    assert form.locator("input[name=window_start]").input_value() == "10:30"
    assert form.locator("input[name=window_end]").input_value() == "12:30"
    form.locator("input[name=quantity]").fill("2")
    form.locator("input[name=preferred_days][value='1']").check()
    form.locator("input[name=preferred_days][value='4']").check()
    form.locator("select[name=priority]").select_option("urgent")
    form.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(rf"/recipients/{waiting_id}#needs$"))
    assert page.locator(".flash.success").is_visible()
    added = page.locator("table[data-testid=needs] tr[data-service-type=LC01]")
    assert added.count() == 1
    assert added.locator("[data-priority=urgent]").is_visible()
    assert page.locator("table[data-testid=needs] tbody tr[data-need]").count() == 2

    page.goto(f"{live_server.url}/recipients?q={family}")
    assert page.locator(f"tr[data-recipient='{waiting_id}'] [data-testid=open-needs]").inner_text() == "2"


@pytest.mark.browser
def test_a_bad_need_comes_back_with_the_error_at_the_field(page, live_server):
    with live_server.app.app_context():
        recipient_id = make.recipient(name=unique("张桂兰")).id
    sign_in(page, live_server, "manager.dagang")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/recipients/{recipient_id}")
    form = page.locator("[data-testid=need-form]")
    form.locator("select[name=service_type]").select_option("LC02")
    form.locator("input[name=quantity]").fill("1")
    form.locator("input[name=window_start]").fill("09:00")
    form.locator("input[name=window_end]").fill("09:30")
    form.locator("button[type=submit]").click()
    error = page.locator("[data-testid=need-form] [data-field=duration_min] .field-error")
    error.wait_for()
    assert "do not fit in a 30-minute window" in error.inner_text()
    assert page.locator("[data-testid=need-form] input[name=window_end]").input_value() == "09:30"
    assert page.locator("table[data-testid=needs] tbody tr[data-need]").count() == 0


@pytest.mark.browser
def test_a_provider_admin_sees_its_organisation_contracts_and_workers_only(page, live_server):
    with live_server.app.app_context():
        own, other = make.organisation_ids()[:2]
        own_contract = make.contract(own).id
        other_contract = make.contract(other).id
        own_worker = make.worker(own, name=unique("赵敏")).id
        other_worker = make.worker(other, name=unique("周强")).id
    sign_in(page, live_server, "provider")
    page.wait_for_url(f"{live_server.url}/")
    page.click("nav [data-nav=organisations]")
    page.wait_for_url(f"{live_server.url}/organisations/{own}")
    assert page.locator(f"[data-contract='{own_contract}']").is_visible()
    assert (
        page.locator(f"[data-contract='{own_contract}'] [data-testid=budget]").inner_text() == "¥100,000.00"
    )
    assert page.locator(f"[data-contract='{other_contract}']").count() == 0
    assert page.locator(f"tr[data-worker='{own_worker}']").is_visible()

    page.click("nav [data-nav=workers]")
    page.wait_for_url(re.compile(r"/workers$"))
    assert page.locator(f"tr[data-worker='{own_worker}']").is_visible()
    assert page.locator(f"tr[data-worker='{other_worker}']").count() == 0
    assert page.locator("select[name=organisation_id]").count() == 0

    for url in (f"/organisations/{other}", f"/contracts/{other_contract}", f"/workers/{other_worker}"):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 404, url
    assert page.goto(f"{live_server.url}/recipients/new").status == 403


@pytest.mark.browser
def test_the_recipient_page_fits_a_phone(phone, live_server):
    with live_server.app.app_context():
        recipient = make.recipient(name=unique("陈桂英"), address="大港街道赵声路188号金港花园12幢3单元502室")
        for code in ("LC01", "LC02", "RH01"):
            make.need(recipient.id, service_type=code, preferred_days=[1, 2, 3, 4, 5])
        recipient_id = recipient.id
    sign_in(phone, live_server, "manager")
    phone.wait_for_url(f"{live_server.url}/")
    phone.goto(f"{live_server.url}/recipients/{recipient_id}")
    assert phone.locator("table[data-testid=needs] tbody tr[data-need]").count() == 3
    # The page never scrolls sideways: on a phone each need is a small card, not a wide table row.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert phone.locator("table[data-testid=needs] thead").is_hidden()
    submit = phone.locator("[data-testid=need-form] button[type=submit]")
    submit.scroll_into_view_if_needed()
    assert submit.is_visible()
    box = submit.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.goto(f"{live_server.url}/recipients")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
