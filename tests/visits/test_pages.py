"""Visits pages through the test client.

The alert inbox: a provider admin reads its late visits and acknowledges one with a note (then it leaves the
open list and shows under all, with who, when and the note), an empty note is refused with a message; a
manager reads missed visits; an auditor reads but cannot acknowledge; a caregiver may not open the inbox;
codes failed and cards reissued are worded from their facts.

The exception queue: each role sees its own (a provider its organisation's, a town manager the town's, the
district all; auditors read only), filtered by code, organisation, worker, month and status, counted by code;
the provider explains (one, or several ticked: all or none), the bureau approves or rejects (a note to
reject); refusals come back as messages in Chinese chosen by their code; a form without its CSRF token changes
nothing. An exception's page shows its steps, the visit's ledger entries and links.

Confirmation cards: the recipient's page prints a new one (a PDF download, audited; the old card stops working
and a provider's replacement alerts the managers) and lists them — never a code. Refusals are messages —
never a 500."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from servicehub import crypto
from servicehub.auth import services as auth
from servicehub.auth.models import AuditLog, User
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import clock_at
from servicehub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.timeutil import local_midnight
from servicehub.visits import cards, confirmation, queue, services, views
from servicehub.visits.models import Alert, ConfirmationCard, EvvException
from tests.matching.test_pages import flashes, messages, post, row
from tests.registry import factories as make
from tests.registry.test_pages import csrf, signed_in
from tests.scheduling.fixtures import district_today
from tests.support import DEMO_PASSWORD


@pytest.fixture
def published(app, served):
    """Today's roster of the demo provider published: five visits opening at 08:30 local."""
    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
    return district_today()


def detect(app, day, hours, minutes=0) -> dict[str, int]:
    """Run the late/missed check as if the clock showed `hours:minutes` local time on `day`."""
    with app.app_context():
        return services.detect_late_and_missed(local_midnight(day) + timedelta(hours=hours, minutes=minutes))


