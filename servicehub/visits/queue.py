"""The exception queue's use cases: who sees which exceptions, the provider's explanation (a reason code and a
note), and the bureau's decision (approve or reject). A visit is paid only once each of its exceptions is approved
(`servicehub.evaluation.settlement`). The rules that raise them are `exceptions.py`; keeping them current is
`verification.py`."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from servicehub.auth.permissions import Principal, Role
from servicehub.auth.policy import Resource
from servicehub.database import paginate, utcnow
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.extensions import db
from servicehub.registry.scope import visible
from servicehub.scheduling.models import Visit
from servicehub.timeutil import month_days
from servicehub.visits import services
from servicehub.visits.exceptions import Code
from servicehub.visits.models import (
    UNDECIDED,
    EvvException,
    ExceptionStatus,
    ExceptionStep,
    RecordKind,
    ResolutionReason,
    ServiceRecord,
)

# What the queue lists by default: the exceptions waiting for someone.
STATUS_FILTERS = {
    "undecided": tuple(UNDECIDED),
    "to_explain": (ExceptionStatus.OPEN, ExceptionStatus.REJECTED),  # the provider's to explain (again)
    "open": (ExceptionStatus.OPEN,),
    "resolved": (ExceptionStatus.RESOLVED,),
    "approved": (ExceptionStatus.APPROVED,),
    "rejected": (ExceptionStatus.REJECTED,),
    "cleared": (ExceptionStatus.CLEARED,),
    "waived": (ExceptionStatus.WAIVED,),
    "all": tuple(ExceptionStatus),
}
RESOLVABLE = (ExceptionStatus.OPEN, ExceptionStatus.RESOLVED, ExceptionStatus.REJECTED)


def exceptions_visible(principal: Principal):
    """Exceptions the caller may see: a provider its own organisation's, a town manager the town's recipients',
    the district's managers, admins and auditors all of them."""
    return visible(principal, Resource.EXCEPTIONS, town=EvvException.town_id, organisation=EvvException.organisation_id)


def _filtered(principal: Principal, *, status: str = "undecided", code: str | None = None,
              organisation_id: int | None = None, worker_id: int | None = None, month: str | None = None,
              first: date | None = None, last: date | None = None):
    if month:
        first, last = month_days(month)
    conditions = [exceptions_visible(principal), EvvException.status.in_(STATUS_FILTERS[status])]
    for column, value in ((EvvException.code, code), (EvvException.organisation_id, organisation_id),
                          (EvvException.worker_id, worker_id)):
        if value is not None:
            conditions.append(column == value)
    if first is not None:
        conditions.append(EvvException.service_date >= first)
    if last is not None:
        conditions.append(EvvException.service_date <= last)
    return conditions


def list_exceptions(principal: Principal, *, page: int = 1, page_size: int = 50, **filters):
    """The queue: the caller's exceptions under the filters (status, code, organisation, worker, days), the oldest
    visit first (it has waited longest)."""
    stmt = (select(EvvException).options(joinedload(EvvException.visit).joinedload(Visit.service_type),
                                         joinedload(EvvException.recipient), joinedload(EvvException.worker),
                                         joinedload(EvvException.organisation))
            .where(*_filtered(principal, **filters))
            .order_by(EvvException.service_date, EvvException.visit_id, EvvException.id))
    return paginate(db.session, stmt, page, page_size)


