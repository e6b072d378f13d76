"""Issue 9's "done when", end to end on the real database: an emergency application filed on the public form
reaches the town's queue, is approved at once as emergency help (先救助后补材料), becomes an urgent need that
matching proposes to the contracted provider, and — once offered and accepted — lands on today's roster with a
worker and a planned start; meanwhile the deadline clock and the reminders of the missing documents run.

The day's plan does not depend on the time of day (a plan run lays out the whole day; only re-plans start from a
minute of the day), so these tests do not depend on when they run. The weekday matters: a weekly visit falls
on set weekdays, and a need with no preferred day gets Monday — so an emergency's approval names today's
weekday first. So that the tests would catch a return to the Monday default on any day they run, the
district's time zone (a setting, SERVICEHUB_TIMEZONE) is chosen so that the district's today is not a Monday:
the default zone when it already is not, else a zone of the same moment a day earlier or later.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.intake import services
from servicehub.intake.models import Application
from servicehub.matching.models import Referral
from servicehub.registry.models import ContractLine, Need
from servicehub.scheduling.models import Visit, VisitSeries
from servicehub.timeutil import district_today, local_midnight
from tests.intake.test_applications_api import answer
from tests.registry import factories as f
from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures

# The zones farthest apart (UTC-12 and UTC+14) are 26 hours apart: at any moment their dates differ.
ZONES = ("Asia/Shanghai", "Etc/GMT+12", "Etc/GMT-14")


def a_zone_where_today_is_not_a_monday() -> str:
    now = datetime.now(UTC)
    return next(zone for zone in ZONES if now.astimezone(ZoneInfo(zone)).weekday() != 0)


@pytest.fixture
def weekday(app, served, monkeypatch):  # noqa: F811 - the fixture above
    """`served`, in a district whose today is a Tuesday … Sunday."""
    monkeypatch.setitem(app.config, "SERVICEHUB_TIMEZONE", a_zone_where_today_is_not_a_monday())
    return served


def file_application(client) -> dict:
    response = client.post("/api/v1/public/applications", json={
        "name": "赵奶奶", "phone": "139 1234 5678", "area": f.DAGANG, "address": "大港街道迎宾路8号",
        "situation": "独居老人摔伤，家中无法打扫，子女在外地", "service_types": ["LC02"], "urgency": "emergency",
        "contact_name": "赵明", "contact_phone": "13700137000", **answer(client)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def emergency_to_roster(app, client, served, needs=None):  # noqa: F811 - the fixture's value
    """File, queue, approve as emergency help, offer and accept, generate and plan today; the new visit today."""
    filed = file_application(client)
    assert filed["urgency"] == "emergency" and filed["status"] == "new"
    assert parse(filed["due_at"]) - parse(filed["submitted_at"]) == timedelta(hours=1)

    # The town's queue: the emergency first.
    queue = client.get("/api/v1/applications", query_string={"open_only": "true"},
                       headers=served["manager.dagang"]).get_json()
    assert queue[0]["reference"] == filed["reference"] and queue[0]["town"] == f.DAGANG
    application_id = queue[0]["id"]

    # Approved at once as emergency help: a new recipient with an urgent need from today, matched.
    body = {"provisional": True, "note": "先救助后补材料",
            "recipient": {"id_number": f.id_number(female=True), "assistance_class": "dibao"}}
    if needs is not None:
        body["needs"] = needs
    approved = client.post(f"/api/v1/applications/{application_id}/approve", json=body,
                           headers=served["manager.dagang"])
    assert approved.status_code == 200, approved.get_json()
    result = approved.get_json()
    assert result["recipient_created"] and result["application"]["status"] == "provisional"
    assert result["matching_run_id"] and len(result["need_ids"]) == 1
    recipient_id, need_id = result["recipient_id"], result["need_ids"][0]
    with app.app_context():
        today = district_today()
        need = db.session.get(Need, need_id)
        assert (need.priority, need.start_date, need.source) == ("urgent", today, "application")
        assert need.recipient_id == recipient_id and need.service_type.code == "LC02"
        assert filed["reference"] in need.notes
        proposal = db.session.scalar(select(Referral).where(Referral.need_id == need_id))
        line = db.session.get(ContractLine, proposal.contract_line_id)
        assert proposal.status == "proposed" and proposal.organisation_id == served["org"]
        assert line.service_type.code == "LC02" and line.contract.organisation_id == served["org"]
        referral_id = proposal.id

    # Offered by the district, accepted by the provider.
    offered = client.post(f"/api/v1/referrals/{referral_id}/offer", json={}, headers=served["manager"])
    assert offered.status_code == 200, offered.get_json()
    accepted = client.post(f"/api/v1/referrals/{referral_id}/accept", json={}, headers=served["provider"])
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["status"] in ("accepted", "active")
    assert accepted.get_json()["start_date"] == today.isoformat()

    # The provider generates the visits and plans today.
    generated = client.post("/api/v1/visits/generate", json={}, headers=served["provider"])
    assert generated.status_code == 200, generated.get_json()
    run = client.post("/api/v1/schedule-runs", headers=served["provider"], json={
        "organisation_id": served["org"], "date": today.isoformat(), "time_limit_s": 1})
    assert run.status_code == 202, run.get_json()
    assert run.get_json()["status"] == "solved", run.get_json()
    published = client.post(f"/api/v1/schedule-runs/{run.get_json()['id']}/publish", headers=served["provider"])
    assert published.status_code == 200, published.get_json()
    with app.app_context():
        series = db.session.scalar(select(VisitSeries).where(VisitSeries.referral_id == referral_id))
        visits = db.session.scalars(select(Visit).where(Visit.recipient_id == recipient_id,
                                                        Visit.service_date == today)).all()
        details = {"today": f"{today} ({today:%A})", "rrule": series.rrule if series else None,
                   "visits": [(v.service_date, v.status) for v in db.session.scalars(
                       select(Visit).where(Visit.recipient_id == recipient_id).order_by(Visit.service_date))]}
        db.session.expunge_all()
    return {"application_id": application_id, "filed": filed, "recipient_id": recipient_id, "today": today,
            "visits": visits, "details": details}


def assert_on_todays_roster(app, done):
    today = done["today"]
    assert len(done["visits"]) == 1, f"no visit today for the emergency: {done['details']}"
    visit = done["visits"][0]
    assert visit.urgent and visit.status == "published"
    assert visit.worker_id is not None and visit.sequence is not None
    with app.app_context():
        midnight = local_midnight(today)
        assert visit.planned_start is not None and midnight <= visit.planned_start < midnight + timedelta(days=1)
        assert visit.planned_end - visit.planned_start == timedelta(minutes=visit.duration_min)


def test_an_emergency_application_is_on_todays_roster_with_the_help_asked_for(app, client, weekday):
    """The issue's path as it stands: the services asked for, started as the approval makes them by default."""
    done = emergency_to_roster(app, client, weekday)
    assert_on_todays_roster(app, done)