def rows(html: str) -> dict[int, str]:
    """{alert id: its row} of the inbox table."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<tr data-alert="(\d+)".*?</tr>', html, re.S)}


def inbox(client, **query) -> str:
    response = client.get("/alerts", query_string=query)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_a_provider_reads_late_visits_and_acknowledges_one_with_a_note(app, served, published):
    assert detect(app, published, 15, 50)["late"] == 5
    client = signed_in(app, "provider")
    html = inbox(client)
    late = rows(html)
    assert len(late) == 5 and 'data-testid="total">5<' in html
    for alert_row in late.values():
        assert 'data-kind="late"' in alert_row and 'data-state="open"' in alert_row
        assert 'data-alert-kind="late">超时未开始<' in alert_row  # the kind in words, Chinese first
        assert "尚未开始" in alert_row
        # The day of the visit, on the provider's own roster (no organisation in the address).
        assert f'href="/schedule?date={published.isoformat()}" data-link="day"' in alert_row
        assert 'data-testid="acknowledge-form"' in alert_row
    first = next(iter(late))
    assert re.search(r'data-testid="raised">[^<]*\d{1,2}:\d{2}', late[first])  # local time of day

    # An empty note is refused with a message, and the alert stays open.
    refused = flashes(client, post(client, f"/alerts/{first}/acknowledge", note="  ", next="/alerts"))
    assert messages(refused, "error") == ["未处理：请填写处理情况。"]
    assert first in rows(refused)

    done = post(client, f"/alerts/{first}/acknowledge", note="已电话联系护理员，已改约下午", next="/alerts")
    assert done.headers["Location"] == "/alerts"
    html = flashes(client, done)
    assert messages(html, "success")[0].startswith("已处理：超时未开始")
    assert first not in rows(html) and len(rows(html)) == 4  # gone from the open list

    everything = rows(inbox(client, show="all"))
    assert len(everything) == 5
    acknowledged = everything[first]
    assert 'data-state="acknowledged"' in acknowledged and "acknowledge-form" not in acknowledged
    assert "已电话联系护理员，已改约下午" in acknowledged and "provider，" in acknowledged

    again = flashes(client, post(client, f"/alerts/{first}/acknowledge", note="again", next="/alerts?show=all"))
    assert messages(again, "error") == ["未作更改：该预警已被处理。"]

    dashboard = client.get("/").get_data(as_text=True)
    assert 'data-testid="open-alerts">4<' in dashboard and 'href="/alerts"' in dashboard


def test_a_manager_reads_missed_visits_and_the_kind_filter(app, served, published):
    detect(app, published, 15, 50)
    assert detect(app, published, 16, 31)["missed"] == 5
    client = signed_in(app, "manager")
    missed = rows(inbox(client, kind="missed"))
    assert len(missed) == 5
    for alert_row in missed.values():
        assert 'data-kind="missed"' in alert_row and "未在时间窗" in alert_row
        assert 'data-alert-kind="missed">未上门<' in alert_row
        day = f'href="/schedule?date={published.isoformat()}&amp;organisation_id={served["org"]}" data-link="day"'
        assert day in alert_row
        assert 'data-testid="acknowledge-form"' in alert_row
    assert set(rows(inbox(client))) == set(missed)  # late visits are the provider's business
    assert rows(inbox(client, kind="late")) == {}
    assert 'data-testid="open-alerts">5<' in client.get("/").get_data(as_text=True)

    # The provider reads both kinds; the filter keeps one.
    provider = signed_in(app, "provider")
    assert len(rows(inbox(provider))) == 10 and len(rows(inbox(provider, kind="late"))) == 5


def test_the_inbox_pages_through_many_alerts(app, served, published, monkeypatch):
    detect(app, published, 15, 50)
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client = signed_in(app, "provider")
    first, last = inbox(client), inbox(client, page=3)
    assert len(rows(first)) == 2 and len(rows(last)) == 1 and not set(rows(first)) & set(rows(last))
    assert 'data-testid="page">第 3 / 3 页<' in last
    assert 'rel="next" href="/alerts?page=2"' in first


def test_an_auditor_reads_alerts_but_cannot_acknowledge_and_a_caregiver_may_not_look(app, served, published):
    detect(app, published, 15, 50)
    auditor = signed_in(app, "auditor")
    html = inbox(auditor)
    assert len(rows(html)) == 5 and "acknowledge-form" not in html
    alert_id = next(iter(rows(html)))
    assert post(auditor, f"/alerts/{alert_id}/acknowledge", note="seen").status_code == 403
    assert 'data-state="open"' in row(inbox(auditor), "data-alert", alert_id)
    assert "open-alerts" not in auditor.get("/").get_data(as_text=True)  # no dashboard card

    caregiver = signed_in(app, "caregiver")
    assert caregiver.get("/alerts").status_code == 403
    assert post(caregiver, f"/alerts/{alert_id}/acknowledge", note="x").status_code == 403


def test_the_alerts_entry_shows_to_those_who_may_read_alerts(app, served):
    def nav(username):
        return re.findall(r'data-nav="([a-z]+)"', signed_in(app, username).get("/").get_data(as_text=True))

    for username in ("admin", "manager", "manager.dagang", "provider", "auditor"):
        assert "alerts" in nav(username), username
    assert "alerts" not in nav("caregiver")
    html = signed_in(app, "provider").get("/alerts").get_data(as_text=True)
    assert re.search(r'<a href="/alerts" data-nav="alerts" aria-current="page">预警</a>', html)
    assert "暂无待处理的预警。" in html


# --- the exception queue ---------------------------------------------------------------------------------------


def principal(app, username):
    with app.app_context():
        return auth.principal_of(db.session.scalar(select(User).where(User.username == username)))


def add_user(app, username, role, **scope):
    with app.app_context():
        auth.create_user(username=username, role=role, password=DEMO_PASSWORD, display_name=username, **scope)


@pytest.fixture
def deviations(app, served):
    """Today's roster published; two visits of two workers checked in 40 minutes late about 550 m from the address and out ten
    minutes later without tasks or confirmation, from the provider admin's office account: six exceptions each
    (late_start, short_visit, far_check_in, no_confirmation, no_tasks, manual_entry)."""
    provider = principal(app, "provider")
    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        published = db.session.scalars(select(Visit).where(Visit.service_date == district_today(),
                                                           Visit.status == "published")
                                       .order_by(Visit.planned_start, Visit.id)).all()
        # the day's first visit and the first of another worker (whichever route the plan gave them)
        visits = [published[0], next(v for v in published if v.worker_id != published[0].worker_id)]
        for visit in visits:
            lat, lon, start = visit.recipient.lat, visit.recipient.lon, visit.planned_start
            with clock_at(start + timedelta(minutes=40)):
                services.check_in(provider, visit.id, str(uuid.uuid4()), lat + 0.005, lon)
            with clock_at(start + timedelta(minutes=50)):
                services.check_out(provider, visit.id, str(uuid.uuid4()),
                                   {"lat": lat, "lon": lon, "tasks": [], "confirmation_method": "none"})
        found = db.session.scalars(select(EvvException).order_by(EvvException.id)).all()
        by = {(e.visit_id, e.code): e.id for e in found}
        return SimpleNamespace(visits=[v.id for v in visits], workers=[v.worker_id for v in visits],
                               recipients=[v.recipient_id for v in visits], org=served["org"], ids=[e.id for e in found],
                               id=lambda k, code: by[(visits[k].id, code)], day=district_today(), provider=provider)


CODES = {"late_start", "short_visit", "far_check_in", "no_confirmation", "no_tasks", "manual_entry"}


def exception_rows(html: str) -> dict[int, str]:
    """{exception id: its row} of the queue."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<tr data-exception="(\d+)".*?</tr>', html, re.S)}


