"""Visit verification in real Chromium, on a server of its own with the demo provider in service and today's
roster published: a caregiver checks out on a phone with the recipient's signature drawn on the canvas (and is
asked before a check-out with no confirmation at all); a provider admin explains exceptions from the queue
page, one and then several ticked at once, and prints a recipient's new confirmation card as a download."""

from __future__ import annotations

import math
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from servicehub.database import clock_at, utcnow
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation, services
from servicehub.visits.models import ConfirmationCard, EvvException, ServiceRecord
from tests.browser.conftest import ARTIFACTS, live_app, serving, sign_in
from tests.scheduling.test_pages import link_caregiver_to_the_busiest_worker, serve_district


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo provider in service on a server of its own: today's roster published, the caregiver account on
    its busiest route, and two visits of another worker recorded from the office, late and far from the address
    (twelve exceptions waiting for the provider's explanation)."""
    directory = tmp_path_factory.mktemp("evv-live")
    app = live_app(directory, SERVICEHUB_RUN_INLINE=True)
    with app.app_context():
        district = serve_district()
        run = scheduling.start_run(district.provider, district.own, district.today, time_limit_s=1)
        scheduling.publish_run(district.provider, run.id)
        district.caregiver_worker, district.stops = link_caregiver_to_the_busiest_worker(district, district.today)
        office = db.session.scalars(select(Visit).where(Visit.service_date == district.today,
                                                        Visit.status == "published",
                                                        Visit.worker_id != district.caregiver_worker)
                                    .order_by(Visit.planned_start, Visit.id)).all()[:2]
        for visit in office:
            lat, lon, start = visit.recipient.lat, visit.recipient.lon, visit.planned_start
            with clock_at(start + timedelta(minutes=40)):
                services.check_in(district.provider, visit.id, str(uuid.uuid4()), lat + 0.005, lon)
            with clock_at(start + timedelta(minutes=50)):
                services.check_out(district.provider, visit.id, str(uuid.uuid4()),
                                   {"lat": lat, "lon": lon, "tasks": [], "confirmation_method": "none"})
        district.office_visits = [v.id for v in office]
        district.office_recipient = office[0].recipient_id
        district.office_recipient_name = office[0].recipient.name
    with serving(app) as server:
        yield server, district


def shot(page, name: str) -> None:
    """Keep a screenshot of the page to look at (test-artifacts/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def caregivers_phone(browser):
    """A phone-sized page like the `phone` fixture's, whose checks allow the answers a test expects to be refused
    (`page.expected_refusals`: URLs answered 4xx on purpose): script errors, CSP violations and any other failed
    load still fail the test."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.expected_refusals = set()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not m.text.startswith(
        "Failed to load resource") else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and (
        r.request.resource_type != "document") and r.url not in page.expected_refusals else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    yield page
    context.close()
    assert not problems, "the page logged errors (CSP violations, script errors):\n" + "\n".join(problems)


