"""Service-record use cases: check-in and check-out with electronic visit verification, outcomes, corrections
and their approval, and verifying each organisation's ledger.

Every write appends one entry to the organisation's hash-chained ledger (`ledger.py`), moves the visit's status
and recomputes the visit's exceptions (`verification.py`) in the same transaction. Each call carries an
idempotency key: a retried request returns the entry the first one wrote, never a second one; the same key with
another request is refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime, timedelta

from flask import current_app, has_request_context, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from servicehub.auth import policy
from servicehub.auth.audit import record_event
from servicehub.auth.permissions import Principal, Role
from servicehub.database import commit_keeping_loaded, paginate, utcnow
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.extensions import db
from servicehub.registry import rules, scope
from servicehub.registry.models import Organisation
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.scheduling.travel import haversine_m
from servicehub.timeutil import district_tz, local_midnight
from servicehub.visits import alerts as alerts_rules
from servicehub.visits import cards, confirmation, deliveries, exceptions, ledger, verification
from servicehub.visits.models import (
    Alert,
    AlertKind,
    ConfirmationCard,
    CorrectionReason,
    MissedReason,
    RecordKind,
    ServiceRecord,
)

CLOCK_SKEW = timedelta(minutes=5)  # a phone's clock may run this far ahead
OFFLINE_DAYS = 7  # records made offline are accepted this many days later


def _retrying(func):
    """Run a write again when a concurrent write took the same ledger sequence number."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(3):
            try:
                return func(*args, **kwargs)
            except IntegrityError:
                db.session.rollback()
                if attempt == 2:
                    raise Conflict(N_("The ledger was busy; try again."), code="ledger_busy") from None
        return None

    return wrapper


# --- the ledger ------------------------------------------------------------------------------------


def append_entry(organisation_id: int, visit: Visit | None = None, *, as_recorded: exceptions.Entry | None = None,
                 **fields) -> ServiceRecord:
    """Add an entry at the end of the organisation's chain (inside the caller's transaction), and bring the visit's
    delivery in force and its exceptions up to date. `visit`: the entry's visit, loaded and locked by the caller,
    kept on the entry so that presenting the entry reads it no more. `as_recorded`: the entry as the rules see it
    (`_as_recorded`): the visit's exception codes once it is written are added to its flags — the record says
    itself, under its hash, what was wrong with it when it was made — and, unless it waits for an approval, the
    same evaluation is what the queue records."""
    # PostgreSQL: one writer per organisation's chain at a time. SQLite serialises writers anyway; the
    # unique (organisation, sequence) constraint catches any race either way.
    db.session.execute(select(Organisation.id).where(Organisation.id == organisation_id).with_for_update())
    last = db.session.execute(
        select(ServiceRecord.sequence, ServiceRecord.hash).where(ServiceRecord.organisation_id == organisation_id)
        .order_by(ServiceRecord.sequence.desc()).limit(1)
    ).first()
    evaluation = None
    if as_recorded is not None:
        visit_id = fields["visit_id"]
        evaluation = verification.evaluate(db.session, [visit_id], {visit_id: [as_recorded]})
        fields["flags"] = [*fields.get("flags", ()), *exceptions.codes_of(evaluation.found[visit_id])]
    previous = last.hash if last else ledger.GENESIS
    values = {"tasks": [], "confirmation": {}, "notes": "", "outcome_reason": "", "flags": [], "reason_code": "",
              **fields, "organisation_id": organisation_id, "sequence": (last.sequence if last else 0) + 1,
              "received_at": utcnow(), "prev_hash": previous}
    for name in ("lat", "lon"):
        if values.get(name) is not None:
            values[name] = round(values[name], 7)
    values["hash"] = ledger.record_hash(values, previous)
    record = ServiceRecord(**values)
    if visit is not None:
        set_committed_value(record, "visit", visit)
    db.session.add(record)
    db.session.flush()
    if record.kind in deliveries.DELIVERY_KINDS:
        deliveries.refresh_deliveries(db.session, [record.visit_id])
    if evaluation is not None and not any(flag in ledger.PENDING for flag in record.flags):
        verification.record(db.session, evaluation)
    else:  # written as if in force, it waits for an approval: the queue sees it as it is
        verification.refresh_exceptions(db.session, [record.visit_id])
    return record