UNDECIDED = "/exceptions?status=undecided"


def queue_page(client, **query) -> str:
    """The queue, every undecided exception unless another status is asked (each role's own default aside)."""
    response = client.get("/exceptions", query_string={"status": "undecided", **query})
    assert response.status_code == 200, response.status_code
    return unescape(response.get_data(as_text=True))


def statuses(app, ids) -> list[str]:
    with app.app_context():
        return [db.session.get(EvvException, i).status for i in ids]


def counts(html: str) -> dict[str, int]:
    return {code: int(n) for code, n in re.findall(r'data-count-code="(\w*)"[^>]*>[^<]*<strong>(\d+)</strong>', html)}


def test_a_provider_reads_its_exceptions_with_their_figures_counted_by_code_and_filtered(app, deviations):
    client = signed_in(app, "provider")
    html = queue_page(client)
    found = exception_rows(html)
    assert set(found) == set(deviations.ids) and len(found) == 12
    assert 'data-testid="total">12<' in html
    assert counts(html) == {"": 12, **dict.fromkeys(CODES, 2)}
    late = found[deviations.id(0, "late_start")]
    assert 'data-code="late_start"' in late and 'data-status="open"' in late
    assert 'data-exception-code="late_start">迟到签入<' in late and "比应到时间晚 40 分钟" in late
    assert 'data-exception-status="open">待说明<' in late and "尚未说明" in late
    assert deviations.day.isoformat() in late and re.search(rf'href="/exceptions\?[^"]*worker_id={deviations.workers[0]}"', late)
    assert re.search(r"距住址 5\d\d 米", found[deviations.id(0, "far_check_in")])
    assert "实际服务 10 分钟，计划" in found[deviations.id(0, "short_visit")]
    assert "由 provider 录入" in found[deviations.id(0, "manual_entry")]
    # The provider explains: a form on each row and the bulk step; no decision, no organisation filter.
    assert all('data-testid="resolve-form"' in r and 'name="exception_ids"' in r for r in found.values())
    assert 'data-testid="bulk-resolve"' in html and "decide-form" not in html and 'name="organisation_id"' not in html

    # Filters: the code (the counts stay for every code), the worker, the month, the status.
    far = queue_page(client, code="far_check_in")
    assert set(exception_rows(far)) == {deviations.id(0, "far_check_in"), deviations.id(1, "far_check_in")}
    assert counts(far)[""] == 12 and 'data-count-code="far_check_in" aria-current="true"' in far
    one = queue_page(client, worker_id=deviations.workers[0])
    assert all(f'data-visit="{deviations.visits[0]}"' in r for r in exception_rows(one).values())
    assert len(exception_rows(queue_page(client, month=deviations.day.strftime("%Y-%m")))) == 12
    assert exception_rows(queue_page(client, month=(deviations.day - timedelta(days=40)).strftime("%Y-%m"))) == {}
    assert exception_rows(queue_page(client, status="approved")) == {}
    assert 'data-testid="empty"' in queue_page(client, status="approved")
    assert len(exception_rows(queue_page(client, month="2026-13", code="nonsense"))) == 12  # ignored, no 500

    dashboard = client.get("/").get_data(as_text=True)
    assert 'data-testid="waiting-exceptions">12<' in dashboard and 'href="/exceptions?status=open"' in dashboard

    english = queue_page(client, lang="en")
    assert 'data-exception-code="late_start">Late start<' in english and "40 min after the expected time" in english


