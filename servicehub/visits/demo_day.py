"""The demo district's live day (`servicehub demo day`, run by `make run` on every start, after `servicehub demo
users`): the demo is alive when its pages open, as on a real morning.

`servicehub demo serve` puts the demo district in service from today and `servicehub demo history` writes the two
years before it. This module makes today a working day, through the same services the pages and phones use:

1. **Confirmation cards.** Every recipient without one gets a card (`cards.new_card`, issued by "system"; no PDF
   and no alert: nothing was replaced). Its secret stays encrypted; this module reads it back only to be the
   recipient's phone below.
2. **Rosters.** Today and tomorrow are planned with the OR-Tools solver (`scheduling.services.start_run`, run
   inline, `SOLVER_SECONDS` of search a day) and published (`publish_run`) by each organisation's provider admin,
   for every organisation with visits on those days. A day an organisation has already published is left as it is.
3. **The demo caregiver.** The `caregiver` account is linked to a worker of its organisation who has visits today:
   the worker it is linked to if they do, else the one with the most still ahead, then the most (`/my/route`).
4. **The morning so far.** For today's published visits whose time has come, what their caregivers did is recorded
   through `services.check_in`, `check_out` and `record_outcome`, each at the moment it happened
   (`database.clock_at`), so that the ledger's received times are those of a real morning: positions a few to tens
   of metres from the address (never on it), the recipient's one-time code from the family's phone (computed from
   the card's secret at that moment) or the next one on the printed card, sometimes a signature, tasks from the
   checklist, satisfaction. The day's visits are dealt out in blocks of `BLOCK` in order of planned start: in each
   block one check-in comes late and one visit gets, in turn, an entry by the office (the provider admin, later,
   with the times the caregiver wrote down: the phone broke), a check-in far from the address, a check-out without
   confirmation, or a recipient not at home (recorded by the caregiver) — two of them in each of the first two
   blocks, so that a morning shows every kind. A visit under way at the start stays in progress. And a handful of
   the visits due by now are left **not started**: the scheduler's first detection run after the start (`make run`
   runs it at once) raises late alerts to their organisations; those whose window has closed become missed visits
   in the managers' inbox. The pages' users carry on from there.
5. **Once a day.** What was recorded up to when is kept in the audit log (`demo_day_lived`); a second start the same
   day records nothing more (what came due in between is the scheduler's to find: late, then missed).

**Early starts, Sundays.** Before about 08:30 nothing of today is due, and the demo district works no Sundays (the
demo caregiver then has no visits today; the day after is planned). So that the managers still find alerts within
one detection cycle whatever the hour, `make run` has the history leave the last few visits of its last day open
(`servicehub demo history --leave-open 3`): published on their caregivers' rosters and never recorded. Nobody was
checking while the demo was being set up; the first detection run finds them missed, as it would any visit nobody
recorded.

**Days in between.** Visits are generated two weeks ahead, and the missed-visit check marks every planned or
published visit of the last `LOOKBACK_DAYS` (7) days missed once its window has closed: a demo started again days
later would flood the managers' inbox with every visit of the days it did not run. So each start first catches up
the days since the demo went into service, within those seven: each organisation's day not yet published is planned
and published as at 06:30 that day, and the visits that nobody could be sent to are called off then by their
organisation (a cancellation with the reason, told to the family, no alert); the visits nobody recorded are recorded
as above, from where the last start stopped or the scheduler last looked (what it found late or missed stays so) to
the end of the day. Nothing is left not started but the last few visits of the latest of those days (the alerts the
history leaves on a first start). Days before the last seven are never looked at by the check and are left as they
are. Today's and tomorrow's visits nobody could be placed for stay the provider's to settle: the day page lists them,
and the check marks them missed if nobody goes.

Deterministic for a seed and a moment: each visit's times and positions come from a generator seeded with the seed
and its id, the roles from one seeded with the seed and the day.
"""

from __future__ import annotations