def _request_hash(kind: str, target: int, data: dict) -> str:
    """A fingerprint of a request: what it does, to what, with which values."""
    text = json.dumps({"kind": kind, "target": target, "data": data}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _replayed(key: str, principal: Principal, kind: str, request_hash: str, visit_id: int | None = None,
              refers_to_id: int | None = None) -> ServiceRecord | None:
    """The entry an earlier request with this idempotency key wrote (the same request retried), if any; a key
    used for another request, or for the same one with another body, is refused (409)."""
    earlier = db.session.scalar(select(ServiceRecord).where(ServiceRecord.idempotency_key == key))
    if earlier is None:
        return None
    same = (earlier.kind == kind and earlier.recorded_by_id == principal.user_id
            and (visit_id is None or earlier.visit_id == visit_id)
            and (refers_to_id is None or earlier.refers_to_id == refers_to_id))
    if not same:
        raise Conflict(N_("This idempotency key was used for another request."),
                       {"idempotency_key": ["Already used for another request."]}, code="idempotency_key_reused")
    if earlier.request_hash is not None and earlier.request_hash != request_hash:
        raise Conflict(N_("This idempotency key was used for the same request with other values."),
                       {"idempotency_key": ["Already used with another body."]}, code="idempotency_key_reused")
    return earlier


def verify_ledgers(organisation_id: int | None = None, keep: dict[int, set[int]] | None = None) -> list[dict]:
    """Recompute every organisation's chain: records counted, and the first broken link if any; with `keep`, the
    hashes of the records at those sequences too (by organisation), for checkpoints to compare."""
    stmt = select(Organisation.id).order_by(Organisation.id)
    if organisation_id is not None:
        stmt = stmt.where(Organisation.id == organisation_id)
    results = []
    columns = [ServiceRecord.__table__.c[name] for name in (*ledger.HASHED_FIELDS, "id", "prev_hash", "hash")]
    for org_id in db.session.scalars(stmt):
        rows = db.session.execute(select(*columns).where(ServiceRecord.organisation_id == org_id)
                                  .order_by(ServiceRecord.sequence)).mappings().all()
        broken = ledger.first_broken_link(org_id, rows)
        wanted = (keep or {}).get(org_id, set())
        results.append({"organisation_id": org_id, "records": len(rows), "ok": broken is None, "broken": broken,
                        "hashes": {row["sequence"]: row["hash"] for row in rows if row["sequence"] in wanted}})
    return results


# --- who records what --------------------------------------------------------------------------------


def _visit_for_recording(principal: Principal, visit_id: int) -> Visit:
    """The visit, if the caller may record it: its own caregiver, or its organisation's provider admin."""
    visit = db.session.scalar(select(Visit).options(joinedload(Visit.recipient, innerjoin=True),
                                                    joinedload(Visit.service_type, innerjoin=True))
                              .where(Visit.id == visit_id).with_for_update(of=Visit))
    if visit is None:
        raise NotFound(N_("No such visit."))
    if policy.scope_of(principal, policy.Resource.RECORDS, policy.Action.WRITE) is policy.Scope.NONE:
        raise PermissionDenied(N_("Only the visit's caregiver or its organisation records it."))
    if not policy.allows(principal, policy.Resource.RECORDS, policy.Action.WRITE, organisation_id=visit.organisation_id,
                         worker_id=visit.worker_id):
        raise NotFound(N_("No such visit."))
    return visit


def _visit_or_earlier(principal: Principal, visit_id: int, key: str, kind: str,
                      request_hash: str) -> tuple[Visit, ServiceRecord | None]:
    """The visit, locked for recording, and the record an earlier request with this key wrote, if any. The key
    is looked up once the lock is held, so a retry running beside its original waits for it and returns its
    record instead of refusing the visit's new status."""
    visit = _visit_for_recording(principal, visit_id)
    return visit, _replayed(key, principal, kind, request_hash, visit_id)


def _event_time(at: datetime | None, visit: Visit) -> datetime:
    """When it happened: the phone's time (offline records keep their real time), checked for sense."""
    now = utcnow()
    if at is None:
        if now.astimezone(district_tz()).date() != visit.service_date:
            raise ValidationFailed(N_("The visit is not today."), {"at": ["The visit is on another day."]})
        return now
    if at > now + CLOCK_SKEW:
        raise ValidationFailed(N_("The time is in the future."), {"at": ["Later than now."]})
    if at < now - timedelta(days=OFFLINE_DAYS):
        raise ValidationFailed(N_("Records older than %(days)d days are not accepted.", days=OFFLINE_DAYS),
                               {"at": [f"More than {OFFLINE_DAYS} days ago."]})
    if at.astimezone(district_tz()).date() != visit.service_date:
        raise ValidationFailed(N_("The time is not on the day of the visit."), {"at": ["Not on the visit's day."]})
    return at


def _check_place(lat: float, lon: float) -> None:
    box = rules.BoundingBox.parse(current_app.config["SERVICEHUB_DISTRICT_BBOX"])
    problems = rules.coordinates_problems(lat, lon, box)
    if problems:
        raise ValidationFailed(N_("The location is outside the district."), problems)


def _distance_m(visit: Visit, lat: float, lon: float) -> float:
    return round(haversine_m((lat, lon), (visit.recipient.lat, visit.recipient.lon)), 1)


def _check_tasks(visit: Visit, tasks: list[str]) -> list[str]:
    """The tasks done, each once, in order; every one must be on the service's checklist."""
    checklist = {item["code"] for item in visit.service_type.checklist or []}
    done = sorted(set(tasks))
    unknown = sorted(set(done) - checklist)
    if unknown:
        raise ValidationFailed(N_("Tasks not on this service's checklist."),
                               {"tasks": [f"Not on the checklist: {', '.join(unknown)}."]})
    return done


def _last(visit_id: int, kind: RecordKind) -> ServiceRecord | None:
    return db.session.scalar(select(ServiceRecord).where(ServiceRecord.visit_id == visit_id,
                                                         ServiceRecord.kind == kind)
                             .order_by(ServiceRecord.sequence.desc()).limit(1))


def _common(visit: Visit, principal: Principal) -> dict:
    return {"visit_id": visit.id, "recipient_id": visit.recipient_id, "worker_id": visit.worker_id,
            "service_type_id": visit.service_type_id, "service_date": visit.service_date,
            "recorded_by_id": principal.user_id, "recorded_by": principal.username}


def _as_recorded(principal: Principal, visit_worker: int | None, **entry) -> exceptions.Entry:
    """An entry about to be appended, as the exception rules see it."""
    return exceptions.Entry(id=0, received_at=utcnow(), recorded_by=principal.username,
                            by_worker=principal.worker_id is not None and principal.worker_id == visit_worker, **entry)


# --- check-in, check-out, outcomes -------------------------------------------------------------------


@_retrying
def check_in(principal: Principal, visit_id: int, key: str, lat: float, lon: float,
             at: datetime | None = None) -> ServiceRecord:
    """The caregiver is at the door: where and when. Anything the rules find (far from the address, late, made
    from an office account) is flagged and goes to the exception queue."""
    request_hash = _request_hash(RecordKind.CHECK_IN, visit_id, {"lat": lat, "lon": lon, "at": at})
    visit, earlier = _visit_or_earlier(principal, visit_id, key, RecordKind.CHECK_IN, request_hash)
    if earlier is not None:
        return earlier
    if visit.status != VisitStatus.PUBLISHED:
        raise Conflict(N_("Only a published visit can be started; this one is %(status)s.", status=visit.status),
                       {"status": [visit.status]}, code="not_startable")
    _check_place(lat, lon)
    started = _event_time(at, visit)
    distance = _distance_m(visit, lat, lon)
    visit.status = VisitStatus.IN_PROGRESS.value
    as_recorded = _as_recorded(principal, visit.worker_id, kind=RecordKind.CHECK_IN.value, started_at=started,
                               lat=round(lat, 7), lon=round(lon, 7), distance_m=distance)
    record = append_entry(visit.organisation_id, kind=RecordKind.CHECK_IN.value, started_at=started, lat=lat, lon=lon,
                          distance_m=distance, device_time=at, idempotency_key=key, request_hash=request_hash,
                          visit=visit, as_recorded=as_recorded, **_common(visit, principal))
    commit_keeping_loaded(db.session)
    return record


@_retrying
def check_out(principal: Principal, visit_id: int, key: str, data: dict) -> ServiceRecord:
    """The service as delivered: the six facts of visit verification (the check-out's own position), tasks, the
    recipient's confirmation (a one-time code or a signature) and satisfaction. A wrong, reused or expired code
    is refused and logged; the visit's tries run out after a few."""
    request_hash = _request_hash(RecordKind.DELIVERY, visit_id, data)
    visit, earlier = _visit_or_earlier(principal, visit_id, key, RecordKind.DELIVERY, request_hash)
    if earlier is not None:
        return earlier
    if visit.status != VisitStatus.IN_PROGRESS:
        raise Conflict(N_("Check in first; the visit is %(status)s.", status=visit.status), {"status": [visit.status]},
                       code="not_checked_in")
    arrival = _last(visit.id, RecordKind.CHECK_IN)
    _check_place(data["lat"], data["lon"])
    ended = _event_time(data.get("at"), visit)
    if ended < arrival.started_at:
        raise ValidationFailed(N_("The check-out is before the check-in."), {"at": ["Before the check-in."]})
    tasks = _check_tasks(visit, data.get("tasks", []))
    confirmed = _confirmation(principal, visit, data, ended)
    distance = _distance_m(visit, data["lat"], data["lon"])
    visit.status = VisitStatus.COMPLETED.value
    as_recorded = _as_recorded(principal, visit.worker_id, kind=RecordKind.DELIVERY.value,
                               started_at=arrival.started_at, ended_at=ended, lat=round(data["lat"], 7),
                               lon=round(data["lon"], 7), distance_m=distance, confirmation=confirmed["method"],
                               tasks=len(tasks), refers_to_id=arrival.id)
    record = append_entry(visit.organisation_id, kind=RecordKind.DELIVERY.value, started_at=arrival.started_at,
                          ended_at=ended, lat=data["lat"], lon=data["lon"], distance_m=distance, tasks=tasks,
                          confirmation=confirmed, satisfaction=data.get("satisfaction"), notes=data.get("notes", ""),
                          refers_to_id=arrival.id, device_time=data.get("at"), idempotency_key=key,
                          request_hash=request_hash, visit=visit, as_recorded=as_recorded, **_common(visit, principal))
    commit_keeping_loaded(db.session)
    return record


def _confirmation(principal: Principal, visit: Visit, data: dict, moment: datetime) -> dict:
    """The recipient's confirmation as the delivery records it. A one-time code is checked against the recipient's
    card (and spent, in the caller's transaction); a refused one is logged and refused. A signature must be a
    real image."""
    method = data.get("confirmation_method", "none")
    if method == "code":
        code = data.get("confirmation_code") or ""
        outcome = cards.spend_code(visit, code, moment)
        if isinstance(outcome, confirmation.Refused):
            _refuse_code(principal, visit.id, outcome.outcome)
        return {"method": "code", **outcome}
    if method == "signature":
        problem = confirmation.signature_problem(data.get("signature") or "")
        if problem:
            raise ValidationFailed(N_("The signature does not count: %(problem)s", problem=problem),
                                   {"signature": [problem]})
        return {"method": "signature", "signature": data["signature"]}
    return {"method": "none"}


REFUSED_CODE = {
    "wrong": (N_("The confirmation code is wrong."), "Wrong code."),
    "expired": (N_("The confirmation code has expired: ask for the one shown now."), "Expired code."),
    "reused": (N_("The confirmation code was already used."), "Code already used."),
    "no_card": (N_("The recipient has no confirmation card: print one, or confirm with a signature."),
                "The recipient has no confirmation card."),
}


def _refuse_code(principal: Principal, visit_id: int, outcome: str) -> None:
    """Refuse a confirmation code: nothing of the check-out is written, but the try is, with who made it and
    from where; the visit's last allowed try flags it (`code_failed`) and alerts its organisation."""
    db.session.rollback()
    ip = (request.remote_addr or "") if has_request_context() else ""
    tries = cards.log_refusal(visit_id, outcome, principal, ip)
    limit = current_app.config["SERVICEHUB_CODE_TRIES"]
    if outcome == "locked":
        db.session.commit()
        raise Conflict(N_("Too many wrong codes for this visit: confirm with a signature, or record it without "
                          "confirmation."), {"confirmation_code": [f"{limit} wrong codes tried: no more are taken."]},
                       code="code_locked")
    if tries >= limit:
        visit = db.session.scalar(select(Visit).options(joinedload(Visit.recipient), joinedload(Visit.service_type))
                                  .where(Visit.id == visit_id))
        verification.refresh_exceptions(db.session, [visit_id], by=principal.username)
        raise_alert(AlertKind.CODE_FAILED, f"code_failed:{visit_id}",
                    f"{visit.recipient.name}: {tries} wrong confirmation codes for {visit.service_type.name_zh} on "
                    f"{visit.service_date}.", visit, details={"tries": tries, "by": principal.username})
    db.session.commit()
    message, field = REFUSED_CODE[outcome]
    raise ValidationFailed(message, {"confirmation_code": [f"{field} {max(0, limit - tries)} tries left."]},
                           code=f"code_{outcome}")


@_retrying
def record_outcome(principal: Principal, visit_id: int, key: str, outcome: str, reason: str, notes: str = "",
                   at: datetime | None = None) -> ServiceRecord:
    """A visit that did not happen (missed, with the reason) or was called off before its window opened
    (cancelled); once the window has opened a visit that does not happen is missed."""
    kind = RecordKind(outcome)
    request_hash = _request_hash(kind, visit_id, {"reason": reason, "notes": notes, "at": at})
    visit, earlier = _visit_or_earlier(principal, visit_id, key, kind, request_hash)
    if earlier is not None:
        return earlier
    allowed = {RecordKind.MISSED: (VisitStatus.PUBLISHED, VisitStatus.IN_PROGRESS),
               RecordKind.CANCELLED: (VisitStatus.PLANNED, VisitStatus.PUBLISHED)}[kind]
    if visit.status not in allowed:
        raise Conflict(N_("A %(status)s visit cannot be recorded as %(outcome)s.", status=visit.status,
                          outcome=kind.value), {"status": [visit.status]}, code="wrong_status")
    if kind == RecordKind.MISSED and reason not in {r.value for r in MissedReason}:
        raise ValidationFailed(N_("Say why the visit was missed."), {"reason": ["Unknown reason."]})
    opens, _ = _window(visit)
    if kind == RecordKind.CANCELLED and utcnow() >= opens:
        raise Conflict(N_("The visit's window has opened: record it as missed, with the reason."),
                       {"outcome": [f"The window opened at {opens.astimezone(district_tz()):%H:%M}; "
                                    "a cancellation is made before it."]}, code="window_opened")
    # A cancellation is made in advance, on any day before the visit; a miss on the visit's day.
    when = _event_time(at, visit) if kind == RecordKind.MISSED else utcnow()
    visit.status = VisitStatus.MISSED.value if kind == RecordKind.MISSED else VisitStatus.CANCELLED.value
    if kind == RecordKind.CANCELLED:
        visit.cancel_reason = reason
    record = append_entry(visit.organisation_id, kind=kind.value, outcome_reason=reason, notes=notes, ended_at=when,
                          device_time=at, idempotency_key=key, request_hash=request_hash, visit=visit,
                          **_common(visit, principal))
    commit_keeping_loaded(db.session)
    return record


# --- corrections ---------------------------------------------------------------------------------------


def _record_for(principal: Principal, record_id: int) -> ServiceRecord:
    record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.id == record_id, records_visible(principal)))
    if record is None:
        raise NotFound(N_("No such service record."))
    return record