def test_the_queue_opens_on_what_waits_for_each_role(app, deviations):
    def default_rows(username):
        response = signed_in(app, username).get("/exceptions")
        assert response.status_code == 200
        return set(exception_rows(unescape(response.get_data(as_text=True))))

    first = deviations.id(0, "late_start")
    with app.app_context():
        queue.resolve(auth.principal_of(db.session.scalar(select(User).where(User.username == "provider"))), first,
                      "traffic_delay", "路上堵车")
    # The provider: what it has not explained; the bureau: what it has to decide; an auditor: every undecided one.
    assert default_rows("provider") == set(deviations.ids) - {first}
    assert default_rows("manager") == {first}
    assert default_rows("auditor") == set(deviations.ids)
    with app.app_context():
        queue.decide(auth.principal_of(db.session.scalar(select(User).where(User.username == "manager"))), first,
                     approve=False, note="请补充路况说明")
    assert default_rows("provider") == set(deviations.ids) - {first}  # rejected: under its own filter
    assert default_rows("manager") == set()
    rejected = unescape(signed_in(app, "provider").get("/exceptions?status=to_explain").get_data(as_text=True))
    assert set(exception_rows(rejected)) == set(deviations.ids)


def test_a_provider_explains_one_exception_then_several_at_once_all_or_none(app, deviations):
    client = signed_in(app, "provider")
    first = deviations.id(0, "late_start")
    at = f"/exceptions/{first}/resolve"

    # A reason and a note are required; nothing changes without them.
    missing_note = flashes(client, post(client, at, reason_code="traffic_delay", note=" ", next=UNDECIDED))
    assert messages(missing_note, "error") == ["未作更改：请说明情况。"]
    no_reason = flashes(client, post(client, at, reason_code="", note="堵车", next=UNDECIDED))
    assert messages(no_reason, "error") == ["未作更改：请选择原因。"]
    assert statuses(app, [first]) == ["open"]
    # Without the page's CSRF token: refused, nothing changed.
    assert client.post(at, data={"reason_code": "traffic_delay", "note": "堵车"}).status_code == 400
    assert statuses(app, [first]) == ["open"]

    done = post(client, at, reason_code="traffic_delay", note="路上堵车，已电话告知家属", next=UNDECIDED)
    assert done.headers["Location"] == UNDECIDED
    html = flashes(client, done)
    assert messages(html, "success") == ["已说明：迟到签入（交通延误），等待民政部门审核。"]
    explained = exception_rows(html)[first]
    assert 'data-status="resolved"' in explained and 'data-reason="traffic_delay"' in explained
    assert "路上堵车，已电话告知家属" in explained and "provider ·" in explained
    assert 'data-step="resolve">重新说明…<' in explained  # it may be explained again until it is decided

    # Several at once: all or none. One the provider cannot see (here: none such) refuses them all.
    others = [deviations.id(0, code) for code in ("far_check_in", "no_confirmation", "manual_entry")]
    refused = flashes(client, client.post("/exceptions/resolve", data={
        "csrf_token": csrf(client), "exception_ids": [*others, 999_999], "reason_code": "gps_inaccurate",
        "note": "高层住宅", "next": UNDECIDED}))
    assert messages(refused, "error") == ["未作更改：所选异常中有不属于您处理范围的。"]
    assert statuses(app, others) == ["open"] * 3
    nothing = flashes(client, post(client, "/exceptions/resolve", reason_code="gps_inaccurate", note="x",
                                   next=UNDECIDED))
    assert messages(nothing, "error") == ["未作更改：请至少勾选一条异常。"]
    many = flashes(client, client.post("/exceptions/resolve", data={
        "csrf_token": csrf(client), "exception_ids": others, "reason_code": "device_problem",
        "note": "护理员手机没电，由办公室代录", "next": "/exceptions?code=manual_entry"}))
    assert messages(many, "success") == ["已说明 3 条异常，等待民政部门审核。"]
    assert statuses(app, others) == ["resolved"] * 3
    assert 'data-count-code="manual_entry" aria-current="true"' in many  # back to the page it was sent from

    # Once the bureau has approved one, it is no longer the provider's to explain.
    with app.app_context():
        queue.decide(principal(app, "manager"), first, True)
    late = flashes(client, post(client, at, reason_code="other", note="再说明", next=UNDECIDED))
    assert messages(late, "error") == ["未作更改：该异常已不在待说明状态（当前为“已批准”）。"]
    assert 'data-testid="waiting-exceptions">8<' in client.get("/").get_data(as_text=True)


