"""Scheduling pages in real Chromium, on a server of their own with the demo district in service: the
provider admin plans tomorrow with the button (the run goes on in the background and the page follows
it), reads the timeline and the route maps, publishes; a caregiver reads today's stops on a phone, then
checks in and out of the first one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from servicehub.extensions import db
from servicehub.scheduling import services
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation
from servicehub.visits import services as records
from servicehub.visits.models import ServiceRecord
from tests.browser.conftest import live_app, serving, sign_in
from tests.scheduling.test_pages import link_caregiver_to_the_busiest_worker, serve_district


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server of its own (the shared live server keeps only the reference parts of the demo), with the
    demo district in service, today's roster published and the caregiver account on its busiest route.
    Runs requested from the pages go on in a background thread, as in production."""
    directory = tmp_path_factory.mktemp("scheduling-live")
    app = live_app(directory, SERVICEHUB_SCHEDULE_TIME_LIMIT=2)
    with app.app_context():
        district = serve_district()
        app.config["SERVICEHUB_RUN_INLINE"] = True  # today's roster, before the server starts
        run = services.start_run(district.provider, district.own, district.today, time_limit_s=2)
        services.publish_run(district.provider, run.id)
        app.config["SERVICEHUB_RUN_INLINE"] = False
        district.caregiver_worker, district.today_stops = link_caregiver_to_the_busiest_worker(district, district.today)
    with serving(app) as server:
        yield server, district


@pytest.mark.browser
def test_a_provider_admin_plans_tomorrow_reads_the_timeline_and_the_maps_and_publishes(page, served):
    server, district = served
    tomorrow = district.tomorrow.isoformat()
    sign_in(page, server, "provider")
    page.wait_for_url(f"{server.url}/")
    page.click("nav [data-nav=schedule]")
    page.wait_for_url(re.compile(r"/schedule$"))
    assert page.locator("[data-testid=day]").get_attribute("data-date") == tomorrow
    assert page.locator("[data-source=none]").inner_text() == "尚未发布"
    waiting = int(page.locator("[data-testid=waiting-count]").inner_text())
    assert waiting >= 3

    polls = []
    page.on("response", lambda r: polls.append((r.url, r.status)) if "/api/v1/schedule-runs/" in r.url else None)
    page.fill("[data-testid=run-form] input[name=time_limit_s]", "2")
    page.click("[data-testid=run-form] button[data-testid=run]")
    page.wait_for_url(re.compile(rf"/schedule\?date={tomorrow}&run=\d+"))
    run_id = page.url.rsplit("=", 1)[1]
    # The run goes on in the background (a search of 2 s at least): the page shows its progress, polls
    # it and shows the plan when it is done.
    page.locator("[data-source=preview]").wait_for(timeout=60_000)
    assert polls and all(url.endswith(f"/api/v1/schedule-runs/{run_id}") and status == 200 for url, status in polls)
    assert page.locator("[data-source=preview]").inner_text() == f"方案预览 (运行 #{run_id})"
    assert page.locator("[data-testid=run-progress]").count() == 0
    placed = int(page.locator("[data-testid=count-placed]").inner_text())
    unplaced = int(page.locator("[data-testid=count-unplaced]").inner_text())
    assert placed > 0 and placed + unplaced == waiting

    # The timeline: one row per worker, the visits drawn as blocks inside their row's 07:00–19:00 track.
    blocks = page.locator("[data-testid=timeline] .tl-visit")
    assert blocks.count() == placed
    first = blocks.first
    track = first.locator("xpath=..").bounding_box()
    box = first.bounding_box()
    assert box["width"] > 5 and track["x"] <= box["x"] and box["x"] + box["width"] <= track["x"] + track["width"] + 1
    title = first.get_attribute("title")
    assert re.match(r"\d\d:\d\d–\d\d:\d\d · ", title) and first.inner_text().split(" · ")[0] in title

    # A route map per worker with stops: a line from the start through numbered circles, inside the map.
    maps = page.locator("[data-testid=route] svg[data-testid=route-map]")
    assert maps.count() >= 1
    assert page.locator("[data-testid=route] svg g.route-stop circle").count() == placed
    route = page.locator("[data-testid=route]").first
    svg_box = route.locator("svg").bounding_box()
    assert svg_box["width"] > 200 and svg_box["height"] > 100
    for circle in route.locator("svg g.route-stop circle").all():
        c = circle.bounding_box()
        assert svg_box["x"] <= c["x"] and c["x"] + c["width"] <= svg_box["x"] + svg_box["width"] + 1
    assert route.locator("svg g.route-stop text").first.text_content() == "1"
    assert route.locator("ol.stops li").count() == route.locator("svg g.route-stop circle").count()
    assert route.locator("svg circle.route-other").count() > 0  # every stop of the day, faintly underneath

    # The dawn visit no shift reaches is listed with the reason in words.
    dawn = page.locator("[data-testid=unplaced] tr", has_text="黎明")
    assert dawn.get_attribute("data-reason") == "window_outside_shifts"
    assert dawn.locator("[data-testid=reason]").inner_text() == "合适的服务人员都无法在时间窗内到达"

    page.click("[data-testid=publish]")
    page.wait_for_url(f"{server.url}/schedule?date={tomorrow}")
    assert "第 1 版" in page.locator(".flash.success").inner_text()
    assert page.locator("[data-source=published]").inner_text() == "已发布 第1版"
    assert int(page.locator("[data-testid=count-placed]").inner_text()) == placed
    # Published: a visit can now be moved by hand; the move form opens in place.
    page.locator("[data-testid=route] summary[data-step=move]").first.click()
    assert page.locator("[data-testid=route] [data-testid=move-form] select[name=worker_id]").first.is_visible()


