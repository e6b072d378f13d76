"""The demo district's two years of service history: about 8,891 completed person-times, plausible, chained."""

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import func, select

from servicehub.catalog.models import ServiceType
from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry.demo_loader import PARTS
from servicehub.registry.models import Need, Recipient, Worker
from servicehub.scheduling.demo import serve_demo_district
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.timeutil import district_today, local_midnight
from servicehub.visits import history
from servicehub.visits.models import EvvException, ServiceRecord
from servicehub.visits.services import append_entry as _append
from servicehub.visits.services import verify_ledgers
from tests.support import create_demo_accounts, load_demo_district

FIRST, LAST = date(2024, 12, 1), date(2026, 11, 30)


def test_the_previous_contracts_bought_fewer_visits_a_week():
    assert history.history_rule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR") == ("FREQ=WEEKLY;BYDAY=MO,WE", 1)
    assert history.history_rule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", offset=3) == ("FREQ=WEEKLY;BYDAY=MO,TH", 1)
    assert history.history_rule("FREQ=WEEKLY;BYDAY=TU,TH") == ("FREQ=WEEKLY;BYDAY=TU", 1)
    assert history.history_rule("FREQ=WEEKLY;BYDAY=FR") == ("FREQ=WEEKLY;BYDAY=FR;INTERVAL=2", 2)
    assert history.history_rule("FREQ=MONTHLY;BYDAY=+1MO,+3MO") == ("FREQ=MONTHLY;BYDAY=+1MO,+3MO", 1)


def test_needs_start_later_as_the_exponent_grows_and_everyone_has_a_quarter():
    starts = [history.series_start(0.5, 0.0, k, FIRST, LAST) for k in (0, 0.5, 1, 2, 8)]
    assert starts == sorted(starts) and starts[0] == FIRST
    assert history.series_start(1.0, 0.0, 8, FIRST, LAST) == FIRST  # the founders
    assert history.series_start(0.01, 0.0, 8, FIRST, LAST) == LAST - timedelta(days=history.MIN_HISTORY_DAYS - 1)
    assert history.series_start(0.5, 1.0, 1, FIRST, LAST) > history.series_start(0.5, 0.0, 1, FIRST, LAST)


def test_calibration_finds_the_exponent_that_gives_the_target():
    series = []
    for k in range(40):
        s = history._Series(id=k, organisation_id=1, recipient_id=k, service_type_id=1, rrule="", end_date=None,
                            window=(480, 1020), duration=60, carers=1, urgent=False, qualification=None, gender=None,
                            meal=False, checklist=("a",), point=(32.2, 119.6), coverage=(k + 1) / 40, later=0.0)
        s.outcomes = {FIRST + timedelta(days=d): (VisitStatus.COMPLETED, "") for d in range(0, 729, 7)}
        series.append(s)
    exponent, completed = history.calibrate(series, FIRST, LAST, 1500)
    assert exponent > 0 and abs(completed - 1500) <= 10
    assert history.calibrate(series, FIRST, LAST, 10**6)[0] == 0  # more than there is: everyone from the start


def _history(today):
    records = db.session.scalars(select(ServiceRecord).order_by(ServiceRecord.id)).all()
    visits = {v.id: v for v in db.session.scalars(select(Visit).where(Visit.service_date < today))}
    return records, visits