def test_the_bureau_approves_and_rejects_explained_exceptions_with_a_note_to_reject(app, deviations):
    provider = deviations.provider
    explained = [deviations.id(k, code) for k in (0, 1) for code in ("late_start", "far_check_in")]
    with app.app_context():
        queue.resolve_many(provider, explained, "traffic_delay", "路上堵车")
    client = signed_in(app, "manager")
    dashboard = client.get("/").get_data(as_text=True)
    assert 'data-testid="waiting-exceptions">4<' in dashboard and 'href="/exceptions?status=resolved"' in dashboard
    html = queue_page(client, status="resolved")
    found = exception_rows(html)
    assert set(found) == set(explained)
    assert all('data-testid="decide-form"' in r and "resolve-form" not in r for r in found.values())
    assert 'data-testid="bulk-decide"' in html and 'name="organisation_id"' in html  # managers filter by organisation
    assert 'data-testid="organisation"' in found[explained[0]]
    everything = exception_rows(queue_page(client))
    assert len(everything) == 12 and "decide-form" not in everything[deviations.id(0, "no_tasks")]  # open: not yet

    first, second = explained[0], explained[1]
    no_note = flashes(client, post(client, f"/exceptions/{first}/decide", decision="reject", note="", next=UNDECIDED))
    assert messages(no_note, "error") == ["未作更改：请写明驳回理由：机构会看到您的意见。"]
    assert statuses(app, [first]) == ["resolved"]
    rejected = flashes(client, post(client, f"/exceptions/{first}/decide", decision="reject",
                                    note="迟到四十分钟，请补充路况证明", next=UNDECIDED))
    assert messages(rejected, "success") == ["已驳回 1 条异常：机构会看到您的意见，并可重新说明。"]
    row_html = exception_rows(rejected)[first]
    assert 'data-status="rejected"' in row_html and 'data-decision="rejected"' in row_html
    assert "迟到四十分钟，请补充路况证明" in row_html and "manager ·" in row_html
    approved = flashes(client, post(client, f"/exceptions/{second}/decide", decision="approve", next=UNDECIDED))
    assert messages(approved, "success")[0].startswith("已批准 1 条异常")
    assert statuses(app, [first, second]) == ["rejected", "approved"]

    # Only an explained exception is decided; the refusal says how it stands.
    still_open = deviations.id(0, "no_tasks")
    early = flashes(client, post(client, f"/exceptions/{still_open}/decide", decision="approve", next=UNDECIDED))
    assert messages(early, "error") == ["未作更改：只有机构已说明的异常才能审核（该异常当前为“待说明”）。"]
    # Several at once, all or none.
    mixed = flashes(client, client.post("/exceptions/decide", data={
        "csrf_token": csrf(client), "exception_ids": [explained[2], still_open], "decision": "approve",
        "next": UNDECIDED}))
    assert messages(mixed, "error")[0].startswith("未作更改：只有机构已说明的异常才能审核")
    assert statuses(app, [explained[2]]) == ["resolved"]
    both = flashes(client, client.post("/exceptions/decide", data={
        "csrf_token": csrf(client), "exception_ids": explained[2:], "decision": "approve", "next": UNDECIDED}))
    assert messages(both, "success")[0].startswith("已批准 2 条异常")
    assert statuses(app, explained) == ["rejected", "approved", "approved", "approved"]

    # The provider sees the rejection and its note, and may explain it again.
    provider_page = exception_rows(queue_page(signed_in(app, "provider")))
    assert "迟到四十分钟，请补充路况证明" in provider_page[first] and 'data-testid="resolve-form"' in provider_page[first]
    assert second not in provider_page  # approved: no longer undecided

    # The exception's page: its steps, the visit's ledger entries, links to the day, the records, the recipient.
    page = unescape(client.get(f"/exceptions/{first}").get_data(as_text=True))
    assert re.findall(r'<li data-step="(\w+)">', page) == ["raised", "resolved", "rejected"]
    assert "系统发现异常" in page and "机构已说明" in page and "民政部门已驳回" in page and "交通延误" in page
    assert re.findall(r'<tr data-entry="\d+" data-kind="(\w+)">', page) == ["check_in", "delivery"]
    assert 'data-confirmation="none"' in page
    links = dict(re.findall(r'<a href="([^"]+)" data-link="(\w+)">', page))
    assert set(links.values()) == {"day", "records", "ledger", "recipient"}
    link = {key: url for url, key in links.items()}
    assert link["day"] == f"/schedule?date={deviations.day.isoformat()}&amp;organisation_id={deviations.org}".replace(
        "&amp;", "&")
    assert link["ledger"] == f"/api/v1/service-records?visit_id={deviations.visits[0]}"
    assert client.get(link["records"].replace("&amp;", "&")).status_code == 200
    assert client.get(link["ledger"]).status_code == 200
    assert "decide-form" not in page  # decided


