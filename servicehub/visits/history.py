"""Two years of plausible service history for the demo district (`servicehub demo history`).

`servicehub demo serve` puts the demo district in service *from today*: every referral starts today, so the
system has nothing to evaluate. This module writes the past those referrals stand for, so that evaluation
has something true to count: visits (completed, some missed, a few cancelled) and their ledger entries
(check-in and delivery, misses, cancellations, corrections and their approvals) for the two years up to
yesterday.

How the history is made (deterministic for a seed and a day):

- **Earlier contract periods.** The referrals' start date is today, so the history is read as the *same
  organisations* serving the *same recipients* for the *same needs* (service type, days of the week, time
  window, duration) in the contract periods before today — the demo's current contracts since they began
  (1 January) and the previous ones before that. The past visits hang on today's referrals and visit series,
  the only ones there are (so `delivered_units_by_line`, which has no period filter, counts them all against
  the current contract lines).
- **Who was served when.** Recipients entered the programme at different times: a founding cohort
  (`FOUNDERS`) from the first day, the others joined at dates that get more frequent as the pilot grew
  (joined = yesterday − (a quarter + the rest of the span · u^k), u uniform: everyone has at least a quarter of
  history). A recipient's first need started when they joined, the others were added at later re-assessments
  (`LATER_NEEDS`).
- **How often.** The earlier periods bought fewer visits than today's plans: a need served n days a week now
  got `HISTORY_INTENSITY` · n visits a week (0.4: daily meals twice a week, twice-weekly cleaning weekly, a
  weekly visit fortnightly), on days spread over the week; monthly needs as now. The exponent k is found by
  bisection so that the completed person-times come to the target (`TARGET_COMPLETED` over two years, pro
  rata for other periods); the report gives the count.
- **Outcomes.** A few hospital stays per recipient (the first visit of a stay missed `in_hospital`, the
  following ones cancelled); otherwise about 3 % missed (not home, refused, worker absent, not done by the
  end of the window — recorded by the system — other) and 0.6 % cancelled in advance; the rest completed.
- **Workers.** Each visit goes to one of its organisation's workers with the qualification (valid on the
  day) and the gender the recipient or the service asks for, available that weekday, with continuity: mostly
  the recipient's usual worker, sometimes their second one, someone else when they are full. Each day's
  visits go, narrowest window first, to the end of the first such worker's route who can be there in the
  window within their hours and daily limits (travel from `servicehub.scheduling.services.travel_source`);
  failing that as overtime, failing that squeezed in (the report counts both). Planned times fall inside
  the windows.
- **What happened.** Check-ins near the planned start (about 8 % late: more than the grace period —
  `SERVICEHUB_LATE_MINUTES`, 5 for meals — after the planned start), a few far from the address, stays near the
  planned duration (a few far from it), the recipient's one-time code as confirmation mostly (a signature sometimes,
  none rarely), satisfaction mostly 4–5, tasks from the service type's checklist, a few records sent offline later,
  a few entered at the office the next morning (`P_OFFICE`: the caregiver's phone broke). About 1 % of deliveries
  are corrected: a caregiver who forgot to check out corrects the time (`wrong_time`, pending approval, then
  approved by the provider admin), or the provider admin fixes a data entry (`data_entry`: tasks left out, or a
  check-in tapped late); satisfaction, the recipient's, is never corrected.
- **Exceptions.** Each check-in, delivery and correction carries the visit's exception codes as they stood when it
  was made (`servicehub.visits.exceptions`, as the services flag them); after the insert the exception queue is
  computed for every visit (`verification.refresh_exceptions`, which finds overlaps too) and worked as providers and
  the bureau would have worked it (`_work_the_queue`): older months explained and decided (a few rejected), last
  month mostly, this month about half explained.

The ledger entries are what `servicehub.visits.services` would have written: the same fields and defaults as
`append_entry`, chained per organisation in the order they were received, hashed with `ledger.record_hash` — but
computed in one batch and bulk-inserted rather than with a lock, a query and a flush per record, and with ids
reserved beforehand (a record's hash covers the id it refers to). `verify_ledgers()` holds afterwards.
Records are signed by the caregiver's account when one is linked to the worker (else the worker's name), by
the organisation's provider admin account (else "<organisation> 管理员"), or by "system". No alerts and no
audit-log rows per record are written; one audit event sums the run up.

The demo's first start (`make run`) asks for the last few visits of the history's last day to be left open
(`leave_open`): published on their caregivers' rosters and never recorded, as when a caregiver's phone sent nothing
that evening. Nobody noticed, since no scheduler ran while the demo was being set up: the first run of the missed-visit
check after the start finds them missed and tells the managers, whatever the hour of the start
(`servicehub.visits.demo_day`).

Idempotent: when any service record dated before today exists, nothing is written. Records of today already
there stay first in their chains; the history follows them.
"""

from __future__ import annotations

import base64
import bisect
import functools
import io
import math
import random
import time as clock
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta

from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import selectinload

from servicehub.auth.audit import record_event
from servicehub.auth.models import User
from servicehub.auth.permissions import Role
from servicehub.catalog.models import ServiceType
from servicehub.database import utcnow
from servicehub.errors import N_, Conflict
from servicehub.extensions import db
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry.models import ContractLine, Organisation, Recipient, Worker
from servicehub.scheduling import recurrence
from servicehub.scheduling.models import Visit, VisitSeries, VisitStatus
from servicehub.scheduling.services import travel_source
from servicehub.scheduling.travel import haversine_m
from servicehub.timeutil import district_today, local_midnight
from servicehub.visits import exceptions, ledger, verification
from servicehub.visits.deliveries import refresh_deliveries
from servicehub.visits.models import (
    CorrectionReason,
    EvvException,
    ExceptionStatus,
    ExceptionStep,
    MissedReason,
    RecordKind,
    ResolutionReason,
    ServiceRecord,
)

DEFAULT_SEED = 20241201
TARGET_COMPLETED = 8891  # completed person-times over two years for the demo's 147 recipients
TARGET_YEARS = 2

HISTORY_INTENSITY = 0.4  # the visits a week of a weekly need the earlier periods bought, as a share of today's
FOUNDERS = 0.10  # recipients served from the first day of the history
MIN_HISTORY_DAYS = 91  # everyone had joined a quarter ago
LATER_NEEDS = 0.8  # a need after the first starts up to this share of the remaining time after joining
HOSPITAL_STAYS_PER_YEAR = 0.3
P_CANCELLED = 0.006
P_MISSED = 0.032
MISSED_REASONS = ((MissedReason.NOT_HOME, 0.40), (MissedReason.NOT_DONE, 0.22), (MissedReason.REFUSED, 0.18),
                  (MissedReason.WORKER_ABSENT, 0.12), (MissedReason.OTHER, 0.08))
P_LATE = 0.05
P_FAR = 0.015
P_OFFLINE = 0.03
P_DURATION_OUTLIER = 0.01
P_CORRECTED = 0.01
P_OFFICE = 0.006  # a visit entered at the office the next morning (the caregiver's phone broke)
P_WRONG_TIME = 0.6  # of the corrections; the rest are the provider admin's data-entry fixes
CONTINUITY = (0.80, 0.96)  # the usual worker below the first, the second worker below the second, else another

