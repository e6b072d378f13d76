"""Service records through the API: check-in and check-out with visit verification, idempotent retries,
outcomes, corrections with approval, and a ledger that shows any change made behind the application's back."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from servicehub import crypto
from servicehub.auth.models import User
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits.models import ServiceRecord
from tests.scheduling.fixtures import district_today


@pytest.fixture
def day(app, served, client):
    """Today's roster published; the demo caregiver is the worker with the most visits today."""
    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        busiest = db.session.execute(select(Visit.worker_id, func.count()).where(
            Visit.service_date == district_today(), Visit.worker_id.is_not(None))
            .group_by(Visit.worker_id).order_by(func.count().desc())).first()[0]
        user = db.session.scalar(select(User).where(User.username == "caregiver"))
        user.worker_id = busiest
        db.session.commit()
        mine = db.session.scalars(select(Visit).where(Visit.worker_id == busiest,
                                                      Visit.service_date == district_today())
                                  .order_by(Visit.sequence)).all()
        others = db.session.scalars(select(Visit).where(Visit.worker_id != busiest,
                                                        Visit.service_date == district_today())).all()
        key = app.config["SERVICEHUB_DATA_KEY"]
        return {"mine": [(v.id, v.recipient.lat, v.recipient.lon, crypto.confirmation_code(key, v.recipient_id))
                         for v in mine],
                "others": [v.id for v in others], "worker": busiest}


def key():
    return {"Idempotency-Key": str(uuid.uuid4())}


def post(client, served, path, body, who="caregiver", headers=None):
    return client.post(path, json=body, headers={**served[who], **(headers or key())})


def check_in(client, served, visit, **extra):
    visit_id, lat, lon, _ = visit
    return post(client, served, f"/api/v1/visits/{visit_id}/check-in", {"lat": lat, "lon": lon, **extra})


def check_out(client, served, visit, **extra):
    visit_id, lat, lon, code = visit
    body = {"lat": lat, "lon": lon, "tasks": ["floors"], "confirmation_method": "code", "confirmation_code": code,
            "satisfaction": 5, "notes": "一切正常", **extra}
    return post(client, served, f"/api/v1/visits/{visit_id}/check-out", body)


def ledger_size(app):
    with app.app_context():
        return db.session.scalar(select(func.count(ServiceRecord.id)))


def visit_status(app, visit_id):
    with app.app_context():
        return db.session.get(Visit, visit_id).status


def test_check_in_and_out_write_the_six_facts_and_complete_the_visit(app, served, client, day):
    visit = day["mine"][0]
    arrived = check_in(client, served, visit)
    assert arrived.status_code == 201, arrived.get_json()
    entry = arrived.get_json()
    assert entry["kind"] == "check_in" and entry["flags"] == [] and entry["distance_m"] < 1
    assert visit_status(app, visit[0]) == "in_progress"
    done = check_out(client, served, visit)
    assert done.status_code == 201, done.get_json()
    record = done.get_json()
    assert (record["kind"], record["visit_id"], record["worker_id"], record["service_type"]) == \
        ("delivery", visit[0], day["worker"], "LC02")
    assert record["started_at"] == entry["started_at"] and record["ended_at"] >= record["started_at"]
    assert (record["lat"], record["lon"]) == (round(visit[1], 7), round(visit[2], 7))
    assert record["tasks"] == ["floors"] and record["confirmation_method"] == "code" and record["satisfaction"] == 5
    assert "duration" in record["flags"]  # checked out at once: far shorter than the planned hour
    assert record["prev_hash"] == entry["hash"] and record["sequence"] == entry["sequence"] + 1
    assert visit_status(app, visit[0]) == "completed"


def test_a_retried_request_returns_the_same_record_and_never_a_second(app, served, client, day):
    visit, same = day["mine"][0], key()
    first = post(client, served, f"/api/v1/visits/{visit[0]}/check-in", {"lat": visit[1], "lon": visit[2]},
                 headers=same)
    again = post(client, served, f"/api/v1/visits/{visit[0]}/check-in", {"lat": visit[1], "lon": visit[2]},
                 headers=same)
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    assert ledger_size(app) == 1
    second = check_in(client, served, visit)
    assert second.status_code == 409 and ledger_size(app) == 1
    reused = post(client, served, f"/api/v1/visits/{day['mine'][1][0]}/check-in",
                  {"lat": visit[1], "lon": visit[2]}, headers=same)
    assert reused.status_code == 409 and reused.get_json()["code"] == "idempotency_key_reused"


def test_bad_requests_are_refused_and_nothing_is_written(app, served, client, day):
    visit = day["mine"][0]
    assert post(client, served, f"/api/v1/visits/{visit[0]}/check-in", {"lat": 95, "lon": 119.6}).status_code == 422
    outside = post(client, served, f"/api/v1/visits/{visit[0]}/check-in", {"lat": 31.0, "lon": 119.6})
    assert outside.status_code == 422 and "lat" in outside.get_json()["errors"]
    no_key = client.post(f"/api/v1/visits/{visit[0]}/check-in", json={"lat": visit[1], "lon": visit[2]},
                         headers=served["caregiver"])
    assert no_key.status_code == 422 and "Idempotency-Key" in str(no_key.get_json()["errors"])
    early = check_out(client, served, visit)
    assert early.status_code == 409 and early.get_json()["code"] == "not_checked_in"
    someone_elses = post(client, served, f"/api/v1/visits/{day['others'][0]}/check-in", {"lat": 32.2, "lon": 119.68})
    assert someone_elses.status_code == 404
    future = check_in(client, served, visit, at=(utcnow() + timedelta(hours=1)).isoformat())
    assert future.status_code == 422 and "at" in future.get_json()["errors"]
    assert ledger_size(app) == 0 and visit_status(app, visit[0]) == "published"
    assert check_in(client, served, visit).status_code == 201
    wrong = check_out(client, served, visit, confirmation_code="0000" if visit[3] != "0000" else "1111")
    assert wrong.status_code == 422 and "confirmation_code" in wrong.get_json()["errors"]
    bad_task = check_out(client, served, visit, tasks=["fly"])
    assert bad_task.status_code == 422 and "tasks" in bad_task.get_json()["errors"]
    assert ledger_size(app) == 1 and visit_status(app, visit[0]) == "in_progress"