def test_refusals_reach_the_pages_by_their_code_in_chinese(app):
    with app.test_request_context("/"):
        def worded(exc):
            return views.exception_refusal(exc)

        assert worded(PermissionDenied("An organisation cannot approve or reject its own exceptions: the bureau "
                                       "does.", code="not_the_bureau")) == \
            "无权操作：异常由民政部门审核，服务机构不能审核自己的异常。"
        assert worded(PermissionDenied("Only the organisation's provider admin explains its exceptions.",
                                       code="not_the_provider")) == "无权操作：只有本机构的管理员可以说明异常。"
        assert worded(Conflict("whatever English", {"status": ["cleared"]}, code="not_open")) == \
            "未作更改：该异常已不在待说明状态（当前为“已消除”）。"
        assert worded(Conflict("x", {"status": ["rejected"]}, code="not_resolved")) == \
            "未作更改：只有机构已说明的异常才能审核（该异常当前为“已驳回”）。"
        assert worded(NotFound("No such exception.")) == "未作更改：所选异常中有不属于您处理范围的。"
        assert worded(ValidationFailed("Say what happened.", {"note": ["Required."]})) == "未作更改：请在说明中写明情况。"
        assert worded(ValidationFailed("Say why.", {"reason_code": ["Unknown reason."]})) == "未作更改：请选择原因。"


def test_each_role_sees_its_own_exceptions_and_auditors_only_read(app, deviations):
    with app.app_context():
        other = next(o for o in make.organisation_ids() if o != deviations.org)
    add_user(app, "provider.other", "provider_admin", organisation_id=other)
    add_user(app, "manager.dingmao", "manager", town=make.DINGMAO)
    for username in ("admin", "manager", "manager.dagang"):
        assert len(exception_rows(queue_page(signed_in(app, username)))) == 12, username
    assert exception_rows(queue_page(signed_in(app, "manager.dingmao"))) == {}  # the recipients live in 大港
    stranger = signed_in(app, "provider.other")
    assert exception_rows(queue_page(stranger)) == {}
    assert stranger.get(f"/exceptions/{deviations.ids[0]}").status_code == 404
    refused = post(stranger, f"/exceptions/{deviations.ids[0]}/resolve", reason_code="other", note="x")
    assert messages(flashes(stranger, refused), "error") == ["未作更改：所选异常中有不属于您处理范围的。"]

    auditor = signed_in(app, "auditor")
    html = queue_page(auditor)
    assert len(exception_rows(html)) == 12 and "resolve-form" not in html and "decide-form" not in html
    assert 'name="exception_ids"' not in html and 'data-testid="bulk"' not in html
    assert auditor.get(f"/exceptions/{deviations.ids[0]}").status_code == 200
    assert post(auditor, f"/exceptions/{deviations.ids[0]}/resolve", reason_code="other", note="x").status_code == 403
    assert post(auditor, f"/exceptions/{deviations.ids[0]}/decide", decision="approve").status_code == 403
    assert post(signed_in(app, "provider"), f"/exceptions/{deviations.ids[0]}/decide",
                decision="approve").status_code == 403
    assert post(signed_in(app, "manager"), f"/exceptions/{deviations.ids[0]}/resolve", reason_code="other",
                note="x").status_code == 403
    caregiver = signed_in(app, "caregiver")
    assert caregiver.get("/exceptions").status_code == 403
    assert caregiver.get(f"/exceptions/{deviations.ids[0]}").status_code == 403
    assert statuses(app, deviations.ids) == ["open"] * 12

    def nav(username):
        return re.findall(r'data-nav="([a-z]+)"', signed_in(app, username).get("/").get_data(as_text=True))

    for username in ("admin", "manager", "manager.dagang", "provider", "auditor"):
        assert "exceptions" in nav(username), username
    assert "exceptions" not in nav("caregiver")
    assert re.search(r'<a href="/exceptions" data-nav="exceptions" aria-current="page">异常处理</a>',
                     signed_in(app, "provider").get("/exceptions").get_data(as_text=True))


