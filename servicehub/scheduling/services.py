"""Scheduling use cases: visits from active referrals, solver runs, publication, rosters, moves and re-plans.

Active referrals expand into visits over a rolling horizon (`generate_visits`); a run loads one
organisation's day into the pure solver (`servicehub.scheduling.day` / `.solver`) in a background
thread and keeps the plan it found; publishing writes a run's plan to the visits in one transaction
and adds a roster version; a manual move is checked against the hard rules and locked; a worker who
drops out mid-day gets the rest of the day re-planned with done and past visits kept as they are.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, load_only, selectinload

from servicehub.auth.audit import current_actor, record_event
from servicehub.auth.permissions import Principal, Role
from servicehub.auth.policy import Action, Resource, Scope, allows, scope_of
from servicehub.catalog.models import ServiceType
from servicehub.database import paginate, utcnow
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.extensions import db
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry import scope
from servicehub.registry.models import Need, Organisation, Recipient, RecipientStatus, Worker
from servicehub.scheduling import day as day_problem
from servicehub.scheduling import moves, recurrence
from servicehub.scheduling.models import (
    SETTLED,
    RosterVersion,
    RunKind,
    RunStatus,
    ScheduleRun,
    ScheduleSettings,
    Visit,
    VisitException,
    VisitSeries,
    VisitStatus,
    WorkerAbsence,
)
from servicehub.scheduling.problem import WINDOW_PASSED, Weights
from servicehub.scheduling.solver import SolveOptions, solve
from servicehub.scheduling.travel import HaversineTravel
from servicehub.timeutil import district_now, district_today, local_midnight

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULED_REFERRALS = (ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE)
MAX_RUN_DAYS = 14
MAX_TIME_LIMIT_S = 300
# Re-planning: what sending a visit to someone other than its current worker costs (in travel minutes).
REPLAN_STAY_WEIGHT = 90


# --- time helpers ---------------------------------------------------------------------------


def minutes(t: time) -> int:
    """Minutes from midnight of a local time of day."""
    return t.hour * 60 + t.minute


def at_minutes(day: date, value: int | None) -> datetime | None:
    """The aware datetime `value` minutes after the local midnight of `day`."""
    return None if value is None else local_midnight(day) + timedelta(minutes=value)


def minutes_of(moment: datetime | None, day: date) -> int | None:
    """Minutes from the local midnight of `day` of an aware datetime."""
    return None if moment is None else round((moment - local_midnight(day)).total_seconds() / 60)


def _parse_hhmm(value: str) -> int:
    hours, mins = value.split(":")
    return int(hours) * 60 + int(mins)


# --- visit generation -----------------------------------------------------------------------


@dataclass
class GenerationReport:
    """What one generation pass did."""

    date_from: date
    date_to: date
    series: int = 0
    created: int = 0
    cancelled: int = 0
    restored: int = 0
    kept: int = 0


def _sync_series(referral: Referral, series: VisitSeries | None) -> VisitSeries:
    """The referral's series (`series`, or a new one), brought in line with its need (rule, window, duration,
    carers)."""
    need: Need = referral.need
    values = {
        "organisation_id": referral.organisation_id,
        "recipient_id": need.recipient_id,
        "service_type_id": need.service_type_id,
        "rrule": recurrence.need_rrule(need.quantity, need.period, need.preferred_days or ()),
        "start_date": max(referral.start_date, need.start_date),
        "end_date": need.end_date,
        "window_start": need.window_start,
        "window_end": need.window_end,
        "duration_min": need.duration_min,
        "carers": need.carers or 1,
        "urgent": need.priority == "urgent",
        "active": referral.status in SCHEDULED_REFERRALS,
    }
    if series is None:
        series = VisitSeries(referral_id=referral.id, **values)
        db.session.add(series)
        db.session.flush()
    else:
        for name, value in values.items():
            if getattr(series, name) != value:
                setattr(series, name, value)
    return series


def _exceptions(first: date, last: date) -> tuple[list, dict, dict]:
    """Exception ranges overlapping [first, last]: district-wide, per organisation, per recipient."""
    rows = db.session.scalars(
        select(VisitException).where(VisitException.start_date <= last, VisitException.end_date >= first)
    ).all()
    everyone, by_org, by_recipient = [], defaultdict(list), defaultdict(list)
    for row in rows:
        span = (row.start_date, row.end_date)
        if row.recipient_id is not None:
            by_recipient[row.recipient_id].append(span)
        elif row.organisation_id is not None:
            by_org[row.organisation_id].append(span)
        else:
            everyone.append(span)
    return everyone, by_org, by_recipient


def generate_visits(principal: Principal, organisation_id: int | None = None, date_from: date | None = None,
                    date_to: date | None = None) -> GenerationReport:
    """Expand accepted and active referrals into visits over [date_from, date_to] (default: the rolling horizon).

    Idempotent: a second pass creates nothing. Only `planned` visits are ever cancelled or restored;
    published, started and finished visits are never touched.
    """
    if organisation_id is not None:
        _require_organisation(principal, organisation_id, Resource.VISITS, Action.WRITE)
    elif principal.is_provider:
        organisation_id = principal.organisation_id
    elif principal.role not in (Role.ADMIN, Role.MANAGER) and principal.user_id is not None:
        raise PermissionDenied(N_("Only providers, managers and admins generate visits."))
    today = district_today()
    first = date_from or today
    last = date_to or recurrence.horizon(first, current_app.config["SERVICEHUB_HORIZON_DAYS"])[1]
    if last < first:
        raise ValidationFailed(N_("The period ends before it starts."), {"date_to": ["Must not be before date_from."]})
    if (last - first).days > 92:
        raise ValidationFailed(N_("Generate at most 93 days at once."), {"date_to": ["At most 92 days after date_from."]})
    report = GenerationReport(first, last)
    referrals_q = (
        select(Referral)
        .options(selectinload(Referral.need).selectinload(Need.recipient))
        .where(Referral.status.in_([*SCHEDULED_REFERRALS, ReferralStatus.SUSPENDED, ReferralStatus.CLOSED]))
    )
    if organisation_id is not None:
        referrals_q = referrals_q.where(Referral.organisation_id == organisation_id)
    everyone, by_org, by_recipient = _exceptions(first, last)
    existing: dict[int, dict[tuple[date, int], Visit]] = defaultdict(dict)  # series id -> (day, slot) -> visit
    visits_q = select(Visit).where(Visit.service_date.between(first, last))
    series_q = select(VisitSeries)
    if organisation_id is not None:
        visits_q = visits_q.where(Visit.organisation_id == organisation_id)
        series_q = series_q.where(VisitSeries.organisation_id == organisation_id)
    for visit in db.session.scalars(visits_q):
        existing[visit.series_id][(visit.service_date, visit.slot)] = visit
    series_of = {series.referral_id: series for series in db.session.scalars(series_q)}
    new_rows = []
    for referral in db.session.scalars(referrals_q):
        live = referral.status in SCHEDULED_REFERRALS
        if referral.id not in series_of and not live:
            continue
        series = _sync_series(referral, series_of.get(referral.id))
        planned = existing[series.id]
        report.series += 1
        recipient: Recipient = referral.need.recipient
        wanted: set[tuple[date, int]] = set()
        if live and recipient.status == RecipientStatus.ACTIVE:
            days = recurrence.occurrences(
                series.rrule, series.start_date, first, last, series.end_date,
                exceptions=[*everyone, *by_org.get(series.organisation_id, ()), *by_recipient.get(recipient.id, ())],
            )
            wanted = {(d, slot) for d in days for slot in range(series.carers)}
        for (day, slot) in sorted(wanted):
            visit = planned.get((day, slot))
            if visit is None:
                new_rows.append({
                    "series_id": series.id, "slot": slot, "referral_id": referral.id,
                    "organisation_id": series.organisation_id, "recipient_id": series.recipient_id,
                    "service_type_id": series.service_type_id, "service_date": day,
                    "window_start": series.window_start, "window_end": series.window_end,
                    "duration_min": series.duration_min, "urgent": series.urgent,
                    "status": VisitStatus.PLANNED.value, "locked": False, "unplaced_reason": "",
                    "cancel_reason": "", "created_at": utcnow(), "updated_at": utcnow(),
                })
            elif visit.status == VisitStatus.CANCELLED and visit.cancel_reason == GENERATED_CANCEL:
                visit.status, visit.cancel_reason = VisitStatus.PLANNED.value, ""
                report.restored += 1
            elif visit.status == VisitStatus.PLANNED:
                # A planned visit follows its series' window and duration.
                for name in ("window_start", "window_end", "duration_min", "urgent"):
                    if getattr(visit, name) != getattr(series, name):
                        setattr(visit, name, getattr(series, name))
                report.kept += 1
            else:
                report.kept += 1
        for (day, slot), visit in planned.items():
            if (day, slot) not in wanted and visit.status == VisitStatus.PLANNED:
                visit.status, visit.cancel_reason = VisitStatus.CANCELLED.value, GENERATED_CANCEL
                visit.worker_id = visit.sequence = None
                report.cancelled += 1
    if new_rows:
        db.session.execute(Visit.__table__.insert(), new_rows)
        report.created = len(new_rows)
    if report.created or report.cancelled or report.restored:
        record_event(db.session, "visits_generated", "visits", None, organisation_id=organisation_id,
                     date_from=first, date_to=last, created=report.created, cancelled=report.cancelled,
                     restored=report.restored)
    db.session.commit()
    return report


GENERATED_CANCEL = "no longer in the visit plan"


def add_exception(principal: Principal, data: dict) -> VisitException:
    """Record days without visits (a holiday, a recipient in hospital) and cancel the planned visits they cover."""
    recipient_id, organisation_id = data.get("recipient_id"), data.get("organisation_id")
    if data["end_date"] < data["start_date"]:
        raise ValidationFailed(N_("The period ends before it starts."), {"end_date": ["Must not be before start_date."]})
    if recipient_id is not None:
        recipient = db.session.get(Recipient, recipient_id)
        if recipient is None:
            raise ValidationFailed(N_("No such recipient."), {"recipient_id": ["Unknown recipient."]})
        if principal.is_provider and not db.session.scalar(
            select(func.count(VisitSeries.id)).where(VisitSeries.recipient_id == recipient_id,
                                                     VisitSeries.organisation_id == principal.organisation_id)
        ):
            raise NotFound(N_("No such recipient."))
    elif organisation_id is not None:
        _require_organisation(principal, organisation_id, Resource.DAYS_OFF, Action.WRITE)
    elif principal.is_provider:
        organisation_id = principal.organisation_id
    elif principal.role not in (Role.ADMIN, Role.MANAGER) and principal.user_id is not None:
        raise PermissionDenied(N_("Only managers and admins declare district-wide days off."))
    exception = VisitException(recipient_id=recipient_id, organisation_id=organisation_id,
                               start_date=data["start_date"], end_date=data["end_date"], reason=data["reason"])
    db.session.add(exception)
    stmt = select(Visit).where(Visit.service_date.between(exception.start_date, exception.end_date),
                               Visit.status == VisitStatus.PLANNED)
    if recipient_id is not None:
        stmt = stmt.where(Visit.recipient_id == recipient_id)
    if organisation_id is not None:
        stmt = stmt.where(Visit.organisation_id == organisation_id)
    if principal.is_provider:
        stmt = stmt.where(Visit.organisation_id == principal.organisation_id)
    for visit in db.session.scalars(stmt):
        visit.status, visit.cancel_reason = VisitStatus.CANCELLED.value, GENERATED_CANCEL
        visit.worker_id = visit.sequence = None
    db.session.commit()
    return exception


def list_exceptions(principal: Principal, *, page: int = 1, page_size: int = 50):
    """Exceptions the caller may see: district-wide ones; a provider's own and its recipients'; a town
    manager's town's recipients' and those of nobody in particular."""
    district_wide = VisitException.organisation_id.is_(None) & VisitException.recipient_id.is_(None)

    def of_organisation(organisation_id: int):
        mine = VisitException.recipient_id.in_(
            select(VisitSeries.recipient_id).where(VisitSeries.organisation_id == organisation_id))
        return (VisitException.organisation_id == organisation_id) | mine | district_wide

    def of_town(town_id: int):
        return VisitException.recipient_id.is_(None) | scope.in_town(VisitException.recipient_id)(town_id)

    stmt = (select(VisitException)
            .where(scope.visible(principal, Resource.DAYS_OFF, town=of_town, organisation=of_organisation))
            .order_by(VisitException.start_date.desc(), VisitException.id.desc()))
    return paginate(db.session, stmt, page, page_size)


