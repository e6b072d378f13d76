"""The alert inbox through the test client: a provider admin reads its late visits and acknowledges one
with a note (then it leaves the open list and shows under all, with who, when and the note), an empty
note is refused with a message; a manager reads missed visits; an auditor reads but cannot acknowledge;
a caregiver may not open the inbox. Refusals are messages — never a 500."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.scheduling import services as scheduling
from servicehub.timeutil import local_midnight
from servicehub.visits import services, views
from tests.matching.test_pages import flashes, messages, post, row
from tests.registry.test_pages import signed_in
from tests.scheduling.fixtures import district_today


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