def test_two_years_of_plausible_chained_history_written_once(app):
    with app.app_context():
        load_demo_district(PARTS)
        users = create_demo_accounts()
        serve_demo_district()
        today = district_today()

        report = history.write_demo_history()

        assert report.written and report.target == history.TARGET_COMPLETED == 8891
        assert abs(report.completed - 8891) <= 0.02 * 8891
        records, visits = _history(today)
        kinds = Counter(r.kind for r in records)
        assert kinds["delivery"] == kinds["check_in"] == report.completed and len(records) == report.records
        assert kinds == Counter(report.records_by_kind)
        assert report.date_to == today - timedelta(days=1) and report.date_from == today - timedelta(days=730)

        # Every recipient with an accepted referral has a history; dates are all in the past.
        live = [ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE]
        referred = set(db.session.scalars(select(Need.recipient_id).join(Referral, Referral.need_id == Need.id)
                                          .where(Referral.status.in_(live))))
        assert len(referred) == 147 and referred <= {r.recipient_id for r in records}
        assert all(r.service_date < today and r.received_at <= utcnow() for r in records)
        assert all(v.service_date >= report.date_from for v in visits.values())

        # Completed, some missed, a few cancelled and corrected (with approvals), some late.
        by_visit: dict[int, list[ServiceRecord]] = {}
        for record in records:
            by_visit.setdefault(record.visit_id, []).append(record)
        statuses = Counter(v.status for v in visits.values())
        assert statuses[VisitStatus.COMPLETED] == report.completed
        assert 0.03 <= statuses[VisitStatus.MISSED] / len(visits) <= 0.05 and statuses[VisitStatus.CANCELLED] > 0
        assert {r.outcome_reason for r in records if r.kind == "missed"} >= {"not_home", "in_hospital", "not_done"}
        # What an entry refers to is earlier in the same chain (even for a visit the office entered late).
        by_id = {r.id: r for r in records}
        assert all(by_id[r.refers_to_id].organisation_id == r.organisation_id
                   and by_id[r.refers_to_id].sequence < r.sequence for r in records if r.refers_to_id)
        corrections = [r for r in records if r.kind == "correction"]
        assert 0.005 <= len(corrections) / report.completed <= 0.015
        assert {c.reason_code for c in corrections} == {"wrong_time", "data_entry"}
        pending = {c.id for c in corrections if "pending_approval" in c.flags}
        approvals = [r for r in records if r.kind == "approval"]
        assert pending and {a.refers_to_id for a in approvals} == pending
        assert all(c.reason_code == "wrong_time" and c.ended_at < c.refers_to.ended_at for c in corrections
                   if c.id in pending)
        # Signed by the accounts linked to the organisation's admin and the worker, where there are some.
        provider, caregiver = users["provider"], users["caregiver"]
        assert {(a.recorded_by_id, a.recorded_by) for a in approvals if a.organisation_id == provider.organisation_id} \
            <= {(provider.id, "provider")}
        # A worker's check-ins are their own, but for the few the office entered when a phone broke: those are the
        # provider admin's, and say so (manual entry).
        mine = [r for r in records if r.kind == "check_in" and r.worker_id == caregiver.worker_id]
        assert {r.recorded_by_id for r in mine} <= {caregiver.id, provider.id}
        assert all("manual_entry" in r.flags for r in mine if r.recorded_by_id == provider.id)
        office = [r for r in records if r.kind == "check_in" and "manual_entry" in r.flags]
        assert len(office) == report.office > 0
        assert all("late_submission" in r.flags for r in office)  # entered the next morning

        # The exception queue holds what the flags say, and was worked as a bureau would have: months before last
        # all explained and decided, a few rejected.
        raised = db.session.scalars(select(EvvException)).all()
        assert Counter(e.status for e in raised) == Counter(report.queue) and sum(report.exceptions.values())
        assert {e.visit_id for e in raised if e.code == "manual_entry"} == {r.visit_id for r in office}
        assert all(visits[r.visit_id].delivery_manual for r in office)
        last_month = today.replace(day=1) - timedelta(days=1)
        older = [e for e in raised if e.service_date < last_month.replace(day=1)]
        assert older and {e.status for e in older} == {"approved", "rejected"}
        assert all(e.resolved_by and e.reason_code and e.decided_by for e in older)

        late = 0
        meal = set(db.session.scalars(select(ServiceType.id).where(ServiceType.unit == "meal")))
        for visit_id, entries in by_visit.items():
            visit = visits[visit_id]
            check_ins = [e for e in entries if e.kind == "check_in"]
            deliveries = [e for e in entries if e.kind == "delivery"]
            if visit.status == VisitStatus.COMPLETED:
                assert len(check_ins) == len(deliveries) == 1
                check_in, delivery = check_ins[0], deliveries[0]
                assert delivery.refers_to_id == check_in.id and check_in.sequence < delivery.sequence
                assert delivery.started_at == check_in.started_at < delivery.ended_at
                assert local_midnight(visit.service_date) <= delivery.ended_at < local_midnight(
                    visit.service_date + timedelta(days=1))
                assert ("far_check_in" in check_in.flags) == (check_in.distance_m > 300)
                grace = 5 if visit.service_type_id in meal else 15
                late += check_in.started_at > visit.planned_start + timedelta(minutes=grace)
            else:
                assert not check_ins and not deliveries
            if visit.planned_start is not None:  # planned inside the window
                opens = local_midnight(visit.service_date) + timedelta(hours=visit.window_start.hour,
                                                                       minutes=visit.window_start.minute)
                closes = local_midnight(visit.service_date) + timedelta(hours=visit.window_end.hour,
                                                                        minutes=visit.window_end.minute)
                assert opens <= visit.planned_start and visit.planned_end <= max(closes, opens + timedelta(
                    minutes=visit.duration_min))
        assert late == report.late and 0.03 * report.completed <= late <= 0.15 * report.completed
        assert any("far_check_in" in r.flags for r in records)
        satisfaction = Counter(r.satisfaction for r in records if r.kind == "delivery")
        assert (satisfaction[4] + satisfaction[5]) / report.completed > 0.8 and satisfaction[3] and satisfaction[1]

        # The right workers: qualified and of the gender asked for, mostly the same one or two per recipient.
        workers = {w.id: w for w in db.session.scalars(select(Worker))}
        recipients = {r.id: r for r in db.session.scalars(select(Recipient))}
        per_recipient: dict[int, Counter] = {}
        for visit in visits.values():
            worker, recipient = workers[visit.worker_id], recipients[visit.recipient_id]
            assert worker.organisation_id == visit.organisation_id
            wanted = recipient.required_carer_gender
            assert wanted is None or worker.gender == wanted
            required = visit.service_type.required_qualification
            assert required is None or required.code in {q.qualification.code for q in worker.qualifications}
            per_recipient.setdefault(visit.recipient_id, Counter())[visit.worker_id] += 1
        usual = sum(sum(n for _, n in c.most_common(2)) for c in per_recipient.values())
        assert usual / len(visits) > 0.75

        ledgers = verify_ledgers()
        assert len(ledgers) == 8 and all(result["ok"] and result["records"] for result in ledgers)

        # A second run writes nothing; the chain goes on with the next real record.
        counts = (db.session.scalar(select(func.count(ServiceRecord.id))),
                  db.session.scalar(select(func.count(Visit.id))))
        again = history.write_demo_history()
        assert not again.written and "already" in again.message
        result = app.test_cli_runner().invoke(args=["demo", "history"])
        assert result.exit_code == 0 and "already" in result.output
        assert counts == (db.session.scalar(select(func.count(ServiceRecord.id))),
                          db.session.scalar(select(func.count(Visit.id))))
        upcoming = db.session.scalar(select(Visit).where(Visit.service_date >= today).order_by(Visit.id).limit(1))
        _append(upcoming.organisation_id, kind="cancelled", visit_id=upcoming.id, recipient_id=upcoming.recipient_id,
                worker_id=None, service_type_id=upcoming.service_type_id, service_date=upcoming.service_date,
                outcome_reason="test", recorded_by="test")
        db.session.commit()
        extended = {r["organisation_id"]: r for r in verify_ledgers(upcoming.organisation_id)}
        assert extended[upcoming.organisation_id]["ok"]


def test_the_queue_rebuilt_from_the_ledger_is_the_queue_kept_and_its_decisions_stand(app, runner, monkeypatch):
    from servicehub.visits import verification

    with app.app_context():
        load_demo_district(PARTS)
        serve_demo_district()
        assert history.write_demo_history(years=0.15).written

    def queue() -> dict:
        with app.app_context():
            return {(e.visit_id, e.code): (e.status, e.fingerprint, e.reason_code, e.decided_by)
                    for e in db.session.scalars(select(EvvException))}

    kept = queue()
    decided = {key for key, (status, *_rest) in kept.items() if status in ("approved", "rejected")}
    assert len(kept) > 50 and decided
    # Small chunks split workers' days between them: each side evaluates the day whole, to the same result.
    monkeypatch.setattr(verification, "REBUILD_CHUNK", 37)
    result = runner.invoke(args=["audit", "rebuild-exceptions"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        visits = len(set(db.session.scalars(select(EvvException.visit_id).where(EvvException.status != "cleared"))))
    assert f"{visits} visits have exceptions" in result.output
    assert queue() == kept  # nothing raised, cleared or reopened: the decisions on unchanged figures stand