MISSED_NOTES = {
    MissedReason.NOT_HOME: "敲门无人应答，电话联系未接通",
    MissedReason.REFUSED: "对象表示今天不需要服务",
    MissedReason.WORKER_ABSENT: "服务人员临时病假，未能安排替班",
    MissedReason.IN_HOSPITAL: "家属告知对象已住院",
    MissedReason.OTHER: "对象家中临时有事，改约未成",
    MissedReason.NOT_DONE: "",
}
CANCEL_REASONS = ("家属临时安排外出", "对象回子女家暂住", "节假日调整", "对象身体不适改期")
HOSPITAL_CANCEL = "对象住院"
DELIVERY_NOTES = ("老人精神状态良好", "已提醒按时服药", "家属在场，一同交接", "对象反映膝盖疼痛，已告知家属",
                  "门口有积水，已提醒注意防滑", "对象情绪低落，建议增加探访", "已协助联系社区医生")
SATISFACTION_PROFILES = (  # (share of recipients, weights of 5, 4, 3, 2, 1)
    (0.40, (70, 25, 5, 0, 0)),
    (0.50, (50, 38, 10, 1.5, 0.5)),
    (0.10, (25, 45, 22, 6, 2)),
)
MOVES_VISIT = frozenset({RecordKind.CHECK_IN, RecordKind.DELIVERY, RecordKind.MISSED, RecordKind.CANCELLED})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LAST_SECOND = 24 * 3600 - 60  # check-outs stay on the visit's day


# --- plain data ----------------------------------------------------------------------------------------