def counts_by_code(principal: Principal, **filters) -> dict[str, dict[str, int]]:
    """How many exceptions of each code the caller sees under the filters, by status: {code: {status: n}}."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for code, status, n in db.session.execute(
            select(EvvException.code, EvvException.status, func.count()).where(*_filtered(principal, **filters))
            .group_by(EvvException.code, EvvException.status)).all():
        counts[code][status] = n
    return {code.value: counts[code.value] for code in Code if code.value in counts}


def get_exception(principal: Principal, exception_id: int, *, for_update: bool = False) -> EvvException:
    """One exception the caller may see, with its steps."""
    stmt = (select(EvvException).options(selectinload(EvvException.steps), joinedload(EvvException.visit),
                                         joinedload(EvvException.recipient), joinedload(EvvException.worker))
            .where(EvvException.id == exception_id, exceptions_visible(principal)))
    found = db.session.scalar(stmt.with_for_update(of=EvvException) if for_update else stmt)
    if found is None:
        raise NotFound(N_("No such exception."))
    return found


def _step(exception: EvvException, principal: Principal, action: str, reason_code: str = "", note: str = "") -> None:
    db.session.add(ExceptionStep(exception_id=exception.id, action=action, status=exception.status,
                                 reason_code=reason_code, note=note, details=exception.details,
                                 by_id=principal.user_id, by=principal.username, at=utcnow()))


def _note(note: str, required: bool = True) -> str:
    note = (note or "").strip()
    if required and not note:
        raise ValidationFailed(N_("Say what happened."), {"note": ["Required."]})
    return note


# --- the provider explains -----------------------------------------------------------------------------------------


def _resolve(principal: Principal, exception_id: int, reason_code: str, note: str) -> EvvException:
    if principal.role != Role.PROVIDER_ADMIN:
        raise PermissionDenied(N_("Only the organisation's provider admin explains its exceptions."),
                               code="not_the_provider")
    if reason_code not in {r.value for r in ResolutionReason}:
        raise ValidationFailed(N_("Say why."), {"reason_code": ["Unknown reason."]})
    note = _note(note)
    exception = get_exception(principal, exception_id, for_update=True)
    if exception.status not in RESOLVABLE:
        raise Conflict(N_("This exception is no longer open: it is %(status)s.", status=exception.status),
                       {"status": [exception.status]}, code="not_open")
    if (exception.status, exception.reason_code, exception.resolution_note, exception.resolved_by) == \
            (ExceptionStatus.RESOLVED, reason_code, note, principal.username):
        return exception  # the same explanation again: nothing to add
    exception.status, exception.reason_code, exception.resolution_note = ExceptionStatus.RESOLVED.value, reason_code, note
    exception.resolved_by, exception.resolved_at = principal.username, utcnow()
    exception.decided_by, exception.decided_at, exception.decision_note = "", None, ""
    _step(exception, principal, "resolved", reason_code, note)
    return exception


def resolve(principal: Principal, exception_id: int, reason_code: str, note: str) -> EvvException:
    """The provider explains an exception (a reason code and a note); it then waits for the bureau."""
    exception = _resolve(principal, exception_id, reason_code, note)
    db.session.commit()
    return exception


def resolve_many(principal: Principal, exception_ids: list[int], reason_code: str, note: str) -> list[EvvException]:
    """The same explanation for several exceptions, all or none (one transaction)."""
    resolved = [_resolve(principal, exception_id, reason_code, note) for exception_id in dict.fromkeys(exception_ids)]
    db.session.commit()
    return resolved


# --- the bureau decides --------------------------------------------------------------------------------------------


def _decide(principal: Principal, exception_id: int, approve: bool, note: str) -> EvvException:
    if principal.is_provider:
        raise PermissionDenied(N_("An organisation cannot approve or reject its own exceptions: the bureau does."),
                               code="not_the_bureau")
    if principal.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied(N_("Only the district's or the town's managers decide exceptions."),
                               code="not_the_bureau")
    note = _note(note, required=not approve)
    exception = get_exception(principal, exception_id, for_update=True)
    wanted = ExceptionStatus.APPROVED if approve else ExceptionStatus.REJECTED
    if exception.status == wanted and exception.decided_by == principal.username:
        return exception  # the same decision again
    if exception.status != ExceptionStatus.RESOLVED:
        raise Conflict(N_("Only an exception the provider has explained can be decided; this one is %(status)s.",
                          status=exception.status), {"status": [exception.status]}, code="not_resolved")
    exception.status, exception.decision_note = wanted.value, note
    exception.decided_by, exception.decided_at = principal.username, utcnow()
    _step(exception, principal, wanted.value, note=note)
    if approve and exception.code == Code.FROZEN_MONTH:
        _approve_frozen_correction(principal, exception)
    return exception


def _approve_frozen_correction(principal: Principal, exception: EvvException) -> None:
    """The bureau's approval of a frozen month's correction is an entry of the ledger: from it on the correction
    counts (if nothing else waits)."""
    correction = db.session.get(ServiceRecord, exception.details["correction_id"])
    if correction is None or correction.kind != RecordKind.CORRECTION:
        raise Conflict(N_("The correction this exception is about is gone."), code="no_correction")
    services.approve_entry(principal, correction, "bureau", key=f"bureau-approval-{correction.id}")


def decide(principal: Principal, exception_id: int, approve: bool, note: str = "") -> EvvException:
    """The bureau approves an explained exception (the visit may be paid, if nothing else stands in the way) or
    rejects it (with a note; it is not paid unless the provider explains it again and it is approved)."""
    exception = _decide(principal, exception_id, approve, note)
    db.session.commit()
    return exception


def decide_many(principal: Principal, exception_ids: list[int], approve: bool, note: str = "") -> list[EvvException]:
    """The same decision for several exceptions, all or none (one transaction)."""
    decided = [_decide(principal, exception_id, approve, note) for exception_id in dict.fromkeys(exception_ids)]
    db.session.commit()
    return decided
