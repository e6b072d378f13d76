"""Matching pages in real Chromium: a manager runs matching, reads a proposal's breakdown and an
unmatchable need's rule, offers; the provider admin accepts from the inbox; the contract's line moves.
And the inbox fits a phone."""

from __future__ import annotations

import re
import uuid

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.matching import services as matching
from tests.browser.conftest import sign_in
from tests.registry import factories as make

SERVICE = "PS01"  # 陪伴聊天: no other browser test contracts it, so the options below are ours alone


def unique(name: str) -> str:
    """A name no other test on the shared live server uses."""
    return f"{name}{uuid.uuid4().hex[:4]}"


def companionship_contract(organisation_id: int, quantity: int = 400):
    """A contract of the organisation with a PS01 line, covering 大港 only."""
    make.worker(organisation_id, name=unique("陪伴员"))
    return make.contract(
        organisation_id, lines=[{"service_type": SERVICE, "unit_price_fen": 4000, "contracted_quantity": quantity}]
    )


def line_cell(page, server, contract_id: int, testid: str) -> float:
    """A number of the contract page's PS01 line: committed, offered or remaining units."""
    page.goto(f"{server.url}/contracts/{contract_id}")
    text = page.locator(f"table[data-testid=contract-lines] tr[data-line={SERVICE}] [data-testid={testid}]").inner_text()
    return float(text.replace(",", ""))


@pytest.mark.browser
def test_a_manager_matches_and_offers_and_the_provider_accepts(page, live_server):
    with live_server.app.app_context():
        own = make.organisation_ids()[0]  # the demo provider's organisation
        contract = companionship_contract(own)
        waiting = make.recipient(name=unique("孙桂芝"))
        need_id = make.need(waiting.id, service_type=SERVICE, preferred_days=[2, 4], quantity=2).id
        far = make.recipient(name=unique("周远"), area=make.DINGMAO)
        far_need_id = make.need(far.id, service_type=SERVICE).id
        contract_id, waiting_name = contract.id, waiting.name

    sign_in(page, live_server, "manager")
    page.wait_for_url(f"{live_server.url}/")
    assert int(page.locator("[data-testid=unmet-needs]").inner_text()) >= 2
    page.click("nav [data-nav=matching]")
    page.wait_for_url(re.compile(r"/matching$"))
    page.click("[data-testid=run-matching] button[data-testid=run]")
    page.wait_for_url(re.compile(r"/matching\?run=\d+"))
    summary = page.locator("[data-testid=run-summary]")
    assert int(summary.locator("[data-testid=considered]").inner_text()) >= 2
    assert int(summary.locator("[data-testid=unmatched]").inner_text()) >= 1
    assert page.locator(".flash.success").is_visible()

    page.select_option("form[role=search] select[name=service_type]", SERVICE)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(rf"service_type={SERVICE}"))
    row = page.locator(f"tr[data-need='{need_id}']")
    assert row.get_attribute("data-result") == "proposed"
    proposal = row.locator("[data-testid=proposal]")
    assert proposal.get_attribute("data-organisation") == str(own)
    assert re.fullmatch(r"\d+%", proposal.locator("[data-testid=score]").first.inner_text())
    bars = proposal.locator("[data-testid=breakdown] li")
    assert bars.count() == 5
    distance = proposal.locator("li[data-factor=distance]")
    assert float(distance.get_attribute("data-value")) < 15  # km to the organisation's nearest base
    assert distance.get_attribute("data-weight") in distance.inner_text()
    assert proposal.locator("li[data-factor=load] .bar > span").bounding_box()["width"] > 0

    blocked = page.locator(f"tr[data-need='{far_need_id}']")
    assert blocked.get_attribute("data-result") == "unmatched"
    rule = blocked.locator(f"[data-testid=ruled-out] li[data-rule=area_not_covered][data-organisation='{own}']")
    assert rule.is_visible()
    assert "321191002" in rule.inner_text()  # the service's sentence names the town not covered

    row.locator("button[data-step=offer]").click()
    page.wait_for_url(re.compile(rf"service_type={SERVICE}"))
    assert waiting_name in page.locator(".flash.success").inner_text()
    assert page.locator(f"tr[data-need='{need_id}']").count() == 0  # no longer unmet
    with live_server.app.app_context():
        (offer,), _total = matching.list_referrals(COMMAND_LINE, need_id=need_id, status="offered")
        referral_id, held = offer.id, offer.reserved_units
    assert line_cell(page, live_server, contract_id, "offered") == pytest.approx(held)
    remaining_before = line_cell(page, live_server, contract_id, "remaining")

    page.get_by_role("button", name="退出").click()
    sign_in(page, live_server, "provider")
    page.wait_for_url(f"{live_server.url}/")
    assert int(page.locator("[data-testid=offers-waiting]").inner_text()) >= 1
    page.click("nav [data-nav=referrals]")
    page.wait_for_url(re.compile(r"/referrals$"))
    offer_row = page.locator(f"table[data-testid=offers] tr[data-referral='{referral_id}']")
    assert waiting_name in offer_row.inner_text()
    assert "*" in offer_row.locator("[data-testid=id-number]").inner_text()  # masked for a provider
    assert "每周 2 次" in offer_row.inner_text()
    offer_row.locator("button[data-step=accept]").click()
    page.wait_for_url(re.compile(r"/referrals$"))
    assert waiting_name in page.locator(".flash.success").inner_text()
    assert page.locator(f"table[data-testid=offers] tr[data-referral='{referral_id}']").count() == 0
    served = page.locator(f"table[data-testid=serving] tr[data-referral='{referral_id}']")
    assert served.locator("[data-referral-status=active]").is_visible()

    assert line_cell(page, live_server, contract_id, "offered") == 0
    assert line_cell(page, live_server, contract_id, "committed") == pytest.approx(held)
    assert line_cell(page, live_server, contract_id, "remaining") == pytest.approx(remaining_before, abs=0.01)
    assert line_cell(page, live_server, contract_id, "remaining") == pytest.approx(400 - held, abs=0.01)

    page.goto(f"{live_server.url}/referrals/{referral_id}")
    history = page.locator("table[data-testid=history] tr[data-action]")
    actions = history.evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert "offer" in actions and "accept" in actions


