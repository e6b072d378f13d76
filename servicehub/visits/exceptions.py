"""Exceptions of electronic visit verification (EVV 异常): where a visit's record departs from its plan. Pure module.

A visit's facts come in as plain data (`VisitFacts`: the plan, the ledger entries, the worker's other visits that
day); `find_exceptions` returns every deviation as a `Finding` with a stable code and the numbers behind it. One
function per code, each with its own test (tests/visits/test_exceptions.py). The exception queue
(`servicehub.visits.verification`) keeps one row per visit and code, resolved by the provider and decided by the
bureau; billing (`servicehub.evaluation.settlement`) pays a visit only when each of its exceptions is approved.

The codes, and what each defends against, are described in docs/visits.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from servicehub.visits import ledger


class Code(enum.StrEnum):
    """A kind of deviation. Stable: stored, filtered on and counted by these values."""

    LATE_START = "late_start"
    EARLY_END = "early_end"
    LATE_END = "late_end"
    SHORT_VISIT = "short_visit"
    LONG_VISIT = "long_visit"
    FAR_CHECK_IN = "far_check_in"
    FAR_CHECK_OUT = "far_check_out"
    NO_CONFIRMATION = "no_confirmation"
    CODE_FAILED = "code_failed"
    NO_TASKS = "no_tasks"
    MANUAL_ENTRY = "manual_entry"
    EDITED_TIMES = "edited_times"
    LATE_SUBMISSION = "late_submission"
    OVERLAP = "overlap"
    MISSED = "missed"
    CANCELLED_LATE = "cancelled_late"
    FROZEN_MONTH = "frozen_month_correction"


# Chinese and English names (pages word them through their own catalogue; reports and exports print these).
NAMES: dict[Code, tuple[str, str]] = {
    Code.LATE_START: ("迟到签入", "Late start"),
    Code.EARLY_END: ("提前签出", "Early end"),
    Code.LATE_END: ("延迟签出", "Late end"),
    Code.SHORT_VISIT: ("服务时长过短", "Visit too short"),
    Code.LONG_VISIT: ("服务时长过长", "Visit too long"),
    Code.FAR_CHECK_IN: ("签入位置偏离住址", "Checked in far from the address"),
    Code.FAR_CHECK_OUT: ("签出位置偏离住址", "Checked out far from the address"),
    Code.NO_CONFIRMATION: ("无对象确认", "No recipient confirmation"),
    Code.CODE_FAILED: ("确认码多次错误", "Confirmation code failed repeatedly"),
    Code.NO_TASKS: ("未勾选服务内容", "No tasks recorded"),
    Code.MANUAL_ENTRY: ("人工录入", "Manual entry"),
    Code.EDITED_TIMES: ("服务时间被修改", "Times edited"),
    Code.LATE_SUBMISSION: ("延迟提交", "Submitted late"),
    Code.OVERLAP: ("服务时间重叠", "Overlaps another visit"),
    Code.MISSED: ("漏服务", "Missed visit"),
    Code.CANCELLED_LATE: ("临时取消", "Cancelled late"),
    Code.FROZEN_MONTH: ("更正已冻结月份", "Correction of a frozen month"),
}

# Codes that say a record was not made by the caregiver at the door, or was changed afterwards (a KPI of its own).
MANUAL_OR_EDITED = frozenset({Code.MANUAL_ENTRY, Code.EDITED_TIMES})
# Codes of a visit that was not delivered: never on a delivery, and nothing to bill either way.
NOT_DELIVERED = frozenset({Code.MISSED, Code.CANCELLED_LATE})


@dataclass(frozen=True)
class Thresholds:
    """The district's tolerances (settings, `SERVICEHUB_EVV_*`); the per-service-type duration shares are facts."""

    grace_min: int = 15  # a start later than the expected start plus this is late
    meal_grace_min: int = 5
    end_tolerance_min: int = 30  # an end this far before or after the expected end
    distance_m: float = 300.0  # a position farther than this from the address
    submit_hours: float = 4.0  # an entry reaching the ledger this long after its event (offline)
    cancel_notice_hours: float = 2.0  # a cancellation with less notice than this before the expected start
    code_tries: int = 3  # wrong confirmation codes per visit before it is flagged
    overlap_min: float = 5.0  # two visits of one worker may share this many minutes (phones tapped at the door)