def _check_bounds(visit: Visit, started: datetime, ended: datetime) -> None:
    """A correction keeps the visit on its day (give or take the margin) and no longer than its service allows."""
    margin = timedelta(hours=current_app.config["SERVICEHUB_CORRECTION_MARGIN_HOURS"])
    first, last = local_midnight(visit.service_date) - margin, local_midnight(visit.service_date) + timedelta(days=1) + margin
    problems = {}
    for name, moment in (("started_at", started), ("ended_at", ended)):
        if not first <= moment <= last:
            problems[name] = [f"Outside the visit's day {visit.service_date} "
                              f"(give or take {margin.total_seconds() / 3600:g} h)."]
    if problems:
        raise ValidationFailed(N_("A correction keeps the visit on its day."), problems, code="outside_day")
    if ended <= started:
        raise ValidationFailed(N_("The service ends before it starts."), {"ended_at": ["Not after started_at."]})
    longest = visit.service_type.max_duration_min
    if ended - started > timedelta(minutes=longest):
        raise ValidationFailed(N_("No %(service)s lasts longer than %(minutes)d minutes.",
                                  service=visit.service_type.name_zh, minutes=longest),
                               {"ended_at": [f"Longer than the {longest} minutes this service may last."]},
                               code="too_long")


@_retrying
def correct(principal: Principal, record_id: int, key: str, data: dict) -> ServiceRecord:
    """A new record replacing a delivery's facts, with who and why. Only the organisation corrects: a caregiver's
    change of times waits for the provider admin's approval, a correction of a frozen month for the bureau's;
    the times stay on the visit's day and within the service's longest stay; satisfaction is the recipient's and
    no one changes it. Every flag and exception is computed again."""
    request_hash = _request_hash(RecordKind.CORRECTION, record_id, data)
    if (earlier := _replayed(key, principal, RecordKind.CORRECTION, request_hash, refers_to_id=record_id)) is not None:
        return earlier
    original = _record_for(principal, record_id)
    if original.kind != RecordKind.DELIVERY:
        raise Conflict(N_("Only a delivery record can be corrected."), {"record_id": [original.kind]},
                       code="not_a_delivery")
    if principal.role not in (Role.CAREGIVER, Role.PROVIDER_ADMIN):
        raise PermissionDenied(N_("Only the organisation that delivered the service corrects its records."))
    if principal.role == Role.CAREGIVER and original.worker_id != principal.worker_id:
        raise NotFound(N_("No such service record."))
    if data.get("satisfaction") is not None:
        raise ValidationFailed(N_("Satisfaction is the recipient's: staff cannot change it."),
                               {"satisfaction": ["Not editable by staff."]}, code="satisfaction_not_editable")
    if data["reason_code"] not in {r.value for r in CorrectionReason} - {CorrectionReason.WRONG_SATISFACTION}:
        raise ValidationFailed(N_("Say why."), {"reason_code": ["Unknown reason."]})
    if not data.get("notes", "").strip():
        raise ValidationFailed(N_("Explain the correction."), {"notes": ["Required for a correction."]})
    visit = db.session.scalar(select(Visit).options(joinedload(Visit.service_type), joinedload(Visit.recipient))
                              .where(Visit.id == original.visit_id).with_for_update(of=Visit))
    if "tasks" in data:
        _check_tasks(visit, data["tasks"])
    current = effective_delivery(original.visit_id) or original
    started = data.get("started_at") or current.started_at
    ended = data.get("ended_at") or current.ended_at
    _check_bounds(visit, started, ended)
    retimed = (started, ended) != (current.started_at, current.ended_at)
    pending = []
    if retimed and principal.role == Role.CAREGIVER:
        pending.append("pending_approval")
    if verification.frozen_visits([visit.id]):
        pending.append("pending_bureau")
    tasks = sorted(set(data["tasks"])) if "tasks" in data else list(current.tasks)
    entry = {"kind": RecordKind.CORRECTION.value, "started_at": started, "ended_at": ended, "lat": current.lat,
             "lon": current.lon, "distance_m": current.distance_m, "refers_to_id": original.id,
             "confirmation": (current.confirmation or {}).get("method", "none"), "tasks": len(tasks),
             "reason_code": data["reason_code"], "notes": data["notes"].strip()}
    record = append_entry(original.organisation_id, kind=RecordKind.CORRECTION.value, visit_id=original.visit_id,
                          recipient_id=original.recipient_id, worker_id=original.worker_id,
                          service_type_id=original.service_type_id, service_date=original.service_date,
                          started_at=started, ended_at=ended, lat=current.lat, lon=current.lon,
                          distance_m=current.distance_m, tasks=tasks, confirmation=current.confirmation,
                          satisfaction=current.satisfaction, notes=data["notes"].strip(), flags=pending,
                          refers_to_id=original.id, reason_code=data["reason_code"], idempotency_key=key,
                          request_hash=request_hash, recorded_by_id=principal.user_id, recorded_by=principal.username,
                          as_recorded=_as_recorded(principal, visit.worker_id, **entry))  # codes as if in force
    record_event(db.session, "record_corrected", "service_records", original.id, correction_id=record.id,
                 reason=data["reason_code"], pending=pending)
    db.session.commit()
    return record