import math
import random
import time as clock
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from servicehub import crypto
from servicehub.auth.audit import Actor, acting_as, record_event
from servicehub.auth.models import AuditLog, User
from servicehub.auth.permissions import Principal, Role
from servicehub.database import clock_at, utcnow
from servicehub.errors import DomainError
from servicehub.extensions import db
from servicehub.jobs.models import JobRun
from servicehub.registry import rules
from servicehub.registry.models import Organisation, Recipient, Worker
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import RosterVersion, RunStatus, Visit, VisitSeries, VisitStatus
from servicehub.timeutil import district_tz, local_midnight
from servicehub.visits import cards, confirmation, services
from servicehub.visits.history import DEFAULT_SEED, DELIVERY_NOTES, MISSED_NOTES, signature_png
from servicehub.visits.models import ConfirmationCard, MissedReason

SOLVER_SECONDS = 1.0  # search time of a day of one organisation (the demo's days are 1 to 50 visits)
RETRY_SECONDS = 8.0  # a run that found no plan in that time is run again with this long
LEFT_OPEN = 3  # the last visits of the latest day caught up, left for the missed-visit check
BLOCK = 12  # roles are dealt per block of this many visits, in order of planned start
SPECIALS = ("office", "far", "no_confirmation", "missed")  # one per block, in turn (two in each of the first two)
AT_CHECK_OUT = frozenset({"office", "no_confirmation"})
NOT_STARTED_SHARE = 0.06  # of the visits due by now, left not started (at least two)
PLAN_AT = time(6, 30)  # a day caught up is planned and published at this hour of that day
P_SIGNATURE = 0.08
P_PHONE = 0.6  # recipients who confirm with the code on a family member's phone; the others read the printed card
DEMO_CAREGIVER = "caregiver"
MARKER = "demo_day_lived"
CALL_OFF_REASON = "人手不足，当日无人可派，已电话告知对象"
LAST_MINUTE = timedelta(hours=23, minutes=58)  # records stay on the visit's day

NOT_STARTED_STATUSES = (VisitStatus.PUBLISHED, VisitStatus.IN_PROGRESS)