@pytest.mark.browser
def test_a_caregiver_reads_todays_stops_on_a_phone(phone, served):
    server, district = served
    sign_in(phone, server, "caregiver")
    phone.wait_for_url(f"{server.url}/")
    phone.click("[data-card=route] a[data-testid=open-route]")
    phone.wait_for_url(re.compile(r"/my/route$"))
    cards = phone.locator("[data-testid=route] li.stop-card")
    assert cards.count() == len(district.today_stops)
    visits = cards.evaluate_all("cards => cards.map(c => Number(c.dataset.visit))")
    assert visits == district.today_stops
    numbers = [int(n) for n in phone.locator("[data-testid=route] [data-testid=sequence]").all_inner_texts()]
    assert numbers == list(range(1, len(visits) + 1))
    starts = []
    for card in cards.all():
        time_text = card.locator("[data-testid=time]").inner_text()
        assert re.fullmatch(r"\d\d:\d\d–\d\d:\d\d", time_text)
        starts.append(time_text[:5])
        assert card.locator("[data-testid=recipient]").inner_text().strip()
        assert card.locator("[data-testid=service]").inner_text().strip()
        assert re.fullmatch(r"tel:1\d{10}", card.locator("a[data-testid=phone]").get_attribute("href"))
        assert re.search(r"(距出发点|距上一站) \d+ 分钟路程 · \d\d:\d\d 到达", card.locator("[data-testid=travel]").inner_text())
    assert starts == sorted(starts)
    # Readable on a 390-pixel screen: nothing wider than the phone, the call button within reach.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    call = phone.locator("a[data-testid=phone]").first
    call.scroll_into_view_if_needed()
    box = call.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 40
    assert phone.locator(".stop-time").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 18

    phone.goto(f"{server.url}/schedule")
    assert "/schedule" in phone.url and phone.locator("[data-testid=timeline]").count() == 0  # not a caregiver's page


@pytest.mark.browser
def test_the_day_fits_a_phone_with_the_timeline_scrolling_inside_its_box(phone, served):
    server, district = served
    sign_in(phone, server, "provider")
    phone.wait_for_url(f"{server.url}/")
    phone.goto(f"{server.url}/schedule?date={district.today.isoformat()}")
    assert phone.locator("[data-source=published]").is_visible()
    assert phone.locator("[data-testid=timeline] .tl-visit").count() >= len(district.today_stops)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    timeline = phone.locator("[data-testid=timeline]")
    assert timeline.evaluate("e => e.scrollWidth > e.clientWidth")  # the day scrolls sideways inside its box
    svg = phone.locator("[data-testid=route-map]").first.bounding_box()
    assert svg["x"] >= 0 and svg["x"] + svg["width"] <= 390