def approve_entry(principal: Principal, correction: ServiceRecord, whose: str, key: str,
                  request_hash: str | None = None) -> ServiceRecord:
    """Append the approval of a correction by its provider ('provider') or by the bureau ('bureau'), inside the
    caller's transaction."""
    return append_entry(correction.organisation_id, kind=RecordKind.APPROVAL.value, visit_id=correction.visit_id,
                        recipient_id=correction.recipient_id, worker_id=correction.worker_id,
                        service_type_id=correction.service_type_id, service_date=correction.service_date,
                        refers_to_id=correction.id, reason_code=whose, idempotency_key=key, request_hash=request_hash,
                        recorded_by_id=principal.user_id, recorded_by=principal.username)


@_retrying
def approve(principal: Principal, correction_id: int, key: str) -> ServiceRecord:
    """The provider admin approves a caregiver's correction of times: from now on it counts (or, in a frozen
    month, once the bureau approves it too)."""
    request_hash = _request_hash(RecordKind.APPROVAL, correction_id, {})
    if (earlier := _replayed(key, principal, RecordKind.APPROVAL, request_hash,
                             refers_to_id=correction_id)) is not None:
        return earlier
    if principal.role != Role.PROVIDER_ADMIN:
        raise PermissionDenied(N_("Only the organisation's provider admin approves corrections."))
    correction = _record_for(principal, correction_id)
    if correction.kind != RecordKind.CORRECTION or "pending_approval" not in correction.flags:
        raise Conflict(N_("Only a correction waiting for approval can be approved."), {"record_id": [correction.kind]},
                       code="not_pending")
    if db.session.scalar(select(ServiceRecord.id).where(ServiceRecord.kind == RecordKind.APPROVAL,
                                                        ServiceRecord.refers_to_id == correction.id,
                                                        ServiceRecord.reason_code.in_(("", "provider")))):
        raise Conflict(N_("This correction is already approved."), {"record_id": ["approved"]}, code="already_approved")
    # The latest correction in force counts: approving one that a later correction replaced would change nothing.
    later = db.session.scalar(select(ServiceRecord.id).where(
        ServiceRecord.visit_id == correction.visit_id, ServiceRecord.kind == RecordKind.CORRECTION,
        ServiceRecord.organisation_id == correction.organisation_id, ServiceRecord.sequence > correction.sequence)
        .limit(1))
    if later is not None:
        raise Conflict(N_("A later correction replaces this one: approve that one, or correct the record again."),
                       {"record_id": [f"Replaced by record {later}."]}, code="superseded")
    record = approve_entry(principal, correction, "provider", key, request_hash)
    db.session.commit()
    return record