@dataclass(frozen=True)
class Entry:
    """One ledger entry of the visit, as the rules need it."""

    id: int
    kind: str  # a RecordKind value
    received_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    distance_m: float | None = None
    by_worker: bool = True  # made by the visit's own caregiver (not by an office account or someone else)
    recorded_by: str = ""
    confirmation: str = "none"  # code | signature | none
    tasks: int = 0  # checklist items ticked
    flags: tuple[str, ...] = ()
    refers_to_id: int | None = None
    reason_code: str = ""
    outcome_reason: str = ""
    notes: str = ""


@dataclass(frozen=True)
class VisitFacts:
    """A visit's plan and what the ledger holds of it."""

    visit_id: int
    status: str  # a VisitStatus value
    expected_start: datetime  # the planned start on a published roster, else the opening of the window
    expected_end: datetime  # the planned end, else the expected start plus the planned duration
    duration_min: int
    address: tuple[float, float]
    entries: tuple[Entry, ...] = ()  # in ledger order
    meal: bool = False
    has_checklist: bool = False
    short_share: float = 0.5  # shorter than this share of the planned duration is short
    long_share: float = 2.0  # longer than this share is long
    code_failures: int = 0  # wrong confirmation codes tried for this visit
    # The same worker's other visits of the day with times: (visit id, start, end) of the delivery in force.
    others: tuple[tuple[int, datetime, datetime], ...] = ()


@dataclass(frozen=True)
class Finding:
    """One exception of a visit: its code and the figures behind it (plain JSON values)."""

    code: Code
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Record:
    """The entries of one visit that the rules read, picked once."""

    check_in: Entry | None
    delivery: Entry | None  # the check-out as first recorded
    in_force: Entry | None  # the delivery in force: its latest correction in force, else the check-out
    cancellation: Entry | None
    missed: Entry | None
    pending_bureau: Entry | None  # the latest correction waiting for the bureau's approval

    @classmethod
    def of(cls, entries: tuple[Entry, ...]) -> _Record:
        """The entries the rules read, from a visit's entries in ledger order."""
        last = {}
        for entry in entries:
            last[entry.kind] = entry
        pending = [e for e in entries if e.kind == "correction" and "pending_bureau" in e.flags]
        return cls(last.get("check_in"), last.get("delivery"), in_force(entries), last.get("cancelled"),
                   last.get("missed"), pending[-1] if pending else None)


def in_force(entries: Iterable[Entry]) -> Entry | None:
    """The delivery in force among a visit's entries (see `ledger.effective_delivery`)."""
    return ledger.effective_delivery(entries)


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


# --- one rule per code ----------------------------------------------------------------------------------------