@dataclass
class DemoDayReport:
    """What `live_demo_day` did."""

    today: date
    now: datetime
    cards: int = 0
    published: dict[date, list[tuple[int, int, int]]] = field(default_factory=dict)  # day -> (org, placed, unplaced)
    failed_runs: list[str] = field(default_factory=list)
    already_published: int = 0  # organisation-days left as they were
    caught_up: dict[date, Counter] = field(default_factory=dict)
    morning: Counter = field(default_factory=Counter)
    lived_before: datetime | None = None  # today was lived at an earlier start, until then
    caregiver: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the command line."""
        local = self.now.astimezone(district_tz())
        lines = [f"Demo day {self.today} ({local:%a}) at {local:%H:%M}: {self.cards} confirmation cards issued"]
        for day, rows in sorted(self.published.items()):
            if rows:
                lines.append(f"  {day}: planned and published for {len(rows)} organisations "
                             f"({sum(r[1] for r in rows)} visits placed, {sum(r[2] for r in rows)} unplaced)")
        if self.already_published:
            lines.append(f"  {self.already_published} organisation-days already published: left as they were")
        lines += [f"  run failed: {message}" for message in self.failed_runs]
        for day, counts in sorted(self.caught_up.items()):
            lines.append(f"  caught up {day}: {_counts(counts)}")
        if self.lived_before is not None:
            lines.append(f"  today was lived until {self.lived_before.astimezone(district_tz()):%H:%M} at an "
                         "earlier start: nothing more recorded")
        elif self.morning:
            lines.append(f"  today so far: {_counts(self.morning)}")
        else:
            lines.append("  today so far: nothing due yet")
        if self.caregiver:
            lines.append(f"  {self.caregiver}")
        lines.append("  " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items()))
        return "\n".join(lines)


def _counts(counts: Counter) -> str:
    order = ("completed", "in_progress", "missed", "not_started", "late", "far", "office", "no_confirmation",
             "signature", "called_off", "skipped")
    words = {"completed": "completed", "in_progress": "in progress", "missed": "missed (recorded by the caregiver)",
             "not_started": "not started (for the scheduler's check)", "late": "late check-ins",
             "far": "far from the address", "office": "entered by the office", "no_confirmation": "without confirmation",
             "signature": "signed", "called_off": "called off (nobody to send)",
             "skipped": "skipped (changed meanwhile)"}
    return ", ".join(f"{counts[key]} {words[key]}" for key in order if counts.get(key))


# --- the whole command -------------------------------------------------------------------------------------------


def live_demo_day(seed: int = DEFAULT_SEED, time_limit_s: float = SOLVER_SECONDS) -> DemoDayReport:
    """Cards, days caught up, today and tomorrow published, the demo caregiver linked, the morning recorded."""
    now = utcnow()
    today = now.astimezone(district_tz()).date()
    report = DemoDayReport(today, now)
    with _timed(report, "cards"):
        report.cards = issue_missing_cards()
    with _timed(report, "catch-up"):
        days = days_to_catch_up(today)
        for day in days:
            planning = max(local_midnight(day) + timedelta(hours=PLAN_AT.hour, minutes=PLAN_AT.minute), _since(day))
            with clock_at(planning):
                publish_days([day], time_limit_s, report)
            called_off = call_off_unplaced(day, planning, seed)
            report.caught_up[day] = live(day, local_midnight(day + timedelta(days=1)), seed,
                                         leave_open=LEFT_OPEN if day == days[-1] else 0)
            if called_off:
                report.caught_up[day]["called_off"] = called_off
    with _timed(report, "plans"):
        # Today's roster as it was published first thing (the morning lived below follows it): a plan made now
        # would leave the morning out as past.
        first_thing = local_midnight(today) + timedelta(hours=PLAN_AT.hour, minutes=PLAN_AT.minute)
        with clock_at(min(now, first_thing)):
            publish_days([today, today + timedelta(days=1)], time_limit_s, report)
    report.caregiver = link_demo_caregiver(today)
    with _timed(report, "morning"):
        report.lived_before = _lived_until(today)
        if report.lived_before is None:
            report.morning = live(today, now, seed, not_started=True)
    return report


@contextmanager
def _timed(report: DemoDayReport, name: str):
    started = clock.perf_counter()
    try:
        yield
    finally:
        report.timings[name] = report.timings.get(name, 0.0) + clock.perf_counter() - started


# --- cards -------------------------------------------------------------------------------------------------------


def issue_missing_cards() -> int:
    """A confirmation card for every active recipient who has none in force; how many were issued."""
    have = set(db.session.scalars(select(ConfirmationCard.recipient_id).where(ConfirmationCard.revoked_at.is_(None))))
    issued = 0
    for recipient in db.session.scalars(select(Recipient).order_by(Recipient.id)):
        if recipient.id not in have and recipient.status == "active":
            cards.new_card(recipient, services.SYSTEM)
            issued += 1
    db.session.commit()
    return issued


# --- rosters -----------------------------------------------------------------------------------------------------


@contextmanager
def _inline_runs():
    """Solver runs in this thread (a command exits when it is done: no background thread may outlive it)."""
    config = current_app.config
    before = config["SERVICEHUB_RUN_INLINE"]
    config["SERVICEHUB_RUN_INLINE"] = True
    try:
        yield
    finally:
        config["SERVICEHUB_RUN_INLINE"] = before


def publish_days(days: list[date], time_limit_s: float, report: DemoDayReport) -> None:
    """Plan and publish `days` (consecutive) for every organisation with visits on them and no roster yet, as its
    provider admin."""
    wanted = defaultdict(list)
    rows = db.session.execute(
        select(Visit.organisation_id, Visit.service_date).where(
            Visit.service_date.between(days[0], days[-1]), Visit.status != VisitStatus.CANCELLED).distinct()).all()
    published = {tuple(row) for row in db.session.execute(
        select(RosterVersion.organisation_id, RosterVersion.service_date)
        .where(RosterVersion.service_date.between(days[0], days[-1])))}
    for organisation_id, day in sorted(rows):
        if (organisation_id, day) in published:
            report.already_published += 1
        else:
            wanted[organisation_id].append(day)
    admins = provider_principals(set(wanted))
    with _inline_runs():
        for organisation_id, org_days in sorted(wanted.items()):
            admin = admins[organisation_id]
            with acting_as(Actor(admin.username, admin.user_id)):
                try:
                    run = scheduling.start_run(admin, organisation_id, min(org_days), max(org_days), time_limit_s)
                    if run.status != RunStatus.SOLVED:  # no first plan in so short a time (a busy machine)
                        run = scheduling.start_run(admin, organisation_id, min(org_days), max(org_days),
                                                   RETRY_SECONDS)
                    if run.status != RunStatus.SOLVED:
                        report.failed_runs.append(f"organisation {organisation_id} {min(org_days)}: {run.error}")
                        continue
                    plan = run.plan
                    scheduling.publish_run(admin, run.id)
                except DomainError as exc:
                    db.session.rollback()
                    report.failed_runs.append(f"organisation {organisation_id} {min(org_days)}: {exc.message}")
                    continue
            for day_key, day_plan in plan.items():
                placed = sum(1 for where in day_plan["visits"].values() if "unplaced" not in where)
                report.published.setdefault(date.fromisoformat(day_key), []).append(
                    (organisation_id, placed, len(day_plan["visits"]) - placed))


def provider_principals(organisation_ids: set[int]) -> dict[int, Principal]:
    """Each organisation's provider admin: its account (the oldest), else one named after the organisation."""
    principals = {}
    for organisation in db.session.scalars(select(Organisation).where(Organisation.id.in_(organisation_ids))):
        principals[organisation.id] = Principal(user_id=None, username=f"{organisation.short_name or organisation.name_zh} 管理员",
                                                role=Role.PROVIDER_ADMIN, organisation_id=organisation.id)
    admins = db.session.scalars(select(User).where(User.role == Role.PROVIDER_ADMIN.value, User.active.is_(True),
                                                   User.organisation_id.in_(organisation_ids))
                                .order_by(User.id.desc()))
    for user in admins:  # the oldest wins
        principals[user.organisation_id] = Principal(user_id=user.id, username=user.username,
                                                     role=Role.PROVIDER_ADMIN, organisation_id=user.organisation_id)
    return principals