# --- confirmation cards --------------------------------------------------------------------------------------


def issue_card(principal: Principal, recipient_id: int) -> tuple[ConfirmationCard, bytes]:
    """Print a new confirmation card for a recipient (the PDF, once: its codes are nowhere else to be read); the
    recipient's old card stops working at once. Audited; a card a provider prints — the first or a replacement —
    is reported to the managers, since the organisation is paid by the visits its codes confirm."""
    recipient = cards.may_issue(principal, recipient_id)
    card, replaced, secret = cards.new_card(recipient, principal)
    pdf = cards.card_pdf(recipient, card, secret, cards.issuer_name(principal))
    # The one time its secret and codes are read; the event says which card, never what is on it.
    record_event(db.session, "card_printed", "recipients", recipient.id, card_no=card.card_no, format="pdf",
                 printed_codes=card.printed_codes)
    if principal.is_provider:
        replaces = f", replacing #{replaced.card_no}" if replaced is not None else ""
        raise_alert(AlertKind.CARD_REISSUED, f"card:{recipient.id}:{card.card_no}",
                    f"{recipient.name}: confirmation card #{card.card_no} printed by {principal.username}{replaces}.",
                    organisation_id=principal.organisation_id, recipient_id=recipient.id, town_id=recipient.town_id,
                    details={"recipient": recipient.name, "card_no": card.card_no,
                             "replaced": replaced.card_no if replaced is not None else None, "by": principal.username})
    db.session.commit()
    return card, pdf


