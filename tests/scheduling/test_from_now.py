"""A day that has begun is planned from now: passed windows are left out, done and started visits stay, workers
go on from where they are, a past start is never published; "re-plan from now" for a whole organisation.
The suite's clock reads 06:00 today (tests/conftest.py); `clock_at` sets the moment a step happens. Each test is the
small day of the `served` fixture."""

import uuid
from datetime import time

import pytest
from sqlalchemy import func, select

from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import Principal, Role
from servicehub.database import clock_at
from servicehub.errors import Conflict, ValidationFailed
from servicehub.extensions import db
from servicehub.registry.models import Need
from servicehub.scheduling import services
from servicehub.scheduling.models import RosterVersion, Visit, VisitSeries, VisitStatus
from servicehub.visits import cards, confirmation
from servicehub.visits import services as records
from tests.scheduling.fixtures import district_today


def provider(org: int) -> Principal:
    return Principal(user_id=None, username="provider", role=Role.PROVIDER_ADMIN, organisation_id=org)


def plan_and_publish_today(org: int) -> list[Visit]:
    """Plan today at the suite's early hour and publish it: the published visits, by planned start."""
    run = services.start_run(provider(org), org, district_today(), time_limit_s=0.5)
    services.publish_run(provider(org), run.id)
    return list(db.session.scalars(select(Visit).where(Visit.service_date == district_today(),
                                                       Visit.worker_id.is_not(None))
                                   .order_by(Visit.planned_start, Visit.id)))


def at(hours: int, minutes: int = 0):
    return services.at_minutes(district_today(), hours * 60 + minutes)


def record(visit: Visit, arrived, left=None) -> None:
    """The visit's caregiver checks in at `arrived` (and out at `left`) at the door."""
    caregiver = Principal(user_id=None, username=visit.worker.name, role=Role.CAREGIVER,
                          organisation_id=visit.organisation_id, worker_id=visit.worker_id)
    lat, lon = visit.recipient.lat + 0.00018, visit.recipient.lon
    with clock_at(arrived):
        records.check_in(caregiver, visit.id, str(uuid.uuid4()), lat, lon)
    if left is None:
        return
    _, _, secret = cards.new_card(visit.recipient, records.SYSTEM)
    db.session.commit()
    with clock_at(left):
        records.check_out(caregiver, visit.id, str(uuid.uuid4()), {
            "lat": lat, "lon": lon, "tasks": [item["code"] for item in visit.service_type.checklist],
            "confirmation_method": "code", "confirmation_code": confirmation.phone_code(secret, left),
            "satisfaction": 5, "notes": ""})


def test_a_morning_visit_is_left_out_at_three_in_the_afternoon_and_nothing_is_planned_before_then(app_ctx, served):
    need = db.session.get(Need, served["needs"][0])  # the run brings the visits in line with the need
    need.window_start, need.window_end = time(8, 30), time(10, 30)
    db.session.commit()
    series = db.session.scalar(select(VisitSeries).where(VisitSeries.recipient_id == need.recipient_id))
    with clock_at(at(15)):
        run = services.start_run(provider(served["org"]), served["org"], district_today(), time_limit_s=0.5)
    plan = run.plan[district_today().isoformat()]["visits"]
    morning = db.session.scalar(select(Visit.id).where(Visit.series_id == series.id,
                                                       Visit.service_date == district_today()))
    assert plan[str(morning)] == {"unplaced": "window_passed"}
    placed = [where for where in plan.values() if "start" in where]
    assert placed and all(where["arrival"] >= 900 and where["start"] >= 900 for where in placed)
    assert run.unplaced >= 1 and run.visits_total == len(plan)
    with clock_at(at(15, 5)):
        services.publish_run(provider(served["org"]), run.id)
    assert db.session.get(Visit, morning).unplaced_reason == "window_passed"