# --- confirmation cards ----------------------------------------------------------------------------------------


def printed_codes(app, recipient_id) -> set[str]:
    """Every code printed on any of the recipient's cards (the test reads the secrets; no page may show them)."""
    with app.app_context():
        key = app.config["SERVICEHUB_DATA_KEY"]
        found = db.session.scalars(select(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient_id))
        return {code for card in found for code in
                confirmation.printed_list(crypto.decrypt(key, card.secret_encrypted), card.printed_codes)}


def card_rows(html: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<tr data-card="(\d+)".*?</tr>', html, re.S)}


def test_a_provider_prints_a_new_card_from_the_recipients_page_and_the_old_one_stops_working(app, served):
    recipient = served["recipients"][0]
    client = signed_in(app, "provider")
    page = unescape(client.get(f"/recipients/{recipient}").get_data(as_text=True))
    assert 'data-testid="issue-card"' in page and f'action="/recipients/{recipient}/cards"' in page
    assert re.search(r'data-confirm="确定为对象0打印新的确认卡吗？现有确认卡将立即失效', page)
    assert f'data-part="/recipients/{recipient}/cards?part=1"' in page
    empty = client.get(f"/recipients/{recipient}/cards?part=1").get_data(as_text=True)
    assert 'data-testid="no-cards"' in empty and "<html" not in empty

    # Without the page's token nothing is printed.
    assert client.post(f"/recipients/{recipient}/cards").status_code == 400
    answered = client.post(f"/recipients/{recipient}/cards", data={"csrf_token": csrf(client)})
    assert answered.status_code == 200 and answered.mimetype == "application/pdf"
    assert answered.headers["Content-Disposition"] == f'attachment; filename="confirmation-card-{recipient}-1.pdf"'
    assert answered.data.startswith(b"%PDF") and answered.headers["Cache-Control"] == "no-store"
    with app.app_context():
        events = db.session.scalars(select(AuditLog).where(AuditLog.action == "confirmation_card_issued")).all()
        assert [(e.actor, e.entity_type, e.entity_id) for e in events] == [("provider", "recipients", str(recipient))]
        # Even a first card printed by the payee is told to the bureau.
        assert len(db.session.scalars(select(Alert.id).where(Alert.kind == "card_reissued")).all()) == 1

    again = client.post(f"/recipients/{recipient}/cards", data={"csrf_token": csrf(client)})
    assert again.status_code == 200 and again.headers["X-Card-No"] == "2"
    listed = unescape(client.get(f"/recipients/{recipient}/cards?part=1").get_data(as_text=True))
    cards_shown = card_rows(listed)
    assert list(cards_shown) == [2, 1]
    assert 'data-state="in_force"' in cards_shown[2] and 'data-card-state="in_force">使用中<' in cards_shown[2]
    assert 'data-state="revoked"' in cards_shown[1] and "已失效" in cards_shown[1]
    assert "provider" in cards_shown[2] and re.search(r'data-testid="used">0 / 40<', cards_shown[2])
    whole = unescape(client.get(f"/recipients/{recipient}/cards").get_data(as_text=True))
    assert list(card_rows(whole)) == [2, 1] and "对象0" in whole
    # No page shows a code of either card.
    codes = printed_codes(app, recipient)
    assert len(codes) > 70
    for html in (page, listed, whole, unescape(client.get(f"/recipients/{recipient}").get_data(as_text=True))):
        assert not codes & set(re.findall(r"\d{6}", html))

    # The provider replaced a card: the managers are told, in words, with a link to the recipient.
    manager = signed_in(app, "manager")
    alert_rows = rows(inbox(manager, kind="card_reissued"))
    assert len(alert_rows) == 2
    alert_row = next(row for row in alert_rows.values() if "替换" in unescape(row))
    assert 'data-alert-kind="card_reissued">服务机构打印了确认卡<' in alert_row
    assert "对象0：provider 打印了第 2 号确认卡，替换第 1 号卡，旧卡已失效。" in unescape(alert_row)
    assert f'href="/recipients/{recipient}" data-link="recipient"' in alert_row


def test_who_may_print_a_card(app, served):
    recipient = served["recipients"][0]
    with app.app_context():
        other = next(o for o in make.organisation_ids() if o != served["org"])
    add_user(app, "provider.other", "provider_admin", organisation_id=other)
    manager = signed_in(app, "manager")
    assert 'data-testid="issue-card"' in manager.get(f"/recipients/{recipient}").get_data(as_text=True)
    assert manager.post(f"/recipients/{recipient}/cards", data={"csrf_token": csrf(manager)}).status_code == 200
    auditor = signed_in(app, "auditor")
    assert "issue-card" not in auditor.get(f"/recipients/{recipient}").get_data(as_text=True)
    assert post(auditor, f"/recipients/{recipient}/cards").status_code == 403
    assert auditor.get(f"/recipients/{recipient}/cards?part=1").status_code == 403
    assert post(signed_in(app, "caregiver"), f"/recipients/{recipient}/cards").status_code == 403
    stranger = signed_in(app, "provider.other")
    assert post(stranger, f"/recipients/{recipient}/cards").status_code == 404
    assert stranger.get(f"/recipients/{recipient}/cards?part=1").status_code == 404
    with app.app_context():
        assert db.session.scalars(select(ConfirmationCard.card_no)).all() == [1]


def test_wrong_codes_raise_the_code_failed_alert_and_exception_worded_for_the_provider(app, deviations):
    provider = deviations.provider
    with app.app_context():
        visit = db.session.scalars(select(Visit).where(Visit.service_date == deviations.day,
                                                       Visit.status == "published").order_by(Visit.planned_start)).first()
        cards.new_card(visit.recipient, provider)
        db.session.commit()
        lat, lon, start, name = visit.recipient.lat, visit.recipient.lon, visit.planned_start, visit.recipient.name
        with clock_at(start + timedelta(minutes=5)):
            services.check_in(provider, visit.id, str(uuid.uuid4()), lat, lon)
        for _ in range(3):
            with clock_at(start + timedelta(minutes=50)), pytest.raises(ValidationFailed) as refused:
                services.check_out(provider, visit.id, str(uuid.uuid4()), {
                    "lat": lat, "lon": lon, "tasks": [], "confirmation_method": "code", "confirmation_code": "000000"})
            assert refused.value.code in ("code_wrong", "code_expired")
        visit_id = visit.id
    client = signed_in(app, "provider")
    alert_rows = rows(inbox(client, kind="code_failed"))
    assert len(alert_rows) == 1
    (alert_row,) = alert_rows.values()
    assert 'data-alert-kind="code_failed">确认码多次错误<' in alert_row
    assert f"{name}：{deviations.day.isoformat()} 的助洁服务已输错确认码 3 次（操作人 provider）。" in unescape(alert_row)
    assert 'href="/exceptions?code=code_failed&amp;status=all" data-link="exceptions"' in alert_row
    failed = exception_rows(queue_page(client, code="code_failed", status="all"))
    assert len(failed) == 1 and f'data-visit="{visit_id}"' in next(iter(failed.values()))
    assert "输错确认码 3 次" in next(iter(failed.values()))


def test_the_phone_check_out_form_asks_for_a_six_digit_code_or_a_signature(app, served):
    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        user = db.session.scalar(select(User).where(User.username == "caregiver"))
        visit = db.session.scalars(select(Visit).where(Visit.service_date == district_today(),
                                                       Visit.status == "published").order_by(Visit.planned_start)).first()
        user.worker_id = visit.worker_id
        db.session.commit()
        caregiver = auth.principal_of(user)
        services.check_in(caregiver, visit.id, str(uuid.uuid4()), visit.recipient.lat, visit.recipient.lon)
        visit_id = visit.id
    html = unescape(signed_in(app, "caregiver").get("/my/route").get_data(as_text=True))
    form = re.search(rf'<li class="card stop-card" data-visit="{visit_id}".*?</form>', html, re.S).group(0)
    assert re.search(r'<input name="confirmation_code" inputmode="numeric" pattern="\[0-9\]\{6\}" maxlength="6"', form)
    assert "6 位数字：对象手机上当前显示的确认码，或纸质确认卡上下一个未划掉的确认码" in form
    assert 'data-signature data-testid="signature-pad"' in form and 'data-signature-clear' in form
    assert "既无确认码也无签名时，本次服务按“无对象确认”记录" in form
    for name in ("code-format", "code-wrong", "code-expired", "code-reused", "code-no-card", "code-locked",
                 "sign-more", "signature", "no-confirmation"):
        assert f'data-msg-{name}="' in form, name
    assert 'maxlength="4"' not in html and 'placeholder="0000"' not in html
