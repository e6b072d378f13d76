"""The working calendar: the district enters days off and weekend days worked, intake deadlines count working
days by it and move when it changes; bad input and other roles are refused."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from servicehub.auth.models import AuditLog
from servicehub.extensions import db
from servicehub.intake.models import Application, CalendarDay
from servicehub.timeutil import district_today, district_tz
from tests.intake.test_applications_api import answer, form


def next_weekday(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def next_weekend_day(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() < 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def today(app):
    with app.app_context():
        return district_today()


@pytest.fixture
def tz(app):
    with app.app_context():
        return district_tz()


@pytest.fixture
def normal(client, demo):
    """A normal (not emergency) application filed on the public form today: its JSON."""
    response = client.post("/api/v1/public/applications", json={**form(urgency="normal"), **answer(client)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def due_of(app, reference: str) -> datetime:
    with app.app_context():
        return db.session.scalar(select(Application.due_at).where(Application.reference == reference))


def test_the_district_enters_a_day_off_and_a_deadline_over_it_moves_and_comes_back(app, client, auth_headers, normal,
                                                                                 today, tz):
    before = due_of(app, normal["reference"])
    day = next_weekday(today)
    url = f"/api/v1/calendar/{day.isoformat()}"
    entered = client.put(url, json={"kind": "holiday", "name": "测试假日"}, headers=auth_headers("manager"))
    assert entered.status_code == 200, entered.get_json()
    assert entered.get_json()["kind"] == "holiday" and entered.get_json()["updated_by"] == "manager"
    moved = due_of(app, normal["reference"])
    local = moved.astimezone(tz)
    assert moved > before and local.weekday() < 5 and local.time() == before.astimezone(tz).time()
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == normal["reference"]))
        assert [s.kind for s in application.steps][-1] == "note" and "working calendar" in application.steps[-1].note
    listed = client.get("/api/v1/calendar", query_string={"year": day.year}, headers=auth_headers("manager.dagang"))
    assert [(d["day"], d["name"]) for d in listed.get_json()] == [(day.isoformat(), "测试假日")]
    again = client.put(url, json={"kind": "holiday", "name": "测试假日"}, headers=auth_headers("manager"))
    assert again.status_code == 200 and due_of(app, normal["reference"]) == moved  # the same twice: once
    assert client.delete(url, headers=auth_headers("manager")).status_code == 204
    assert due_of(app, normal["reference"]) == before
    assert client.delete(url, headers=auth_headers("manager")).status_code == 404
    with app.app_context():
        events = db.session.scalars(select(AuditLog.action).where(
            AuditLog.entity_type == "calendar_days", AuditLog.action.like("calendar_day%"))).all()
        assert sorted(events) == ["calendar_day_removed", "calendar_day_set"]  # the same day twice: one change


def test_a_weekend_day_worked_brings_a_deadline_over_it_forward(app, client, auth_headers, normal, today, tz):
    day = today
    for _ in range(3):  # the next three weekdays off: the deadline now runs over a weekend, whatever today is
        day = next_weekday(day)
        assert client.put(f"/api/v1/calendar/{day.isoformat()}", json={"kind": "holiday"},
                          headers=auth_headers("manager")).status_code == 200
    before = due_of(app, normal["reference"])
    weekend = next_weekend_day(today)
    assert weekend < before.astimezone(tz).date()
    response = client.put(f"/api/v1/calendar/{weekend.isoformat()}", json={"kind": "workday", "name": "调休"},
                          headers=auth_headers("manager"))
    assert response.status_code == 200, response.get_json()
    assert due_of(app, normal["reference"]) < before


def test_new_applications_count_working_days_by_the_calendar(app, client, auth_headers, demo, today, tz):
    days = [next_weekday(today)]
    days.append(next_weekday(days[0]))
    for day in days:
        assert client.put(f"/api/v1/calendar/{day.isoformat()}", json={"kind": "holiday"},
                          headers=auth_headers("manager")).status_code == 200
    filed = client.post("/api/v1/public/applications", json={**form(urgency="normal"), **answer(client)}).get_json()
    due = datetime.fromisoformat(filed["due_at"]).astimezone(tz).date()
    working = [d for d in (today + timedelta(days=k) for k in range(1, (due - today).days + 1))
               if d.weekday() < 5 and d not in days]
    assert len(working) == 3 and due == working[-1]


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "vacation"}, "kind"), ({}, "kind"), ({"kind": "holiday", "name": "长" * 41}, "name"),
])
def test_a_malformed_day_is_refused_naming_the_field(app, client, auth_headers, demo, today, body, field):
    response = client.put(f"/api/v1/calendar/{next_weekday(today)}", json=body,
                          headers=auth_headers("manager"))
    assert response.status_code == 422 and field in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalars(select(CalendarDay)).all() == []


def test_a_weekday_cannot_be_worked_in_exchange_and_a_day_must_exist(client, auth_headers, demo, today):
    weekday = client.put(f"/api/v1/calendar/{next_weekday(today)}", json={"kind": "workday"},
                         headers=auth_headers("manager"))
    assert weekday.status_code == 422 and "kind" in weekday.get_json()["errors"]
    assert client.put("/api/v1/calendar/2027-02-30", json={"kind": "holiday"},
                      headers=auth_headers("manager")).status_code == 404
    assert client.get("/api/v1/calendar", query_string={"year": 1900},
                      headers=auth_headers("manager")).status_code == 422


def test_only_the_district_keeps_the_calendar(client, auth_headers, demo, today):
    url = f"/api/v1/calendar/{next_weekday(today)}"
    assert client.put(url, json={"kind": "holiday"}, headers=auth_headers("manager.dagang")).status_code == 403
    assert client.put(url, json={"kind": "holiday"}, headers=auth_headers("provider")).status_code == 403
    assert client.get("/api/v1/calendar", query_string={"year": 2026}, headers=auth_headers("provider")).status_code == 403