def test_a_worker_who_checked_out_at_two_starts_from_there_at_three_and_done_visits_stay(app_ctx, served):
    visits = plan_and_publish_today(served["org"])
    done, started = visits[0], next(v for v in visits if v.worker_id != visits[0].worker_id)
    record(done, at(13), at(14))
    record(started, at(14, 50))  # under way: expected to end at 15:50
    kept = {v.id: (v.status, v.worker_id, v.planned_start) for v in (done, started)}
    with clock_at(at(15)):
        loaded = services.load_day(served["org"], district_today())
    problem = loaded.problem
    assert {v.id for v in problem.visits}.isdisjoint(kept)  # not planned again
    workers = {w.id: w for w in problem.workers}
    there = problem.travel_time(workers[done.worker_id], workers[done.worker_id].start_location,
                                workers[done.worker_id].end_location)
    assert there > 0  # starts at X (the recipient's place), goes home at the end
    assert workers[done.worker_id].shift[0] == 900
    assert workers[started.worker_id].shift[0] == 950  # free of the started visit at its expected end
    assert all(w.shift[0] >= 900 for w in problem.workers)
    with clock_at(at(15)):
        run = services.replan_from_now(provider(served["org"]), served["org"], time_limit_s=0.5)
        services.publish_run(provider(served["org"]), run.id)
    plan = run.plan[district_today().isoformat()]["visits"]
    assert str(done.id) not in plan and str(started.id) not in plan
    assert all(where["start"] >= 900 for where in plan.values() if "start" in where)
    assert all(c["visit_id"] not in kept for c in run.changes)
    db.session.expire_all()
    assert {v: (row.status, row.worker_id, row.planned_start) for v in kept
            for row in [db.session.get(Visit, v)]} == kept


def test_publishing_a_plan_whose_start_has_passed_is_refused_and_writes_nothing(app_ctx, served):
    run = services.start_run(provider(served["org"]), served["org"], district_today(), time_limit_s=0.5)
    with clock_at(at(12)), pytest.raises(Conflict) as refused:  # the plan starts its first visits in the morning
        services.publish_run(provider(served["org"]), run.id)
    assert refused.value.code == "start_past" and refused.value.errors["visits"]
    assert db.session.scalar(select(func.count(RosterVersion.id))) == 0
    assert not db.session.scalar(select(func.count(Visit.id)).where(Visit.status == VisitStatus.PUBLISHED))
    assert services.get_run(provider(served["org"]), run.id).status == "solved"
    with clock_at(at(12)):
        replanned = services.replan_from_now(provider(served["org"]), served["org"], time_limit_s=0.5)
        assert len(services.publish_run(provider(served["org"]), replanned.id)) == 1  # planned from now: accepted


def test_a_hand_move_to_a_time_already_past_is_refused_and_writes_nothing(app_ctx, served):
    visits = plan_and_publish_today(served["org"])
    moved = next(v for v in visits if v.worker_id is not None and v.pair_key is None)
    before = (moved.worker_id, moved.planned_start, moved.locked)
    with clock_at(at(15)), pytest.raises(ValidationFailed) as refused:
        services.move_visit(provider(served["org"]), moved.id, moved.worker_id, time(9, 0))
    assert refused.value.code == "start_past"
    db.session.expire_all()
    again = db.session.get(Visit, moved.id)
    assert (again.worker_id, again.planned_start, again.locked) == before


def test_replan_from_now_through_the_api_is_a_run_of_today_for_those_who_run_schedules(app, served, client):
    path = f"/api/v1/organisations/{served['org']}/replan-from-now"
    with app.app_context():
        three = at(15)
    with clock_at(three):
        response = client.post(path, json={"time_limit_s": 0.5}, headers=served["provider"])
    assert response.status_code == 202, response.get_json()
    run = response.get_json()
    assert run["kind"] == "replan" and run["absent_worker_id"] is None and run["replan_from"] == "15:00"
    assert run["date_from"] == run["date_to"] == district_today().isoformat() and run["status"] == "solved"
    assert client.post(path, json={"time_limit_s": 0}, headers=served["provider"]).status_code == 422
    assert client.post(path, json={}, headers=served["caregiver"]).status_code == 403
    assert client.post(path, json={}, headers=served["manager.dagang"]).status_code in (403, 404)
    assert client.post("/api/v1/organisations/999999/replan-from-now", json={},
                       headers=served["admin"]).status_code in (404, 422)
    with app.app_context():
        event = db.session.scalar(select(AuditLog).where(AuditLog.action == "schedule_run_requested",
                                                         AuditLog.entity_id == str(run["id"])))
        assert event is not None and event.changes["kind"] == "replan" and event.changes["replan_from_min"] == 900
    with clock_at(three):
        published = client.post(f"/api/v1/schedule-runs/{run['id']}/publish", headers=served["provider"])
    assert published.status_code == 200, published.get_json()
    early = client.post("/api/v1/schedule-runs", headers=served["provider"], json={
        "organisation_id": served["org"], "date": district_today().isoformat(), "time_limit_s": 0.5}).get_json()
    assert early["status"] == "solved"  # planned at 06:00: the morning is on it
    with clock_at(three):
        refused = client.post(f"/api/v1/schedule-runs/{early['id']}/publish", headers=served["provider"])
    assert refused.status_code == 409 and refused.get_json()["code"] == "start_past"
