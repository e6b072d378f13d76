"""Keeping every visit's EVV exceptions current: load a visit's facts, let the rules decide (`exceptions.py`), write
what changed into the exception queue (`evv_exceptions`, with a step for each change) and onto the visit row
(`delivery_exception`, `delivery_manual`, which reports sum).

`refresh_exceptions` runs in the same transaction as every ledger entry (`services.append_entry`), for the visit
and every other visit of its worker that day (an overlap is a fact about two visits). It takes a session or a
connection, so the demo history and a migration (`rebuild_exceptions`) run it in bulk too. What people do with an
exception — resolve it, approve or reject it — is `servicehub.visits.queue`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import Row, and_, bindparam, func, insert, or_, select, tuple_, update

from servicehub.auth.models import User
from servicehub.catalog.models import ServiceType
from servicehub.database import utcnow
from servicehub.matching.models import Referral
from servicehub.registry.models import ContractLine, Recipient, Worker
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.timeutil import district_today, district_tz
from servicehub.visits import exceptions
from servicehub.visits.exceptions import Code, Finding, Thresholds, VisitFacts
from servicehub.visits.models import (
    UNDECIDED,
    AttemptOutcome,
    ConfirmationAttempt,
    EvvException,
    ExceptionStatus,
    ExceptionStep,
    ServiceRecord,
)

CHUNK = 1000  # visits per round trip (well under SQLite's limit on bound parameters)
WORKED = (VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED)
TRIES = (AttemptOutcome.WRONG, AttemptOutcome.EXPIRED, AttemptOutcome.REUSED)
SYSTEM = "system"


def thresholds() -> Thresholds:
    """The district's tolerances, from the settings."""
    c = current_app.config
    return Thresholds(grace_min=c["SERVICEHUB_LATE_MINUTES"], meal_grace_min=c["SERVICEHUB_LATE_MINUTES_MEAL"],
                      end_tolerance_min=c["SERVICEHUB_EVV_END_MINUTES"], distance_m=c["SERVICEHUB_EVV_TOLERANCE_M"],
                      submit_hours=c["SERVICEHUB_EVV_SUBMIT_HOURS"],
                      cancel_notice_hours=c["SERVICEHUB_EVV_CANCEL_NOTICE_HOURS"],
                      code_tries=c["SERVICEHUB_CODE_TRIES"])