@dataclass
class HistoryReport:
    """What `write_demo_history` did."""

    written: bool
    message: str
    date_from: date | None = None
    date_to: date | None = None
    series: int = 0
    recipients: int = 0
    target: int = 0
    exponent: float = 0.0  # k of the joining dates, found by calibration
    visits: int = 0
    completed: int = 0  # completed person-times (deliveries of slot 0)
    missed: int = 0
    cancelled: int = 0
    corrected: int = 0
    approvals: int = 0
    late: int = 0  # checked in more than the grace period after the planned start
    late_after_window_opening: int = 0  # … after the window opened (the alerts' definition)
    far_from_address: int = 0
    overtime: int = 0  # visits a worker did outside their usual hours or daily limits
    squeezed: int = 0  # visits nobody could reach in time, overlapping another in the worker's day
    office: int = 0  # entered at the office the next morning
    offline: int = 0
    left_open: int = 0  # the last day's last visits, published and never recorded (for the missed-visit check)
    exceptions: dict[str, int] = field(default_factory=dict)  # by code
    queue: dict[str, int] = field(default_factory=dict)  # by status, once the queue was worked
    records: int = 0
    records_by_kind: dict[str, int] = field(default_factory=dict)
    organisations: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for the command line."""
        if not self.written:
            return self.message
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.records_by_kind.items()))
        return (f"{self.message}\n"
                f"  {self.date_from}..{self.date_to}: {self.series} series, {self.recipients} recipients, "
                f"{self.visits} visits ({self.overtime} as overtime, {self.squeezed} squeezed in), "
                f"joining exponent {self.exponent}\n"
                f"  completed {self.completed} (target {self.target}), missed {self.missed}, "
                f"cancelled {self.cancelled}, corrected {self.corrected} ({self.approvals} approved)\n"
                f"  late {self.late} (after the window opened + grace: {self.late_after_window_opening}), "
                f"far from address {self.far_from_address}, entered at the office {self.office}, "
                f"sent offline {self.offline}, left open for the missed-visit check {self.left_open}\n"
                f"  exceptions {sum(self.exceptions.values())} "
                f"({', '.join(f'{k} {n}' for k, n in sorted(self.exceptions.items()))}); "
                f"queue {', '.join(f'{k} {n}' for k, n in sorted(self.queue.items()))}\n"
                f"  {self.records} ledger records in {self.organisations} organisations ({kinds}); "
                f"{self.seconds:.1f} s")


@dataclass
class _Series:
    id: int
    organisation_id: int
    recipient_id: int
    service_type_id: int
    rrule: str  # today's
    end_date: date | None
    window: tuple[int, int]  # minutes from midnight
    duration: int
    carers: int
    urgent: bool
    qualification: str | None
    gender: str | None  # the carer's gender it needs, if any
    meal: bool
    checklist: tuple[str, ...]
    point: tuple[float, float]
    short_share: float = 0.5  # the visit's exception thresholds (the service type's, the line's billable minimum)
    long_share: float = 2.0
    rule: str = ""  # the earlier periods' (`history_rule`)
    days: list[date] = field(default_factory=list)  # occurrences in the history period
    coverage: float = 1.0  # of the recipient: 1 for founders
    later: float = 0.0
    outcomes: dict = field(default_factory=dict)  # day -> (status, reason)


@dataclass
class _Worker:
    id: int
    organisation_id: int
    name: str
    gender: str
    point: tuple[float, float]
    mode: str
    availability: dict[int, list[tuple[int, int]]]  # weekday 0..6 -> [(start, end)] minutes
    qualifications: dict[str, date | None]
    signer: tuple[int | None, str]
    max_minutes: int = 480
    max_visits: int = 10
    weekly_minutes: int = 1

    def qualified(self, code: str | None, day: date | None = None) -> bool:
        if code is None:
            return True
        if code not in self.qualifications:
            return False
        expires = self.qualifications[code]
        return day is None or expires is None or expires >= day

    def fits(self, weekday: int, window: tuple[int, int], duration: int) -> bool:
        need = min(duration, window[1] - window[0])
        return any(min(b, window[1]) - max(a, window[0]) >= need for a, b in self.availability.get(weekday, ()))


@dataclass
class _Visit:
    series: _Series
    day: date
    slot: int
    status: str
    reason: str = ""
    worker: _Worker | None = None
    arrival: int | None = None  # planned, minutes from midnight
    start: int | None = None
    travel: int | None = None
    sequence: int | None = None
    id: int | None = None
    updated: datetime | None = None


@dataclass
class _Entry:
    organisation_id: int
    received_at: datetime
    order: int
    fields: dict
    refers_to: _Entry | None = None
    visit: _Visit | None = None
    id: int | None = None


# --- pure helpers -----------------------------------------------------------------------------------------


def history_rule(rule: str, intensity: float = HISTORY_INTENSITY, offset: int = 0) -> tuple[str, int]:
    """The rule the earlier periods followed, and its interval in weeks: a weekly rule on n days gives
    intensity · n visits a week — on that many of its days, evenly spread from its `offset`-th day, or on one
    day every 1 / (intensity · n) weeks when that is under one a week (with 0.4: daily meals twice a week,
    twice-weekly cleaning weekly, a weekly visit fortnightly). Other rules unchanged."""
    parts = dict(part.split("=", 1) for part in rule.split(";"))
    interval = int(parts.get("INTERVAL", 1))
    if parts.get("FREQ") != "WEEKLY" or "BYDAY" not in parts or intensity >= 1:
        return rule, interval
    days = parts["BYDAY"].split(",")
    n = len(days)
    per_week = n * intensity
    if round(per_week) >= 1:
        keep = min(n, round(per_week))
        parts["BYDAY"] = ",".join(days[i] for i in sorted({(offset + round(k * n / keep)) % n for k in range(keep)}))
    else:
        parts["BYDAY"] = days[offset % n]
        interval *= min(4, round(1 / per_week))
        parts["INTERVAL"] = str(interval)
    return ";".join(f"{key}={value}" for key, value in parts.items()), interval


def series_start(coverage: float, later: float, exponent: float, first: date, last: date) -> date:
    """The first day of a need's history: its recipient joined at last − (m + (span − m) · coverage^k), m the
    MIN_HISTORY_DAYS; a later need started `later` of the remaining time after that (times LATER_NEEDS)."""
    span = (last - first).days
    least = min(span, MIN_HISTORY_DAYS - 1)
    joined = last - timedelta(days=least + int((span - least) * coverage ** exponent))
    return joined + timedelta(days=int((last - joined).days * later * LATER_NEEDS))


def calibrate(series: list[_Series], first: date, last: date, target: int) -> tuple[float, int]:
    """The exponent k whose joining dates give the completed person-times closest to `target`, and that count."""
    completed_days = [sorted(d for d, (status, _) in s.outcomes.items() if status == VisitStatus.COMPLETED)
                      for s in series]

    def count(k: float) -> int:
        total = 0
        for s, days in zip(series, completed_days, strict=True):
            total += len(days) - bisect.bisect_left(days, series_start(s.coverage, s.later, k, first, last))
        return total

    low, high = 0.0, 64.0  # count(k) falls as k grows
    if count(low) <= target:
        return low, count(low)
    if count(high) >= target:
        return high, count(high)
    for _ in range(60):
        middle = (low + high) / 2
        if count(middle) > target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda k: (abs(count(k) - target), k))
    return best, count(best)


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def _weighted(rng: random.Random, choices):
    total = sum(w for _, w in choices)
    x = rng.random() * total
    for value, weight in choices:
        x -= weight
        if x < 0:
            return value
    return choices[-1][0]


def _offset(point: tuple[float, float], metres: float, rng: random.Random) -> tuple[float, float]:
    angle = rng.random() * 2 * math.pi
    lat = point[0] + metres * math.cos(angle) / 111_320
    lon = point[1] + metres * math.sin(angle) / (111_320 * math.cos(math.radians(point[0])))
    return lat, lon


def _minutes(t) -> int:
    return t.hour * 60 + t.minute


# --- loading --------------------------------------------------------------------------------------------


def _load_series() -> list[_Series]:
    rows = db.session.execute(
        select(VisitSeries, Recipient, ServiceType, ContractLine.min_billable_share)
        .join(Referral, Referral.id == VisitSeries.referral_id)
        .join(ContractLine, ContractLine.id == Referral.contract_line_id)
        .join(Recipient, Recipient.id == VisitSeries.recipient_id)
        .join(ServiceType, ServiceType.id == VisitSeries.service_type_id)
        .options(selectinload(ServiceType.required_qualification))
        .where(VisitSeries.active.is_(True), Referral.status.in_([ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE]))
        .order_by(VisitSeries.id)
    ).all()
    series = []
    for s, recipient, service_type, min_share in rows:
        gender = recipient.required_carer_gender
        if gender is None and service_type.same_gender_preferred:
            gender = recipient.gender
        window = (_minutes(s.window_start), _minutes(s.window_end))
        series.append(_Series(
            id=s.id, organisation_id=s.organisation_id, recipient_id=s.recipient_id, service_type_id=s.service_type_id,
            rrule=s.rrule, end_date=s.end_date, window=window, duration=s.duration_min,
            carers=s.carers or 1, urgent=s.urgent,
            qualification=service_type.required_qualification.code if service_type.required_qualification else None,
            gender=gender, meal=service_type.unit == "meal",
            checklist=tuple(item["code"] for item in service_type.checklist or ()),
            point=(recipient.lat, recipient.lon),
            short_share=max(service_type.evv_short_share, min_share), long_share=service_type.evv_long_share,
        ))
    return series


def _load_workers(organisation_ids: set[int]) -> dict[int, list[_Worker]]:
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)).all()
    by_worker = {u.worker_id: (u.id, u.username) for u in users if u.worker_id is not None}
    workers = db.session.scalars(
        select(Worker).options(selectinload(Worker.qualifications))
        .where(Worker.organisation_id.in_(organisation_ids), Worker.active.is_(True)).order_by(Worker.id)
    ).all()
    out: dict[int, list[_Worker]] = defaultdict(list)
    for w in workers:
        availability = {}
        for key, spans in (w.availability or {}).items():
            if key in WEEKDAYS:
                availability[WEEKDAYS.index(key)] = sorted(
                    (int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])) for a, b in spans)
        worker = _Worker(
            id=w.id, organisation_id=w.organisation_id, name=w.name, gender=w.gender, point=(w.start_lat, w.start_lon),
            mode=w.travel_mode, availability=availability,
            qualifications={q.qualification.code: q.expires_on for q in w.qualifications},
            signer=by_worker.get(w.id, (None, w.name)), max_minutes=w.max_minutes_per_day,
            max_visits=w.max_visits_per_day,
        )
        worker.weekly_minutes = max(1, sum(b - a for spans in availability.values() for a, b in spans))
        out[w.organisation_id].append(worker)
    return out


def _provider_signers(organisation_ids: set[int]) -> dict[int, tuple[int | None, str]]:
    organisations = db.session.scalars(select(Organisation).where(Organisation.id.in_(organisation_ids))).all()
    signers = {o.id: (None, f"{o.short_name or o.name_zh} 管理员") for o in organisations}
    admins = db.session.scalars(select(User).where(User.role == Role.PROVIDER_ADMIN.value, User.active.is_(True),
                                                   User.organisation_id.in_(organisation_ids))
                                .order_by(User.id.desc())).all()
    for user in admins:  # the first one wins
        signers[user.organisation_id] = (user.id, user.username)
    return signers


# --- simulation ------------------------------------------------------------------------------------------


def _plan_outcomes(series: list[_Series], first: date, last: date, years: float, rng: random.Random) -> None:
    """Occurrences, joining dates and each occurrence's outcome (independent of when the need started)."""
    recipients = sorted({s.recipient_id for s in series})
    coverage = {r: 1.0 if rng.random() < FOUNDERS else max(rng.random(), 1e-6) for r in recipients}
    span = (last - first).days
    stays: dict[int, list[tuple[date, date]]] = {}
    for r in recipients:
        stays[r] = []
        for _ in range(_poisson(rng, HOSPITAL_STAYS_PER_YEAR * years)):
            begin = first + timedelta(days=rng.randrange(span + 1))
            stays[r].append((begin, begin + timedelta(days=rng.randint(5, 21))))
    firsts: dict[int, _Series] = {}
    for s in series:
        s.coverage, s.later = coverage[s.recipient_id], rng.random()
        if s.recipient_id not in firsts or s.later < firsts[s.recipient_id].later:
            firsts[s.recipient_id] = s
        offset = rng.randrange(420)  # which of its days, which week of the interval
        s.rule, interval = history_rule(s.rrule, offset=offset)
        s.days = recurrence.occurrences(s.rule, first + timedelta(weeks=offset % interval), first, last, s.end_date)
        in_stay: set[int] = set()
        for day in s.days:
            u = rng.random()
            stay = next((k for k, (a, b) in enumerate(stays[s.recipient_id]) if a <= day <= b), None)
            if stay is not None:
                outcome = ((VisitStatus.CANCELLED, HOSPITAL_CANCEL) if stay in in_stay
                           else (VisitStatus.MISSED, MissedReason.IN_HOSPITAL.value))
                in_stay.add(stay)
            elif u < P_CANCELLED:
                outcome = (VisitStatus.CANCELLED, CANCEL_REASONS[rng.randrange(len(CANCEL_REASONS))])
            elif u < P_CANCELLED + P_MISSED:
                outcome = (VisitStatus.MISSED, _weighted(rng, MISSED_REASONS).value)
            else:
                outcome = (VisitStatus.COMPLETED, "")
            s.outcomes[day] = outcome
    for s in firsts.values():
        s.later = 0.0  # the need the recipient joined for