@pytest.mark.browser
def test_a_caregiver_checks_in_and_out_of_the_first_stop_on_a_phone(phone, served):
    """At the door the caregiver checks in (the phone gives the position; a retry after a lost answer records
    nothing twice), ticks the checklist, types the code the recipient reads from the confirmation card, picks the
    satisfaction and checks out; the next stop is missed. One check-in and one delivery record for the first
    stop in the ledger, which still verifies."""
    server, district = served
    first = district.today_stops[0]
    with server.app.app_context():
        visit = services.roster(district.provider, district.today, district.caregiver_worker)[1][0]
        assert visit.id == first
        recipient = (visit.recipient_id, visit.recipient.lat, visit.recipient.lon)
        tasks = [item["code"] for item in visit.service_type.checklist][:2]
        _card, _replaced, secret = cards.new_card(visit.recipient, district.provider)  # the recipient's card
        db.session.commit()
        code = confirmation.printed_code(secret, 0)  # its first printed code
    phone.context.grant_permissions(["geolocation"], origin=server.url)
    phone.context.set_geolocation({"latitude": recipient[1], "longitude": recipient[2]})
    sign_in(phone, server, "caregiver")
    phone.wait_for_url(f"{server.url}/")
    phone.goto(f"{server.url}/my/route")
    card = phone.locator(f"li.stop-card[data-visit='{first}']")
    assert card.get_attribute("data-status") == "published"

    check_in = card.locator("button[data-testid=check-in]")
    assert check_in.inner_text() == "签到"
    box = check_in.bounding_box()  # a large target across the card
    assert box["height"] >= 48 and box["width"] >= 300 and box["x"] + box["width"] <= 390

    # The first check-in reaches the server, but its answer is lost on the way back: the card says so, and
    # the retry carries the same idempotency key, so the server answers with the check-in it already has.
    keys = []

    def answer_lost(route):
        keys.append(route.request.headers["idempotency-key"])
        route.fetch()
        route.abort("internetdisconnected")

    url = f"{server.url}/api/v1/visits/{first}/check-in"
    phone.route(url, answer_lost, times=1)
    check_in.click()
    message = card.locator("[data-testid=record-message].error")
    message.wait_for()
    assert message.inner_text().startswith("网络未连接") and check_in.is_enabled()
    with server.app.app_context():  # recorded all the same
        assert db.session.scalars(select(ServiceRecord.kind).where(ServiceRecord.visit_id == first)).all() == ["check_in"]
    with phone.expect_response(url) as answer:
        check_in.click()
    assert answer.value.status == 201
    assert answer.value.request.headers["idempotency-key"] == keys[0] and answer.value.request.headers["x-csrftoken"]
    card.locator("[data-testid=check-out-form]").wait_for()  # the card, fetched again: under way
    assert card.get_attribute("data-status") == "in_progress"
    assert re.fullmatch(r"已于 \d\d:\d\d 签到", card.locator("[data-outcome=in_progress]").inner_text().strip())
    assert card.locator("[data-testid=check-in]").count() == 0
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the form fits the phone

    form = card.locator("[data-testid=check-out-form]")
    for task in tasks:
        form.locator(f"input[name=tasks][value={task}]").check()
    form.locator("input[name=confirmation_code]").fill(code)
    form.locator("label.score", has_text="很满意").click()
    assert form.locator("input[name=satisfaction][value='5']").is_checked()
    form.locator("textarea[name=notes]").fill("一切正常")
    with phone.expect_response(f"{server.url}/api/v1/visits/{first}/check-out") as answer:
        form.locator("button[data-testid=check-out]").click()
    assert answer.value.status == 201, answer.value.text()
    done = card.locator("[data-outcome=completed]")
    done.wait_for()
    assert card.get_attribute("data-status") == "completed"
    assert re.search(r"完成 \d\d:\d\d–\d\d:\d\d", done.inner_text()) and "确认码" in done.inner_text()
    assert "很满意" in done.inner_text()
    assert card.locator("[data-testid=record-message]").inner_text() == "已保存。"
    assert card.locator("button, form").count() == 0  # nothing more to do on this stop

    # Nobody opens the door at the next stop: recorded as missed, with the reason in words.
    second = phone.locator(f"li.stop-card[data-visit='{district.today_stops[1]}']")
    second.locator("[data-testid=missed] summary").click()
    missed = second.locator("[data-testid=missed-form]")
    missed.locator("select[name=reason]").select_option("not_home")
    missed.locator("textarea[name=notes]").fill("敲门无人应答")
    missed.locator("button[data-testid=record-missed]").click()
    second.locator("[data-outcome=missed]").wait_for()
    assert second.locator("[data-outcome=missed]").inner_text() == "未遇到：服务对象不在家 · 敲门无人应答"
    assert second.get_attribute("data-status") == "missed" and second.locator("button").count() == 0

    phone.reload()  # as the server has it
    card = phone.locator(f"li.stop-card[data-visit='{first}']")
    assert card.get_attribute("data-status") == "completed" and card.locator("button").count() == 0
    with server.app.app_context():
        kinds = db.session.scalars(select(ServiceRecord.kind).where(ServiceRecord.visit_id == first)
                                   .order_by(ServiceRecord.sequence)).all()
        delivery = db.session.scalar(select(ServiceRecord).where(ServiceRecord.visit_id == first,
                                                                 ServiceRecord.kind == "delivery"))
        assert kinds == ["check_in", "delivery"]
        assert (delivery.tasks, delivery.confirmation["method"], delivery.satisfaction, delivery.notes) == \
            (sorted(tasks), "code", 5, "一切正常")
        assert delivery.distance_m < 1 and delivery.recipient_id == recipient[0]
        assert all(chain["ok"] for chain in records.verify_ledgers())