def late_start(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Started later than the expected start plus the grace period (5 minutes for meals, 15 otherwise)."""
    entry = record.in_force or record.check_in
    started = entry.started_at if entry is not None else None
    grace = timedelta(minutes=t.meal_grace_min if visit.meal else t.grace_min)
    if started is None or started <= visit.expected_start + grace:
        return None
    return Finding(Code.LATE_START, {"minutes": _minutes(started - visit.expected_start)})


def early_end(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Checked out more than the end tolerance before the expected end."""
    ended = record.in_force.ended_at if record.in_force else None
    if ended is None or ended >= visit.expected_end - timedelta(minutes=t.end_tolerance_min):
        return None
    return Finding(Code.EARLY_END, {"minutes": _minutes(visit.expected_end - ended)})


def late_end(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Checked out more than the end tolerance after the expected end."""
    ended = record.in_force.ended_at if record.in_force else None
    if ended is None or ended <= visit.expected_end + timedelta(minutes=t.end_tolerance_min):
        return None
    return Finding(Code.LATE_END, {"minutes": _minutes(ended - visit.expected_end)})


def _served_minutes(record: _Record) -> float | None:
    delivery = record.in_force
    if delivery is None or delivery.started_at is None or delivery.ended_at is None:
        return None
    return max(0.0, _minutes(delivery.ended_at - delivery.started_at))


def short_visit(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Served less than the service type's share of the planned duration (or the contract line's billable
    minimum, whichever is higher)."""
    served = _served_minutes(record)
    if served is None or served >= visit.short_share * visit.duration_min:
        return None
    return Finding(Code.SHORT_VISIT, {"minutes": served, "planned": visit.duration_min,
                                      "threshold": round(visit.short_share * visit.duration_min, 1)})


def long_visit(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Served more than the service type's share of the planned duration."""
    served = _served_minutes(record)
    if served is None or served <= visit.long_share * visit.duration_min:
        return None
    return Finding(Code.LONG_VISIT, {"minutes": served, "planned": visit.duration_min,
                                     "threshold": round(visit.long_share * visit.duration_min, 1)})


def far_check_in(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The check-in's position is farther than the tolerance from the recipient's address."""
    entry = record.check_in
    if entry is None or entry.distance_m is None or entry.distance_m <= t.distance_m:
        return None
    return Finding(Code.FAR_CHECK_IN, {"metres": round(entry.distance_m)})


def far_check_out(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The check-out's position is farther than the tolerance from the recipient's address."""
    entry = record.delivery
    if entry is None or entry.distance_m is None or entry.distance_m <= t.distance_m:
        return None
    return Finding(Code.FAR_CHECK_OUT, {"metres": round(entry.distance_m)})


def no_confirmation(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Delivered without the recipient's confirmation (no one-time code, no signature)."""
    if record.in_force is None or record.in_force.confirmation != "none":
        return None
    return Finding(Code.NO_CONFIRMATION)


def code_failed(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """As many wrong confirmation codes were tried for the visit as it allows."""
    if visit.code_failures < t.code_tries:
        return None
    return Finding(Code.CODE_FAILED, {"tries": visit.code_failures})


def no_tasks(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Delivered with none of the service's checklist ticked."""
    if record.in_force is None or not visit.has_checklist or record.in_force.tasks:
        return None
    return Finding(Code.NO_TASKS)


def _typed(entry: Entry, address: tuple[float, float]) -> bool:
    """A position equal to the address's coordinates to the last stored digit: typed in, not read from a phone."""
    return (entry.lat is not None and entry.lon is not None
            and abs(entry.lat - address[0]) < 5e-8 and abs(entry.lon - address[1]) < 5e-8)


def manual_entry(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The check-in or the check-out was made by someone other than the visit's caregiver (an office account),
    or its position is the address's coordinates typed in."""
    made = [entry for entry in (record.check_in, record.delivery) if entry is not None]
    others = sorted({entry.recorded_by for entry in made if not entry.by_worker})
    typed = [entry.kind for entry in made if _typed(entry, visit.address)]
    if not others and not typed:
        return None
    return Finding(Code.MANUAL_ENTRY, {"recorded_by": others, "typed_position": typed})


def edited_times(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The times in force are a correction's, not the check-in's and check-out's."""
    current, original = record.in_force, record.delivery
    if current is None or original is None or current.kind != "correction":
        return None
    if (current.started_at, current.ended_at) == (original.started_at, original.ended_at):
        return None
    return Finding(Code.EDITED_TIMES, {"correction_id": current.id,
                                       "minutes": _minutes((current.ended_at - current.started_at)
                                                           - (original.ended_at - original.started_at))})


def late_submission(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The check-in or the check-out reached the ledger more than the allowed hours after it happened (kept
    offline, or entered afterwards)."""
    limit = timedelta(hours=t.submit_hours)
    delays = {}
    for entry, moment in ((record.check_in, record.check_in and record.check_in.started_at),
                          (record.delivery, record.delivery and record.delivery.ended_at)):
        if entry is not None and moment is not None and entry.received_at - moment > limit:
            delays[entry.kind] = round((entry.received_at - moment).total_seconds() / 3600, 1)
    return Finding(Code.LATE_SUBMISSION, {"hours": delays}) if delays else None


def overlap(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The delivered times overlap another visit of the same worker on the same day."""
    delivery = record.in_force
    if delivery is None or delivery.started_at is None or delivery.ended_at is None:
        return None
    allowed = timedelta(minutes=t.overlap_min)
    clashes = sorted(other for other, start, end in visit.others
                     if min(end, delivery.ended_at) - max(start, delivery.started_at) > allowed)
    return Finding(Code.OVERLAP, {"visits": clashes}) if clashes else None


def missed(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """The visit did not happen."""
    if visit.status != "missed":
        return None
    return Finding(Code.MISSED, {"reason": record.missed.outcome_reason if record.missed else ""})


def cancelled_late(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """Called off with less notice than allowed before the expected start."""
    entry = record.cancellation
    if visit.status != "cancelled" or entry is None or entry.ended_at is None:
        return None
    notice = visit.expected_start - entry.ended_at
    if notice >= timedelta(hours=t.cancel_notice_hours):
        return None
    return Finding(Code.CANCELLED_LATE, {"hours_before": round(notice.total_seconds() / 3600, 1)})


# A correction's reason, as the resolution of its frozen-month exception.
CORRECTION_AS_RESOLUTION = {"wrong_time": "data_entry_error", "wrong_tasks": "data_entry_error",
                            "data_entry": "data_entry_error", "wrong_satisfaction": "data_entry_error"}


def frozen_month_correction(visit: VisitFacts, record: _Record, t: Thresholds) -> Finding | None:
    """A correction of a visit in a month whose report is frozen: in force only once the bureau approves it. It
    comes explained (the correction's reason and notes), so it waits for the bureau at once."""
    entry = record.pending_bureau
    if entry is None:
        return None
    return Finding(Code.FROZEN_MONTH, {"correction_id": entry.id, "by": entry.recorded_by, "note": entry.notes,
                                       "reason_code": CORRECTION_AS_RESOLUTION.get(entry.reason_code, "other")})


Rule = Callable[[VisitFacts, _Record, Thresholds], Finding | None]
# Rules that read a delivery (or an arrival) apply only while the visit is under way or done.
DELIVERY_RULES: tuple[Rule, ...] = (late_start, early_end, late_end, short_visit, long_visit, far_check_in,
                                    far_check_out, no_confirmation, no_tasks, manual_entry, edited_times,
                                    late_submission, overlap, frozen_month_correction)
OUTCOME_RULES: tuple[Rule, ...] = (missed, cancelled_late)
ALWAYS: tuple[Rule, ...] = (code_failed,)
RULE_OF: dict[Code, Rule] = {Code(rule.__name__): rule for rule in (*DELIVERY_RULES, *OUTCOME_RULES, *ALWAYS)}
UNDER_WAY = frozenset({"in_progress", "completed"})


def find_exceptions(visit: VisitFacts, thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """Every exception of the visit, in the order of `Code`."""
    record = _Record.of(visit.entries)
    rules = (*(DELIVERY_RULES if visit.status in UNDER_WAY else OUTCOME_RULES), *ALWAYS)
    found = {f.code: f for f in (rule(visit, record, thresholds) for rule in rules) if f is not None}
    return [found[code] for code in Code if code in found]


def codes_of(findings: Iterable[Finding]) -> list[str]:
    """The codes of some findings, as stored on a ledger entry's flags."""
    return [finding.code.value for finding in findings]