def _preferences(visits: list[_Visit], workers: dict[int, list[_Worker]], rng: random.Random) -> dict:
    """Per (recipient, qualification, gender): the eligible workers, the usual one first, then the second."""
    groups: dict[tuple, list[_Visit]] = defaultdict(list)
    for v in visits:
        s = v.series
        groups[(s.organisation_id, s.recipient_id, s.qualification, s.gender)].append(v)
    load: Counter = Counter()
    prefs = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] or "", k[3] or "")):
        organisation_id, _, qualification, gender = key
        group = groups[key]
        staff = workers.get(organisation_id, [])
        eligible = [w for w in staff if w.qualified(qualification) and (gender is None or w.gender == gender)]
        if not eligible:  # never in the demo: relax gender, then the qualification
            eligible = [w for w in staff if w.qualified(qualification)] or list(staff)
        minutes = sum(v.series.duration for v in group)
        # How well each worker's week fits the group's days and windows, how far they live, a little chance.
        fit = {w.id: round(sum(w.fits(v.day.weekday(), v.series.window, v.series.duration) for v in group)
                           / len(group), 1) for w in eligible}
        near = {w.id: 0.02 * haversine_m(w.point, group[0].series.point) / 1000 + rng.random() * 0.05
                for w in eligible}
        chosen: list[_Worker] = []
        pool = list(eligible)
        for share in (0.7, 0.25):  # the usual worker, the second one
            if not pool:
                break
            best = min(pool, key=lambda w: (-fit[w.id], load[w.id] / w.weekly_minutes + near[w.id]))
            chosen.append(best)
            pool.remove(best)
            load[best.id] += minutes * share
        prefs[key] = (chosen, pool)
    return prefs


def _candidates(prefs: dict, v: _Visit, rng: random.Random) -> list[_Worker]:
    """The workers to try for a visit, in order: mostly the usual one first, sometimes the second, rarely another."""
    s = v.series
    chosen, others = prefs[(s.organisation_id, s.recipient_id, s.qualification, s.gender)]
    x = rng.random()
    if x < CONTINUITY[0] or len(chosen) == 1:
        return chosen + others
    if x < CONTINUITY[1] or not others:
        return chosen[::-1] + others
    other = others[rng.randrange(len(others))]
    return [other, *chosen, *(w for w in others if w is not other)]


def _earliest_start(spans: list[tuple[int, int]], ready: int, opens: int, latest: int, duration: int) -> int | None:
    """The earliest start from `ready` inside the window (by `latest`) and inside one of the worker's spans."""
    for a, b in spans:
        start = max(ready, opens, a)
        if start <= latest and start + duration <= b:
            return start
    return None


def _latest_start(v: _Visit) -> int:
    opens, closes = v.series.window
    return max(opens, closes - v.series.duration)


def _plan_days(visits: list[_Visit], workers: dict[int, list[_Worker]], rng: random.Random) -> Counter:
    """Give each visit a worker and a planned time, day by day: visits in order of their latest possible start
    (a narrow window before a wide one that can wait), each at the end of the route of the first candidate who
    is qualified that day, works that weekday, has room under their daily limits and can be there in the window;
    failing that, the first who can be there outside their usual hours (overtime); failing that, squeezed into the
    first candidate's day at the latest start. Returns how many visits went each way."""
    prefs = _preferences(visits, workers, rng)
    travel = travel_source()
    by_day: dict[date, list[_Visit]] = defaultdict(list)
    for v in visits:
        by_day[v.day].append(v)
    counts: Counter = Counter()
    for day in sorted(by_day):
        weekday = day.weekday()
        routes: dict[int, list] = {}  # worker id -> [free from (minute), where, visits, minutes worked]
        first_carer: dict[int, int] = {}  # series id -> the worker of slot 0 (a double-up needs two)
        for v in sorted(by_day[day], key=lambda v: (_latest_start(v), v.series.window[0], v.series.id, v.slot)):
            s = v.series
            candidates = _candidates(prefs, v, rng)
            order = [w for w in candidates if first_carer.get(s.id) != w.id] or candidates
            qualified = [w for w in order if w.qualified(s.qualification, day)] or order
            if v.status == VisitStatus.CANCELLED:  # called off before the roster was made
                v.worker = next((w for w in qualified if w.fits(weekday, s.window, s.duration)), qualified[0])
                continue
            opens, latest = s.window[0], _latest_start(v)
            # Within each worker's hours and limits; failing that, as overtime; failing that, squeezed in.
            for overtime in (False, True):
                for w in qualified:
                    spans = w.availability.get(weekday)
                    route = routes.get(w.id) or [spans[0][0] if spans else opens, w.point, 0, 0]
                    if overtime:
                        spans = [(0, 24 * 60)]
                    elif not spans or route[2] >= w.max_visits:
                        continue
                    minutes = travel.minutes(route[1], s.point, w.mode)
                    start = _earliest_start(spans, route[0] + minutes, opens, latest, s.duration)
                    if start is not None and (overtime or route[3] + minutes + s.duration <= w.max_minutes):
                        break
                else:
                    continue
                counts["overtime" if overtime else "placed"] += 1
                break
            else:  # nobody can be there in time: the first candidate squeezes it in at its latest start
                counts["squeezed"] += 1
                w = qualified[0]
                route = routes.get(w.id) or [opens, w.point, 0, 0]
                minutes = travel.minutes(route[1], s.point, w.mode)
                start = latest
            arrival = route[0] + minutes
            v.worker, v.start, v.arrival, v.travel = w, start, min(arrival, start), minutes
            v.sequence = route[2] + 1
            routes[w.id] = [max(route[0], start + s.duration), s.point, route[2] + 1, route[3] + minutes + s.duration]
            first_carer.setdefault(s.id, w.id)
    return counts