@pytest.mark.browser
def test_a_provider_admin_re_plans_today_from_now_with_the_button(page, served, set_clock):
    """At 15:00 (the process's clock: the server's threads and the run's read it) the morning is over: the
    re-plan leaves its visits out as passed and plans nothing before 15:00; nothing is published by it."""
    from datetime import time

    server, district = served
    today = district.today.isoformat()
    set_clock(time(15, 0))
    sign_in(page, server, "provider")
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/schedule?date={today}")
    page.click("[data-testid=replan-now-form] button[data-testid=replan-now]")
    page.wait_for_url(re.compile(rf"/schedule\?date={today}&run=\d+"))
    page.wait_for_selector("[data-testid=run-result][data-status=solved]", timeout=60_000)
    assert page.locator("[data-source=preview]").is_visible() and page.locator("[data-testid=publish]").is_visible()
    reasons = page.locator("[data-testid=unplaced] tr[data-reason]")
    assert reasons.count() >= 1
    assert {reasons.nth(k).get_attribute("data-reason") for k in range(reasons.count())} == {"window_passed"}
    run_id = int(page.url.rsplit("=", 1)[1])
    with server.app.app_context():
        run = services.get_run(district.provider, run_id)
        assert run.kind == "replan" and run.absent_worker_id is None and 900 <= run.replan_from_min <= 905
        starts = [where["start"] for where in run.plan[today]["visits"].values() if "start" in where]
        assert all(start >= 900 for start in starts)


@pytest.mark.browser
def test_a_hand_move_to_a_time_already_past_is_refused_in_words(page, served, set_clock):
    """At 15:00 a provider admin asks to move one of today's published visits to 09:00: refused by name, in the
    page's language, and the roster is as it was."""
    from datetime import time

    server, district = served
    today = district.today.isoformat()
    with server.app.app_context():
        before = {v.id: (v.worker_id, v.planned_start) for v in db.session.scalars(
            select(Visit).where(Visit.service_date == district.today, Visit.worker_id.is_not(None)))}
    set_clock(time(15, 0))
    sign_in(page, server, "provider")
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/schedule?date={today}")
    page.locator("[data-testid=route] summary[data-step=move]").first.click()
    form = page.locator("[data-testid=route] [data-testid=move-form]").first
    form.locator("input[name=start]").fill("09:00")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    message = page.locator(".flash.error").inner_text()
    assert message == "未调整 — 开始时间已过。", message  # in the page's language only
    with server.app.app_context():
        db.session.expire_all()
        after = {v.id: (v.worker_id, v.planned_start) for v in db.session.scalars(
            select(Visit).where(Visit.service_date == district.today, Visit.worker_id.is_not(None)))}
    assert after == before