def sign_on(page, canvas) -> None:
    """Draw a signature on the canvas with the pointer: a wave across the box and a stroke through it."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + box["height"] / 2)
    page.mouse.down()
    for i in range(60):
        page.mouse.move(x + 20 + i * (box["width"] - 40) / 60, y + box["height"] / 2 + 35 * math.sin(i / 4))
    page.mouse.up()
    page.mouse.move(x + 60, y + 20)
    page.mouse.down()
    page.mouse.move(x + 95, y + box["height"] - 20, steps=12)
    page.mouse.up()


@pytest.mark.browser
def test_a_caregiver_checks_out_with_the_recipients_signature_drawn_on_the_phone(caregivers_phone, served):
    phone = caregivers_phone
    server, district = served
    first, second = district.stops[:2]
    with server.app.app_context():
        place = {v.id: (v.recipient.lat, v.recipient.lon) for v in db.session.scalars(
            select(Visit).where(Visit.id.in_([first, second])))}
        recipient = db.session.get(Visit, first).recipient
        _card, _replaced, secret = cards.new_card(recipient, district.provider)  # the recipient's card
        db.session.commit()
        valid = set(confirmation.printed_list(secret)) | {confirmation.phone_code(secret, utcnow() + timedelta(
            seconds=30 * k)) for k in range(-25, 25)}
        wrong = next(c for c in (f"{n:06d}" for n in range(100_000, 1_000_000, 7919)) if c not in valid)
    phone.context.grant_permissions(["geolocation"], origin=server.url)
    phone.context.set_geolocation({"latitude": place[first][0], "longitude": place[first][1]})
    sign_in(phone, server, "caregiver")
    phone.wait_for_url(f"{server.url}/")
    phone.goto(f"{server.url}/my/route")
    card = phone.locator(f"li.stop-card[data-visit='{first}']")
    card.locator("button[data-testid=check-in]").click()
    form = card.locator("[data-testid=check-out-form]")
    form.wait_for()
    code = form.locator("input[name=confirmation_code]")
    assert code.get_attribute("pattern") == "[0-9]{6}" and code.get_attribute("maxlength") == "6"
    assert "6 位数字" in form.locator("[data-field=confirmation_code] .hint").inner_text()
    assert "无对象确认" in form.locator("[data-testid=no-confirmation-hint]").inner_text()
    pad = form.locator("canvas[data-signature]")
    box = pad.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 140 and box["x"] + box["width"] <= 390  # fits the phone
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # A code of the old kind is refused on the phone before anything is sent.
    code.fill("1234")
    form.locator("button[data-testid=check-out]").click()
    message = card.locator("[data-testid=record-message]")
    assert message.inner_text() == "确认码为 6 位数字。没有确认码时，请服务对象签名确认。"
    # A wrong code goes to the server, which refuses it (422, by its code): the page says what to ask for.
    code.fill(wrong)
    phone.expected_refusals.add(f"{server.url}/api/v1/visits/{first}/check-out")
    with phone.expect_response(f"{server.url}/api/v1/visits/{first}/check-out") as answer:
        form.locator("button[data-testid=check-out]").click()
    assert answer.value.status == 422 and answer.value.json()["code"] == "code_wrong"
    assert message.inner_text() == "确认码不正确：请对象报出手机上当前显示的确认码，或确认卡上下一个未划掉的确认码。"
    assert code.get_attribute("aria-invalid") == "true" and card.get_attribute("data-status") == "in_progress"
    phone.expected_refusals.clear()
    code.fill("")

    # A stroke too small to be a signature is refused on the phone; cleared, the box is blank again.
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    phone.mouse.move(box["x"] + 30, box["y"] + 30)
    phone.mouse.down()
    phone.mouse.move(box["x"] + 36, box["y"] + 33, steps=2)
    phone.mouse.up()
    assert pad.get_attribute("data-signed") == "true"
    form.locator("button[data-testid=check-out]").click()
    assert message.inner_text() == "签名太小，无法作为确认：请对象在签名框内完整签名。"
    form.locator("[data-testid=signature-clear]").click()
    assert pad.get_attribute("data-signed") == "false" and message.is_hidden()  # the refusal goes with it
    assert form.locator("[data-testid=signature-state]").inner_text() == "未签名"

    # The recipient signs across the box; the caregiver ticks a task, the satisfaction, and checks out.
    sign_on(phone, pad)
    assert form.locator("[data-testid=signature-state]").inner_text().strip() == "✓ 已签名"
    form.locator("input[name=tasks]").first.check()
    form.locator("label.score", has_text="很满意").click()
    shot(phone, "evv-check-out-signed-phone")
    with phone.expect_response(f"{server.url}/api/v1/visits/{first}/check-out") as answer:
        form.locator("button[data-testid=check-out]").click()
    assert answer.value.status == 201, answer.value.text()
    sent = answer.value.request.post_data_json
    assert sent["confirmation_method"] == "signature" and sent["signature"].startswith("data:image/png;base64,")
    assert "confirmation_code" not in sent
    done = card.locator("[data-outcome=completed]")
    done.wait_for()
    assert "服务对象已签名" in done.inner_text() or "签名" in done.inner_text()
    with server.app.app_context():
        delivery = db.session.scalar(select(ServiceRecord).where(ServiceRecord.visit_id == first,
                                                                 ServiceRecord.kind == "delivery"))
        assert delivery.confirmation["method"] == "signature"
        assert confirmation.signature_problem(delivery.confirmation["signature"]) is None  # a real signature
        codes = set(db.session.scalars(select(EvvException.code).where(EvvException.visit_id == first)))
        assert "no_confirmation" not in codes

    # The next stop: neither a code nor a signature asks first; declining sends nothing.
    phone.context.set_geolocation({"latitude": place[second][0], "longitude": place[second][1]})
    next_card = phone.locator(f"li.stop-card[data-visit='{second}']")
    next_card.locator("button[data-testid=check-in]").click()
    next_form = next_card.locator("[data-testid=check-out-form]")
    next_form.wait_for()
    asked = []
    phone.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    posts = []
    phone.on("request", lambda r: posts.append(r.url) if r.url.endswith(f"/{second}/check-out") else None)
    next_form.locator("button[data-testid=check-out]").click()
    phone.wait_for_timeout(300)
    assert asked and asked[0].startswith("既没有确认码也没有签名") and posts == []
    assert next_card.get_attribute("data-status") == "in_progress"


@pytest.mark.browser
def test_a_provider_explains_exceptions_from_the_queue_and_prints_a_card(page, served):
    server, district = served
    sign_in(page, server, "provider")
    page.wait_for_url(f"{server.url}/")
    waiting = int(page.locator("[data-testid=waiting-exceptions]").inner_text())
    assert waiting >= 12
    page.click("nav [data-nav=exceptions]")
    page.wait_for_url(re.compile(r"/exceptions$"))
    assert page.locator("h1").inner_text().startswith("异常处理")
    rows = page.locator("tr[data-exception]")
    assert rows.count() == waiting
    assert int(page.locator("[data-count-code=late_start] strong").inner_text()) >= 2  # the office's two, at least
    assert page.locator("details[data-testid=bulk]").get_attribute("open") is None  # folded until a row is ticked
    shot(page, "evv-queue-provider-desktop")

    # Every undecided one (explained ones stay on this list until the bureau decides them).
    page.goto(f"{server.url}/exceptions?status=undecided")
    # One: open its step, choose the reason, say what happened, send.
    late = page.locator(f"tr[data-exception][data-code=late_start][data-visit='{district.office_visits[0]}']")
    exception_id = late.get_attribute("data-exception")
    late.locator("[data-step=resolve]").click()
    late.locator("select[name=reason_code]").select_option("traffic_delay")
    late.locator("textarea[name=note]").fill("路上堵车，已提前电话告知家属")
    late.locator("[data-confirm-step=resolve]").click()
    page.wait_for_load_state()
    assert page.locator(".flash.success").inner_text() == "已说明：迟到签入（交通延误），等待民政部门审核。"
    late = page.locator(f"tr[data-exception='{exception_id}']")
    assert late.get_attribute("data-status") == "resolved"
    assert "路上堵车，已提前电话告知家属" in late.locator("[data-testid=explanation]").inner_text()

    # Several: ticking a row unfolds the bulk step; one reason and note for all of them.
    ids = [page.locator(f"tr[data-exception][data-code=far_check_in][data-visit='{visit}']").get_attribute(
        "data-exception") for visit in district.office_visits]
    for exception in ids:
        page.locator(f"tr[data-exception='{exception}'] input[name=exception_ids]").check()
    bulk = page.locator("details[data-testid=bulk]")
    assert bulk.get_attribute("open") is not None
    bulk.locator("select[name=reason_code]").select_option("gps_inaccurate")
    bulk.locator("textarea[name=note]").fill("高层住宅，室内定位偏差")
    bulk.locator("button[data-testid=bulk-submit]").click()
    page.wait_for_load_state()
    assert page.locator(".flash.success").inner_text() == "已说明 2 条异常，等待民政部门审核。"
    for exception in ids:
        assert page.locator(f"tr[data-exception='{exception}']").get_attribute("data-status") == "resolved"
    with server.app.app_context():
        explained = db.session.scalars(select(EvvException).where(EvvException.status == "resolved")).all()
        assert {str(e.id) for e in explained} == {exception_id, *ids}
        assert {e.resolved_by for e in explained} == {"provider"}

    # The exception's page: its steps and the visit's ledger entries.
    page.goto(f"{server.url}/exceptions/{exception_id}")
    assert page.locator("ol[data-testid=steps] > li").count() == 2
    assert page.locator("tr[data-entry]").count() == 2
    shot(page, "evv-exception-desktop")

    # A recipient's new card, printed from their page: asked first, then saved as a PDF download.
    page.goto(f"{server.url}/recipients/{district.office_recipient}")
    page.locator("[data-testid=no-cards]").wait_for()  # the list, loaded into the page
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    with page.expect_download() as downloaded:
        page.click("[data-testid=print-card]")
    assert downloaded.value.suggested_filename == f"confirmation-card-{district.office_recipient}-1.pdf"
    assert Path(downloaded.value.path()).read_bytes().startswith(b"%PDF")
    assert asked and asked[0].startswith(f"确定为{district.office_recipient_name}打印新的确认卡吗")
    page.locator("tr[data-card='1'][data-state=in_force]").wait_for()  # the list loaded again
    assert page.locator("[data-testid=card-message]").inner_text().startswith("确认卡已打印")
    with server.app.app_context():
        assert db.session.scalars(select(ConfirmationCard.card_no).where(
            ConfirmationCard.recipient_id == district.office_recipient)).all() == [1]
    shot(page, "evv-recipient-card-desktop")


@pytest.mark.browser
def test_the_queue_reads_well_on_a_phone(phone, served):
    server, _district = served
    sign_in(phone, server, "provider")
    phone.wait_for_url(f"{server.url}/")
    phone.goto(f"{server.url}/exceptions")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    first = phone.locator("tr[data-exception]").first
    box = first.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # each exception a card of its own
    first.locator("[data-step]").click()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "evv-queue-provider-phone")