def fingerprint(details: dict) -> str:
    """A short hash of an exception's figures: a decision holds while they stay the same."""
    return hashlib.sha256(json.dumps(details, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# --- loading the facts -----------------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _with_worker_days(chunk: list[int]):
    """A condition on visits: these, and every other visit of the same worker on the same day that is under way or
    done (found by the worker and day of the given ones, in the same query)."""
    given = select(Visit.worker_id, Visit.service_date).where(Visit.id.in_(chunk), Visit.worker_id.is_not(None))
    return or_(Visit.id.in_(chunk),
               and_(tuple_(Visit.worker_id, Visit.service_date).in_(given), Visit.status.in_(WORKED)))


_tries = (select(func.count(ConfirmationAttempt.id))
          .where(ConfirmationAttempt.visit_id == Visit.id, ConfirmationAttempt.outcome.in_(TRIES))
          .correlate(Visit).scalar_subquery())
_VISIT_COLUMNS = (Visit.id, Visit.status, Visit.service_date, Visit.window_start, Visit.window_end,
                  Visit.planned_start, Visit.planned_end, Visit.duration_min, Visit.worker_id, Visit.organisation_id,
                  Visit.recipient_id, Visit.delivery_exception, Visit.delivery_manual, Recipient.town_id,
                  Recipient.lat, Recipient.lon, ServiceType.unit, ServiceType.checklist, ServiceType.evv_short_share,
                  ServiceType.evv_long_share, ContractLine.min_billable_share, Worker.name.label("worker_name"),
                  _tries.label("tries"))
_ENTRY_COLUMNS = (ServiceRecord.id, ServiceRecord.visit_id, ServiceRecord.kind, ServiceRecord.started_at,
                  ServiceRecord.ended_at, ServiceRecord.lat, ServiceRecord.lon, ServiceRecord.distance_m,
                  ServiceRecord.recorded_by_id, ServiceRecord.recorded_by, ServiceRecord.confirmation,
                  ServiceRecord.tasks, ServiceRecord.flags, ServiceRecord.refers_to_id, ServiceRecord.reason_code,
                  ServiceRecord.outcome_reason, ServiceRecord.notes, ServiceRecord.received_at,
                  User.worker_id.label("recorder_worker"))


def _entry(row, visit: Row) -> exceptions.Entry:
    """A ledger row as the rules see it. An entry is the caregiver's own when their account made it, or, for
    records imported without an account (the demo history), when it is signed with their name."""
    if row.recorded_by_id is not None:
        by_worker = visit.worker_id is not None and row.recorder_worker == visit.worker_id
    else:
        by_worker = visit.worker_id is not None and row.recorded_by == visit.worker_name
    return exceptions.Entry(
        id=row.id, kind=row.kind, received_at=_aware(row.received_at), started_at=_aware(row.started_at),
        ended_at=_aware(row.ended_at), lat=row.lat, lon=row.lon, distance_m=row.distance_m, by_worker=by_worker,
        recorded_by=row.recorded_by, confirmation=(row.confirmation or {}).get("method", "none"),
        tasks=len(row.tasks or ()), flags=tuple(row.flags or ()), refers_to_id=row.refers_to_id,
        reason_code=row.reason_code or "", outcome_reason=row.outcome_reason or "", notes=row.notes or "")


def load_facts(executor, visit_ids: Iterable[int],
               pending: dict[int, list[exceptions.Entry]] | None = None) -> tuple[dict[int, VisitFacts], dict]:
    """The facts of these visits (and of the others of their workers' days, which an overlap needs), and each
    visit's row: its organisation, recipient, town, worker and day. `pending`: entries about to be appended."""
    asked = sorted(set(visit_ids))
    tz = district_tz()
    rows, entries = {}, defaultdict(list)
    for start in range(0, len(asked), CHUNK):
        rows.update((row.id, row) for row in executor.execute(
            select(*_VISIT_COLUMNS).join(Recipient, Recipient.id == Visit.recipient_id)
            .join(ServiceType, ServiceType.id == Visit.service_type_id)
            .join(Referral, Referral.id == Visit.referral_id)
            .join(ContractLine, ContractLine.id == Referral.contract_line_id)
            .outerjoin(Worker, Worker.id == Visit.worker_id)
            .where(_with_worker_days(asked[start:start + CHUNK]))))
    ids = sorted(rows)
    for start in range(0, len(ids), CHUNK):
        for row in executor.execute(select(*_ENTRY_COLUMNS).outerjoin(User, User.id == ServiceRecord.recorded_by_id)
                                    .where(ServiceRecord.visit_id.in_(ids[start:start + CHUNK]))
                                    .order_by(ServiceRecord.visit_id, ServiceRecord.sequence)):
            entries[row.visit_id].append(row)
    plain = {}
    for visit_id, row in rows.items():
        visit_entries = [_entry(e, row) for e in entries.get(visit_id, ())]
        visit_entries += (pending or {}).get(visit_id, [])
        day_start = datetime.combine(row.service_date, row.window_start, tzinfo=tz).astimezone(UTC)
        expected = _aware(row.planned_start) or day_start
        plain[visit_id] = VisitFacts(
            visit_id=visit_id, status=row.status, expected_start=expected,
            expected_end=_aware(row.planned_end) or expected + timedelta(minutes=row.duration_min),
            duration_min=row.duration_min, address=(row.lat, row.lon), entries=tuple(visit_entries),
            meal=row.unit == "meal", has_checklist=bool(row.checklist),
            short_share=max(row.evv_short_share, row.min_billable_share), long_share=row.evv_long_share,
            code_failures=row.tries or 0)
    return _with_others(plain, rows), rows


def _with_others(facts: dict[int, VisitFacts], rows: dict) -> dict[int, VisitFacts]:
    """Each visit's facts with the times of its worker's other visits that day."""
    by_day = defaultdict(list)
    for visit_id, visit in facts.items():
        row = rows[visit_id]
        if row.worker_id is None:
            continue
        delivery = exceptions.in_force(visit.entries)
        if delivery is not None and delivery.started_at and delivery.ended_at:
            by_day[(row.worker_id, row.service_date)].append((visit_id, delivery.started_at, delivery.ended_at))
    for visit_id, visit in facts.items():
        row = rows[visit_id]
        others = tuple(other for other in by_day.get((row.worker_id, row.service_date), ()) if other[0] != visit_id)
        if others:
            facts[visit_id] = replace(visit, others=others)
    return facts


# --- keeping the queue current ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """The exceptions of some visits as the rules find them now, and the visits' rows (to write them)."""

    found: dict[int, list[Finding]]
    rows: dict


def evaluate(executor, visit_ids: Iterable[int],
             pending: dict[int, list[exceptions.Entry]] | None = None) -> Evaluation:
    """The exceptions these visits (and their workers' other visits those days) have, with entries about to be
    appended (`pending`) counted as written; nothing is written."""
    facts, rows = load_facts(executor, visit_ids, pending)
    rules = thresholds()
    return Evaluation({visit_id: exceptions.find_exceptions(visit, rules) for visit_id, visit in facts.items()}, rows)


def record(executor, evaluation: Evaluation, *, by: str = SYSTEM, now: datetime | None = None,
           waive_before: date | None = None) -> dict[int, list[Finding]]:
    """Write an evaluation: new exceptions open, ones that no longer apply cleared, decided ones whose figures
    changed open again; the visit rows' `delivery_exception` and `delivery_manual` follow. Inside the caller's
    transaction. `waive_before`: exceptions raised for visits before that day are waived (records made before the
    queue)."""
    _sync(executor, evaluation.found, evaluation.rows, by, now or utcnow(), waive_before)
    _project(executor, evaluation.found, evaluation.rows)
    return evaluation.found


def findings_for(executor, visit_id: int, pending: list[exceptions.Entry] | None = None) -> list[Finding]:
    """The exceptions one visit has, with entries about to be appended counted as written."""
    return evaluate(executor, [visit_id], {visit_id: pending or []}).found[visit_id]


def refresh_exceptions(executor, visit_ids: Iterable[int], *, by: str = SYSTEM, now: datetime | None = None,
                       waive_before: date | None = None) -> dict[int, list[Finding]]:
    """Recompute the exceptions of these visits (and of their workers' other visits those days) and write what
    changed (see `record`)."""
    ids = list(visit_ids)
    if not ids:
        return {}
    return record(executor, evaluate(executor, ids), by=by, now=now, waive_before=waive_before)


def _sync(executor, found: dict[int, list[Finding]], rows: dict, by: str, now: datetime,
          waive_before: date | None) -> None:
    existing = defaultdict(dict)
    ids = sorted(found)
    for start in range(0, len(ids), CHUNK):
        for row in executor.execute(select(EvvException.id, EvvException.visit_id, EvvException.code,
                                           EvvException.status, EvvException.fingerprint)
                                    .where(EvvException.visit_id.in_(ids[start:start + CHUNK]))):
            existing[row.visit_id][row.code] = row
    new_rows, changes = [], []  # changes: (exception id, new status, action, values)
    for visit_id, findings in found.items():
        visit, have = rows[visit_id], existing.get(visit_id, {})
        for finding in findings:
            details, print_ = finding.details, fingerprint(finding.details)
            row = have.get(finding.code.value)
            if row is None:
                status = (ExceptionStatus.WAIVED if waive_before and visit.service_date < waive_before
                          else _initial_status(finding))
                new_rows.append({"visit_id": visit_id, "code": finding.code.value, "status": status.value,
                                 "organisation_id": visit.organisation_id, "town_id": visit.town_id,
                                 "recipient_id": visit.recipient_id, "worker_id": visit.worker_id,
                                 "service_date": visit.service_date, "details": details, "fingerprint": print_,
                                 "raised_at": now, "updated_at": now, **_initial_resolution(finding, now)})
            elif _explained_anew(finding, row, print_):
                # Another correction of a frozen month: it comes explained, like the first, and waits for the bureau.
                if row.status != ExceptionStatus.OPEN:
                    changes.append((row.id, ExceptionStatus.OPEN, "reopened",
                                    {"details": details, "fingerprint": print_}))
                resolution = _initial_resolution(finding, now)
                changes.append((row.id, ExceptionStatus.RESOLVED, "resolved",
                                {"details": details, "fingerprint": print_, **resolution, "decided_at": None}))
            elif row.status == ExceptionStatus.CLEARED or (
                    row.fingerprint != print_ and row.status not in (ExceptionStatus.OPEN, ExceptionStatus.WAIVED)):
                changes.append((row.id, ExceptionStatus.OPEN, "reopened", {"details": details, "fingerprint": print_}))
            elif row.fingerprint != print_:
                changes.append((row.id, row.status, "", {"details": details, "fingerprint": print_}))
        current = {finding.code.value for finding in findings}
        for code, row in have.items():
            if code not in current and row.status != ExceptionStatus.CLEARED:
                changes.append((row.id, ExceptionStatus.CLEARED, "cleared", {}))
    if new_rows:
        table = EvvException.__table__  # Core, not the ORM's bulk insert: a check-in's few rows cost it more
        created = {(visit_id, code): (exception_id, status) for exception_id, visit_id, code, status in executor.execute(
            insert(table).returning(table.c.id, table.c.visit_id, table.c.code, table.c.status), new_rows)}
        steps = []
        for r in new_rows:
            exception_id, status = created[(r["visit_id"], r["code"])]
            steps.append(_step(exception_id, "raised", ExceptionStatus.OPEN, by, now, details=r["details"]))
            if status != ExceptionStatus.OPEN:
                steps.append(_step(exception_id, "waived" if status == ExceptionStatus.WAIVED else "resolved", status,
                                   r["resolved_by"] or by, now, r["reason_code"], r["resolution_note"]))
        executor.execute(insert(ExceptionStep.__table__), steps)
    for exception_id, status, action, values in changes:
        executor.execute(update(EvvException).where(EvvException.id == exception_id)
                         .values(status=status.value if hasattr(status, "value") else status, updated_at=now, **values))
        if action:
            executor.execute(insert(ExceptionStep), [_step(
                exception_id, action, status, values.get("resolved_by") or by, now, values.get("reason_code", ""),
                values.get("resolution_note", ""), details=values.get("details", {}))])


def _explained_anew(finding: Finding, row, print_: str) -> bool:
    """Whether a frozen month's exception is about another correction than the one it was raised or decided for
    (a waived one stays waived)."""
    return (finding.code == Code.FROZEN_MONTH and row.status != ExceptionStatus.WAIVED
            and (row.fingerprint != print_ or row.status == ExceptionStatus.CLEARED))


def _initial_status(finding: Finding) -> ExceptionStatus:
    """A correction of a frozen month arrives explained (its reason and notes): it waits for the bureau at once."""
    return ExceptionStatus.RESOLVED if finding.code == Code.FROZEN_MONTH else ExceptionStatus.OPEN


def _initial_resolution(finding: Finding, now: datetime) -> dict:
    """A frozen month's correction is resolved by the correction itself: its reason, notes and author."""
    if finding.code != Code.FROZEN_MONTH:
        return {"reason_code": "", "resolution_note": "", "resolved_by": "", "resolved_at": None,
                "decision_note": "", "decided_by": ""}
    d = finding.details
    return {"reason_code": d["reason_code"], "resolution_note": d["note"], "resolved_by": d["by"], "resolved_at": now,
            "decision_note": "", "decided_by": ""}


def _step(exception_id: int, action: str, status, by: str, at: datetime, reason_code: str = "", note: str = "",
          details: dict | None = None, by_id: int | None = None) -> dict:
    return {"exception_id": exception_id, "action": action, "status": getattr(status, "value", status),
            "reason_code": reason_code, "note": note, "details": details or {}, "by_id": by_id, "by": by, "at": at}


_visits = Visit.__table__
_PROJECT = (update(_visits).where(_visits.c.id == bindparam("visit_id"))
            .values(updated_at=_visits.c.updated_at, delivery_exception=bindparam("exception"),
                    delivery_manual=bindparam("manual")))


def _project(executor, found: dict[int, list[Finding]], rows: dict) -> None:
    """Whether each visit's delivery carries exceptions, on its row (None while it has no delivery); only the rows
    whose values change are written."""
    values = []
    for visit_id, findings in found.items():
        row = rows[visit_id]
        delivered = row.status == VisitStatus.COMPLETED
        codes = {f.code for f in findings} - exceptions.NOT_DELIVERED
        exception = bool(codes) if delivered else None
        manual = bool(codes & exceptions.MANUAL_OR_EDITED) if delivered else None
        if (exception, manual) != (row.delivery_exception, row.delivery_manual):
            values.append({"visit_id": visit_id, "exception": exception, "manual": manual})
    for start in range(0, len(values), CHUNK):
        executor.execute(_PROJECT, values[start:start + CHUNK])


REBUILD_CHUNK = 2000  # visits evaluated and written at a time: memory stays bounded on a year of a district


def refresh_in_chunks(executor, visit_ids: Iterable[int], **options) -> dict[int, list[Finding]]:
    """`refresh_exceptions` for many visits, a chunk at a time in order of day and worker (memory stays bounded on a
    year of a district; a worker's day split between two chunks is evaluated whole from each side, to the same
    result)."""
    ids = sorted(set(visit_ids))
    ordered = []
    for start in range(0, len(ids), CHUNK):
        ordered += executor.execute(select(Visit.service_date, Visit.worker_id, Visit.id)
                                    .where(Visit.id.in_(ids[start:start + CHUNK]))).all()
    ordered = [visit_id for _, _, visit_id in sorted(ordered, key=lambda r: (r[0], r[1] or 0, r[2]))]
    found = {}
    for start in range(0, len(ordered), REBUILD_CHUNK):
        found.update(refresh_exceptions(executor, ordered[start:start + REBUILD_CHUNK], **options))
    return found


def rebuild_exceptions(executor, waive_before_this_month: bool = False) -> int:
    """Compute the exceptions of every visit with ledger entries (`servicehub audit rebuild-exceptions`, and the
    migration that introduced the queue); returns how many visits have any. With `waive_before_this_month`, those
    raised now for visits before this month are waived: records made before the queue, in months settled then."""
    recorded = executor.execute(select(ServiceRecord.visit_id).distinct()).scalars().all()
    waive_before = district_today().replace(day=1) if waive_before_this_month else None
    found = refresh_in_chunks(executor, recorded, waive_before=waive_before)
    return sum(1 for findings in found.values() if findings)


# --- the frozen months ---------------------------------------------------------------------------------------------

# Which visits fall in a month whose report is frozen: evaluation's to say (it freezes them, and depends on this
# package, not the other way round); `servicehub.app` links the two when it builds the app.
FrozenLookup = Callable[[Iterable[int]], set[int]]
_frozen_lookup: FrozenLookup | None = None


def set_frozen_lookup(lookup: FrozenLookup) -> None:
    """Tell this package how to find the visits of frozen months."""
    global _frozen_lookup
    _frozen_lookup = lookup


def frozen_visits(visit_ids: Iterable[int]) -> set[int]:
    """The visits among these whose month is frozen for their contract."""
    if _frozen_lookup is None:
        raise RuntimeError("no frozen-month lookup: servicehub.app links evaluation to visits when it builds the app")
    return _frozen_lookup(visit_ids)


def undecided_visit_ids(executor, visit_ids: Iterable[int]) -> set[int]:
    """Those of these visits with exceptions still standing between them and their payment."""
    ids = sorted(set(visit_ids))
    undecided = set()
    for start in range(0, len(ids), CHUNK):
        undecided.update(executor.execute(select(EvvException.visit_id).where(
            EvvException.visit_id.in_(ids[start:start + CHUNK]), EvvException.status.in_(UNDECIDED))).scalars())
    return undecided

