"""Scheduling pages through the test client, on the demo district in service: a provider admin plans a
day, reads the preview (timeline, route maps, unplaced visits and why), publishes it as version 1,
moves a visit by hand (or is told the rule it breaks), reports an absence and reads the re-plan's
changes; a caregiver reads today's stops in order, each with the step it is ready for (check in, the
check-out form, a missed visit) or how it ended; who may open which day."""

from __future__ import annotations

import re
import uuid
from datetime import time as clock
from datetime import timedelta
from types import SimpleNamespace

import pytest

from servicehub.auth import services as auth
from servicehub.auth.models import User
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.matching import services as matching
from servicehub.registry.demo_loader import link_demo_caregiver
from servicehub.scheduling import services
from servicehub.scheduling.forms import LABELS
from servicehub.timeutil import district_today
from tests.matching.test_pages import flashes, messages, post
from tests.registry import factories as make
from tests.registry.test_pages import csrf, signed_in
from tests.support import create_demo_accounts, load_demo_district

EVERY_DAY = {day: [["08:00", "12:00"], ["13:30", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
REASONS = {"no_qualified_worker", "window_outside_shifts", "capacity", "no_room", "pair_incomplete"}


def serve_district() -> SimpleNamespace:
    """The demo provider in service (inside an app context): three carers working every day (one a man),
    a contract, and daily visits to six recipients referred to it and accepted — five in the day (one
    asking for a male carer), one at dawn that no shift can reach — with visits generated. (The whole
    demo district in service is what the browser test uses; here a small day keeps the tests fast.)
    """
    load_demo_district()
    users = create_demo_accounts()
    provider = auth.principal_of(users["provider"])
    own = provider.organisation_id
    for k, (name, gender) in enumerate((("甄每天", "female"), ("贾每天", "female"), ("王每天", "male"))):
        make.worker(own, name=name, gender=gender, availability=EVERY_DAY, start_lat=32.204 + k * 0.001,
                    start_lon=119.684, employee_no=f"D{k}")
    line = make.contract(own, lines=[{"service_type": "LC02", "unit_price_fen": 6000,
                                      "contracted_quantity": 1500}]).lines[0].id
    windows = [("白日一", (clock(8, 30), clock(16, 30), 45), "any"), ("白日二", (clock(8, 30), clock(16, 30), 45), "any"),
               ("白日三", (clock(9, 0), clock(12, 0), 60), "any"), ("白日四", (clock(13, 30), clock(17, 0), 60), "any"),
               ("男护理", (clock(8, 30), clock(16, 30), 60), "male"), ("黎明", (clock(5, 0), clock(5, 45), 30), "any")]
    for k, (name, (start, end, minutes), carer) in enumerate(windows):
        person = make.recipient(name=name, lat=32.206 + k * 0.002, lon=119.686, phone=f"1390000000{k}",
                                id_number=make.id_number(female=k % 2 == 0, birth=make.date(1940 + k, 3, 12)),
                                carer_gender=carer)
        need = make.need(person.id, quantity=7, window_start=start, window_end=end, duration_min=minutes)
        referral = matching.propose(COMMAND_LINE, need.id, line)
        matching.act(COMMAND_LINE, referral.id, "offer")
        matching.act(provider, referral.id, "accept")
    link_demo_caregiver()
    services.generate_visits(COMMAND_LINE)
    other = next(o for o in make.organisation_ids() if o != own)
    today = district_today()
    return SimpleNamespace(own=own, other=other, provider=provider, today=today,
                           tomorrow=today + timedelta(days=1), caregiver=users["caregiver"].id)


@pytest.fixture
def district(app, monkeypatch):
    """The demo district in service, runs finishing inside the request with a short search."""
    monkeypatch.setitem(app.config, "SERVICEHUB_RUN_INLINE", True)
    monkeypatch.setitem(app.config, "SERVICEHUB_SCHEDULE_TIME_LIMIT", 0.5)
    with app.app_context():
        return serve_district()


def plan_and_publish(app, district, day) -> None:
    """Plan the provider's day and publish it (through the services)."""
    with app.app_context():
        run = services.start_run(district.provider, district.own, day, time_limit_s=0.5)
        assert run.status == "solved", run.error
        services.publish_run(district.provider, run.id)


def routes(app, district, day) -> dict[int, list[int]]:
    """{worker id: visit ids in route order} of the day as published."""
    with app.app_context():
        view = services.day_view(district.provider, district.own, day)
        return {row.worker.id: [s.visit.id for s in row.stops] for row in view.workers if row.stops}


def unplaced(app, district, day) -> dict[int, str]:
    """{visit id: recipient name} of the visits of the day left unplaced."""
    with app.app_context():
        view = services.day_view(district.provider, district.own, day)
        return {visit.id: visit.recipient.name for visit, _reason in view.unplaced}


def link_caregiver_to_the_busiest_worker(district, day) -> tuple[int, list[int]]:
    """Make the demo caregiver account the worker with the most stops on the day as published (in an app
    context): that worker's id and visit ids in route order."""
    view = services.day_view(district.provider, district.own, day)
    busiest = max(view.workers, key=lambda row: len(row.stops))
    db.session.get(User, district.caregiver).worker_id = busiest.worker.id
    db.session.commit()
    return busiest.worker.id, [stop.visit.id for stop in busiest.stops]


def number(html: str, testid: str) -> int:
    return int(re.search(rf'data-testid="{testid}"[^>]*>(\d+)<', html).group(1))


def section(html: str, name: str) -> str:
    """A top-level section of the day page (up to the next one), with the sections nested in it."""
    match = re.search(rf'<section id="{name}">.*?(?=\n<section |\n<details |</main>)', html, re.S)
    assert match, f"no section {name}"
    return match.group(0)


def zh(app, kind: str, code: str) -> str:
    """The words of a coded value, as a page shows them (in Chinese, the pages' first language)."""
    with app.test_request_context():
        return str(LABELS[kind][code])


# --- planning, previewing, publishing -------------------------------------------------------------


def test_a_provider_admin_plans_the_day_previews_it_and_publishes_version_1(app, district):
    client = signed_in(app, "provider")
    html = client.get("/schedule").get_data(as_text=True)
    assert f'data-date="{district.tomorrow.isoformat()}"' in html  # tomorrow by default
    assert 'data-source="none"' in html and "尚未发布" in html
    assert f'name="organisation_id" value="{district.own}"' in html  # the provider's own organisation
    waiting = number(html, "waiting-count")
    assert waiting == number(html, "count-visits") >= 3 and number(html, "count-placed") == 0

    response = post(client, "/schedule/run", organisation_id=district.own, date=district.tomorrow.isoformat(),
                    time_limit_s=1, next="/schedule")
    location = response.headers["Location"]
    assert re.fullmatch(rf"/schedule\?date={district.tomorrow.isoformat()}&run=\d+", location), location
    run_id = int(location.rsplit("=", 1)[1])
    html = flashes(client, response)
    assert any(m.startswith("排班完成") for m in messages(html, "success")), messages(html, "success")
    assert f"方案预览 (运行 #{run_id})" in html and 'data-source="preview"' in html
    placed, left = number(html, "count-placed"), number(html, "count-unplaced")
    assert placed + left == waiting and placed > 0

    # The timeline: a row per worker on shift, a block per visit placed; a route map per worker with stops.
    timeline = section(html, "timeline")
    assert len(re.findall(r'<span class="tl-visit[^"]*" data-visit="\d+" style="left: [\d.]+%; width: [\d.]+%"',
                          timeline)) == placed
    assert 'class="tl-shift"' in timeline and "甄每天" in timeline
    maps = section(html, "routes")
    assert len(re.findall(r'<g class="route-stop[^"]*" data-sequence="\d+"[^>]*>\s*<title>[^<]*</title>\s*<circle ', maps)) == placed
    assert re.search(r'<polyline class="route-line" points="[\d.]+,[\d.]+ ', maps)
    assert "data-step=\"move\"" not in html  # moves are made on the published roster, not on a preview

    # The visits left unplaced, each with the reason in words: the dawn visit no shift reaches, at least.
    table = section(html, "unplaced")
    rows = re.findall(r'<tr data-visit="(\d+)" data-reason="(\w+)">(.*?)</tr>', table, re.S)
    assert len(rows) == left >= 1
    for _visit, reason, cells in rows:
        assert reason in REASONS and zh(app, "unplaced", reason) in cells.replace("&#39;", "'")
    dawn = next(cells for _v, reason, cells in rows if "黎明" in cells)
    assert zh(app, "unplaced", "window_outside_shifts") in dawn

    response = post(client, f"/schedule/runs/{run_id}/publish", next=location)
    assert response.headers["Location"] == f"/schedule?date={district.tomorrow.isoformat()}"
    html = flashes(client, response)
    assert any("第 1 版" in m for m in messages(html, "success"))
    assert 'data-source="published" data-version="1"' in html and "已发布 第1版" in html
    assert (number(html, "count-placed"), number(html, "count-unplaced")) == (placed, left)
    assert 'data-step="move"' in html  # now a visit can be moved by hand
    assert 'data-testid="publish"' not in html

    html = flashes(client, post(client, f"/schedule/runs/{run_id}/publish", next=location))
    assert messages(html, "error") == ["该方案已经发布。"]


def test_a_run_for_a_past_day_or_without_a_day_is_refused_with_a_message(app, district):
    client = signed_in(app, "provider")
    yesterday = (district.today - timedelta(days=1)).isoformat()
    html = flashes(client, post(client, "/schedule/run", organisation_id=district.own, date=yesterday, next="/schedule"))
    assert messages(html, "error") == ["不能为过去的日期排班。"]
    html = flashes(client, post(client, "/schedule/run", organisation_id=district.own, date="", time_limit_s=900))
    refused = messages(html, "error")  # no day, and a search time over the limit, each under its field's name
    assert any(m.startswith("日期：") for m in refused) and any(m.startswith("求解时间（秒）：") for m in refused)
    with app.app_context():
        assert services.list_runs(district.provider)[1] == 0


# --- who may see which day -----------------------------------------------------------------------


def test_who_may_open_which_day(app, district):
    caregiver = signed_in(app, "caregiver")
    assert caregiver.get("/schedule").status_code == 403
    assert caregiver.get(f"/schedule?organisation_id={district.own}").status_code == 403
    assert post(caregiver, "/schedule/run", organisation_id=district.own, date=district.tomorrow).status_code == 403

    provider = signed_in(app, "provider")
    assert provider.get(f"/schedule?organisation_id={district.other}").status_code == 404
    html = flashes(provider, post(provider, "/schedule/run", organisation_id=district.other,
                                  date=district.tomorrow.isoformat(), next="/schedule"))
    assert messages(html, "error") and not messages(html, "success")

    for username in ("manager", "auditor"):
        client = signed_in(app, username)
        html = client.get("/schedule").get_data(as_text=True)
        assert 'data-testid="choose-organisation"' in html and f'<option value="{district.own}"' in html
        html = client.get(f"/schedule?organisation_id={district.own}").get_data(as_text=True)
        assert 'data-testid="timeline"' in html and 'data-testid="run"' not in html  # reads, may not plan
        assert post(client, "/schedule/run", organisation_id=district.own, date=district.tomorrow).status_code == 403
    admin = signed_in(app, "admin")
    assert 'data-testid="run"' in admin.get(f"/schedule?organisation_id={district.own}").get_data(as_text=True)

    def nav(client):
        return re.findall(r'data-nav="([a-z]+)"', client.get("/").get_data(as_text=True))

    assert "schedule" in nav(provider) and "route" not in nav(provider)
    assert "route" in nav(caregiver) and "schedule" not in nav(caregiver)
    assert 'href="/schedule"' in provider.get("/").get_data(as_text=True)  # the dashboard's card
    assert 'href="/my/route"' in caregiver.get("/").get_data(as_text=True)


# --- a caregiver's route ---------------------------------------------------------------------------


def test_a_caregiver_sees_todays_published_stops_in_order(app, district):
    caregiver = signed_in(app, "caregiver")
    html = caregiver.get("/my/route").get_data(as_text=True)
    assert 'data-testid="empty"' in html and "今天没有您的上门服务" in html  # nothing published yet

    plan_and_publish(app, district, district.today)
    with app.app_context():
        busiest, stops = link_caregiver_to_the_busiest_worker(district, district.today)
        _worker, visits = services.roster(district.provider, district.today, busiest)
        expected = [(v.id, v.recipient.name) for v in visits]
    assert [v for v, _name in expected] == stops

    html = caregiver.get("/my/route").get_data(as_text=True)
    cards = re.findall(r'<li class="card stop-card" data-visit="(\d+)" data-sequence="(\d+)" data-status="(\w+)">(.*?)</li>',
                       html, re.S)
    assert [int(c[0]) for c in cards] == stops
    assert [int(c[1]) for c in cards] == list(range(1, len(stops) + 1))
    times = [re.search(r'data-testid="time">(\d\d:\d\d)–(\d\d:\d\d)<', c[3]).groups() for c in cards]
    assert all(a < b for a, b in times) and [a for a, _b in times] == sorted(a for a, _b in times)
    for (_id, _seq, status, body), (_v, name) in zip(cards, expected, strict=True):
        assert status == "published" and "已发布" in body and name in body
        assert re.search(r'href="tel:1\d{10}"', body)  # the caregiver may call the recipient
        assert re.search(r"(距出发点|距上一站) \d+ 分钟路程", body) and re.search(r"\d\d:\d\d 到达", body)
    # Another worker's route or another day is not the caregiver's to choose.
    other = caregiver.get(f"/my/route?worker_id={busiest + 1}&date={district.tomorrow}").get_data(as_text=True)
    assert [int(v) for v in re.findall(r'stop-card" data-visit="(\d+)"', other)] == stops


def card(html: str, visit_id: int) -> tuple[str, str]:
    """A stop's card on the route page: (its status, its inside)."""
    match = re.search(rf'<li class="card stop-card" data-visit="{visit_id}" data-sequence="\d+" data-status="(\w+)">'
                      r"(.*?)</li>", html, re.S)
    assert match, f"no card for visit {visit_id}"
    return match.group(1), match.group(2)


def record(client, visit_id: int, step: str, **body):
    """A step of a stop as the page's script takes it: JSON to the service-record API with the session, the
    page's CSRF token (X-CSRFToken) and an idempotency key."""
    return client.post(f"/api/v1/visits/{visit_id}/{step}", json=body,
                       headers={"X-CSRFToken": csrf(client), "Idempotency-Key": str(uuid.uuid4())})


def test_each_stop_card_offers_the_step_its_visit_is_ready_for_or_shows_how_it_ended(app, district):
    from servicehub.registry.models import Recipient
    from servicehub.visits import cards, confirmation

    plan_and_publish(app, district, district.today)
    with app.app_context():
        _worker, stops = link_caregiver_to_the_busiest_worker(district, district.today)
        _worker, visits = services.roster(district.provider, district.today, _worker)
        first, second = visits[0], visits[1]
        where = {"lat": first.recipient.lat, "lon": first.recipient.lon}
        checklist = {item["code"]: item["name_zh"] for item in first.service_type.checklist}
    with app.app_context():  # the recipient's printed card, and its first code, read out at the door
        _card, _replaced, secret = cards.new_card(db.session.get(Recipient, first.recipient_id), COMMAND_LINE)
        db.session.commit()
        code = confirmation.printed_code(secret, 0)
    assert checklist and [first.id, second.id] == stops[:2]
    caregiver = signed_in(app, "caregiver")

    # Published: the check-in button (posting to the API), and a missed visit with its five reasons in words.
    html = caregiver.get("/my/route").get_data(as_text=True)
    assert "data-recording" in html and 'data-msg-geo-denied="' in html  # the script's words, translated
    for visit_id in stops:
        status, body = card(html, visit_id)
        assert status == "published"
        assert re.search(rf'<button type="button" class="record-step" data-record="check-in" '
                         rf'data-url="/api/v1/visits/{visit_id}/check-in" data-testid="check-in">签到</button>', body)
        assert 'data-testid="check-out-form"' not in body and 'data-testid="outcome"' not in body
        assert f'data-url="/api/v1/visits/{visit_id}/outcome"' in body
        reasons = re.findall(r'<option value="(\w+)">([^<]+)</option>', body)
        assert [r for r, _words in reasons] == ["not_home", "refused", "in_hospital", "worker_absent", "other"]
        assert dict(reasons)["not_home"] == zh(app, "missed_reason", "not_home")

    # Under way (checked in through the API as the page does): the check-out form with the service's checklist.
    arrived = record(caregiver, first.id, "check-in", **where)
    assert arrived.status_code == 201, arrived.get_json()
    html = caregiver.get("/my/route").get_data(as_text=True)
    status, body = card(html, first.id)
    assert status == "in_progress" and 'data-testid="check-in"' not in body
    assert re.search(r'data-outcome="in_progress">已于 \d\d:\d\d 签到', body)
    form = re.search(r'<form class="check-out" data-record="check-out" data-url="([^"]+)".*?</form>', body, re.S)
    assert form and form.group(1) == f"/api/v1/visits/{first.id}/check-out"
    boxes = re.findall(r'<input type="checkbox" name="tasks" value="(\w+)"> ([^<]+)</label>', form.group(0))
    assert dict(boxes) == checklist
    assert re.search(r'<input name="confirmation_code" inputmode="numeric" pattern="\[0-9\]\{6\}" maxlength="6"',
                     form.group(0))
    assert 'data-signature data-testid="signature-pad"' in form.group(0)  # or the recipient signs
    assert re.findall(r'name="satisfaction" value="(\d)"', form.group(0)) == ["1", "2", "3", "4", "5"]
    assert '<textarea name="notes"' in form.group(0) and 'data-testid="missed-form"' in body
    assert card(html, second.id)[0] == "published"

    # Done: how it ended (times, the confirmation, satisfaction), and no steps any more.
    done = record(caregiver, first.id, "check-out", **where, tasks=sorted(checklist)[:2], confirmation_method="code",
                  confirmation_code=code, satisfaction=5, notes="")
    assert done.status_code == 201, done.get_json()
    missed = record(caregiver, second.id, "outcome", outcome="missed", reason="not_home", notes="敲门无人应答")
    assert missed.status_code == 201, missed.get_json()
    html = caregiver.get("/my/route").get_data(as_text=True)
    status, body = card(html, first.id)
    assert status == "completed"
    outcome = re.search(r'data-outcome="completed">(.*?)</p>', body, re.S).group(1)
    assert re.search(r"完成 \d\d:\d\d–\d\d:\d\d", outcome)
    assert zh(app, "confirmation", "code") in outcome and "很满意" in outcome
    status, body = card(html, second.id)
    assert status == "missed"
    outcome = re.search(r'data-outcome="missed" data-reason="not_home">(.*?)</p>', body, re.S).group(1)
    assert zh(app, "missed_reason", "not_home") in outcome and "敲门无人应答" in outcome
    for visit_id in (first.id, second.id):
        body = card(html, visit_id)[1]
        assert "data-record=" not in body and "<button" not in body and "<form" not in body

    # The provider admin reads how the stops stand on the caregiver's route, with no steps to take.
    provider = signed_in(app, "provider")
    html = provider.get(f"/my/route?worker_id={_worker.id}").get_data(as_text=True)
    assert "data-recording" not in html and "data-record=" not in html
    assert card(html, first.id)[0] == "completed" and 'data-outcome="completed"' in card(html, first.id)[1]


# --- moving a visit by hand ---------------------------------------------------------------------


def test_a_move_that_breaks_a_rule_is_refused_with_the_rule_and_a_good_move_is_locked(app, district):
    day = district.tomorrow
    plan_and_publish(app, district, day)
    client = signed_in(app, "provider")
    page = f"/schedule?date={day.isoformat()}"
    worker, stops = next(iter(routes(app, district, day).items()))
    dawn = next(v for v, name in unplaced(app, district, day).items() if name == "黎明")

    html = flashes(client, post(client, f"/schedule/visits/{dawn}/move", worker_id=worker, next=page))
    (refusal,) = messages(html, "error")
    assert refusal.startswith(f"未调整 — {zh(app, 'move_rule', 'window')}")
    assert dawn in unplaced(app, district, day)  # nothing changed

    html = flashes(client, post(client, f"/schedule/visits/{stops[0]}/move", worker_id=worker, start="04:00",
                                next=page))
    assert messages(html, "error")[0].startswith(f"未调整 — {zh(app, 'move_rule', 'window')}")
    assert "move breaks a rule" not in messages(html, "error")[0]  # the rule's words only: no English sentence
    client.get("/lang/en")
    html = flashes(client, post(client, f"/schedule/visits/{stops[0]}/move", worker_id=worker, start="04:00",
                                next=page))
    assert messages(html, "error")[0] == ("Not moved — It would start outside its time window (The move breaks a "
                                          "rule: the visit would start outside its time window).")
    client.get("/lang/zh")

    html = flashes(client, post(client, f"/schedule/visits/{stops[-1]}/move", worker_id=worker, next=page))
    (done,) = messages(html, "success")
    assert done.startswith("已调整") and "锁定" in done
    assert re.search(rf'<li data-visit="{stops[-1]}" data-sequence="\d+">\s*<span class="stop-number">\d+</span>'
                     rf'(?:(?!</li>).)*data-locked', html, re.S)
    assert sorted(routes(app, district, day)[worker]) == sorted(stops)


# --- an absence and its re-plan ---------------------------------------------------------------------


def test_an_absence_re_plans_the_rest_of_the_day_and_shows_the_changes(app, district):
    day = district.tomorrow
    plan_and_publish(app, district, day)
    client = signed_in(app, "provider")
    page = f"/schedule?date={day.isoformat()}"
    worker, stops = max(routes(app, district, day).items(), key=lambda item: len(item[1]))

    html = flashes(client, post(client, "/schedule/absence", worker_id=worker, date=day.isoformat(), reason="",
                                next=page))
    assert messages(html, "error") == ["原因：请填写原因。"]

    response = post(client, "/schedule/absence", worker_id=worker, date=day.isoformat(), from_time="", reason="病假",
                    next=page)
    location = response.headers["Location"]
    assert re.fullmatch(rf"/schedule\?date={day.isoformat()}&run=\d+", location)
    html = flashes(client, response)
    assert any("重新排班" in m for m in messages(html, "success"))
    assert 'data-source="preview"' in html and 'data-testid="publish"' in html
    changes = section(html, "changes")
    rows = re.findall(r'<tr data-change="(\w+)" data-visit="(\d+)">(.*?)</tr>', changes, re.S)
    with app.app_context():
        absent = services.day_view(district.provider, district.own, day).workers
    absent_name = next(row.worker.name for row in absent if row.worker.id == worker)
    moved = {int(visit) for kind, visit, _cells in rows if kind in ("reassigned", "unplaced")}
    assert set(stops) <= moved  # every visit of the absent worker goes to someone else or is left unplaced
    for kind, visit, cells in rows:
        if int(visit) in stops:
            assert absent_name in re.search(r'data-testid="before">(.*?)</td>', cells, re.S).group(1)
            after = re.search(r'data-testid="after">(.*?)</td>', cells, re.S).group(1)
            assert absent_name not in after
            assert (kind == "unplaced") == ("data-reason" in after)
    timeline = section(html, "timeline")
    assert re.search(rf'data-worker="{worker}">.*?class="tl-out" data-out-from="0"', timeline, re.S)


def test_today_is_re_planned_from_now_with_one_button_and_a_past_start_is_not_published(app, district):
    from servicehub.database import clock_at

    with app.app_context():
        early = services.start_run(district.provider, district.own, district.today, time_limit_s=0.5)  # at 06:00
        three = services.at_minutes(district.today, 15 * 60)
    client = signed_in(app, "provider")
    page = f"/schedule?date={district.today.isoformat()}"
    assert 'data-testid="replan-now"' not in client.get(f"/schedule?date={district.tomorrow.isoformat()}").get_data(
        as_text=True)  # a day to come is planned, not re-planned from now
    assert 'data-testid="replan-now"' in client.get(page).get_data(as_text=True)
    with clock_at(three):
        refused = flashes(client, post(client, f"/schedule/runs/{early.id}/publish", next=page))
        (message,) = messages(refused, "error")
        assert "08:" in message or "09:" in message  # the plan's first start, long past at 15:00
        response = post(client, "/schedule/replan-now", organisation_id=district.own, next=page)
        assert re.fullmatch(rf"/schedule\?date={district.today.isoformat()}&run=\d+", response.headers["Location"])
        html = flashes(client, response)
    assert messages(html, "success") and 'data-source="preview"' in html and 'data-testid="publish"' in html
    left_out = re.findall(r'<tr data-visit="\d+" data-reason="(\w+)">(.*?)</tr>', section(html, "unplaced"), re.S)
    assert left_out and {reason for reason, _cells in left_out} == {"window_passed"}  # the morning is over
    assert all(zh(app, "unplaced", "window_passed") in cells for _reason, cells in left_out)
    run_id = int(response.headers["Location"].rsplit("=", 1)[1])
    with clock_at(three):
        published = flashes(client, post(client, f"/schedule/runs/{run_id}/publish", next=page))
    assert messages(published, "success") and not messages(published, "error")
    client.get("/lang/en")
    english = client.get(page).get_data(as_text=True)
    assert "Re-plan from now" in english