class _Writer:
    """Turns the planned visits into ledger entries, as the caregivers' phones and the admins would have."""

    def __init__(self, rng: random.Random, providers: dict[int, tuple[int | None, str]]):
        self.rng, self.providers = rng, providers
        self.entries: list[_Entry] = []
        self.grace = (current_app.config["SERVICEHUB_LATE_MINUTES"], current_app.config["SERVICEHUB_LATE_MINUTES_MEAL"])
        self.midnights: dict[date, datetime] = {}
        self.profiles: dict[int, tuple] = {}
        self.counts: Counter = Counter()

    def at(self, day: date, seconds: float) -> datetime:
        if day not in self.midnights:
            self.midnights[day] = local_midnight(day)
        return self.midnights[day] + timedelta(seconds=int(seconds))

    def key(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, organisation_id: int, received_at: datetime, fields: dict, visit: _Visit | None = None,
            refers_to: _Entry | None = None) -> _Entry:
        entry = _Entry(organisation_id, received_at, len(self.entries), fields, refers_to, visit)
        self.entries.append(entry)
        if fields["kind"] in MOVES_VISIT:
            visit.updated = max(visit.updated or received_at, received_at)
        return entry

    def common(self, v: _Visit) -> dict:
        return {"visit_id": None, "recipient_id": v.series.recipient_id, "worker_id": v.worker.id if v.worker else None,
                "service_type_id": v.series.service_type_id, "service_date": v.day}

    def satisfaction(self, recipient_id: int) -> int | None:
        if recipient_id not in self.profiles:
            profiles = [(weights, share) for share, weights in SATISFACTION_PROFILES]
            self.profiles[recipient_id] = _weighted(self.rng, profiles)
        if self.rng.random() < 0.02:
            return None
        return _weighted(self.rng, list(zip((5, 4, 3, 2, 1), self.profiles[recipient_id], strict=True)))

    def received(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.rng.randint(1, 8))

    def completed(self, v: _Visit, corrected: str | None) -> None:
        rng, s = self.rng, v.series
        opens, closes = s.window
        grace = self.grace[1] if s.meal else self.grace[0]
        planned = v.start if v.start is not None else opens
        if rng.random() < P_LATE:
            arrive = planned * 60 + rng.uniform(grace + 1, grace + (20 if s.meal else 45)) * 60
        else:
            arrive = planned * 60 + max(-10.0, min(12.0, rng.gauss(0, 4))) * 60
        arrive = int(max((opens - 10) * 60, min(arrive, (closes - 1) * 60))) + rng.randrange(60)
        factor = max(0.6, min(1.4, rng.gauss(1.0, 0.08)))
        if rng.random() < P_DURATION_OUTLIER:
            factor = rng.uniform(0.25, 0.45) if rng.random() < 0.5 else rng.uniform(1.6, 2.2)
        leave = min(arrive + s.duration * 60 * factor, LAST_SECOND)
        recorded_leave = leave
        if corrected == CorrectionReason.WRONG_TIME:  # forgot to check out
            recorded_leave = min(leave + rng.uniform(90, 240) * 60, LAST_SECOND)
        started, ended, true_end = self.at(v.day, arrive), self.at(v.day, recorded_leave), self.at(v.day, leave)
        far = rng.random() < P_FAR
        lat, lon = _offset(s.point, rng.uniform(350, 1200) if far else rng.uniform(2, 60), rng)
        distance = round(haversine_m((lat, lon), s.point), 1)
        lat, lon = round(lat, 7), round(lon, 7)
        offline = rng.random() < P_OFFLINE
        signer = v.worker.signer
        check_in_at = self.received(started)
        delivery_at = self.received(ended)
        if rng.random() < P_OFFICE:  # the phone broke: the office entered the visit the next morning
            signer = self.providers[s.organisation_id]
            delivery_at = self.at(v.day + timedelta(days=1), rng.uniform(8.5, 10) * 3600)
            check_in_at = delivery_at - timedelta(seconds=30)
            self.counts["office"] += 1
        elif offline:  # sent when the phone was back online, with the phone's times
            delivery_at = ended + timedelta(minutes=rng.randint(10, 360))
            check_in_at = delivery_at - timedelta(seconds=1)
            self.counts["offline"] += 1
        check_in = self.add(s.organisation_id, check_in_at, {
            "kind": RecordKind.CHECK_IN.value, **self.common(v), "started_at": started, "lat": lat, "lon": lon,
            "distance_m": distance, "device_time": started if offline else None,
            "idempotency_key": self.key(), "recorded_by_id": signer[0], "recorded_by": signer[1],
        }, v)
        tasks = list(s.checklist)
        if len(tasks) > 1 and rng.random() < 0.15:
            tasks.pop(rng.randrange(1, len(tasks)))
        method = _weighted(rng, (("code", 89), ("signature", 8), ("none", 3)))
        confirmation = {"method": method, "signature": signature_png()} if method == "signature" else {"method": method}
        satisfaction = self.satisfaction(s.recipient_id)
        out_lat, out_lon = _offset(s.point, distance + rng.uniform(-1, 1), rng) if distance else (lat, lon)
        delivery = self.add(s.organisation_id, delivery_at, {
            "kind": RecordKind.DELIVERY.value, **self.common(v), "started_at": started, "ended_at": ended,
            "lat": round(out_lat, 7), "lon": round(out_lon, 7), "distance_m": distance, "tasks": sorted(set(tasks)),
            "confirmation": confirmation, "satisfaction": satisfaction,
            "notes": DELIVERY_NOTES[rng.randrange(len(DELIVERY_NOTES))] if rng.random() < 0.08 else "",
            "device_time": ended if offline else None, "idempotency_key": self.key(), "recorded_by_id": signer[0],
            "recorded_by": signer[1],
        }, v, refers_to=check_in)
        self.counts["completed" if v.slot == 0 else "completed_second_carer"] += 1
        self.counts["far_from_address"] += far
        self.counts["late"] += arrive > (planned + grace) * 60
        self.counts["late_after_window_opening"] += arrive > (opens + grace) * 60
        if corrected:
            self.correction(v, delivery, corrected, true_end, s.checklist)

    def correction(self, v: _Visit, delivery: _Entry, reason: str, true_end: datetime, checklist) -> None:
        rng, original = self.rng, delivery.fields
        admin = self.providers[v.series.organisation_id]
        fields = {"kind": RecordKind.CORRECTION.value, "visit_id": None, "recipient_id": original["recipient_id"],
                  "worker_id": original["worker_id"], "service_type_id": original["service_type_id"],
                  "service_date": original["service_date"], "started_at": original["started_at"],
                  "ended_at": original["ended_at"], "lat": original["lat"], "lon": original["lon"],
                  "distance_m": original["distance_m"], "tasks": original["tasks"],
                  "confirmation": original["confirmation"], "satisfaction": original["satisfaction"],
                  "flags": [], "reason_code": reason, "idempotency_key": self.key()}
        if reason == CorrectionReason.WRONG_TIME:  # the caregiver's own correction waits for approval
            signer = v.worker.signer
            fields.update(ended_at=true_end, notes="忘记签退，按实际离开时间更正", recorded_by_id=signer[0],
                          recorded_by=signer[1])
            fields["flags"].append("pending_approval")
            when = self.at(v.day + timedelta(days=1), rng.uniform(7.5, 10) * 3600)
        else:
            if len(original["tasks"]) < len(checklist):
                fields.update(tasks=sorted(checklist), notes="回访核实，补录遗漏的服务项目")
            else:  # the check-in was tapped late, after the work had begun: the roster's start, as the family says
                start = min(original["started_at"], self.at(v.day, (v.start or v.series.window[0]) * 60))
                fields.update(started_at=start, notes="回访核实，签入晚于实际到达，按家属确认的到达时间更正")
            fields.update(recorded_by_id=admin[0], recorded_by=admin[1])
            when = self.at(v.day + timedelta(days=rng.randint(1, 5)), rng.uniform(9, 17) * 3600)
        # A visit the office entered the next morning is corrected after that entry, never before it (the ledger
        # holds the delivery before anything that refers to it).
        when = max(when, delivery.received_at + timedelta(minutes=20))
        correction = self.add(v.series.organisation_id, when, fields, v, refers_to=delivery)
        self.counts["corrected"] += 1
        if reason == CorrectionReason.WRONG_TIME:
            approved = self.at(v.day + timedelta(days=rng.randint(2, 3)), rng.uniform(9, 17) * 3600)
            self.add(v.series.organisation_id, approved, {
                "kind": RecordKind.APPROVAL.value, "visit_id": None, "recipient_id": original["recipient_id"],
                "worker_id": original["worker_id"], "service_type_id": original["service_type_id"],
                "service_date": original["service_date"], "reason_code": "provider", "idempotency_key": self.key(),
                "recorded_by_id": admin[0], "recorded_by": admin[1],
            }, v, refers_to=correction)
            self.counts["approvals"] += 1

    def missed(self, v: _Visit, told: dict[int, tuple[date, datetime]]) -> None:
        rng, s = self.rng, v.series
        reason = MissedReason(v.reason)
        opens, closes = s.window
        if reason == MissedReason.NOT_DONE:  # nobody recorded it: the missed-visit check did at the window's end
            ended = self.at(v.day, closes * 60)
            signer, key, received = (None, "system"), None, ended + timedelta(seconds=rng.randint(5, 120))
        else:
            planned = v.start if v.start is not None else opens
            moment = planned * 60 + rng.uniform(2, 20) * 60
            if reason == MissedReason.WORKER_ABSENT:
                moment = max(opens * 60, planned * 60 - rng.uniform(30, 120) * 60)
            ended = self.at(v.day, min(moment, LAST_SECOND))
            signer = self.providers[s.organisation_id] if reason == MissedReason.WORKER_ABSENT else v.worker.signer
            key, received = self.key(), self.received(ended)
        entry = self.add(s.organisation_id, received, {
            "kind": RecordKind.MISSED.value, **self.common(v), "outcome_reason": reason.value,
            "notes": MISSED_NOTES[reason], "ended_at": ended, "idempotency_key": key,
            "recorded_by_id": signer[0], "recorded_by": signer[1],
        }, v)
        if reason == MissedReason.NOT_DONE:
            entry.fields["system_missed"] = True  # its key names the visit (`system-missed-<id>`)
        if reason == MissedReason.IN_HOSPITAL:
            told[s.recipient_id] = (v.day, ended)
        self.counts["missed"] += v.slot == 0

    def cancelled(self, v: _Visit, told: dict[int, tuple[date, datetime]]) -> None:
        rng, s = self.rng, v.series
        admin = self.providers[s.organisation_id]
        if v.reason == HOSPITAL_CANCEL and s.recipient_id in told and told[s.recipient_id][0] < v.day:
            moment = told[s.recipient_id][1] + timedelta(hours=rng.uniform(1, 3))  # the day the family told
        else:
            moment = self.at(v.day - timedelta(days=rng.randint(1, 3)), rng.uniform(9, 17) * 3600)
        self.add(s.organisation_id, self.received(moment), {
            "kind": RecordKind.CANCELLED.value, **self.common(v), "outcome_reason": v.reason, "ended_at": moment,
            "idempotency_key": self.key(), "recorded_by_id": admin[0], "recorded_by": admin[1],
        }, v)
        self.counts["cancelled"] += v.slot == 0


