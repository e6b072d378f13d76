"""Service records through the API: check-in and check-out with visit verification, idempotent retries,
outcomes, corrections with approval, and a ledger that shows any change made behind the application's back.

Times are pinned (`clock_at`) to the visit's plan, so what the rules find does not depend on when the tests run."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.scheduling.models import Visit
from tests.visits.evv import check_in, check_out, deliver, key, ledger_size, post, visit_status, wrong_code


def test_check_in_and_out_write_the_six_facts_and_complete_the_visit(app, served, client, day):
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=3)) as arrival:
        arrived = check_in(client, served, stop)
    assert arrived.status_code == 201, arrived.get_json()
    entry = arrived.get_json()
    assert entry["kind"] == "check_in" and entry["flags"] == [] and 15 < entry["distance_m"] < 25
    assert entry["started_at"][:19] == arrival.isoformat()[:19]
    assert visit_status(app, stop.id) == "in_progress"
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        done = check_out(client, served, stop, now)
    assert done.status_code == 201, done.get_json()
    record = done.get_json()
    assert (record["kind"], record["visit_id"], record["worker_id"], record["service_type"]) == \
        ("delivery", stop.id, day["worker"], "LC02")
    assert record["started_at"] == entry["started_at"] and record["ended_at"][:19] == now.isoformat()[:19]
    assert (record["lat"], record["lon"]) == (round(stop.lat, 7), round(stop.lon, 7))
    assert record["tasks"] == ["floors"] and record["confirmation_method"] == "code" and record["satisfaction"] == 5
    assert record["flags"] == []  # on time, at the door, confirmed by the recipient: nothing to explain
    assert record["prev_hash"] == entry["hash"] and record["sequence"] == entry["sequence"] + 1
    assert visit_status(app, stop.id) == "completed"
    with app.app_context():
        visit = db.session.get(Visit, stop.id)
        assert (visit.delivery_record_id, visit.delivery_exception, visit.delivery_manual) == (record["id"], False, False)


def test_a_visit_checked_out_at_once_is_flagged_short_and_early(app, served, client, day):
    stop = day["mine"][0]
    record = deliver(client, served, stop, arrive=3, leave=8)
    assert record["flags"] == ["early_end", "short_visit"]
    with app.app_context():
        assert db.session.get(Visit, stop.id).delivery_exception is True


def test_a_retried_request_returns_the_same_record_and_never_a_second(app, served, client, day):
    stop, same = day["mine"][0], key()
    with clock_at(stop.start + timedelta(minutes=3)):
        first = post(client, served, f"/api/v1/visits/{stop.id}/check-in", {"lat": stop.lat, "lon": stop.lon},
                     headers=same)
        again = post(client, served, f"/api/v1/visits/{stop.id}/check-in", {"lat": stop.lat, "lon": stop.lon},
                     headers=same)
        assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
        assert ledger_size(app) == 1
        second = check_in(client, served, stop)
        assert second.status_code == 409 and second.get_json()["code"] == "not_startable" and ledger_size(app) == 1
        reused = post(client, served, f"/api/v1/visits/{day['mine'][1].id}/check-in",
                      {"lat": stop.lat, "lon": stop.lon}, headers=same)
        assert reused.status_code == 409 and reused.get_json()["code"] == "idempotency_key_reused"
        other_body = post(client, served, f"/api/v1/visits/{stop.id}/check-in",
                          {"lat": stop.lat + 0.0001, "lon": stop.lon}, headers=same)
        assert other_body.status_code == 409 and other_body.get_json()["code"] == "idempotency_key_reused"
        assert "idempotency_key" in other_body.get_json()["errors"]
    assert ledger_size(app) == 1


def test_bad_requests_are_refused_and_nothing_is_written(app, served, client, day):
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=3)) as now:
        assert post(client, served, f"/api/v1/visits/{stop.id}/check-in", {"lat": 95, "lon": 119.6}).status_code == 422
        outside = post(client, served, f"/api/v1/visits/{stop.id}/check-in", {"lat": 31.0, "lon": 119.6})
        assert outside.status_code == 422 and "lat" in outside.get_json()["errors"]
        no_key = client.post(f"/api/v1/visits/{stop.id}/check-in", json={"lat": stop.lat, "lon": stop.lon},
                             headers=served["caregiver"])
        assert no_key.status_code == 422 and "Idempotency-Key" in str(no_key.get_json()["errors"])
        early = check_out(client, served, stop, now)
        assert early.status_code == 409 and early.get_json()["code"] == "not_checked_in"
        someone_elses = post(client, served, f"/api/v1/visits/{day['others'][0]}/check-in",
                             {"lat": 32.2, "lon": 119.68})
        assert someone_elses.status_code == 404
        future = check_in(client, served, stop, at=(now + timedelta(hours=1)).isoformat())
        assert future.status_code == 422 and "at" in future.get_json()["errors"]
        yesterday = check_in(client, served, stop, at=(now - timedelta(days=1)).isoformat())
        assert yesterday.status_code == 422 and "at" in yesterday.get_json()["errors"]
        assert ledger_size(app) == 0 and visit_status(app, stop.id) == "published"
        assert check_in(client, served, stop).status_code == 201
    with clock_at(stop.start + timedelta(minutes=50)) as now:
        short = check_out(client, served, stop, now, confirmation_code="1234")
        assert short.status_code == 422 and "confirmation_code" in short.get_json()["errors"]
        wrong = check_out(client, served, stop, now, confirmation_code=wrong_code(stop.secret, now))
        assert wrong.status_code == 422 and wrong.get_json()["code"] == "code_wrong"
        assert "confirmation_code" in wrong.get_json()["errors"]
        bad_task = check_out(client, served, stop, now, tasks=["fly"])
        assert bad_task.status_code == 422 and "tasks" in bad_task.get_json()["errors"]
        before = check_out(client, served, stop, now, at=(stop.start + timedelta(minutes=1)).isoformat())
        assert before.status_code == 422 and "at" in before.get_json()["errors"]
    assert ledger_size(app) == 1 and visit_status(app, stop.id) == "in_progress"


def test_far_from_the_address_is_accepted_but_flagged_and_an_offline_time_is_kept(app, served, client, day):
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=3)) as now:
        earlier = now - timedelta(minutes=2)
        far = post(client, served, f"/api/v1/visits/{stop.id}/check-in",
                   {"lat": stop.lat + 0.01, "lon": stop.lon, "at": earlier.isoformat()})
    assert far.status_code == 201
    entry = far.get_json()
    assert entry["flags"] == ["far_check_in"] and entry["distance_m"] > 1000
    assert entry["started_at"][:19] == earlier.isoformat()[:19] and entry["device_time"] is not None


def test_a_missed_visit_needs_a_reason(app, served, client, day):
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=20)):
        bad = post(client, served, f"/api/v1/visits/{stop.id}/outcome", {"outcome": "missed", "reason": "lazy"})
        assert bad.status_code == 422 and "reason" in bad.get_json()["errors"]
        missed = post(client, served, f"/api/v1/visits/{stop.id}/outcome", {"outcome": "missed", "reason": "not_home"})
        assert missed.status_code == 201 and missed.get_json()["outcome_reason"] == "not_home"
        assert visit_status(app, stop.id) == "missed"
        assert check_in(client, served, stop).status_code == 409


def test_a_caregivers_correction_of_times_counts_only_once_approved(app, served, client, day):
    from servicehub.visits.services import effective_delivery

    stop = day["mine"][0]
    delivered = deliver(client, served, stop, arrive=3, leave=50)
    fixed = {"reason_code": "wrong_time", "notes": "忘记签出", "started_at": delivered["started_at"],
             "ended_at": (stop.start + timedelta(minutes=62)).isoformat()}
    path = f"/api/v1/service-records/{delivered['id']}/corrections"
    with clock_at(stop.start + timedelta(hours=2)):
        assert post(client, served, path, {**fixed, "notes": ""}).status_code == 422
        correction = post(client, served, path, fixed)
        assert correction.status_code == 201, correction.get_json()
        correction = correction.get_json()
        assert correction["kind"] == "correction" and correction["refers_to_id"] == delivered["id"]
        assert "pending_approval" in correction["flags"] and correction["recorded_by"] == "caregiver"
        assert "edited_times" in correction["flags"]  # the codes as they will be once it counts
        with app.app_context():
            assert effective_delivery(stop.id).id == delivered["id"]
        assert post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {}).status_code == 403
        approval = post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {}, who="provider")
        assert approval.status_code == 201
        assert post(client, served, f"/api/v1/service-records/{correction['id']}/approve", {},
                    who="provider").status_code == 409
    with app.app_context():
        assert effective_delivery(stop.id).id == correction["id"]
        visit = db.session.get(Visit, stop.id)
        assert visit.delivery_record_id == correction["id"] and visit.delivery_manual is True  # times edited
    entries = client.get("/api/v1/service-records", query_string={"visit_id": stop.id},
                         headers=served["auditor"]).get_json()
    assert [e["kind"] for e in entries] == ["check_in", "delivery", "correction", "approval"]


def test_the_ledger_refuses_updates_and_names_a_row_altered_behind_its_back(app, served, client, day, runner):
    for stop in day["mine"][:2]:
        deliver(client, served, stop)
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
        assert (f"BROKEN: organisation {served['org']}'s service records: broken at record #4" in result.output
                and "changed" in result.output)
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
    stop = day["mine"][0]
    with clock_at(stop.start):
        assert check_in(client, served, stop).status_code == 201
    with app.app_context():
        other = db.session.get(Visit, day["others"][0])
        other_worker = other.worker_id
    assert client.get("/api/v1/service-records", headers=served["caregiver"]).get_json()[0]["worker_id"] == day["worker"]
    assert all(r["worker_id"] != other_worker for r in
               client.get("/api/v1/service-records", headers=served["caregiver"]).get_json())