def list_cards(principal: Principal, recipient_id: int) -> list[ConfirmationCard]:
    """A recipient's confirmation cards, newest first: when and by whom each was issued, how much of it is used."""
    return cards.list_cards(principal, recipient_id)


def effective_delivery(visit_id: int) -> ServiceRecord | None:
    """What counts as delivered for a visit: its latest correction in force (every approval it waits for
    given), otherwise the original delivery; None if it was not delivered."""
    return ledger.effective_delivery(db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.visit_id == visit_id).order_by(ServiceRecord.sequence)))


# --- reading -------------------------------------------------------------------------------------------


def records_visible(principal: Principal):
    """Entries the caller may see: a provider its own organisation's, a caregiver their own, a town manager
    the town's recipients'."""
    return scope.visible(principal, policy.Resource.RECORDS, town=scope.in_town(ServiceRecord.recipient_id),
                         organisation=ServiceRecord.organisation_id, worker=ServiceRecord.worker_id)


def list_records(principal: Principal, *, visit_id=None, organisation_id=None, kind=None, date_from=None,
                 date_to=None, page: int = 1, page_size: int = 50):
    """Ledger entries the caller may see, in ledger order."""
    stmt = select(ServiceRecord).where(records_visible(principal))
    for column, value in ((ServiceRecord.visit_id, visit_id), (ServiceRecord.organisation_id, organisation_id),
                          (ServiceRecord.kind, kind)):
        if value is not None:
            stmt = stmt.where(column == value)
    if date_from is not None:
        stmt = stmt.where(ServiceRecord.service_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(ServiceRecord.service_date <= date_to)
    return paginate(db.session, stmt.order_by(ServiceRecord.organisation_id, ServiceRecord.sequence), page, page_size)


def get_record(principal: Principal, record_id: int) -> ServiceRecord:
    """One ledger entry."""
    return _record_for(principal, record_id)


# --- late and missed visits, and their alerts -----------------------------------------------------------

SYSTEM = Principal(user_id=None, username="system", role=Role.ADMIN)
LOOKBACK_DAYS = 7  # a detection run also catches what it missed while the scheduler was down


def _window(visit: Visit) -> tuple[datetime, datetime]:
    midnight = local_midnight(visit.service_date)
    opens = midnight + timedelta(hours=visit.window_start.hour, minutes=visit.window_start.minute)
    closes = midnight + timedelta(hours=visit.window_end.hour, minutes=visit.window_end.minute)
    return opens, closes


def raise_alert(kind: AlertKind, key: str, message: str, visit: Visit | None = None, **fields) -> Alert | None:
    """Raise an alert once: a second raise of the same key is a no-op (None). `details` carry the facts the
    pages word in the reader's language; `message` is the same in words, for the API and the logs."""
    if db.session.scalar(select(Alert.id).where(Alert.dedupe_key == key)):
        return None
    if visit is not None:
        window = f"{visit.window_start:%H:%M}–{visit.window_end:%H:%M}"
        fields = {"organisation_id": visit.organisation_id, "recipient_id": visit.recipient_id, "visit_id": visit.id,
                  "town_id": visit.recipient.town_id, **fields,
                  "details": {"recipient": visit.recipient.name, "service_zh": visit.service_type.name_zh,
                              "service_en": visit.service_type.name_en, "date": visit.service_date.isoformat(),
                              "window": window, **fields.get("details", {})}}
    alert = Alert(kind=kind.value, dedupe_key=key, message=message, **fields)
    db.session.add(alert)
    return alert


def detect_late_and_missed(now: datetime | None = None) -> dict[str, int]:
    """Raise late alerts to providers; mark visits not started by the end of their window missed (a ledger
    entry by 'system') and alert the managers; escalate three misses in a row to the town. Idempotent."""
    now = now or utcnow()
    today = now.astimezone(district_tz()).date()
    grace = alerts_rules.Grace(current_app.config["SERVICEHUB_LATE_MINUTES"],
                               current_app.config["SERVICEHUB_LATE_MINUTES_MEAL"])
    visits = db.session.scalars(
        select(Visit).options(selectinload(Visit.recipient), selectinload(Visit.service_type))
        .where(Visit.service_date.between(today - timedelta(days=LOOKBACK_DAYS), today),
               Visit.status.in_([VisitStatus.PLANNED, VisitStatus.PUBLISHED]))
    ).all()
    counts = {"late": 0, "missed": 0, "escalated": 0}
    for visit in visits:
        opens, closes = _window(visit)
        state = alerts_rules.VisitState(visit.id, visit.recipient_id, opens, closes, visit.status,
                                        meal=visit.service_type.unit == "meal", planned_start=visit.planned_start)
        if alerts_rules.is_missed(state, now):
            _mark_missed(visit, closes)
            counts["missed"] += 1
            raise_alert(AlertKind.MISSED, f"missed:{visit.id}",
                         f"{visit.recipient.name}: {visit.service_type.name_zh} on {visit.service_date} was not "
                         f"done by {visit.window_end:%H:%M}.", visit, raised_at=now)
            if _escalate_if_streak(visit, now):
                counts["escalated"] += 1
        elif visit.status == VisitStatus.PUBLISHED and alerts_rules.is_late(state, now, grace) and raise_alert(
                AlertKind.LATE, f"late:{visit.id}", f"{visit.recipient.name}: {visit.service_type.name_zh} has not "
                f"started ({visit.window_start:%H:%M}–{visit.window_end:%H:%M}).", visit, raised_at=now):
            counts["late"] += 1
    db.session.commit()
    return counts


def _mark_missed(visit: Visit, closes: datetime) -> None:
    visit.status = VisitStatus.MISSED.value
    append_entry(visit.organisation_id, kind=RecordKind.MISSED.value, outcome_reason=MissedReason.NOT_DONE.value,
                 ended_at=closes, idempotency_key=f"system-missed-{visit.id}", **_common(visit, SYSTEM))


def _escalate_if_streak(visit: Visit, now: datetime) -> bool:
    outcomes = db.session.scalars(
        select(Visit.status).where(Visit.recipient_id == visit.recipient_id,
                                   Visit.status.in_([VisitStatus.COMPLETED, VisitStatus.MISSED]))
        .order_by(Visit.service_date.desc(), Visit.window_start.desc(), Visit.id.desc()).limit(3)
    ).all()
    if not alerts_rules.missed_streak(list(reversed(outcomes))):
        return False
    return raise_alert(AlertKind.MISSED_STREAK, f"streak:{visit.recipient_id}:{visit.id}",
                        f"{visit.recipient.name}: three visits in a row were missed (latest {visit.service_date}).",
                        visit, raised_at=now) is not None


CONTRACT_KINDS = (AlertKind.LINE_80, AlertKind.LINE_100, AlertKind.BUDGET_80, AlertKind.BUDGET_100,
                  AlertKind.CONTRACT_ENDING)
AHEAD_DAYS = 30


def delivered_units_by_line() -> dict[int, float]:
    """Contract line id -> units delivered in the contract's period (completed visits × the units one delivery
    uses)."""
    from servicehub.catalog.models import ServiceType
    from servicehub.matching.models import Referral
    from servicehub.registry.models import Contract
    from servicehub.registry.rules import units_per_delivery

    rows = db.session.execute(
        select(Referral.contract_line_id, ServiceType.unit, Visit.duration_min, func.count(Visit.id))
        .join(Referral, Referral.id == Visit.referral_id).join(ServiceType, ServiceType.id == Visit.service_type_id)
        .join(Contract, Contract.id == Referral.contract_id)
        .where(Visit.status == VisitStatus.COMPLETED, Visit.service_date.between(Contract.start_date, Contract.end_date))
        .group_by(Referral.contract_line_id, ServiceType.unit, Visit.duration_min)
    ).all()
    delivered: dict[int, float] = {}
    for line_id, unit, minutes, count in rows:
        delivered[line_id] = delivered.get(line_id, 0) + count * units_per_delivery(unit, minutes)
    return delivered


def daily_contract_alerts(today=None) -> dict[str, int]:
    """Lines past 80% and 100% of their quantity, contracts past 80% and 100% of their budget, contracts
    ending within 30 days, certificates expiring within 30 days: each alert raised once."""
    from servicehub.registry.models import Contract, ContractStatus, Worker, WorkerQualification

    today = today or utcnow().astimezone(district_tz()).date()
    delivered = delivered_units_by_line()
    raised = dict.fromkeys(("lines", "budgets", "ending", "qualifications"), 0)
    contracts = db.session.scalars(select(Contract).options(selectinload(Contract.lines))
                                   .where(Contract.status == ContractStatus.ACTIVE)).all()
    for contract in contracts:
        spent = 0.0
        for line in contract.lines:
            units = delivered.get(line.id, 0.0)
            spent += units * line.unit_price_fen
            for kind, share in ((AlertKind.LINE_100, 1.0), (AlertKind.LINE_80, 0.8)):
                if units >= share * line.contracted_quantity:
                    raised["lines"] += raise_alert(
                        kind, f"{kind.value}:{line.id}", f"{contract.code} {line.service_type.code}: {units:g} of "
                        f"{line.contracted_quantity} contracted units delivered.", organisation_id=contract.organisation_id,
                        contract_id=contract.id, details={
                            "contract": contract.code, "service_zh": line.service_type.name_zh,
                            "service_en": line.service_type.name_en, "delivered": round(units, 1),
                            "contracted": line.contracted_quantity}) is not None
                    break
        for kind, share in ((AlertKind.BUDGET_100, 1.0), (AlertKind.BUDGET_80, 0.8)):
            if contract.budget_fen and spent >= share * contract.budget_fen:
                raised["budgets"] += raise_alert(
                    kind, f"{kind.value}:{contract.id}", f"{contract.code}: ¥{spent / 100:,.2f} of the "
                    f"¥{contract.budget_fen / 100:,.2f} budget delivered.", organisation_id=contract.organisation_id,
                    contract_id=contract.id, details={"contract": contract.code, "spent_fen": round(spent),
                                                      "budget_fen": contract.budget_fen}) is not None
                break
        if today <= contract.end_date <= today + timedelta(days=AHEAD_DAYS):
            raised["ending"] += raise_alert(
                AlertKind.CONTRACT_ENDING, f"ending:{contract.id}:{contract.end_date}",
                f"{contract.code} ends on {contract.end_date}.", organisation_id=contract.organisation_id,
                contract_id=contract.id, details={"contract": contract.code,
                                                  "end_date": contract.end_date.isoformat()}) is not None
    expiring = db.session.execute(
        select(WorkerQualification, Worker).join(Worker, Worker.id == WorkerQualification.worker_id)
        .where(Worker.active.is_(True), WorkerQualification.expires_on.between(today, today + timedelta(days=AHEAD_DAYS)))
    ).all()
    for qualification, worker in expiring:
        raised["qualifications"] += raise_alert(
            AlertKind.QUALIFICATION_EXPIRING, f"qualification:{qualification.id}:{qualification.expires_on}",
            f"{worker.name}: {qualification.qualification.code} expires on {qualification.expires_on}.",
            organisation_id=worker.organisation_id, worker_id=worker.id,
            details={"worker": worker.name, "qualification_zh": qualification.qualification.name_zh,
                     "qualification_en": qualification.qualification.name_en,
                     "expires_on": qualification.expires_on.isoformat()}) is not None
    db.session.commit()
    return raised


def alerts_visible(principal: Principal):
    """Alerts the caller may see: a provider its organisation's late and missed visits and visits whose codes
    failed; a town manager the town's missed visits, escalations, overdue applications, documents due and
    confirmation cards reissued; district managers, admins and auditors all."""
    seen = scope.visible(principal, policy.Resource.ALERTS, town=Alert.town_id, organisation=Alert.organisation_id)
    if principal.role == Role.PROVIDER_ADMIN:
        return seen & Alert.kind.in_(
            [AlertKind.LATE, AlertKind.MISSED, AlertKind.QUALIFICATION_EXPIRING, AlertKind.CODE_FAILED, *CONTRACT_KINDS])
    if principal.role == Role.MANAGER:
        town_kinds = [AlertKind.MISSED, AlertKind.MISSED_STREAK, AlertKind.APPLICATION_OVERDUE, AlertKind.DOCUMENTS_DUE,
                      AlertKind.CARD_REISSUED]
        return seen & Alert.kind.in_(town_kinds if principal.town_id is not None else [*town_kinds, *CONTRACT_KINDS])
    return seen


def list_alerts(principal: Principal, *, open_only: bool = True, kind: str | None = None, page: int = 1,
                page_size: int = 50):
    """The caller's alert inbox, newest first."""
    stmt = (select(Alert).options(selectinload(Alert.visit)).where(alerts_visible(principal))
            .order_by(Alert.raised_at.desc(), Alert.id.desc()))
    if open_only:
        stmt = stmt.where(Alert.acknowledged_at.is_(None))
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    return paginate(db.session, stmt, page, page_size)


def open_alert_count(principal: Principal) -> int:
    """How many alerts in the caller's inbox wait for someone."""
    return db.session.scalar(select(func.count(Alert.id)).where(alerts_visible(principal),
                                                                Alert.acknowledged_at.is_(None))) or 0


def acknowledge(principal: Principal, alert_id: int, note: str) -> Alert:
    """Acknowledge an alert with a note (it stays in the inbox's history)."""
    alert = db.session.scalar(select(Alert).where(Alert.id == alert_id, alerts_visible(principal)).with_for_update())
    if alert is None:
        raise NotFound(N_("No such alert."))
    if principal.role == Role.AUDITOR:
        raise PermissionDenied(N_("Auditors read alerts; they do not acknowledge them."))
    if alert.acknowledged_at is not None:
        raise Conflict(N_("Already acknowledged by %(name)s.", name=alert.acknowledged_by), {"status": ["acknowledged"]},
                       code="already_acknowledged")
    if not note.strip():
        raise ValidationFailed(N_("Say what was done."), {"note": ["Required."]})
    alert.acknowledged_at, alert.acknowledged_by_id = utcnow(), principal.user_id
    alert.acknowledged_by, alert.note = principal.username, note.strip()
    record_event(db.session, "alert_acknowledged", "alerts", alert.id, note=alert.note)
    db.session.commit()
    return alert
