"""Scheduling through the API: visits from referrals, runs, publication with versions, rosters, moves, re-plans."""

import time
from datetime import date, timedelta
from datetime import time as clock

from sqlalchemy import func, select

from servicehub.auth.audit import record_event
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.registry import services as registry
from servicehub.scheduling import services
from servicehub.scheduling.models import RosterVersion, Visit, VisitStatus
from tests.registry import factories as f
from tests.scheduling.fixtures import accept_all, district_today, tomorrow


def start(client, served, day=None, **body):
    response = client.post("/api/v1/schedule-runs", headers=served["provider"],
                           json={"organisation_id": served["org"], "date": (day or tomorrow()).isoformat(),
                                 "time_limit_s": 0.3, **body})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def publish(client, served, run_id):
    response = client.post(f"/api/v1/schedule-runs/{run_id}/publish", headers=served["provider"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def day_visits(app, day, org=None):
    with app.app_context():
        stmt = select(Visit).where(Visit.service_date == day)
        if org:
            stmt = stmt.where(Visit.organisation_id == org)
        return [(v.id, v.status, v.worker_id, v.planned_start, v.sequence, v.locked)
                for v in db.session.scalars(stmt.order_by(Visit.id))]


# --- generation -----------------------------------------------------------------------------


def test_generation_follows_the_need_and_a_second_pass_changes_nothing(app, served, client):
    assert served["generated"] == 5 * 14  # five daily needs over the 14-day horizon
    response = client.post("/api/v1/visits/generate", json={}, headers=served["provider"])
    assert response.status_code == 200
    assert (response.get_json()["created"], response.get_json()["cancelled"], response.get_json()["kept"]) == (0, 0, 70)
    with app.app_context():
        assert db.session.scalar(select(func.count(Visit.id))) == 70


def test_regeneration_cancels_planned_visits_no_longer_wanted_but_never_published_ones(app, served, client):
    run = start(client, served)
    publish(client, served, run["id"])
    published = {v[0] for v in day_visits(app, tomorrow()) if v[1] == "published"}
    assert published
    with app.app_context():
        registry.update_need(COMMAND_LINE, served["needs"][0], {"quantity": 1, "preferred_days": [1]})
        report = services.generate_visits(COMMAND_LINE)
        assert report.cancelled > 0
        statuses = {v.id: v.status for v in db.session.scalars(select(Visit))}
    assert all(statuses[v] == "published" for v in published)


def test_an_exception_cancels_planned_visits_and_generation_leaves_those_days_empty(app, served, client):
    first, last = tomorrow() + timedelta(days=2), tomorrow() + timedelta(days=4)
    response = client.post("/api/v1/visit-exceptions", headers=served["provider"], json={
        "recipient_id": served["recipients"][0], "start_date": first.isoformat(), "end_date": last.isoformat(),
        "reason": "住院"})
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        away = select(Visit).where(Visit.recipient_id == served["recipients"][0],
                                   Visit.service_date.between(first, last))
        assert {v.status for v in db.session.scalars(away)} == {"cancelled"}
        assert services.generate_visits(COMMAND_LINE).restored == 0
    bad = client.post("/api/v1/visit-exceptions", headers=served["provider"], json={
        "start_date": last.isoformat(), "end_date": first.isoformat(), "reason": "x"})
    assert bad.status_code == 422 and "end_date" in bad.get_json()["errors"]


def test_a_double_up_need_makes_two_visits_a_day_placed_together_on_two_workers(app, served, client):
    with app.app_context():
        person = f.recipient(name="卧床对象", id_number=f.id_number(birth=date(1939, 5, 1)), lat=32.202, lon=119.687)
        need = f.need(person.id, quantity=7, window_start=clock(9), window_end=clock(15), duration_min=45, carers=2)
        accept_all(served["org"], [need.id])
        services.generate_visits(COMMAND_LINE)
        pair = db.session.scalars(select(Visit).where(Visit.recipient_id == person.id,
                                                      Visit.service_date == tomorrow())).all()
        assert sorted(v.slot for v in pair) == [0, 1]
    run = start(client, served)
    plan = client.get(f"/api/v1/schedule-runs/{run['id']}/plan", headers=served["provider"]).get_json()[0]
    halves = [s for s in plan["stops"] if s["visit_id"] in {v.id for v in pair}]
    assert len(halves) == 2 and halves[0]["worker_id"] != halves[1]["worker_id"]
    assert halves[0]["start"] == halves[1]["start"]


# --- runs and publication -----------------------------------------------------------------------


def test_a_run_plans_the_day_and_publishing_writes_it_with_a_new_version_each_time(app, served, client):
    run = start(client, served)
    assert run["status"] == "solved" and run["visits"] == 5 and run["placed"] == 5 and run["unplaced"] == 0
    plan = client.get(f"/api/v1/schedule-runs/{run['id']}/plan", headers=served["provider"]).get_json()
    assert [s["worker_id"] is not None for s in plan[0]["stops"]] == [True] * 5
    assert {v[1] for v in day_visits(app, tomorrow())} == {"planned"}  # nothing written before publishing
    versions = publish(client, served, run["id"])
    assert [v["version"] for v in versions] == [1] and versions[0]["visits"] == 5
    assert {v[1] for v in day_visits(app, tomorrow())} == {"published"}
    again = client.post(f"/api/v1/schedule-runs/{run['id']}/publish", headers=served["provider"])
    assert again.status_code == 409 and again.get_json()["code"] == "already_published"
    second = start(client, served)
    publish(client, served, second["id"])
    listed = client.get("/api/v1/roster-versions", headers=served["provider"],
                        query_string={"organisation_id": served["org"], "date": tomorrow().isoformat()}).get_json()
    assert [v["version"] for v in listed] == [2, 1] and len(listed[1]["snapshot"]) == 5


def test_a_run_in_the_background_returns_at_once_and_finishes(app, served, client):
    app.config["SERVICEHUB_RUN_INLINE"] = False
    run = start(client, served)
    assert run["status"] in ("queued", "running", "solved")
    deadline = time.monotonic() + 60
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        run = client.get(f"/api/v1/schedule-runs/{run['id']}", headers=served["provider"]).get_json()
    assert run["status"] == "solved" and run["progress"] == 1.0 and run["placed"] == 5


def test_a_background_run_stores_its_plan_though_someone_writes_during_its_search(app, served, client):
    # On SQLite a read snapshot opened before the search could not write after anyone else had written during it:
    # `make run`'s re-plan failed with "database is locked" while the page and the jobs wrote beside it.
    app.config["SERVICEHUB_RUN_INLINE"] = False
    run = start(client, served, time_limit_s=3)
    deadline = time.monotonic() + 60
    while run["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
        run = client.get(f"/api/v1/schedule-runs/{run['id']}", headers=served["provider"]).get_json()
    time.sleep(0.5)  # well into the search
    with app.app_context():
        record_event(db.session, "written_during_the_search", "schedule_runs", run["id"])
        db.session.commit()
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        run = client.get(f"/api/v1/schedule-runs/{run['id']}", headers=served["provider"]).get_json()
    assert run["status"] == "solved", run.get("error")


def test_publishing_a_run_made_before_the_roster_changed_is_refused_and_changes_nothing(app, served, client):
    first = start(client, served)
    publish(client, served, first["id"])
    stale = start(client, served)
    fresh = start(client, served)
    publish(client, served, fresh["id"])
    before = day_visits(app, tomorrow())
    response = client.post(f"/api/v1/schedule-runs/{stale['id']}/publish", headers=served["provider"])
    assert response.status_code == 409 and response.get_json()["code"] == "stale_run"
    assert day_visits(app, tomorrow()) == before


def test_bad_run_requests_name_the_field(app, served, client):
    yesterday = (district_today() - timedelta(days=1)).isoformat()
    cases = [({"date": yesterday}, "date"), ({"date_to": district_today().isoformat()}, "date_to"),
             ({"time_limit_s": 0}, "time_limit_s"), ({"organisation_id": 999_999}, "organisation_id")]
    for body, field in cases:
        payload = {"organisation_id": served["org"], "date": tomorrow().isoformat(), **body}
        response = client.post("/api/v1/schedule-runs", json=payload, headers=served["admin"])
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"], (body, response.get_json())
    with app.app_context():
        other = f.organisation_ids()[1]
    refused = client.post("/api/v1/schedule-runs", headers=served["provider"],
                          json={"organisation_id": other, "date": tomorrow().isoformat()})
    assert refused.status_code == 404


def test_an_empty_day_and_a_day_nobody_works_are_answers_not_errors(app, served, client):
    with app.app_context():
        other = f.organisation_ids()[1]
    empty = client.post("/api/v1/schedule-runs", headers=served["admin"],
                        json={"organisation_id": other, "date": tomorrow().isoformat(), "time_limit_s": 0.3})
    assert empty.status_code == 202 and empty.get_json()["status"] == "solved" and empty.get_json()["visits"] == 0
    with app.app_context():
        for worker_id in served["workers"]:
            registry.update_worker(COMMAND_LINE, worker_id, {"availability": {}})
    run = start(client, served)
    assert run["status"] == "solved" and run["unplaced"] == 5
    plan = client.get(f"/api/v1/schedule-runs/{run['id']}/plan", headers=served["provider"]).get_json()[0]
    assert {s["unplaced"] for s in plan["stops"]} == {"no_qualified_worker"}


# --- rosters ------------------------------------------------------------------------------------


def test_a_caregiver_sees_their_own_route_today_in_order_and_nothing_else(app, served, client):
    today = district_today()
    publish(client, served, start(client, served, day=today)["id"])
    with app.app_context():
        caregiver_worker = db.session.scalar(select(Visit.worker_id).where(Visit.worker_id.is_not(None),
                                                                            Visit.service_date == today).limit(1))
    response = client.get("/api/v1/rosters", query_string={"date": today.isoformat()}, headers=served["caregiver"])
    assert response.status_code == 200, response.get_json()
    roster = response.get_json()
    assert roster["worker_id"] == served["workers"][0]
    stops = roster["visits"]
    assert [s["sequence"] for s in stops] == list(range(1, len(stops) + 1))
    assert all(s["address"] and s["planned_arrival"] and s["phone"] == "13800138000" for s in stops)
    assert [s["planned_start"] for s in stops] == sorted(s["planned_start"] for s in stops)
    for query in ({"date": tomorrow().isoformat()},
                  {"date": today.isoformat(), "worker_id": served["workers"][1]}):
        assert client.get("/api/v1/rosters", query_string=query, headers=served["caregiver"]).status_code == 403
    audited = client.get("/api/v1/rosters", headers=served["auditor"],
                         query_string={"date": today.isoformat(), "worker_id": caregiver_worker}).get_json()
    assert all(s["phone"] != "13800138000" and s["phone"].endswith("8000") for s in audited["visits"])
    listed = client.get("/api/v1/visits", headers=served["caregiver"]).get_json()
    assert {v["worker_id"] for v in listed} <= {served["workers"][0]}


def test_a_provider_sees_only_its_own_runs_visits_and_workers(app, served, client, auth_headers):
    run = start(client, served)
    with app.app_context():
        other_org = f.organisation_ids()[1]
        from servicehub.auth import services as auth

        auth.create_user(username="other.provider", role="provider_admin", password="another-pass-123",
                         display_name="x", organisation_id=other_org, town=None)
    response = client.post("/api/v1/auth/tokens", json={"username": "other.provider", "password": "another-pass-123"})
    other = {"Authorization": f"Bearer {response.get_json()['token']}"}
    assert client.get(f"/api/v1/schedule-runs/{run['id']}", headers=other).status_code == 404
    assert client.get("/api/v1/visits", headers=other).get_json() == []
    assert client.get("/api/v1/rosters", headers=other, query_string={
        "date": tomorrow().isoformat(), "worker_id": served["workers"][0]}).status_code == 404


# --- moves --------------------------------------------------------------------------------------


def test_a_move_that_breaks_a_rule_is_refused_with_the_rule_and_changes_nothing(app, served, client):
    publish(client, served, start(client, served)["id"])
    with app.app_context():
        wants_a_man = db.session.scalar(select(Visit).where(Visit.recipient_id == served["recipients"][4],
                                                            Visit.service_date == tomorrow()))
        visit_id, man = wants_a_man.id, wants_a_man.worker_id
    assert man == served["workers"][2]
    before = day_visits(app, tomorrow())
    for body, rule in (({"worker_id": served["workers"][0]}, "gender"),
                       ({"worker_id": served["workers"][2], "start": "16:45"}, "window"),
                       ({"worker_id": served["workers"][2], "start": "12:30"}, "break")):
        response = client.post(f"/api/v1/visits/{visit_id}/move", json=body, headers=served["provider"])
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["code"] == rule and "worker_id" in response.get_json()["errors"]
    assert day_visits(app, tomorrow()) == before


def test_a_valid_move_is_locked_and_the_next_run_keeps_it(app, served, client):
    publish(client, served, start(client, served)["id"])
    with app.app_context():
        visit = db.session.scalar(select(Visit).where(Visit.recipient_id == served["recipients"][0],
                                                      Visit.service_date == tomorrow()))
        visit_id, current = visit.id, visit.worker_id
    target = next(w for w in served["workers"][:2] if w != current)
    response = client.post(f"/api/v1/visits/{visit_id}/move", json={"worker_id": target, "start": "15:00"},
                           headers=served["provider"])
    assert response.status_code == 200, response.get_json()
    moved = response.get_json()
    assert moved["worker_id"] == target and moved["locked"] is True and moved["planned_start"].endswith("07:00:00Z") \
        or moved["planned_start"].endswith("07:00:00+00:00")
    run = start(client, served)
    plan = client.get(f"/api/v1/schedule-runs/{run['id']}/plan", headers=served["provider"]).get_json()[0]
    assert next(s for s in plan["stops"] if s["visit_id"] == visit_id)["worker_id"] == target


# --- re-planning ----------------------------------------------------------------------------------


def test_a_sick_call_replans_the_rest_of_the_day_and_lists_what_changed(app, served, client):
    publish(client, served, start(client, served)["id"])
    before = {v[0]: v for v in day_visits(app, tomorrow())}
    sick = max(served["workers"][:2], key=lambda w: sum(1 for v in before.values() if v[2] == w))
    with app.app_context():
        cutoff = services.at_minutes(tomorrow(), 9 * 60 + 30)
    kept = {vid for vid, v in before.items() if v[3] < cutoff}
    response = client.post(f"/api/v1/workers/{sick}/absences", headers=served["provider"],
                           json={"date": tomorrow().isoformat(), "from": "09:30", "reason": "生病"})
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["run"]
    assert run["kind"] == "replan" and run["status"] == "solved" and run["replan_from"] == "09:30"
    moved = {c["visit_id"] for c in run["changes"]}
    theirs_later = {vid for vid, v in before.items() if v[2] == sick and v[3] >= cutoff}
    assert theirs_later and theirs_later <= moved
    assert all(c["from_worker"] == sick or c["change"] != "reassigned" for c in run["changes"]
               if c["visit_id"] in theirs_later)
    publish(client, served, run["id"])
    after = {v[0]: v for v in day_visits(app, tomorrow())}
    assert all(after[vid][2] != sick for vid in theirs_later)
    assert all(after[vid][2:4] == before[vid][2:4] for vid in kept)  # what started before 09:30 stays
    with app.app_context():
        assert db.session.scalar(select(func.max(RosterVersion.version))) == 2


def test_settled_visits_stay_where_they_were(app, served, client):
    publish(client, served, start(client, served)["id"])
    with app.app_context():
        done = db.session.scalar(select(Visit).where(Visit.service_date == tomorrow(), Visit.worker_id.is_not(None)))
        done.status = VisitStatus.COMPLETED.value
        db.session.commit()
        done_id, worker, started = done.id, done.worker_id, done.planned_start
    publish(client, served, start(client, served)["id"])
    after = {v[0]: v for v in day_visits(app, tomorrow())}
    assert after[done_id][1:4] == ("completed", worker, started)
    response = client.post(f"/api/v1/visits/{done_id}/move", json={"worker_id": worker}, headers=served["provider"])
    assert response.status_code == 409


def test_an_organisation_that_opts_in_gets_tomorrow_planned_every_night(app, served, client):
    path = f"/api/v1/organisations/{served['org']}/schedule-settings"
    assert client.get(path, headers=served["provider"]).get_json()["auto_plan"] is False
    changed = client.put(path, json={"auto_plan": True, "time_limit_s": 0.3}, headers=served["provider"])
    assert changed.status_code == 200 and changed.get_json()["auto_plan"] is True
    assert client.put(path, json={"auto_plan": True}, headers=served["caregiver"]).status_code == 403
    with app.app_context():
        other = f.organisation_ids()[1]
    assert client.put(f"/api/v1/organisations/{other}/schedule-settings", json={"auto_plan": True},
                      headers=served["provider"]).status_code == 404
    with app.app_context():
        assert services.nightly_plans(tomorrow()) == {"runs": 1}
    runs = client.get("/api/v1/schedule-runs", headers=served["provider"],
                      query_string={"date": tomorrow().isoformat()}).get_json()
    assert [(r["status"], r["placed"]) for r in runs] == [("solved", 5)]  # planned, waiting to be published
