"""An application for help in real Chromium, on a server of its own: on a phone (375 × 812) someone files an
emergency application on /apply without signing in (answering the sum the page asks) and gets a reference; the
town manager of 大港 finds it in the work queue, opens it, records the first contact and approves emergency help
at once (先救助后补材料), registering the person; the demo provider accepts the referral and the person's needs
are being served, urgent."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.extensions import db
from servicehub.intake.models import Application
from servicehub.matching import services as matching
from servicehub.registry.models import Need
from tests.browser.conftest import ARTIFACTS, _page, live_app, serving, sign_in
from tests.registry import factories as f
from tests.support import create_demo_accounts, load_demo_district

GANGNAN = "321191001001"  # 港南社区 in 大港街道
PHONE_WIDTH = 375


@pytest.fixture(scope="module")
def intake_server(tmp_path_factory):
    """A server of its own (the flood limit counts this machine's address, and the contract below would change
    what matching proposes on the shared server): the demo district and accounts, and the demo provider with a
    contract for meals and cleaning in 大港 (LC01, LC02) and a worker, so that the needs can be served."""
    directory = tmp_path_factory.mktemp("intake-live")
    app = live_app(directory)
    with app.app_context():
        load_demo_district()
        create_demo_accounts()
        organisation = f.organisation_ids()[0]
        f.contract(organisation)
        f.worker(organisation)
    with serving(app) as server:
        yield server, organisation


@pytest.fixture
def small_phone(browser, request):
    """A small phone's screen (375 × 812), touch."""
    yield from _page(browser, request, viewport={"width": PHONE_WIDTH, "height": 812}, is_mobile=True,
                     has_touch=True, device_scale_factor=2)


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"the page is {width}px wide on a {PHONE_WIDTH}px screen"