# --- what the records say of themselves, and the exception queue worked -------------------------------------


@functools.cache
def signature_png() -> str:
    """A signature as a phone's signature pad gives it: a PNG data URL of a pen stroke (the same every time)."""
    image = Image.new("RGBA", (240, 90), (255, 255, 255, 0))
    pen = ImageDraw.Draw(image)
    points = [(18 + 3 * k, 52 + 22 * math.sin(k / 5.0) * math.cos(k / 13.0)) for k in range(68)]
    pen.line(points, fill=(20, 20, 60, 255), width=3, joint="curve")
    pen.line([(60, 70), (190, 64)], fill=(20, 20, 60, 255), width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plain(entry: _Entry, worker: _Worker | None) -> exceptions.Entry:
    f = entry.fields
    by_worker = worker is not None and (f.get("recorded_by_id"), f.get("recorded_by")) == worker.signer
    return exceptions.Entry(
        id=entry.order, kind=f["kind"], received_at=entry.received_at, started_at=f.get("started_at"),
        ended_at=f.get("ended_at"), lat=f.get("lat"), lon=f.get("lon"), distance_m=f.get("distance_m"),
        by_worker=by_worker, recorded_by=f.get("recorded_by", ""),
        confirmation=(f.get("confirmation") or {}).get("method", "none"), tasks=len(f.get("tasks") or ()),
        flags=tuple(f.get("flags") or ()), refers_to_id=entry.refers_to.order if entry.refers_to else None,
        reason_code=f.get("reason_code", ""), outcome_reason=f.get("outcome_reason", ""), notes=f.get("notes", ""))


def _record_flags(writer: _Writer, thresholds: exceptions.Thresholds) -> None:
    """Each check-in, delivery and correction flagged with the visit's exception codes as they stood when it was
    made (what `services` writes: the record says itself what was wrong with it). Overlaps with other visits are
    the queue's to find."""
    by_visit: dict[int, list[_Entry]] = defaultdict(list)
    for entry in writer.entries:
        by_visit[id(entry.visit)].append(entry)
    for entries in by_visit.values():
        v = entries[0].visit
        s = v.series
        expected = writer.at(v.day, (v.start if v.start is not None else s.window[0]) * 60)
        plan = {"visit_id": 0, "expected_start": expected, "expected_end": expected + timedelta(minutes=s.duration),
                "duration_min": s.duration, "address": s.point, "meal": s.meal, "has_checklist": bool(s.checklist),
                "short_share": s.short_share, "long_share": s.long_share}
        made: list[exceptions.Entry] = []
        for entry in sorted(entries, key=lambda e: e.order):
            plain = _plain(entry, v.worker)
            kind = entry.fields["kind"]
            if kind in (RecordKind.CHECK_IN, RecordKind.DELIVERY, RecordKind.CORRECTION):
                status = "in_progress" if kind == RecordKind.CHECK_IN else "completed"
                as_if = replace(plain, flags=()) if kind == RecordKind.CORRECTION else plain  # as if in force
                codes = exceptions.codes_of(exceptions.find_exceptions(
                    exceptions.VisitFacts(status=status, entries=(*made, as_if), **plan), thresholds))
                entry.fields["flags"] = [flag for flag in plain.flags if flag.startswith("pending_")] + codes
                plain = replace(plain, flags=tuple(entry.fields["flags"]))
            made.append(plain)


# How the provider explained each kind of exception in the past, and what it said.
EXPLANATIONS = {
    "late_start": ((ResolutionReason.TRAFFIC_DELAY, 6), (ResolutionReason.EMERGENCY, 2),
                   (ResolutionReason.SCHEDULE_AGREED, 2)),
    "early_end": ((ResolutionReason.RECIPIENT_REQUEST, 6), (ResolutionReason.SCHEDULE_AGREED, 4)),
    "late_end": ((ResolutionReason.SCHEDULE_AGREED, 5), (ResolutionReason.TRAFFIC_DELAY, 5)),
    "short_visit": ((ResolutionReason.RECIPIENT_REQUEST, 1),),
    "long_visit": ((ResolutionReason.RECIPIENT_REQUEST, 1),),
    "far_check_in": ((ResolutionReason.GPS_INACCURATE, 7), (ResolutionReason.MET_ELSEWHERE, 3)),
    "far_check_out": ((ResolutionReason.GPS_INACCURATE, 7), (ResolutionReason.MET_ELSEWHERE, 3)),
    "no_confirmation": ((ResolutionReason.UNABLE_TO_CONFIRM, 1),),
    "code_failed": ((ResolutionReason.UNABLE_TO_CONFIRM, 1),),
    "no_tasks": ((ResolutionReason.DATA_ENTRY_ERROR, 1),),
    "manual_entry": ((ResolutionReason.DEVICE_PROBLEM, 1),),
    "edited_times": ((ResolutionReason.DATA_ENTRY_ERROR, 1),),
    "late_submission": ((ResolutionReason.DEVICE_PROBLEM, 1),),
    "overlap": ((ResolutionReason.DATA_ENTRY_ERROR, 1),),
    "missed": ((ResolutionReason.RECIPIENT_ABSENT, 8), (ResolutionReason.STAFF_SHORTAGE, 2)),
    "cancelled_late": ((ResolutionReason.RECIPIENT_REQUEST, 1),),
}
EXPLANATION_NOTES = {
    ResolutionReason.TRAFFIC_DELAY: "上一户服务延时，路上堵车",
    ResolutionReason.EMERGENCY: "上一户对象突发不适，陪同处理后赶来",
    ResolutionReason.SCHEDULE_AGREED: "已与对象电话约定调整时间",
    ResolutionReason.RECIPIENT_REQUEST: "对象当天要求调整服务时长",
    ResolutionReason.GPS_INACCURATE: "高层住宅室内定位偏差，已核实在对象家中服务",
    ResolutionReason.MET_ELSEWHERE: "对象在社区日间照料中心，按约在中心服务",
    ResolutionReason.UNABLE_TO_CONFIRM: "对象视力不好、家属不在，无法读出确认码，已电话回访确认",
    ResolutionReason.DATA_ENTRY_ERROR: "录入有误，已按实际情况更正",
    ResolutionReason.DEVICE_PROBLEM: "服务人员手机故障，事后补录，已电话回访确认",
    ResolutionReason.RECIPIENT_ABSENT: "对象不在家或住院，已联系家属",
    ResolutionReason.STAFF_SHORTAGE: "服务人员临时请假，未能安排替班，已另约时间",
}
REJECTION_NOTE = "回访核实与记录不符，本次不予结算"
BUREAU = "区民政局"
# The share of a month's exceptions the provider had explained, and of those the bureau had decided, by the
# month's age (0: this month, 1: last month, more: earlier), and the share the bureau rejected.
WORKED = {0: (0.5, 0.3), 1: (0.85, 0.75)}
WORKED_EARLIER = (1.0, 1.0)
P_REJECTED = 0.04


def _work_the_queue(rng: random.Random, today: date, providers: dict, now: datetime) -> dict[str, int]:
    """The history's exceptions as the providers and the bureau worked them: older months all explained and
    decided (a few rejected), last month mostly, this month about half explained and a few decided."""
    rows = db.session.execute(select(EvvException.id, EvvException.code, EvvException.organisation_id,
                                     EvvException.service_date)
                              .where(EvvException.status == ExceptionStatus.OPEN)
                              .order_by(EvvException.id)).all()
    updates, steps = [], []
    for exception_id, code, organisation_id, day in rows:
        age = (today.year - day.year) * 12 + today.month - day.month
        explained, decided = WORKED.get(age, WORKED_EARLIER)
        if rng.random() >= explained:
            continue
        reason = _weighted(rng, EXPLANATIONS[code])
        resolved_at = min(now, local_midnight(day + timedelta(days=rng.randint(1, 3))) + timedelta(hours=rng.uniform(9, 17)))
        by = providers[organisation_id][1]
        values = {"exception_id": exception_id, "status": ExceptionStatus.RESOLVED.value, "reason_code": reason.value,
                  "resolution_note": EXPLANATION_NOTES[reason], "resolved_by": by, "resolved_at": resolved_at,
                  "decision_note": "", "decided_by": "", "decided_at": None, "updated_at": resolved_at}
        steps.append({"exception_id": exception_id, "action": "resolved", "status": values["status"],
                      "reason_code": reason.value, "note": values["resolution_note"], "details": {}, "by_id": None,
                      "by": by, "at": resolved_at})
        if rng.random() < decided:
            rejected = rng.random() < P_REJECTED
            decided_at = min(now, resolved_at + timedelta(days=rng.randint(1, 4), hours=rng.uniform(0, 6)))
            status = ExceptionStatus.REJECTED if rejected else ExceptionStatus.APPROVED
            values.update(status=status.value, decision_note=REJECTION_NOTE if rejected else "", decided_by=BUREAU,
                          decided_at=decided_at, updated_at=decided_at)
            steps.append({"exception_id": exception_id, "action": status.value, "status": status.value,
                          "reason_code": "", "note": values["decision_note"], "details": {}, "by_id": None,
                          "by": BUREAU, "at": decided_at})
        updates.append(values)
    table = EvvException.__table__
    if updates:
        db.session.execute(update(table).where(table.c.id == bindparam("exception_id")).values(
            {name: bindparam(name) for name in updates[0] if name != "exception_id"}), updates)
        db.session.execute(insert(ExceptionStep), steps)
    return dict(Counter(status for (status,) in db.session.execute(select(EvvException.status))))


# --- writing ---------------------------------------------------------------------------------------------


def _reserve_record_ids(count: int) -> list[int]:
    """Ids for `count` new service records: taken from the sequence on PostgreSQL, after the highest on SQLite."""
    if count == 0:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.execute(text("SELECT nextval(pg_get_serial_sequence('service_records', 'id')) "
                                       "FROM generate_series(1, :n)"), {"n": count}).scalars().all()
        return sorted(rows)
    highest = db.session.scalar(select(func.max(ServiceRecord.id))) or 0
    return list(range(highest + 1, highest + 1 + count))


RECORD_COLUMNS = [c.name for c in ServiceRecord.__table__.columns]


def _chain(entries: list[_Entry], received_now: datetime) -> list[dict]:
    """Sequence, hash and row of every entry: each organisation's chain continues from its last record, in
    the order the entries were received; the fields, defaults and rounding are `append_entry`'s."""
    entries.sort(key=lambda e: (e.received_at, e.order))
    for entry, record_id in zip(entries, _reserve_record_ids(len(entries)), strict=True):
        entry.id = record_id
    organisation_ids = sorted({e.organisation_id for e in entries})
    # PostgreSQL: one writer per chain at a time, as `append_entry` does.
    db.session.execute(select(Organisation.id).where(Organisation.id.in_(organisation_ids)).with_for_update())
    last = {org: (0, ledger.GENESIS) for org in organisation_ids}
    for org, sequence, digest in db.session.execute(
        select(ServiceRecord.organisation_id, ServiceRecord.sequence, ServiceRecord.hash)
        .where(ServiceRecord.organisation_id.in_(organisation_ids))
        .order_by(ServiceRecord.organisation_id, ServiceRecord.sequence)
    ):
        last[org] = (sequence, digest)
    rows = []
    for entry in entries:
        fields = dict(entry.fields)
        system_missed = fields.pop("system_missed", False)
        fields["visit_id"] = entry.visit.id
        if system_missed:
            fields["idempotency_key"] = f"system-missed-{entry.visit.id}"
        if entry.refers_to is not None:
            fields["refers_to_id"] = entry.refers_to.id
        sequence, previous = last[entry.organisation_id]
        values = {"tasks": [], "confirmation": {}, "notes": "", "outcome_reason": "", "flags": [], "reason_code": "",
                  **fields, "organisation_id": entry.organisation_id, "sequence": sequence + 1,
                  "received_at": min(entry.received_at, received_now), "prev_hash": previous}
        for name in ("lat", "lon"):
            if values.get(name) is not None:
                values[name] = round(values[name], 7)
        values["hash"] = ledger.record_hash(values, previous)
        last[entry.organisation_id] = (values["sequence"], values["hash"])
        rows.append({name: values.get(name) for name in RECORD_COLUMNS} | {"id": entry.id})
    return rows


def _insert_visits(visits: list[_Visit], first: date, last: date) -> None:
    rows = []
    for v in visits:
        s = v.series
        created = local_midnight(v.day - timedelta(days=13)) + timedelta(hours=1)  # the nightly generation
        placed = v.start is not None
        rows.append({
            "series_id": s.id, "slot": v.slot, "referral_id": None, "organisation_id": s.organisation_id,
            "recipient_id": s.recipient_id, "service_type_id": s.service_type_id, "service_date": v.day,
            "window_start": None, "window_end": None, "duration_min": s.duration, "urgent": s.urgent,
            "status": v.status, "worker_id": v.worker.id if v.worker else None,
            "planned_arrival": local_midnight(v.day) + timedelta(minutes=v.arrival) if placed else None,
            "planned_start": local_midnight(v.day) + timedelta(minutes=v.start) if placed else None,
            "planned_end": local_midnight(v.day) + timedelta(minutes=v.start + s.duration) if placed else None,
            "travel_min": v.travel, "sequence": v.sequence, "locked": False, "unplaced_reason": "",
            "cancel_reason": v.reason if v.status == VisitStatus.CANCELLED else "",
            "created_at": created, "updated_at": v.updated or created,
        })
    series_rows = {s.id: s for s in db.session.scalars(select(VisitSeries).where(
        VisitSeries.id.in_({v.series.id for v in visits})))}
    for row in rows:
        series = series_rows[row["series_id"]]
        row.update(referral_id=series.referral_id, window_start=series.window_start, window_end=series.window_end)
    for chunk in range(0, len(rows), 5000):
        db.session.execute(Visit.__table__.insert(), rows[chunk:chunk + 5000])
    ids = {(series_id, day, slot): visit_id for visit_id, series_id, day, slot in db.session.execute(
        select(Visit.id, Visit.series_id, Visit.service_date, Visit.slot)
        .where(Visit.series_id.in_(list(series_rows)), Visit.service_date.between(first, last)))}
    for v in visits:
        v.id = ids[(v.series.id, v.day, v.slot)]


def _leave_open(visits: list[_Visit], count: int) -> int:
    """Leave the last `count` visits (latest planned start first) of the last day with completed visits published
    and unrecorded: visits of one carer, placed on a route, that would have been completed. How many were left."""
    done = [v for v in visits if v.status == VisitStatus.COMPLETED and v.series.carers == 1 and v.start is not None]
    if count <= 0 or not done:
        return 0
    last_day = max(v.day for v in done)
    chosen = sorted((v for v in done if v.day == last_day), key=lambda v: (v.start, v.series.id), reverse=True)[:count]
    for v in chosen:
        v.status = VisitStatus.PUBLISHED.value
    return len(chosen)


def has_history(today: date | None = None) -> bool:
    """Whether any service record is dated before today."""
    today = today or district_today()
    return db.session.scalar(select(ServiceRecord.id).where(ServiceRecord.service_date < today).limit(1)) is not None


def write_demo_history(years: float = TARGET_YEARS, seed: int = DEFAULT_SEED,
                       target: int | None = None, leave_open: int = 0) -> HistoryReport:
    """Write `years` of plausible visits and service records up to yesterday for every active visit series of the
    demo district (after `servicehub demo serve`), about `target` completed person-times (default: 8,891 for two
    years, pro rata); the last `leave_open` visits of the last day are left published and unrecorded. Idempotent:
    nothing is written when any record before today exists."""
    started = clock.perf_counter()
    if years <= 0:
        raise Conflict(N_("Write at least one day of history."), {"years": ["Must be positive."]})
    today = district_today()
    if has_history(today):
        return HistoryReport(False, "The demo district already has service history (records before today): "
                                    "nothing written.")
    series = _load_series()
    if not series:
        raise Conflict(N_("No active visit series: run `servicehub demo serve` first."), code="no_series")
    last = today - timedelta(days=1)
    first = today - timedelta(days=max(1, round(365 * years)))
    target = round(TARGET_COMPLETED * years / TARGET_YEARS) if target is None else target
    rng = random.Random(seed)
    _plan_outcomes(series, first, last, years, rng)
    exponent, _ = calibrate(series, first, last, target)

    existing = set(db.session.execute(
        select(Visit.series_id, Visit.service_date, Visit.slot)
        .where(Visit.series_id.in_([s.id for s in series]), Visit.service_date.between(first, last))).all())
    visits: list[_Visit] = []
    for s in series:
        begin = series_start(s.coverage, s.later, exponent, first, last)
        for day in s.days:
            if day < begin:
                continue
            status, reason = s.outcomes[day]
            for slot in range(s.carers):
                if (s.id, day, slot) not in existing:
                    visits.append(_Visit(s, day, slot, status.value, reason))
    organisation_ids = {s.organisation_id for s in series}
    workers = _load_workers(organisation_ids)
    if unstaffed := sorted(organisation_ids - set(workers)):
        raise Conflict(N_("Organisations without active workers cannot have served anyone."),
                       {"organisation_id": [str(o) for o in unstaffed]}, code="no_workers")
    planned = _plan_days(visits, workers, rng)
    left_open = _leave_open(visits, leave_open)

    now = utcnow()
    writer = _Writer(rng, _provider_signers(organisation_ids))
    told: dict[int, tuple[date, datetime]] = {}  # recipient -> the day and time the family said: in hospital
    correctable_until = today - timedelta(days=7)
    for v in sorted(visits, key=lambda v: (v.day, v.series.window[0], v.series.id, v.slot)):
        if v.status == VisitStatus.PUBLISHED:  # left open: nothing was recorded
            continue
        if v.status == VisitStatus.COMPLETED:
            corrected = None
            if v.day < correctable_until and rng.random() < P_CORRECTED:
                corrected = CorrectionReason.WRONG_TIME if rng.random() < P_WRONG_TIME else CorrectionReason.DATA_ENTRY
            writer.completed(v, corrected)
        elif v.status == VisitStatus.MISSED:
            writer.missed(v, told)
        else:
            writer.cancelled(v, told)

    _record_flags(writer, verification.thresholds())
    _insert_visits(visits, first, last)
    rows = _chain(writer.entries, now)
    for chunk in range(0, len(rows), 5000):
        db.session.execute(ServiceRecord.__table__.insert(), rows[chunk:chunk + 5000])
    refresh_deliveries(db.session, {r["visit_id"] for r in rows if r["kind"] == RecordKind.DELIVERY})
    found = verification.refresh_in_chunks(db.session, {r["visit_id"] for r in rows}, now=now)
    queue = _work_the_queue(rng, today, writer.providers, now)
    counts = writer.counts
    report = HistoryReport(
        True, f"Wrote {years:g} years of service history for the demo district.", date_from=first, date_to=last,
        series=len(series), recipients=len({s.recipient_id for s in series}), target=target,
        exponent=round(exponent, 4), visits=len(visits), completed=counts["completed"], missed=counts["missed"],
        cancelled=counts["cancelled"], corrected=counts["corrected"], approvals=counts["approvals"],
        late=counts["late"], late_after_window_opening=counts["late_after_window_opening"],
        far_from_address=counts["far_from_address"], overtime=planned["overtime"], squeezed=planned["squeezed"],
        office=counts["office"], offline=counts["offline"], left_open=left_open, records=len(rows),
        records_by_kind=dict(Counter(r["kind"] for r in rows)),
        exceptions=dict(Counter(f.code.value for findings in found.values() for f in findings)), queue=queue,
        organisations=len({r["organisation_id"] for r in rows}),
    )
    summary = {k: v for k, v in asdict(report).items() if k not in ("written", "message", "seconds")}
    record_event(db.session, "demo_history_written", "service_records", None, seed=seed, **summary)
    db.session.commit()
    report.seconds = round(clock.perf_counter() - started, 2)
    return report