def caregiver_principals(worker_ids: set[int]) -> dict[int, Principal]:
    """Each worker as their phone's caregiver: the account linked to them, else one named after them."""
    accounts = {user.worker_id: user for user in db.session.scalars(
        select(User).where(User.worker_id.in_(worker_ids), User.active.is_(True)))}
    principals = {}
    for worker in db.session.scalars(select(Worker).where(Worker.id.in_(worker_ids))):
        user = accounts.get(worker.id)
        principals[worker.id] = Principal(user_id=user.id if user else None,
                                          username=user.username if user else worker.name, role=Role.CAREGIVER,
                                          organisation_id=worker.organisation_id, worker_id=worker.id)
    return principals


def call_off_unplaced(day: date, moment: datetime, seed: int) -> int:
    """A day caught up: its organisations call off, when they plan it, the visits nobody could be sent to (the
    solver placed them nowhere), and tell the families; how many. A visit whose window has opened by then stays
    (the check marks it missed)."""
    visits = db.session.scalars(select(Visit).where(Visit.service_date == day, Visit.status == VisitStatus.PLANNED)
                                .order_by(Visit.id)).all()
    admins = provider_principals({v.organisation_id for v in visits})
    called_off = 0
    for k, visit in enumerate(visits):
        admin = admins[visit.organisation_id]
        rng = random.Random(f"{seed}:{visit.id}:call-off")
        try:
            with acting_as(Actor(admin.username, admin.user_id)), clock_at(moment + timedelta(minutes=5, seconds=20 * k)):
                services.record_outcome(admin, visit.id, str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                        "cancelled", CALL_OFF_REASON)
            called_off += 1
        except DomainError:
            db.session.rollback()
    return called_off