@pytest.mark.browser
def test_an_emergency_application_from_a_phone_becomes_urgent_help_being_served(small_phone, page, intake_server):
    server, organisation = intake_server
    phone = small_phone

    # --- someone applies on a phone, without signing in -------------------------------------------
    phone.goto(f"{server.url}/apply")
    assert phone.locator("h1").inner_text() == "申请救助"
    no_horizontal_scroll(phone)
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "intake-apply-375.png"), full_page=True)
    submit = phone.locator("[data-testid=submit]")
    assert submit.bounding_box()["height"] >= 48 and submit.bounding_box()["width"] > 300
    meal = phone.locator("label.tick:has(input[value=LC01])")
    assert meal.bounding_box()["height"] >= 44  # a finger's worth

    phone.fill("input[name=name]", "王阿姨")
    phone.fill("input[name=phone]", "138 0013 8000")
    phone.select_option("select[name=area]", GANGNAN)
    phone.fill("input[name=address]", "大港街道幸福路12号")
    phone.fill("textarea[name=situation]", "家中失火，老人独居，暂无法做饭")
    phone.locator("label.tick.emergency").tap()
    meal.tap()
    phone.locator("label.tick:has(input[value=LC02])").tap()
    phone.fill("input[name=contact_name]", "王小明")
    phone.fill("input[name=contact_phone]", "13900139000")
    a, b = (int(x) for x in phone.locator("[data-testid=challenge]").inner_text().split("+"))
    phone.fill("input[name=challenge_answer]", str(a + b))
    no_horizontal_scroll(phone)
    submit.tap()
    phone.wait_for_url(re.compile(r"/apply/done$"))
    reference = phone.locator("[data-testid=reference]").inner_text()
    assert re.fullmatch(r"SQ-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", reference)
    assert "紧急申请：工作人员将在" in phone.locator("[data-testid=due-by]").inner_text()
    assert phone.locator("[data-testid=reference]").bounding_box()["height"] > 40  # big and clear
    no_horizontal_scroll(phone)
    phone.screenshot(path=str(ARTIFACTS / "intake-filed-375.png"), full_page=True)
    with server.app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == reference))
        assert application.urgency == "emergency" and application.town.code == f.DAGANG
        application_id = application.id

    # --- the town manager finds it in the queue, contacts and approves emergency help ---------------
    sign_in(page, server, "manager.dagang")
    page.wait_for_url(f"{server.url}/")
    page.click("nav [data-nav=intake]")
    page.wait_for_url(re.compile(r"/intake$"))
    row = page.locator(f"tr[data-reference='{reference}']")
    assert row.locator("[data-urgency=emergency]").is_visible()
    assert "待联系" in row.inner_text()
    row.locator("a.reference-link").click()
    page.wait_for_url(re.compile(rf"/intake/{application_id}$"))
    assert "家中失火" in page.locator("[data-testid=situation]").inner_text()

    page.select_option("[data-testid=step-form] select[name=kind]", "contacted")
    page.fill("[data-testid=step-form] textarea[name=note]", "电话联系，已安排今天送餐")
    with page.expect_navigation(url=re.compile(rf"/intake/{application_id}#record-step$")):  # the same page
        page.click("[data-testid=record-step]")
    assert "已记录：已联系" in page.locator(".flash.success").inner_text()
    steps = page.locator("[data-testid=steps] li")
    assert steps.count() == 2 and "manager.dagang" in steps.nth(1).inner_text()

    form = page.locator("[data-testid=approve-form]")
    assert form.locator("input[name=provisional]").is_checked()  # an emergency: help first, documents later
    assert form.locator("input[name=service_types][value=LC01]").is_checked()
    assert form.locator("input[name=service_types][value=LC02]").is_checked()
    form.locator("input[name=id_number]").fill(f.id_number(female=True))
    form.locator("select[name=assistance_class]").select_option("dibao")
    form.locator("select[name=area]").select_option(GANGNAN)
    form.locator("input[name=lives_alone]").check()
    form.locator("[data-testid=approve]").click()
    page.wait_for_url(re.compile(rf"/intake/{application_id}(#approve)?$"))
    assert "已批准先行救助" in page.locator(".flash.success").inner_text()
    assert page.locator("h1 [data-status=provisional]").is_visible()
    assert page.locator("[data-testid=documents] tr[data-document]").count() == 3
    assert page.locator("[data-testid=matching-link]").is_visible()

    # --- the demo provider accepts the referral: the needs are being served, urgent ------------------
    with server.app.app_context():
        application = db.session.get(Application, application_id)
        recipient_id = application.recipient_id
        need_ids = list(db.session.scalars(select(Need.id).where(Need.recipient_id == recipient_id)))
        assert len(need_ids) == 2
        proposed = [r.id for r in matching.list_referrals(COMMAND_LINE, status="proposed", page_size=100)[0]
                    if r.need_id in need_ids]
        assert len(proposed) == 2
        matching.offer_many(COMMAND_LINE, proposed)
        provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=organisation)
        for referral_id in proposed:
            matching.act(provider, referral_id, "accept")
        db.session.remove()
        needs = db.session.scalars(select(Need).where(Need.id.in_(need_ids))).all()
        assert {n.status for n in needs} == {"active"} and {n.priority for n in needs} == {"urgent"}

    page.click("[data-testid=recipient-link]")
    page.wait_for_url(re.compile(rf"/recipients/{recipient_id}$"))
    rows = page.locator("[data-testid=needs] tbody tr[data-need]")
    assert rows.count() == 2
    for k in range(2):
        assert rows.nth(k).locator("[data-need-status=active]").is_visible()
        assert rows.nth(k).locator("[data-priority=urgent]").is_visible()

    # --- and the applicant sees where it is, on the phone -----------------------------------------
    phone.click("[data-testid=status-link]")
    phone.wait_for_url(re.compile(r"/apply/status\?reference="))
    phone.fill("input[name=phone]", "13800138000")
    phone.locator("button[type=submit]").tap()
    result = phone.locator("[data-testid=status-result]")
    result.wait_for()
    assert result.locator("[data-status=provisional]").is_visible()
    assert [phone.locator("[data-testid=steps] li").nth(k).get_attribute("data-step") for k in range(3)] == [
        "submitted", "contacted", "provisional"]
    assert "已安排今天送餐" not in result.inner_text() and "manager.dagang" not in result.inner_text()
    no_horizontal_scroll(phone)


@pytest.mark.browser
def test_the_district_enters_a_holiday_and_a_weekend_day_worked_in_the_working_calendar(page, live_server):
    sign_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/intake")
    page.click("[data-testid=calendar-link]")
    assert page.locator("h1").inner_text().startswith("工作日历")
    year = int(page.locator("[data-testid=year]").inner_text())
    page.click("[data-testid=next-year]")
    assert page.locator("[data-testid=year]").inner_text() == str(year + 1)
    assert page.locator("[data-testid=no-days]").is_visible()

    form = page.locator("[data-testid=day-form]")
    day = next(date(year + 1, 2, d) for d in range(8, 15) if date(year + 1, 2, d).weekday() == 3).isoformat()  # a Thursday
    form.locator("input[name=day]").fill(day)
    form.locator("select[name=kind]").select_option("workday")  # a weekday cannot be worked in exchange
    form.locator("button[type=submit]").click()
    assert "只有周六或周日可以调休上班" in page.locator("[data-testid=day-form]").inner_text()

    form.locator("select[name=kind]").select_option("holiday")
    form.locator("input[name=name]").fill("春节")
    form.locator("button[type=submit]").click()
    row = page.locator(f"tr[data-day='{day}']")
    assert row.get_attribute("data-kind") == "holiday"
    assert "放假" in row.inner_text() and "春节" in row.inner_text() and "周四" in row.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "intake-calendar.png"), full_page=True)

    row.locator("[data-testid=remove-day] button").click()
    assert page.locator(f"tr[data-day='{day}']").count() == 0
    assert page.locator("[data-testid=no-days]").is_visible()