def test_an_emergency_approved_with_its_days_named_is_on_todays_roster(app, client, weekday):
    """The same path with the manager naming the day (today) for the weekly help: placed today by a worker."""
    with app.app_context():
        today = district_today()
    done = emergency_to_roster(app, client, weekday, needs=[
        {"service_type": "LC02", "quantity": 1, "preferred_days": [today.isoweekday()]}])
    assert_on_todays_roster(app, done)


def test_the_deadline_clock_and_the_document_reminders_of_emergency_help(app, client, weekday):
    with app.app_context():
        today = district_today()
    done = emergency_to_roster(app, client, weekday, needs=[
        {"service_type": "LC02", "quantity": 1, "preferred_days": [today.isoweekday()]}])
    with app.app_context():
        application = db.session.get(Application, done["application_id"])
        # Due an hour after it came in; the approval was the first contact, so the clock stopped in time.
        assert application.due_at - application.submitted_at == timedelta(hours=1)
        assert application.first_contact_at is not None and application.first_contact_at <= application.due_at
        assert services.escalate_overdue(utcnow() + timedelta(hours=2)) == 0
        assert application.escalated_at is None
        # Three documents owed in 15 days; reminded from three days before, then every three days.
        due = today + timedelta(days=15)
        assert application.documents_due_on == due
        assert [d.due_on for d in application.documents] == [due] * 3
        assert services.remind_documents(due - timedelta(days=4)) == 0
        assert services.remind_documents(due - timedelta(days=3)) == 3
        assert services.remind_documents(due - timedelta(days=2)) == 0  # reminded yesterday
        assert services.remind_documents(due + timedelta(days=1)) == 3  # overdue now
        db.session.expire_all()
        application = db.session.get(Application, done["application_id"])
        assert [d.reminders for d in application.documents] == [2, 2, 2]
        reminded = [s.note for s in application.steps if s.kind == "reminded"]
        assert len(reminded) == 6 and all(s.by_name == "system" for s in application.steps if s.kind == "reminded")
        assert sum(note.endswith(f": due {due}") for note in reminded) == 3
        assert sum(note.endswith(f": overdue {due}") for note in reminded) == 3
        assert {note.split(":")[0] for note in reminded} == {d.name for d in application.documents}
    # The applicant sees the steps, without their notes.
    status = client.post("/api/v1/public/applications/status",
                         json={"reference": done["filed"]["reference"], "phone": "13912345678"}).get_json()
    assert status["status"] == "provisional" and "reminded" in [s["kind"] for s in status["steps"]]