# --- the demo caregiver ------------------------------------------------------------------------------------------


def link_demo_caregiver(today: date, username: str = DEMO_CAREGIVER) -> str:
    """Link the demo caregiver account to a worker of its organisation with visits on its roster today (the one it
    is linked to if they have some, else the one with the most); what it says of it."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or user.organisation_id is None:
        return ""
    ahead = Visit.planned_start > utcnow()
    rows = db.session.execute(
        select(Visit.worker_id, func.count(Visit.id), func.count(Visit.id).filter(ahead))
        .where(Visit.organisation_id == user.organisation_id, Visit.service_date == today,
               Visit.worker_id.is_not(None), Visit.status != VisitStatus.CANCELLED, Visit.planned_start.is_not(None))
        .group_by(Visit.worker_id)).all()
    counts = {worker_id: (total, later) for worker_id, total, later in rows}
    if user.worker_id not in counts:
        taken = set(db.session.scalars(select(User.worker_id).where(User.worker_id.is_not(None), User.id != user.id)))
        workers = db.session.scalars(select(Worker).where(Worker.id.in_(set(counts) - taken))).all()
        if not workers:
            return f"{username}: no visits on the roster of its organisation today"
        best = min(workers, key=lambda w: (-counts[w.id][1], -counts[w.id][0], w.employee_no))
        record_event(db.session, "demo_caregiver_linked", "users", user.id, worker_id=best.id,
                     before=user.worker_id)
        user.worker_id = best.id
        db.session.commit()
    worker = db.session.get(Worker, user.worker_id)
    total, later = counts[worker.id]
    return (f"{username} is worker {worker.employee_no} ({worker.name}): {total} visits today at /my/route, "
            f"{later} of them still ahead")


# --- catching up and living a day --------------------------------------------------------------------------------


def _lived_until(day: date) -> datetime | None:
    """How far a day was lived at earlier starts (None: not at all)."""
    rows = db.session.scalars(select(AuditLog.changes).where(AuditLog.action == MARKER,
                                                             AuditLog.entity_id == day.isoformat())).all()
    moments = [datetime.fromisoformat(row["until"]) for row in rows if row.get("until")]
    return max(moments) if moments else None


def _watched_until(day: date) -> datetime | None:
    """The last time on `day` the scheduler looked for late and missed visits (None: it did not run that day)."""
    return db.session.scalar(select(func.max(JobRun.finished_at)).where(
        JobRun.job_id == "detect_visits", JobRun.status == "done",
        JobRun.finished_at >= local_midnight(day), JobRun.finished_at < local_midnight(day + timedelta(days=1))))


def _since(day: date) -> datetime:
    """Where recording `day` takes up: where an earlier start stopped, or the scheduler last looked (what it found
    late or missed until then stays so), or the day's beginning."""
    return max(moment for moment in (_lived_until(day), _watched_until(day), local_midnight(day)) if moment)


def days_to_catch_up(today: date) -> list[date]:
    """The days since the demo went into service, within the missed-visit check's reach, before today and not lived
    to their end, that have visits nobody recorded."""
    first = db.session.scalar(select(func.min(VisitSeries.start_date)))
    if first is None:
        return []
    first = max(first, today - timedelta(days=services.LOOKBACK_DAYS))
    open_days = set(db.session.scalars(select(Visit.service_date).where(
        Visit.service_date >= first, Visit.service_date < today,
        Visit.status.in_([VisitStatus.PLANNED, *NOT_STARTED_STATUSES])).distinct()))
    return sorted(day for day in open_days if _since(day) < local_midnight(day + timedelta(days=1)))


@dataclass
class _Fate:
    """What happens to one visit: its role and the moments of its events."""

    visit_id: int
    role: str  # normal | late | far | office | no_confirmation | missed
    check_in: datetime
    check_out: datetime
    entry: datetime  # office: when the office entered it
    rng: random.Random

    @property
    def first(self) -> datetime:
        """When the first thing of it is recorded."""
        return {"office": self.entry, "missed": self.check_in}.get(self.role, self.check_in)