def test_far_from_the_address_is_accepted_but_flagged_and_an_offline_time_is_kept(app, served, client, day):
    visit_id, lat, lon, _ = day["mine"][0]
    earlier = utcnow() - timedelta(minutes=2)
    far = check_in(client, served, (visit_id, lat + 0.01, lon, None), at=earlier.isoformat())
    assert far.status_code == 201
    entry = far.get_json()
    assert entry["flags"] == ["far_from_address"] and entry["distance_m"] > 1000
    assert entry["started_at"][:19] == earlier.isoformat()[:19] and entry["device_time"] is not None


def test_a_missed_visit_needs_a_reason(app, served, client, day):
    visit_id = day["mine"][0][0]
    bad = post(client, served, f"/api/v1/visits/{visit_id}/outcome", {"outcome": "missed", "reason": "lazy"})
    assert bad.status_code == 422 and "reason" in bad.get_json()["errors"]
    missed = post(client, served, f"/api/v1/visits/{visit_id}/outcome", {"outcome": "missed", "reason": "not_home"})
    assert missed.status_code == 201 and missed.get_json()["outcome_reason"] == "not_home"
    assert visit_status(app, visit_id) == "missed"
    assert check_in(client, served, day["mine"][0]).status_code == 409


def test_a_caregivers_correction_of_times_counts_only_once_approved(app, served, client, day):
    from servicehub.visits.services import effective_delivery

    visit = day["mine"][0]
    check_in(client, served, visit)
    delivered = check_out(client, served, visit).get_json()
    started = delivered["started_at"]
    fixed = {"reason_code": "wrong_time", "notes": "忘记签出", "started_at": started,
             "ended_at": (utcnow() + timedelta(minutes=1)).isoformat()}
    assert post(client, served, f"/api/v1/service-records/{delivered['id']}/corrections",
                {**fixed, "notes": ""}).status_code == 422
    correction = post(client, served, f"/api/v1/service-records/{delivered['id']}/corrections", fixed)
    assert correction.status_code == 201, correction.get_json()
    correction = correction.get_json()
    assert correction["kind"] == "correction" and correction["refers_to_id"] == delivered["id"]
    assert "pending_approval" in correction["flags"] and correction["recorded_by"] == "caregiver"
    with app.app_context():
        assert effective_delivery(visit[0]).id == delivered["id"]
    assert post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {}).status_code == 403
    approval = post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {}, who="provider")
    assert approval.status_code == 201
    assert post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {},
                who="provider").status_code == 409
    with app.app_context():
        assert effective_delivery(visit[0]).id == correction["id"]
    entries = client.get("/api/v1/service-records", query_string={"visit_id": visit[0]},
                         headers=served["auditor"]).get_json()
    assert [e["kind"] for e in entries] == ["check_in", "delivery", "correction", "approval"]


def test_the_ledger_refuses_updates_and_names_a_row_altered_behind_its_back(app, served, client, day, runner):
    for visit in day["mine"][:2]:
        check_in(client, served, visit)
        check_out(client, served, visit)
    report = client.get("/api/v1/service-records/verify", headers=served["auditor"]).get_json()
    mine = next(r for r in report if r["organisation_id"] == served["org"])
    assert mine == {"organisation_id": served["org"], "records": 4, "ok": True, "broken": None}
    with app.app_context():
        with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE service_records SET satisfaction = 1"))
        # Someone with the database's keys drops the trigger and edits the second delivery.
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(sa.text("DROP TRIGGER service_records_append_only ON service_records"))
            else:
                conn.execute(sa.text("DROP TRIGGER service_records_append_only"))
            conn.execute(sa.text("UPDATE service_records SET satisfaction = 1 WHERE sequence = 4"))
    try:
        result = runner.invoke(args=["audit", "verify"])
        assert result.exit_code == 1
        assert f"organisation {served['org']}: BROKEN at record #4" in result.output and "changed" in result.output
        report = client.get("/api/v1/service-records/verify", headers=served["auditor"]).get_json()
        broken = next(r for r in report if r["organisation_id"] == served["org"])
        assert broken["ok"] is False and broken["broken"]["sequence"] == 4
        assert client.get("/api/v1/service-records/verify", headers=served["caregiver"]).status_code == 403
    finally:
        with app.app_context(), db.engine.begin() as conn:
            from servicehub.database import append_only_ddl

            for statement in append_only_ddl(db.engine.dialect.name, "service_records")[0]:
                conn.execute(sa.text(statement))


def test_a_caregiver_sees_only_their_own_records(app, served, client, day):
    check_in(client, served, day["mine"][0])
    with app.app_context():
        other = db.session.get(Visit, day["others"][0])
        other_worker = other.worker_id
    assert client.get("/api/v1/service-records", headers=served["caregiver"]).get_json()[0]["worker_id"] == day["worker"]
    assert all(r["worker_id"] != other_worker for r in
               client.get("/api/v1/service-records", headers=served["caregiver"]).get_json())