# --- scope ------------------------------------------------------------------------------------


def _require_organisation(principal: Principal, organisation_id: int, resource: Resource,
                          action: Action = Action.READ) -> None:
    """The caller may `action` the organisation's `resource` (see the access table), else 404."""
    if not allows(principal, resource, action, organisation_id=organisation_id):
        raise NotFound(N_("No such organisation."))


def visits_visible(principal: Principal):
    """Visits the caller may see: a provider its own organisation's, a caregiver their own today, a town
    manager those of the town's recipients."""
    seen = scope.visible(principal, Resource.VISITS, town=scope.in_town(Visit.recipient_id),
                         organisation=Visit.organisation_id, worker=Visit.worker_id)
    if scope_of(principal, Resource.VISITS) is Scope.WORKER:
        return seen & (Visit.service_date == district_today())
    return seen


def get_visit(principal: Principal, visit_id: int, *, for_update: bool = False) -> Visit:
    """One visit the caller may see."""
    stmt = select(Visit).where(Visit.id == visit_id, visits_visible(principal))
    if for_update:
        stmt = stmt.with_for_update()
    visit = db.session.scalar(stmt)
    if visit is None:
        raise NotFound(N_("No such visit."))
    return visit


def list_visits(principal: Principal, *, organisation_id=None, service_date=None, worker_id=None, recipient_id=None,
                status=None, page: int = 1, page_size: int = 50):
    """Visits the caller may see, filtered, in day and route order."""
    stmt = select(Visit).where(visits_visible(principal)).options(
        selectinload(Visit.recipient), selectinload(Visit.service_type), selectinload(Visit.worker))
    for column, value in ((Visit.organisation_id, organisation_id), (Visit.service_date, service_date),
                          (Visit.worker_id, worker_id), (Visit.recipient_id, recipient_id), (Visit.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(Visit.service_date, Visit.worker_id, Visit.sequence, Visit.window_start, Visit.id)
    return paginate(db.session, stmt, page, page_size)


# --- loading a day ----------------------------------------------------------------------------


def travel_source() -> HaversineTravel:
    """Travel times from coordinates, as configured (detour factor, speed per travel mode)."""
    config = current_app.config
    return HaversineTravel(detour_factor=config["SERVICEHUB_DETOUR_FACTOR"],
                           speeds_kmh=dict(config["SERVICEHUB_TRAVEL_SPEEDS_KMH"]))


def day_settings(weights: Weights | None = None) -> day_problem.DaySettings:
    """The lunch break, meal box and weights from the configuration."""
    earliest, latest, length = current_app.config["SERVICEHUB_LUNCH_BREAK"] or (None, None, None)
    lunch = None if earliest is None else (_parse_hhmm(earliest), _parse_hhmm(latest), int(length))
    return day_problem.DaySettings(lunch=lunch, meal_box=current_app.config["SERVICEHUB_MEAL_BOX_CAPACITY"],
                                   weights=weights or Weights())


def _day_visits(organisation_id: int, day: date) -> list[Visit]:
    return list(db.session.scalars(
        select(Visit)
        .options(selectinload(Visit.recipient), selectinload(Visit.series),
                 selectinload(Visit.service_type).selectinload(ServiceType.required_qualification))
        .where(Visit.organisation_id == organisation_id, Visit.service_date == day,
               Visit.status != VisitStatus.CANCELLED)
        .order_by(Visit.id)
    ))


def _day_workers(organisation_id: int, day: date) -> list[Worker]:
    return list(db.session.scalars(
        select(Worker).options(selectinload(Worker.qualifications))
        .where(Worker.organisation_id == organisation_id, Worker.active.is_(True)).order_by(Worker.id)
    ))


def _absences(worker_ids: list[int], day: date) -> dict[int, int]:
    """Worker id -> minute of the day from which they are out (0: the whole day)."""
    rows = db.session.scalars(
        select(WorkerAbsence).where(WorkerAbsence.worker_id.in_(worker_ids), WorkerAbsence.absence_date == day)
    ).all()
    out: dict[int, int] = {}
    for row in rows:
        start = 0 if row.from_time is None else minutes(row.from_time)
        out[row.worker_id] = min(out.get(row.worker_id, start), start)
    return out


def usual_workers(recipient_ids: list[int], organisation_id: int, day: date) -> dict[int, tuple[int, ...]]:
    """Recipient id -> the workers who served them most over the last weeks (continuity of carer)."""
    since = day - timedelta(days=current_app.config["SERVICEHUB_CONTINUITY_DAYS"])
    rows = db.session.execute(
        select(Visit.recipient_id, Visit.worker_id, func.count(Visit.id))
        .where(Visit.organisation_id == organisation_id, Visit.recipient_id.in_(recipient_ids),
               Visit.service_date >= since, Visit.service_date < day, Visit.worker_id.is_not(None),
               Visit.status.in_([VisitStatus.PUBLISHED, VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED]))
        .group_by(Visit.recipient_id, Visit.worker_id)
    ).all()
    counts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for recipient_id, worker_id, n in rows:
        counts[recipient_id].append((n, worker_id))
    return {r: tuple(w for _, w in sorted(pairs, key=lambda p: (-p[0], p[1]))[:2]) for r, pairs in counts.items()}


def _qualifications(worker: Worker, day: date) -> frozenset[str]:
    return frozenset(q.qualification.code for q in worker.qualifications if q.expires_on is None or q.expires_on >= day)


def worker_intervals(worker: Worker, day: date, out_from: int | None = None) -> tuple[tuple[int, int], ...]:
    """The worker's available (start, end) minutes on the day, cut at the minute they drop out."""
    intervals = []
    for start, end in (worker.availability or {}).get(WEEKDAYS[day.weekday()], []):
        a, b = _parse_hhmm(start), _parse_hhmm(end)
        if out_from is not None:
            b = min(b, out_from)
        if a < b:
            intervals.append((a, b))
    return tuple(sorted(intervals))


@dataclass
class LoadedDay:
    """One organisation's day, loaded: the rows and the solver problem made of them."""

    day: date
    visits: list[Visit]
    workers: list[Worker]
    problem: object  # servicehub.scheduling.problem.Problem
    initial_routes: dict | None = None
    before: dict | None = None  # re-plans: the roster as it was
    left_out: dict | None = None  # visit id -> why it is not in the problem at all (its window passed)


def planning_minute(day: date) -> int | None:
    """The first whole minute of `day` not yet begun, if the day has begun (a plan of it starts there); None for a
    day to come."""
    seconds = (district_now() - local_midnight(day)).total_seconds()
    return math.ceil(seconds / 60) if seconds > 0 else None


def _done_today(visits: list[Visit], day: date) -> list[day_problem.Done]:
    """Today's visits done or under way, with the minute their worker is free of them: the check-out's (the
    delivery in force), or the check-in's plus the visit's length while it is under way (else as planned)."""
    from servicehub.visits.models import RecordKind, ServiceRecord

    settled = [v for v in visits if v.worker_id is not None
               and v.status in (VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED)]
    ended: dict[int, datetime] = {}
    if settled:
        rows = db.session.execute(
            select(ServiceRecord.visit_id, ServiceRecord.id, ServiceRecord.kind, ServiceRecord.started_at,
                   ServiceRecord.ended_at)
            .where(ServiceRecord.visit_id.in_([v.id for v in settled]),
                   ServiceRecord.kind.in_([RecordKind.CHECK_IN, RecordKind.DELIVERY, RecordKind.CORRECTION]))
            .order_by(ServiceRecord.id)).all()
        by_id = {v.id: v for v in settled}
        for visit_id, record_id, kind, started_at, ended_at in rows:
            if kind == RecordKind.CHECK_IN and started_at is not None:
                ended.setdefault(visit_id, started_at + timedelta(minutes=by_id[visit_id].duration_min))
            elif record_id == by_id[visit_id].delivery_record_id and ended_at is not None:
                ended[visit_id] = ended_at
    done = []
    for visit in settled:
        free = ended.get(visit.id, visit.planned_end)
        free_at = minutes_of(free, day) if free is not None else 0
        done.append(day_problem.Done(visit_id=visit.id, worker_id=visit.worker_id,
                                     point=(visit.recipient.lat, visit.recipient.lon), free_at=free_at,
                                     minutes=visit.duration_min))
    return done


def load_day(organisation_id: int, day: date, *, replan_from: int | None = None,
             absent_worker_id: int | None = None, from_now: bool = True) -> LoadedDay:
    """Build the solver problem of an organisation's day from its visits and workers.

    A day that has begun is planned from now (`from_now`, see `day.from_now`): open visits whose window has
    passed are left out, done and under-way visits are not planned again and each worker starts where they are.
    A re-plan (`replan_from` minutes) keeps visits planned to start between now and that minute (settled ones, on
    a day to come) where they are, keeps the absent worker to what is fixed on them, and prices every move away
    from a visit's current worker so that as few visits as possible move.
    """
    visits = _day_visits(organisation_id, day)
    workers = _day_workers(organisation_id, day)
    out = _absences([w.id for w in workers], day)
    usual = usual_workers(sorted({v.recipient_id for v in visits}), organisation_id, day)
    now = planning_minute(day) if from_now else None
    replanning = replan_from is not None
    done = _done_today(visits, day) if now is not None else []
    done_ids = {d.visit_id for d in done}
    day_visits, before, windows = [], {}, {}
    for visit in visits:
        if visit.status == VisitStatus.MISSED or visit.id in done_ids:
            continue
        start = minutes_of(visit.planned_start, day)
        placed = visit.worker_id is not None and start is not None
        if replanning:
            before[visit.id] = ({"worker_id": visit.worker_id, "start": start} if placed
                                else {"unplaced": visit.unplaced_reason or "unplaced"})
        fixed = visit.status in SETTLED or (replanning and placed and start < replan_from
                                            and (now is None or start >= now))
        qualification = visit.service_type.required_qualification
        recipient = visit.recipient
        gender = recipient.required_carer_gender
        if gender is None and visit.service_type.same_gender_preferred:
            gender = recipient.gender
        window = (minutes(visit.window_start), minutes(visit.window_end) - visit.duration_min)
        if window[1] < window[0]:  # a centre-type window shorter than the stay: start at its opening
            window = (window[0], window[0])
        if replanning and not fixed:
            window = (max(window[0], replan_from), window[1])
        if not fixed:
            windows[visit.id] = window
        locked_worker = visit.worker_id if visit.locked and placed else None
        preferred = usual.get(visit.recipient_id, ())
        if replanning and placed and not fixed:
            preferred = (visit.worker_id,)
        day_visits.append(day_problem.DayVisit(
            id=visit.id, point=(recipient.lat, recipient.lon), window=window, duration=visit.duration_min,
            skills=frozenset({qualification.code}) if qualification else frozenset(), gender=gender,
            urgent=visit.urgent, meals=1 if visit.service_type.unit == "meal" else 0, usual_workers=preferred,
            pair=visit.pair_key, fixed_worker=visit.worker_id if fixed and placed else None,
            fixed_start=start if fixed and placed else None, locked_worker=locked_worker,
        ))
    left_out, cut = {}, None
    if now is not None:
        cut = day_problem.from_now(now, windows, done)
        left_out = {visit_id: WINDOW_PASSED for visit_id in cut.passed}
        day_visits = [replace(v, window=cut.windows[v.id]) if v.id in cut.windows else v
                      for v in day_visits if v.id not in cut.passed]
    day_workers = []
    for worker in workers:
        # The worker who dropped out keeps what is fixed on them and takes nothing new; someone known to be
        # out from a time of day works until then.
        dropped = worker.id == absent_worker_id
        if dropped and not any(v.fixed_worker == worker.id for v in day_visits):
            continue
        intervals = worker_intervals(worker, day, None if dropped else out.get(worker.id))
        begin = cut.starts.get(worker.id, cut.default) if cut else day_problem.WorkerStart(None, 0)
        intervals = day_problem.intervals_from(intervals, begin.ready)
        if not intervals:
            continue
        day_workers.append(day_problem.DayWorker(
            id=worker.id, point=(worker.start_lat, worker.start_lon), mode=worker.travel_mode, intervals=intervals,
            skills=_qualifications(worker, day), gender=worker.gender,
            max_minutes=_less(worker.max_minutes_per_day, begin.minutes),
            max_visits=_less(worker.max_visits_per_day, begin.visits), on_duty=not dropped,
            start_point=begin.point,
        ))
    weights = Weights(continuity=REPLAN_STAY_WEIGHT) if replanning else Weights()
    problem = day_problem.build_problem(day_visits, day_workers, travel_source(), day_settings(weights))
    initial = None
    if replanning:
        initial = defaultdict(list)
        kept = {w.id for w in day_workers if w.on_duty}
        planned = {v.id for v in day_visits}
        for visit in sorted((v for v in visits if v.worker_id in kept and v.sequence is not None
                             and v.id in planned), key=lambda v: v.sequence):
            initial[visit.worker_id].append(visit.id)
        initial = dict(initial)
    return LoadedDay(day, visits, workers, problem, initial_routes=initial, before=before or None,
                     left_out=left_out)


def _less(limit: int | None, used: int) -> int | None:
    """What is left of a daily limit (None: no limit) after `used`."""
    return None if limit is None else max(0, limit - used)


# --- runs -------------------------------------------------------------------------------------


def start_run(principal: Principal, organisation_id: int, date_from: date, date_to: date | None = None,
              time_limit_s: float | None = None) -> ScheduleRun:
    """Queue a solver run for an organisation's days and start it in the background; returns at once."""
    _require_organisation(principal, organisation_id, Resource.SCHEDULE_RUNS, Action.WRITE)
    date_to = date_to or date_from
    if date_to < date_from:
        raise ValidationFailed(N_("The period ends before it starts."), {"date_to": ["Must not be before date."]})
    if (date_to - date_from).days >= MAX_RUN_DAYS:
        raise ValidationFailed(N_("A run plans at most %(days)d days.", days=MAX_RUN_DAYS), {"date_to": [f"At most {MAX_RUN_DAYS} days."]})
    if date_from < district_today():
        raise ValidationFailed(N_("Days in the past cannot be planned."), {"date": ["Must be today or later."]})
    run = _new_run(principal, organisation_id, date_from, date_to, time_limit_s)
    return dispatch(run)


def _new_run(principal: Principal, organisation_id: int, date_from: date, date_to: date, time_limit_s, **extra):
    from servicehub.registry.models import Organisation

    if db.session.get(Organisation, organisation_id) is None:
        raise ValidationFailed(N_("No such organisation."), {"organisation_id": ["Unknown organisation."]})
    limit = float(time_limit_s or current_app.config["SERVICEHUB_SCHEDULE_TIME_LIMIT"])
    if not 0 < limit <= MAX_TIME_LIMIT_S:
        raise ValidationFailed(N_("Bad time limit."), {"time_limit_s": [f"Between 0 and {MAX_TIME_LIMIT_S} seconds."]})
    run = ScheduleRun(organisation_id=organisation_id, date_from=date_from, date_to=date_to, time_limit_s=limit,
                      requested_by_id=principal.user_id, requested_by=principal.username, **extra)
    db.session.add(run)
    db.session.flush()
    record_event(db.session, "schedule_run_requested", "schedule_runs", run.id, organisation_id=organisation_id,
                 date_from=date_from, date_to=date_to, kind=run.kind, absent_worker_id=run.absent_worker_id,
                 replan_from_min=run.replan_from_min)
    db.session.commit()
    return run


def dispatch(run: ScheduleRun) -> ScheduleRun:
    """Run it now (SERVICEHUB_RUN_INLINE) or in a background thread of this process."""
    if current_app.config["SERVICEHUB_RUN_INLINE"]:
        execute_run(run.id)
        db.session.refresh(run)
        return run
    app = current_app._get_current_object()
    actor = current_actor()
    thread = threading.Thread(target=_run_in_background, args=(app, run.id, actor), daemon=True,
                              name=f"schedule-run-{run.id}")
    thread.start()
    return run


def _run_in_background(app, run_id: int, actor) -> None:
    from servicehub.auth.audit import acting_as

    with app.app_context(), acting_as(actor):
        try:
            execute_run(run_id)
        finally:
            db.session.remove()


def _claim(run_id: int) -> bool:
    """Move a queued run to running; False if someone else already did."""
    claimed = db.session.execute(
        update(ScheduleRun).where(ScheduleRun.id == run_id, ScheduleRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.RUNNING.value, started_at=utcnow(), progress=0.0)
    ).rowcount
    db.session.commit()
    return bool(claimed)


class NoPlanInTime(Exception):
    """The search found no first plan of a day within its time limit (a big day, a short limit)."""


def execute_run(run_id: int) -> None:
    """Solve every day of a queued run and store the plans (never raises: a failure is stored on the run)."""
    if not _claim(run_id):
        return
    run = db.session.get(ScheduleRun, run_id)
    try:
        days = [run.date_from + timedelta(days=k) for k in range((run.date_to - run.date_from).days + 1)]
        if run.kind == RunKind.PLAN:
            generate_visits(_system(run), run.organisation_id, run.date_from, run.date_to)
        plans, all_changes = {}, []
        totals = {"visits": 0, "placed": 0, "unplaced": 0, "travel": 0, "objective": 0}
        processes = current_app.config["SERVICEHUB_SOLVER_PROCESSES"]
        for k, day in enumerate(days):
            basis = _basis(run.organisation_id, day)  # before reading: a change during the search makes it stale
            loaded = load_day(run.organisation_id, day, replan_from=run.replan_from_min,
                              absent_worker_id=run.absent_worker_id)
            limit = search_seconds(run.time_limit_s, loaded.problem)
            # End the read before the search, and read nothing of the run until its next write: a SQLite snapshot
            # opened before the search (reading run.time_limit_s after the commit did) is stale once anyone writes
            # during it, and its write is then refused at once ("database is locked"; seen on `make run`).
            db.session.commit()
            plan = solve(loaded.problem, SolveOptions(
                time_limit_s=limit, processes=processes, initial_routes=loaded.initial_routes,
                isolated=not current_app.config["SERVICEHUB_RUN_INLINE"]))
            if plan.status.startswith("FAILED") and loaded.problem.visits:
                raise NoPlanInTime(f"No plan was found for {day} within {limit:g} s of search "
                                   f"({len(loaded.problem.visits)} visits); run it again with more time.")
            found = {**day_problem.assignments(plan),
                     **{visit_id: {"unplaced": reason} for visit_id, reason in (loaded.left_out or {}).items()}}
            plans[day.isoformat()] = {
                "visits": {str(visit_id): value for visit_id, value in found.items()},
                "breaks": {str(w): b for w, b in day_problem.route_breaks(plan).items()},
                "basis": basis,
                "status": plan.status,
            }
            if loaded.before is not None:
                all_changes += [{**c, "date": day.isoformat()} for c in day_problem.changes(loaded.before, found)]
            left_out = len(loaded.left_out or ())
            totals["visits"] += len(loaded.problem.visits) + left_out
            totals["placed"] += len(loaded.problem.visits) - len(plan.unplaced)
            totals["unplaced"] += len(plan.unplaced) + left_out
            totals["travel"] += plan.travel
            totals["objective"] += plan.objective or 0
            run.progress = (k + 1) / len(days)
            db.session.commit()
        run.plan, run.changes = plans, all_changes
        run.visits_total, run.placed, run.unplaced = totals["visits"], totals["placed"], totals["unplaced"]
        run.travel_min, run.objective = totals["travel"], totals["objective"]
        run.status = RunStatus.SOLVED.value
    except NoPlanInTime as exc:
        db.session.rollback()
        run = db.session.get(ScheduleRun, run_id)
        run.status, run.error = RunStatus.FAILED.value, str(exc)
    except Exception as exc:  # a run must end, failed or not, whatever the solver or data did
        log.exception("schedule run %s failed", run_id)
        db.session.rollback()
        run = db.session.get(ScheduleRun, run_id)
        run.status, run.error = RunStatus.FAILED.value, f"{type(exc).__name__}: {exc}"[:2000]
    run.finished_at = utcnow()
    run.seconds = round((run.finished_at - run.started_at).total_seconds(), 2)
    run.progress = 1.0
    db.session.commit()


def search_seconds(time_limit_s: float, problem) -> float:
    """The search time of a day: the run's limit, less for a small day (guided local search never stops
    by itself, and a day of ten visits gains nothing from the last seconds)."""
    return min(time_limit_s, 2 + 0.03 * len(problem.visits))


def _system(run: ScheduleRun) -> Principal:
    return Principal(user_id=None, username=f"run:{run.id}", role=Role.ADMIN)


def _basis(organisation_id: int, day: date) -> str | None:
    """A fingerprint of the day's roster when a run read it: its published version and the latest change to
    any of its visits (a publication that changed no row still makes a new version)."""
    latest = db.session.scalar(select(func.max(Visit.updated_at)).where(
        Visit.organisation_id == organisation_id, Visit.service_date == day))
    version = db.session.scalar(select(func.max(RosterVersion.version)).where(
        RosterVersion.organisation_id == organisation_id, RosterVersion.service_date == day))
    return f"v{version or 0}@{latest.isoformat() if latest else '-'}"


def runs_visible(principal: Principal):
    """Runs the caller may see: a provider its own; no town manager or caregiver (a run is an organisation's
    whole day)."""
    return scope.visible(principal, Resource.SCHEDULE_RUNS, organisation=ScheduleRun.organisation_id)


def get_run(principal: Principal, run_id: int, *, for_update: bool = False) -> ScheduleRun:
    """One run; a run left 'running' by a process that died is marked failed."""
    stmt = select(ScheduleRun).where(ScheduleRun.id == run_id, runs_visible(principal))
    run = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if run is None:
        raise NotFound(N_("No such schedule run."))
    if run.status == RunStatus.RUNNING and run.started_at is not None:
        days = (run.date_to - run.date_from).days + 1
        deadline = run.started_at + timedelta(seconds=run.time_limit_s * days * 3 + 300)
        if utcnow() > deadline:
            run.status, run.error, run.finished_at = RunStatus.FAILED.value, "interrupted", utcnow()
            db.session.commit()
    return run


def list_runs(principal: Principal, *, organisation_id=None, service_date=None, page=1, page_size=20):
    """Recent runs the caller may see, newest first."""
    stmt = select(ScheduleRun).where(runs_visible(principal)).order_by(ScheduleRun.id.desc())
    if organisation_id is not None:
        stmt = stmt.where(ScheduleRun.organisation_id == organisation_id)
    if service_date is not None:
        stmt = stmt.where(ScheduleRun.date_from <= service_date, ScheduleRun.date_to >= service_date)
    return paginate(db.session, stmt, page, page_size)


def run_progress(run: ScheduleRun) -> float:
    """0..1: days finished, and within the running day the share of its time limit spent."""
    if run.status != RunStatus.RUNNING or run.started_at is None:
        return run.progress
    days = (run.date_to - run.date_from).days + 1
    elapsed = (utcnow() - run.started_at).total_seconds()
    return round(min(0.99, max(run.progress, elapsed / (run.time_limit_s * days + 1))), 3)


# --- publishing -------------------------------------------------------------------------------


def publish_run(principal: Principal, run_id: int) -> list[RosterVersion]:
    """Write a solved run's plan to its visits, and a new roster version per day, in one transaction."""
    run = get_run(principal, run_id, for_update=True)
    # One publication of an organisation's rosters at a time: a second one waits here and then finds the basis
    # it was planned on changed (stale_run), instead of both passing the check before either commits.
    db.session.execute(select(Organisation.id).where(Organisation.id == run.organisation_id).with_for_update())
    if run.status == RunStatus.PUBLISHED:
        raise Conflict(N_("This run is already published."), {"status": [run.status]}, code="already_published")
    if run.status != RunStatus.SOLVED:
        raise Conflict(f"Only a solved run can be published; this one is {run.status}.", {"status": [run.status]})
    versions = []
    for day_key, day_plan in sorted(run.plan.items()):
        day = date.fromisoformat(day_key)
        if _basis(run.organisation_id, day) != day_plan["basis"]:
            db.session.rollback()
            raise Conflict(N_("The roster of %(day)s changed after this run read it; run again.", day=day_key),
                           {"date": [day_key]}, code="stale_run")
        _refuse_past_starts(run.organisation_id, day, day_plan)
        versions.append(_apply_day(principal, run, day, day_plan))
    run.status, run.published_at = RunStatus.PUBLISHED.value, utcnow()
    record_event(db.session, "roster_published", "schedule_runs", run.id, organisation_id=run.organisation_id,
                 versions=[v.version for v in versions], date_from=run.date_from, date_to=run.date_to)
    try:
        db.session.commit()
    except IntegrityError as exc:  # another publication of the same day won the race for the version number
        db.session.rollback()
        raise Conflict(N_("Another roster of these days was published at the same moment; run again."),
                       {"date": [run.date_from.isoformat()]}, code="stale_run") from exc
    return versions


def _refuse_past_starts(organisation_id: int, day: date, day_plan: dict) -> None:
    """Conflict `start_past` (nothing written) if the plan would publish a visit of a day that has begun at a
    start already past: the roster must be re-planned from now first."""
    now = planning_minute(day)
    if now is None:
        return
    starts = {int(visit_id): where["start"] for visit_id, where in day_plan["visits"].items() if "start" in where}
    past = [visit_id for visit_id, start in starts.items() if start < now]
    if past:
        open_ids = set(db.session.scalars(select(Visit.id).where(
            Visit.id.in_(past), Visit.organisation_id == organisation_id,
            Visit.status.in_([VisitStatus.PLANNED, VisitStatus.PUBLISHED]))))
        past = sorted(visit_id for visit_id in past if visit_id in open_ids)
    if past:
        db.session.rollback()
        first = min(starts[visit_id] for visit_id in past)
        raise Conflict(N_("The plan of %(day)s starts visits in the past (%(count)d, the first at %(time)s); "
                          "re-plan the day from now and publish that plan.", count=len(past), day=day.isoformat(),
                          time=f"{first // 60:02d}:{first % 60:02d}"),
                       {"visits": [str(visit_id) for visit_id in past]}, code="start_past")


def _apply_day(principal: Principal, run: ScheduleRun, day: date, day_plan: dict) -> RosterVersion:
    planned = day_plan["visits"]
    snapshot, unplaced = [], 0
    for visit in _day_visits(run.organisation_id, day):
        where = planned.get(str(visit.id))
        if visit.status in SETTLED or visit.status == VisitStatus.MISSED:
            snapshot.append(_snapshot_row(visit))
            continue
        if where is None:
            continue  # a visit generated after the run: stays planned, for the next run
        if "unplaced" in where:
            visit.worker_id = visit.sequence = visit.travel_min = None
            visit.planned_arrival = visit.planned_start = visit.planned_end = None
            visit.status, visit.unplaced_reason = VisitStatus.PLANNED.value, where["unplaced"]
            unplaced += 1
        else:
            visit.worker_id, visit.sequence, visit.travel_min = where["worker_id"], where["sequence"], where["travel"]
            visit.planned_arrival = at_minutes(day, where["arrival"])
            visit.planned_start, visit.planned_end = at_minutes(day, where["start"]), at_minutes(day, where["end"])
            visit.status, visit.unplaced_reason = VisitStatus.PUBLISHED.value, ""
        snapshot.append(_snapshot_row(visit))
    latest = db.session.scalar(select(func.max(RosterVersion.version)).where(
        RosterVersion.organisation_id == run.organisation_id, RosterVersion.service_date == day)) or 0
    version = RosterVersion(organisation_id=run.organisation_id, service_date=day, version=latest + 1, run_id=run.id,
                            published_by_id=principal.user_id, published_by=principal.username,
                            snapshot=snapshot, visits=sum(1 for row in snapshot if row["worker_id"]),
                            unplaced=unplaced)
    db.session.add(version)
    return version


def _snapshot_row(visit: Visit) -> dict:
    return {"visit_id": visit.id, "worker_id": visit.worker_id, "sequence": visit.sequence,
            "start": visit.planned_start.isoformat() if visit.planned_start else None,
            "end": visit.planned_end.isoformat() if visit.planned_end else None,
            "status": visit.status, "unplaced_reason": visit.unplaced_reason}


def roster_versions(principal: Principal, organisation_id: int, service_date: date) -> list[RosterVersion]:
    """Every published version of an organisation's day, newest first."""
    _require_organisation(principal, organisation_id, Resource.SCHEDULE_RUNS)
    return list(db.session.scalars(
        select(RosterVersion).where(RosterVersion.organisation_id == organisation_id,
                                    RosterVersion.service_date == service_date)
        .order_by(RosterVersion.version.desc())
    ))


# --- rosters ----------------------------------------------------------------------------------


ROSTER_VISIT_COLUMNS = ("id", "sequence", "status", "recipient_id", "service_type_id", "series_id", "worker_id",
                        "organisation_id", "service_date", "planned_arrival", "planned_start", "planned_end",
                        "travel_min", "window_start", "window_end")


def roster(principal: Principal, service_date: date, worker_id: int | None = None) -> tuple[Worker, list[Visit]]:
    """A worker's published day in route order (a caregiver: their own, today)."""
    if principal.role == Role.CAREGIVER:
        if principal.worker_id is None:
            raise PermissionDenied(N_("Your account is not linked to a worker record."))
        if worker_id not in (None, principal.worker_id):
            raise PermissionDenied(N_("Caregivers see their own roster only."))
        if service_date != district_today():
            raise PermissionDenied(N_("Caregivers see today's roster only."))
        worker_id = principal.worker_id
    if worker_id is None:
        raise ValidationFailed(N_("Which worker?"), {"worker_id": ["Missing data for required field."]})
    worker = db.session.get(Worker, worker_id)
    if worker is None or (principal.is_provider and worker.organisation_id != principal.organisation_id):
        raise NotFound(N_("No such worker."))
    # One query of the columns a roster shows: phones ask for this again and again (the busiest request there is).
    visits = list(db.session.scalars(
        select(Visit).options(
            load_only(*(getattr(Visit, name) for name in ROSTER_VISIT_COLUMNS)),
            joinedload(Visit.recipient, innerjoin=True).load_only(Recipient.name, Recipient.address, Recipient.lat,
                                                                  Recipient.lon, Recipient.phone_encrypted,
                                                                  Recipient.phone_masked),
            joinedload(Visit.service_type, innerjoin=True).load_only(ServiceType.code, ServiceType.name_zh,
                                                                     ServiceType.name_en),
            joinedload(Visit.series, innerjoin=True).load_only(VisitSeries.carers))
        .where(Visit.worker_id == worker_id, Visit.service_date == service_date,
               Visit.status.in_([VisitStatus.PUBLISHED, *SETTLED]), visits_visible(principal))
        .order_by(Visit.sequence, Visit.planned_start)
    ))
    return worker, visits


# --- manual moves -----------------------------------------------------------------------------


def move_visit(principal: Principal, visit_id: int, worker_id: int, start: time | None = None) -> Visit:
    """Move a visit to a worker (at a time, or the earliest that fits), if no hard rule breaks; lock it there."""
    visit = get_visit(principal, visit_id, for_update=True)
    if principal.role == Role.CAREGIVER:
        raise PermissionDenied(N_("Caregivers cannot move visits."))
    if visit.status not in (VisitStatus.PLANNED, VisitStatus.PUBLISHED):
        raise Conflict(f"A {visit.status} visit cannot be moved.", {"status": [visit.status]})
    worker = db.session.get(Worker, worker_id)
    if worker is None or worker.organisation_id != visit.organisation_id or not worker.active:
        raise ValidationFailed(N_("The worker is not an active worker of this visit's organisation."),
                               {"worker_id": ["Not an active worker of this organisation."]}, code="worker")
    day = visit.service_date
    # The whole day as it stands (done visits too: they are on the routes the move is checked against).
    loaded = load_day(visit.organisation_id, day, from_now=False)
    problem = loaded.problem
    route = [v.id for v in sorted((v for v in loaded.visits if v.worker_id == worker_id and v.id != visit.id
                                   and v.sequence is not None and v.status != VisitStatus.CANCELLED),
                                  key=lambda v: v.sequence)]
    partner = next(((v.worker_id, minutes_of(v.planned_start, day)) for v in loaded.visits
                    if visit.pair_key and v.pair_key == visit.pair_key and v.id != visit.id
                    and v.worker_id is not None and v.planned_start is not None), None)
    result = moves.insert(problem, worker_id, route, visit.id, None if start is None else minutes(start), partner,
                          now=planning_minute(day))
    if isinstance(result, moves.Refusal):
        raise ValidationFailed(f"The move breaks a rule: {result.detail}", {"worker_id": [result.rule]},
                               code=result.rule)
    old_worker = visit.worker_id
    for stop_visit_id, stop in result.items():
        row = db.session.get(Visit, stop_visit_id)
        row.worker_id, row.sequence, row.travel_min = worker_id, stop["sequence"], stop["travel"]
        row.planned_arrival, row.planned_start = at_minutes(day, stop["arrival"]), at_minutes(day, stop["start"])
        row.planned_end = at_minutes(day, stop["end"])
    visit.locked, visit.unplaced_reason = True, ""
    if old_worker is not None and old_worker != worker_id:
        remaining = sorted((v for v in loaded.visits if v.worker_id == old_worker and v.id != visit.id
                            and v.sequence is not None), key=lambda v: v.sequence)
        for k, row in enumerate(remaining, start=1):
            row.sequence = k
    record_event(db.session, "visit_moved", "visits", visit.id, from_worker=old_worker, to_worker=worker_id,
                 start=visit.planned_start)
    db.session.commit()
    return visit


# --- re-planning ------------------------------------------------------------------------------


def report_absence(principal: Principal, worker_id: int, absence_date: date, from_time: time | None,
                   reason: str, replan: bool = True, time_limit_s: float | None = None):
    """Record that a worker is out from a time of the day; re-plan the rest of that day (a run to publish)."""
    worker = db.session.get(Worker, worker_id)
    if worker is None or (principal.is_provider and worker.organisation_id != principal.organisation_id):
        raise NotFound(N_("No such worker."))
    if principal.role == Role.CAREGIVER:
        raise PermissionDenied(N_("Ask your organisation to record the absence."))
    if absence_date < district_today():
        raise ValidationFailed(N_("An absence in the past changes nothing."), {"date": ["Must be today or later."]})
    absence = WorkerAbsence(worker_id=worker_id, absence_date=absence_date, from_time=from_time, reason=reason)
    db.session.add(absence)
    db.session.commit()
    run = None
    if replan:
        run = _new_run(principal, worker.organisation_id, absence_date, absence_date, time_limit_s,
                       kind=RunKind.REPLAN.value, absent_worker_id=worker_id,
                       replan_from_min=0 if from_time is None else minutes(from_time))
        run = dispatch(run)
    return absence, run


def replan_from_now(principal: Principal, organisation_id: int, time_limit_s: float | None = None) -> ScheduleRun:
    """Re-plan an organisation's today from now (traffic, a late start): done and started visits stay as they are,
    the rest is planned again from where each worker is; a run to publish."""
    _require_organisation(principal, organisation_id, Resource.SCHEDULE_RUNS, Action.WRITE)
    today = district_today()
    run = _new_run(principal, organisation_id, today, today, time_limit_s, kind=RunKind.REPLAN.value,
                   replan_from_min=now_minutes())
    return dispatch(run)


def now_minutes() -> int:
    """The district's current minute of the day."""
    now = district_now()
    return now.hour * 60 + now.minute


def run_plan(principal: Principal, run_id: int) -> list[dict]:
    """A run's plan, day by day: every visit's place on a route (or why it has none) and the breaks."""
    run = get_run(principal, run_id)
    days = []
    for day_key, day_plan in sorted((run.plan or {}).items()):
        stops = [{"visit_id": int(visit_id), **value} for visit_id, value in day_plan["visits"].items()]
        stops.sort(key=lambda s: (s.get("worker_id") is None, s.get("worker_id") or 0, s.get("sequence") or 0,
                                  s["visit_id"]))
        days.append({"date": date.fromisoformat(day_key), "stops": stops, "breaks": day_plan.get("breaks", {})})
    return days


def present_roster(principal: Principal, worker: Worker, service_date: date, visits: list[Visit]) -> dict:
    """The roster as the API shows it: phone numbers in full only to the organisation serving the recipient."""
    from servicehub.registry.services import phone_in_clear

    for visit in visits:
        visit.phone_shown = phone_in_clear(visit.recipient) if principal.is_provider else visit.recipient.phone_masked
    return {"date": service_date, "worker": worker, "visits": visits,
            "travel_min": sum(v.travel_min or 0 for v in visits)}


# --- the day view (pages) ---------------------------------------------------------------------


@dataclass
class DayStop:
    """One visit on a worker's day as pages draw it (times in minutes from midnight)."""

    visit: Visit
    arrival: int | None
    start: int | None
    end: int | None
    travel: int | None


@dataclass
class WorkerDay:
    """A worker's day: shift, breaks, stops in order, travel."""

    worker: Worker
    shift: tuple[int, int] | None
    breaks: list[list[int]]
    stops: list[DayStop]
    out_from: int | None = None

    @property
    def travel(self) -> int:
        """Minutes on the road to the stops (the way home not counted)."""
        return sum(stop.travel or 0 for stop in self.stops)


@dataclass
class DayView:
    """An organisation's day: the published roster, or a run's plan over it, and what could not be placed."""

    day: date
    organisation_id: int
    run: ScheduleRun | None
    workers: list[WorkerDay]
    unplaced: list[tuple[Visit, str]]
    waiting: list[Visit]  # generated after the plan was made: not yet planned
    latest_version: int | None


def day_view(principal: Principal, organisation_id: int, service_date: date, run_id: int | None = None) -> DayView:
    """The day as published, or as run `run_id` would make it; every visit on a route, unplaced, or waiting."""
    _require_organisation(principal, organisation_id, Resource.SCHEDULE_RUNS)
    run = None
    if run_id is not None:
        run = get_run(principal, run_id)
        if run.organisation_id != organisation_id:
            raise NotFound(N_("No such schedule run."))
    visits = _day_visits(organisation_id, service_date)
    workers = _day_workers(organisation_id, service_date)
    out = _absences([w.id for w in workers], service_date)
    plan = (run.plan or {}).get(service_date.isoformat()) if run is not None else None
    placed: dict[int, list[DayStop]] = defaultdict(list)
    unplaced, waiting = [], []
    for visit in visits:
        if plan is not None and visit.status not in SETTLED:
            where = plan["visits"].get(str(visit.id))
            if where is None:
                waiting.append(visit)
            elif "unplaced" in where:
                unplaced.append((visit, where["unplaced"]))
            else:
                placed[where["worker_id"]].append(
                    DayStop(visit, where["arrival"], where["start"], where["end"], where["travel"]))
            continue
        if visit.worker_id is not None and visit.planned_start is not None:
            placed[visit.worker_id].append(DayStop(
                visit, minutes_of(visit.planned_arrival, service_date), minutes_of(visit.planned_start, service_date),
                minutes_of(visit.planned_end, service_date), visit.travel_min))
        elif visit.unplaced_reason:
            unplaced.append((visit, visit.unplaced_reason))
        else:
            waiting.append(visit)
    breaks = (plan or {}).get("breaks", {})
    rows = []
    for worker in workers:
        intervals = worker_intervals(worker, service_date)
        stops = sorted(placed.get(worker.id, []), key=lambda s: (s.start is None, s.start or 0))
        if not intervals and not stops:
            continue
        if plan is None:
            gaps = day_problem.worker_shift(intervals, None)[1] if intervals else ()
            worker_breaks = [[b.earliest, b.earliest + b.duration] for b in gaps]
        else:
            worker_breaks = breaks.get(str(worker.id), [])
        shift = (intervals[0][0], intervals[-1][1]) if intervals else None
        rows.append(WorkerDay(worker, shift, worker_breaks, stops, out.get(worker.id)))
    latest = db.session.scalar(select(func.max(RosterVersion.version)).where(
        RosterVersion.organisation_id == organisation_id, RosterVersion.service_date == service_date))
    return DayView(service_date, organisation_id, run, rows, unplaced, waiting, latest)


# --- settings and the nightly plan -------------------------------------------------------------------


def get_settings(principal: Principal, organisation_id: int) -> ScheduleSettings:
    """An organisation's schedule settings (defaults if it never chose)."""
    _require_organisation(principal, organisation_id, Resource.SCHEDULE_SETTINGS)
    settings = db.session.get(ScheduleSettings, organisation_id)
    return settings or ScheduleSettings(organisation_id=organisation_id, auto_plan=False, time_limit_s=30.0)


def update_settings(principal: Principal, organisation_id: int, changes: dict) -> ScheduleSettings:
    """Opt in or out of the nightly plan of the next day, and its search time."""
    from servicehub.registry.models import Organisation

    _require_organisation(principal, organisation_id, Resource.SCHEDULE_SETTINGS, Action.WRITE)
    if db.session.get(Organisation, organisation_id) is None:
        raise NotFound(N_("No such organisation."))
    settings = db.session.get(ScheduleSettings, organisation_id)
    if settings is None:
        settings = ScheduleSettings(organisation_id=organisation_id, auto_plan=False, time_limit_s=30.0)
        db.session.add(settings)
    for name in ("auto_plan", "time_limit_s"):
        if name in changes:
            setattr(settings, name, changes[name])
    db.session.commit()
    return settings


def nightly_plans(day: date | None = None) -> dict[str, int]:
    """Plan tomorrow (or `day`) for every organisation that opted in; the runs wait to be published."""
    day = day or district_today() + timedelta(days=1)
    started = 0
    for settings in db.session.scalars(select(ScheduleSettings).where(ScheduleSettings.auto_plan.is_(True))):
        run = _new_run(_system_principal(), settings.organisation_id, day, day, settings.time_limit_s)
        execute_run(run.id)
        started += 1
    return {"runs": started}


def _system_principal() -> Principal:
    return Principal(user_id=None, username="scheduler", role=Role.ADMIN)