def live(day: date, until: datetime, seed: int, *, not_started: bool = False, leave_open: int = 0) -> Counter:
    """Record what the caregivers did on `day` from where an earlier start stopped, or the scheduler last looked, until
    `until`; leave a handful of the visits due by then not started (`not_started`) and the day's last `leave_open`
    ones. What was recorded."""
    since = _since(day)
    counts: Counter = Counter()
    if until <= since:
        return counts
    visits = db.session.scalars(
        select(Visit).options(selectinload(Visit.recipient), selectinload(Visit.service_type))
        .where(Visit.service_date == day, Visit.worker_id.is_not(None), Visit.planned_start.is_not(None),
               Visit.status != VisitStatus.CANCELLED)
        .order_by(Visit.planned_start, Visit.id)).all()
    fates = deal(visits, day, seed)
    due = [v for v in visits if v.status in NOT_STARTED_STATUSES and since <= fates[v.id].first < until]
    skip = set()
    if not_started:  # among the plain visits: the others show what they are dealt for
        skip |= _not_started([v for v in due if fates[v.id].role in ("normal", "late")], until,
                             random.Random(f"{seed}:{day}:{since.isoformat()}"))
    if leave_open:
        skip |= {v.id for v in sorted(due, key=lambda v: (v.planned_start, v.id))[-leave_open:]}
    if skip:
        counts["not_started"] = len(skip)
    recorder = _Recorder(visits, fates, seed, counts)
    events = []
    for visit in visits:
        fate = fates[visit.id]
        if visit.id in skip or visit.status not in NOT_STARTED_STATUSES or (
                visit.status == VisitStatus.PUBLISHED and fate.first < since):  # left not started before
            continue
        if fate.role == "office":
            events.append((fate.entry, visit.id, "office"))
        elif fate.role == "missed":
            events.append((fate.check_in, visit.id, "missed"))
        else:
            events += [(fate.check_in, visit.id, "check_in"), (fate.check_out, visit.id, "check_out")]
    for moment, visit_id, action in sorted(events):
        if since <= moment < until:
            recorder.do(moment, visit_id, action)
    if in_progress := sum(1 for v in visits if v.id in recorder.started and v.id not in recorder.finished):
        counts["in_progress"] = in_progress
    record_event(db.session, MARKER, "demo_day", day.isoformat(), until=until.isoformat(), since=since.isoformat(),
                 **{k: v for k, v in counts.items() if v})
    db.session.commit()
    return counts


def deal(visits: list[Visit], day: date, seed: int) -> dict[int, _Fate]:
    """Each visit's role (dealt per block of `BLOCK` in order of planned start: one late, and specials in turn) and
    the moments of its events."""
    rng = random.Random(f"{seed}:{day}:roles")
    roles: dict[int, str] = {}
    for k in range(0, len(visits), BLOCK):
        number = k // BLOCK  # the first two blocks have two specials each, so a morning shows every kind
        specials = SPECIALS[2 * number:2 * number + 2] if number < 2 else (SPECIALS[number % len(SPECIALS)],)
        block = visits[k:k + BLOCK]
        # What shows at the check-out (the office's entry, no confirmation) goes to one of the block's shortest
        # visits, which end soonest; the rest to any.
        for role in sorted(("late", *specials), key=lambda r: r not in AT_CHECK_OUT):
            free = [v for v in block if v.id not in roles]
            if not free:
                break
            if role in AT_CHECK_OUT:
                free = sorted(free, key=lambda v: (v.planned_end, v.id))[:3]
            roles[rng.choice(free).id] = role
    grace = current_app.config["SERVICEHUB_LATE_MINUTES"], current_app.config["SERVICEHUB_LATE_MINUTES_MEAL"]
    fates = {}
    for visit in visits:
        r = random.Random(f"{seed}:{visit.id}")
        role = roles.get(visit.id, "normal")
        meal = visit.service_type.unit == "meal"
        closes = local_midnight(day) + timedelta(hours=visit.window_end.hour, minutes=visit.window_end.minute)
        if role == "late":
            minutes = r.uniform(grace[meal] + 1, grace[meal] + (20 if meal else 40))
        else:
            minutes = max(-8.0, min(10.0, r.gauss(0, 4)))
        last = local_midnight(day) + LAST_MINUTE
        check_in = min(visit.planned_start + timedelta(minutes=minutes, seconds=r.randrange(60)),
                       closes - timedelta(minutes=2), last)
        stay = visit.duration_min * max(0.8, min(1.25, r.gauss(1.0, 0.07)))
        check_out = min(check_in + timedelta(minutes=stay, seconds=r.randrange(60)), last)
        entry = min(check_out + timedelta(minutes=r.uniform(10, 45)), last + timedelta(minutes=1))
        fates[visit.id] = _Fate(visit.id, role, check_in, max(check_out, check_in + timedelta(minutes=1)), entry, r)
    return fates