@pytest.mark.browser
def test_declining_without_a_reason_shows_the_field_error(page, live_server):
    with live_server.app.app_context():
        own = make.organisation_ids()[0]
        line_id = companionship_contract(own).lines[0].id
        need_id = make.need(make.recipient(name=unique("钱秀兰")).id, service_type=SERVICE).id
        referral_id = matching.act(COMMAND_LINE, matching.propose(COMMAND_LINE, need_id, line_id).id, "offer").id
    sign_in(page, live_server, "provider")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/referrals")
    offer_row = page.locator(f"tr[data-referral='{referral_id}']")
    offer_row.locator("summary[data-step=decline]").click()
    form = offer_row.locator("[data-testid=decline-form]")
    form.locator("button[type=submit]").click()
    error = page.locator("[data-testid=decline-form] [data-field=reason] .field-error")
    error.wait_for()
    assert page.locator("[data-testid=decline-form]").is_visible()  # open again, at the error
    page.locator("[data-testid=decline-form] textarea[name=reason]").fill("本月人手不足")
    page.locator("[data-testid=decline-form] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/referrals$"))  # back to the inbox it came from
    assert page.locator(".flash.success").is_visible()
    assert page.locator(f"table[data-testid=offers] tr[data-referral='{referral_id}']").count() == 0


@pytest.mark.browser
def test_the_inbox_fits_a_phone(phone, live_server):
    with live_server.app.app_context():
        own = make.organisation_ids()[0]
        line_id = companionship_contract(own).lines[0].id
        recipient = make.recipient(name=unique("欧阳秀英"), address="大港街道赵声路188号金港花园12幢3单元502室")
        for days in ([1, 3, 5], [2, 4]):
            need_id = make.need(recipient.id, service_type=SERVICE, preferred_days=days, quantity=len(days)).id
            matching.act(COMMAND_LINE, matching.propose(COMMAND_LINE, need_id, line_id).id, "offer")
    sign_in(phone, live_server, "provider")
    phone.wait_for_url(f"{live_server.url}/")
    phone.goto(f"{live_server.url}/referrals")
    assert phone.locator("table[data-testid=offers] tbody tr[data-referral]").count() >= 2
    # Each offer is a small card on a phone, never a table wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert phone.locator("table[data-testid=offers] thead").is_hidden()
    accept = phone.locator("table[data-testid=offers] button[data-step=accept]").first
    accept.scroll_into_view_if_needed()
    box = accept.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.locator("table[data-testid=offers] summary[data-step=decline]").first.click()
    assert phone.locator("table[data-testid=offers] textarea[name=reason]").first.is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
