"""Two requests at the same moment, on the real servers (SQLite and PostgreSQL): exactly one wins, the other gets
a clear 409 (or, for a retry of the same request, the same answer), and nothing is doubled or lost. Each request
runs in its own thread with its own session and connection; a barrier releases them together."""

import threading
import uuid

from sqlalchemy import func, select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.matching import services as matching
from servicehub.matching.models import Referral
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import RosterVersion, Visit
from servicehub.visits.models import RecordKind, ServiceRecord
from tests.registry import factories as f
from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures
from tests.visits.evv import day  # noqa: F401 - fixture


def together(*calls):
    """Run the calls in threads released at the same moment; their results (or exceptions), in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(k, call)) for k, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def post(app, path, body, headers):
    """A request from a client of its own (its own app context, session and connection)."""
    response = app.test_client().post(path, json=body, headers=headers)
    return response.status_code, response.get_json()


def count(app, stmt) -> int:
    with app.app_context():
        return db.session.scalar(stmt)


def test_a_check_out_retried_in_parallel_is_written_once(app, served, day):  # noqa: F811
    stop = day["mine"][0]
    visit_id, lat, lon = stop.id, stop.lat, stop.lon
    headers = {**served["caregiver"], "Idempotency-Key": str(uuid.uuid4())}
    assert post(app, f"/api/v1/visits/{visit_id}/check-in", {"lat": lat, "lon": lon},
                {**served["caregiver"], "Idempotency-Key": str(uuid.uuid4())})[0] == 201
    # The code the family's phone shows now (the threads' requests run on the real clock; a code is good for a
    # step either side); the retry must not spend it a second time.
    body = {"lat": lat, "lon": lon, "tasks": ["floors"], "confirmation_method": "code",
            "confirmation_code": stop.code(utcnow()), "satisfaction": 5}
    path = f"/api/v1/visits/{visit_id}/check-out"
    first, second = together(lambda: post(app, path, body, headers), lambda: post(app, path, body, headers))
    assert {first[0], second[0]} <= {200, 201}, (first, second)
    assert first[1]["id"] == second[1]["id"]
    assert count(app, select(func.count(ServiceRecord.id)).where(
        ServiceRecord.visit_id == visit_id, ServiceRecord.kind == RecordKind.DELIVERY)) == 1


def test_two_phones_checking_in_at_once_make_one_check_in(app, served, day):  # noqa: F811
    stop = day["mine"][0]
    visit_id, lat, lon = stop.id, stop.lat, stop.lon
    path = f"/api/v1/visits/{visit_id}/check-in"

    def tap():
        return post(app, path, {"lat": lat, "lon": lon}, {**served["caregiver"], "Idempotency-Key": str(uuid.uuid4())})

    results = together(tap, tap)
    assert sorted(status for status, _ in results) == [201, 409], results
    refused = next(body for status, body in results if status == 409)
    assert refused["code"] and refused["message"]
    assert count(app, select(func.count(ServiceRecord.id)).where(
        ServiceRecord.visit_id == visit_id, ServiceRecord.kind == RecordKind.CHECK_IN)) == 1


def test_two_answers_to_one_offer_at_once_one_wins(app, served):  # noqa: F811
    with app.app_context():
        person = f.recipient(name="并发对象", id_number=f.id_number(female=True))
        need = f.need(person.id, quantity=2)
        matching.run_matching(COMMAND_LINE, need_ids=[need.id])
        referral = db.session.scalar(select(Referral).where(Referral.need_id == need.id))
        matching.offer_many(COMMAND_LINE, [referral.id])
        referral_id = referral.id
    accept = f"/api/v1/referrals/{referral_id}/accept"
    decline = f"/api/v1/referrals/{referral_id}/decline"
    results = together(lambda: post(app, accept, {}, served["provider"]),
                       lambda: post(app, decline, {"reason": "人手不足"}, served["provider"]))
    assert sorted(status for status, _ in results) == [200, 409], results
    winner = next(body for status, body in results if status == 200)
    with app.app_context():
        assert db.session.get(Referral, referral_id).status == winner["status"]


def test_two_runs_publishing_the_same_day_at_once_one_wins(app, served, inline):  # noqa: F811
    from tests.scheduling.fixtures import district_today

    with app.app_context():
        runs = [scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3).id
                for _ in range(2)]
        versions_before = db.session.scalar(select(func.count(RosterVersion.id)))
    results = together(*(lambda run=run: post(app, f"/api/v1/schedule-runs/{run}/publish", {}, served["provider"])
                         for run in runs))
    assert sorted(status for status, _ in results) == [200, 409], results
    with app.app_context():
        assert db.session.scalar(select(func.count(RosterVersion.id))) == versions_before + 1
        published = db.session.scalars(select(Visit).where(Visit.service_date == district_today(),
                                                           Visit.organisation_id == served["org"])).all()
        assert published and all(v.status == "published" for v in published if v.worker_id is not None)


def _open_needs(app, count: int) -> list[int]:
    """`count` recipients with a weekly cleaning need each, not yet matched."""
    with app.app_context():
        return [f.need(f.recipient(name=f"待匹配{k}", id_number=f.id_number(female=k % 2 == 0)).id).id
                for k in range(count)]


def _proposals_per_need(app) -> dict[int, int]:
    with app.app_context():
        return dict(db.session.execute(select(Referral.need_id, func.count()).where(Referral.status == "proposed")
                                       .group_by(Referral.need_id)).all())


def _on_postgresql(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_two_matching_runs_at_once_one_wins_and_no_need_gets_two_proposals(app, served):  # noqa: F811
    needs = _open_needs(app, 60)
    run = lambda: post(app, "/api/v1/matching/runs", {}, served["manager"])  # noqa: E731
    results = together(run, run)
    statuses = sorted(status for status, _ in results)
    if _on_postgresql(app):
        # Runs share the lines' capacity and the needs: the second is refused at once, before any work.
        assert statuses == [201, 409], results
        refused = next(body for status, body in results if status == 409)
        assert refused["code"] == "matching_running" and refused["message"]
    else:
        # SQLite has one writer at a time: the second run waits for the first's commit, then supersedes it.
        assert statuses == [201, 201], results
    per_need = _proposals_per_need(app)
    assert set(needs) <= set(per_need) and set(per_need.values()) == {1}


def test_an_import_while_matching_runs_loses_and_doubles_nothing(app, served):  # noqa: F811
    from tests.imports.support import xlsx
    from tests.imports.test_api import NEED_HEADER, upload

    needs = _open_needs(app, 30)
    with app.app_context():
        people = [(f.id_number(female=True), f"导入{k}") for k in range(10)]
        imported_for = [f.recipient(name=name, id_number=number).id for number, name in people]
    rows = [NEED_HEADER] + [[number, name, "LC02", 1, "每周", "周三", "", district_today_iso()]
                            for number, name in people]
    content = xlsx(rows)

    def do_import():
        response = upload(app.test_client(), served["manager"], content, kind="needs", dry_run=False)
        return response.status_code, response.get_json()

    results = together(do_import, lambda: post(app, "/api/v1/matching/runs", {}, served["manager"]))
    assert [status for status, _ in results] == [201, 201], results
    run = results[1][1]
    with app.app_context():
        from servicehub.registry.models import Need

        imported = db.session.scalars(select(Need.id).where(Need.recipient_id.in_(imported_for))).all()
    assert len(imported) == 10  # every row of the file, once
    per_need = _proposals_per_need(app)
    assert set(needs) <= set(per_need) and set(per_need.values()) == {1}
    # The run matched what was committed when it read the needs; whatever it did not see is still open for the
    # next run, which proposes for it: nothing lost.
    assert run["needs_considered"] in (30, 40)
    assert post(app, "/api/v1/matching/runs", {}, served["manager"])[0] == 201
    per_need = _proposals_per_need(app)
    assert set(imported) <= set(per_need) and set(per_need.values()) == {1}


def district_today_iso() -> str:
    from tests.scheduling.fixtures import district_today

    return district_today().isoformat()