def _not_started(due: list[Visit], until: datetime, rng: random.Random) -> set[int]:
    """A handful of the visits due by `until` that nobody starts: late by then (their grace period over), one whose
    window has closed among them if there is one."""
    grace = timedelta(minutes=current_app.config["SERVICEHUB_LATE_MINUTES"] + 2)
    late = [v for v in due if v.planned_start + grace <= until]
    if not late:
        return set()
    count = min(len(late), max(2, round(NOT_STARTED_SHARE * len(due))))
    closed = [v for v in late if local_midnight(v.service_date) + timedelta(
        hours=v.window_end.hour, minutes=v.window_end.minute) <= until]
    chosen = rng.sample(closed, 1) if closed else []
    chosen += rng.sample([v for v in late if v not in chosen], count - len(chosen))
    return {v.id for v in chosen}


class _Recorder:
    """Records a day's events through the services, as the caregivers' phones and the office would."""

    def __init__(self, visits: list[Visit], fates: dict[int, _Fate], seed: int, counts: Counter):
        self.visits = {v.id: v for v in visits}
        self.fates, self.seed, self.counts = fates, seed, counts
        self.caregivers = caregiver_principals({v.worker_id for v in visits})
        self.admins = provider_principals({v.organisation_id for v in visits})
        self.box = rules.BoundingBox.parse(current_app.config["SERVICEHUB_DISTRICT_BBOX"])
        self.key = current_app.config["SERVICEHUB_DATA_KEY"]
        self.secrets: dict[int, str] = {}
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.positions: dict[int, tuple[float, float]] = {}

    def do(self, moment: datetime, visit_id: int, action: str) -> None:
        visit = db.session.get(Visit, visit_id)
        fate = self.fates[visit_id]
        wanted = VisitStatus.IN_PROGRESS if action == "check_out" else VisitStatus.PUBLISHED
        if visit.status != wanted:  # someone recorded it meanwhile, or the scheduler found it missed
            self.counts["skipped"] += 1
            return
        principal = self.admins[visit.organisation_id] if action == "office" else self.caregivers[visit.worker_id]
        recipient = visit.recipient
        rng = fate.rng
        try:
            with acting_as(Actor(principal.username, principal.user_id)):
                if action == "missed":
                    with clock_at(moment):
                        services.record_outcome(principal, visit_id, self._key(rng), "missed", MissedReason.NOT_HOME.value,
                                                MISSED_NOTES[MissedReason.NOT_HOME])
                    self.counts["missed"] += 1
                    return
                if action in ("check_in", "office"):
                    point = self._position(recipient, fate, rng)
                    with clock_at(moment):
                        services.check_in(principal, visit_id, self._key(rng), *point,
                                          at=fate.check_in if action == "office" else None)
                    self.started.add(visit_id)
                    self.counts["late"] += fate.role == "late"
                    self.counts["far"] += fate.role == "far"
                    if action == "check_in":
                        return
                    moment += timedelta(seconds=rng.randint(40, 120))
                point = self._position(recipient, fate, rng, near=self.positions.get(visit_id))
                data = {"lat": point[0], "lon": point[1], "tasks": self._tasks(visit, rng),
                        **self._confirmation(visit, fate, rng),
                        "satisfaction": self._satisfaction(rng), "notes": ""}
                if rng.random() < 0.08:
                    data["notes"] = DELIVERY_NOTES[rng.randrange(len(DELIVERY_NOTES))]
                if action == "office":
                    data["at"] = fate.check_out
                    data["notes"] = "服务人员手机故障，按其纸质记录补录"
                with clock_at(moment):
                    services.check_out(principal, visit_id, self._key(rng), data)
                self.finished.add(visit_id)
                self.counts["completed"] += 1
                self.counts["office"] += action == "office"
                self.counts["no_confirmation"] += data["confirmation_method"] == "none"
                self.counts["signature"] += data["confirmation_method"] == "signature"
        except DomainError as exc:  # a rule of the services said no: nothing of it was written
            db.session.rollback()
            current_app.logger.warning("demo day: %s of visit %s refused: %s", action, visit_id, exc.message)
            self.counts["skipped"] += 1

    def _key(self, rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _position(self, recipient: Recipient, fate: _Fate, rng: random.Random,
                  near: tuple[float, float] | None = None) -> tuple[float, float]:
        """Where the phone was: a few to tens of metres from the address (far for a 'far' check-in), never on it;
        at check-out a few metres from where it checked in."""
        if near is not None:
            return _offset(near, rng.uniform(1, 8), rng, self.box)
        metres = rng.uniform(350, 1200) if fate.role == "far" else rng.uniform(3, 60)
        point = _offset((recipient.lat, recipient.lon), metres, rng, self.box)
        self.positions[fate.visit_id] = point
        return point

    @staticmethod
    def _tasks(visit: Visit, rng: random.Random) -> list[str]:
        tasks = [item["code"] for item in visit.service_type.checklist or []]
        if len(tasks) > 1 and rng.random() < 0.15:
            tasks.pop(rng.randrange(1, len(tasks)))
        return tasks

    @staticmethod
    def _satisfaction(rng: random.Random) -> int | None:
        if rng.random() < 0.02:
            return None
        x = rng.random()
        return 5 if x < 0.6 else 4 if x < 0.9 else 3 if x < 0.98 else 2

    def _confirmation(self, visit: Visit, fate: _Fate, rng: random.Random) -> dict:
        """The recipient's confirmation: none, a signature, or the one-time code of their card — from the family's
        phone at the moment of the check-out, or the next one on the printed card."""
        if fate.role == "no_confirmation":
            return {"confirmation_method": "none"}
        card = cards.current_card(visit.recipient_id)
        if card is None or (fate.role != "office" and rng.random() < P_SIGNATURE):
            return {"confirmation_method": "signature", "signature": signature_png()}
        if card.id not in self.secrets:
            self.secrets[card.id] = crypto.decrypt(self.key, card.secret_encrypted)
        secret = self.secrets[card.id]
        moment = fate.check_out
        step = int(moment.timestamp()) // confirmation.STEP_SECONDS
        phone = random.Random(f"{self.seed}:recipient:{visit.recipient_id}").random() < P_PHONE
        if fate.role != "office" and phone and step not in (card.phone_steps or ()):
            return {"confirmation_method": "code", "confirmation_code": confirmation.phone_code(secret, moment)}
        return {"confirmation_method": "code", "confirmation_code": confirmation.printed_code(secret, card.printed_next)}


def _offset(point: tuple[float, float], metres: float, rng: random.Random,
            box: rules.BoundingBox) -> tuple[float, float]:
    """A point `metres` from `point` in a random direction, inside the district."""
    for _ in range(20):
        angle = rng.random() * 2 * math.pi
        lat = point[0] + metres * math.cos(angle) / 111_320
        lon = point[1] + metres * math.sin(angle) / (111_320 * math.cos(math.radians(point[0])))
        if box.contains(lat, lon):
            return lat, lon
    return point[0] + 0.00003, point[1]  # an address on the district's edge: about 3 m inside
