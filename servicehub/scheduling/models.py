"""Scheduling models: recurring visit series and their exceptions, visits, solver runs, roster versions."""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import TimestampMixin, UTCDateTime, enum_check, utcnow
from servicehub.extensions import db


class VisitSeries(Audited, TimestampMixin, db.Model):
    """The recurring plan of one referral: which days (an RRULE), when in the day, how long, how many carers."""

    __tablename__ = "visit_series"
    __table_args__ = (
        CheckConstraint("carers IN (1, 2)", name="carers"),
        CheckConstraint("window_start < window_end", name="window_order"),
        CheckConstraint("duration_min > 0", name="duration_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"))
    rrule: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    window_start: Mapped[time] = mapped_column(Time)
    window_end: Mapped[time] = mapped_column(Time)
    duration_min: Mapped[int] = mapped_column(Integer)
    carers: Mapped[int] = mapped_column(Integer, default=1)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    referral = relationship("Referral")
    recipient = relationship("Recipient")
    service_type = relationship("ServiceType")


class VisitException(Audited, TimestampMixin, db.Model):
    """Days on which no visit is generated: a holiday (district-wide or one organisation) or one recipient away."""

    __tablename__ = "visit_exceptions"
    __table_args__ = (CheckConstraint("start_date <= end_date", name="period_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("recipients.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200))


class VisitStatus(enum.StrEnum):
    """planned → published → in progress → completed | missed; cancelled at any point before it starts."""

    PLANNED = "planned"  # generated, maybe in an unpublished plan
    PUBLISHED = "published"  # on a published roster
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    MISSED = "missed"
    CANCELLED = "cancelled"


# Visits that re-generation and re-planning must leave as they are.
SETTLED = frozenset({VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED, VisitStatus.MISSED})


# What `ix_visits_report` holds: everything a report sums or groups a visit by.
REPORT_COLUMNS = ("service_date", "status", "organisation_id", "referral_id", "service_type_id", "worker_id",
                  "recipient_id", "duration_min", "travel_min", "delivery_record_id", "delivery_late_s",
                  "delivery_service_s", "delivery_submit_s", "delivery_satisfaction", "delivery_exception",
                  "delivery_corrected", "delivery_manual")


class Visit(Audited, TimestampMixin, db.Model):
    """One planned service to one recipient on one day (a double-up visit is two rows, slot 0 and 1)."""

    __tablename__ = "visits"
    # The delivery columns are the ledger's projection: the ledger's entries are the audited record of them.
    __audit_exclude__ = Audited.__audit_exclude__ | {name for name in REPORT_COLUMNS if name.startswith("delivery_")}
    __table_args__ = (
        enum_check("status", VisitStatus),
        UniqueConstraint("series_id", "service_date", "slot"),
        CheckConstraint("slot IN (0, 1)", name="slot"),
        Index("ix_visits_org_date", "organisation_id", "service_date"),
        Index("ix_visits_worker_date", "worker_id", "service_date"),
        # District-wide reports of a period read every column they need from this index, not from the rows.
        Index("ix_visits_report", *REPORT_COLUMNS),
        # A need's first delivery: the earliest completed visit of each referral, one step into the index.
        Index("ix_visits_referral_status_date", "referral_id", "status", "service_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("visit_series.id"))
    slot: Mapped[int] = mapped_column(Integer, default=0)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"))
    service_date: Mapped[date] = mapped_column(Date)
    window_start: Mapped[time] = mapped_column(Time)
    window_end: Mapped[time] = mapped_column(Time)
    duration_min: Mapped[int] = mapped_column(Integer)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default=VisitStatus.PLANNED.value)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    planned_arrival: Mapped[datetime | None] = mapped_column(UTCDateTime())
    planned_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    planned_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    travel_min: Mapped[int | None] = mapped_column(Integer)  # travel to it from the previous stop
    sequence: Mapped[int | None] = mapped_column(Integer)  # position in the worker's route, from 1
    # A provider admin moved it to this worker by hand: the next optimisation keeps it there.
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    unplaced_reason: Mapped[str] = mapped_column(String(40), default="")
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    # The delivery in force (its latest correction in force, else its check-out) as the numbers reports sum; all
    # None while the visit has none. A projection of the ledger, not a record: written only by
    # `servicehub.visits.deliveries.refresh_deliveries`, in the same transaction as each delivery, correction and
    # approval, and rebuilt from the ledger by `servicehub audit rebuild-deliveries`. Kept on the visit so that a
    # report reads one index entry per visit and joins nothing.
    delivery_record_id: Mapped[int | None] = mapped_column(Integer)  # the entry in force (no foreign key: the
    # ledger's entries already refer to their visit, and tables referring to each other cannot be made in order)
    delivery_late_s: Mapped[float | None] = mapped_column(Float)  # check-in minus the expected start (None: none)
    delivery_service_s: Mapped[float | None] = mapped_column(Float)  # check-in to check-out, never negative
    delivery_submit_s: Mapped[float | None] = mapped_column(Float)  # check-out to the record reaching the ledger
    delivery_satisfaction: Mapped[int | None] = mapped_column(Integer)
    delivery_corrected: Mapped[bool | None] = mapped_column(Boolean)  # a correction is in force
    # The delivery has EVV exceptions (any code, whatever its state), and one of them says it was entered by someone
    # other than its caregiver or its times were edited: written by the exception queue
    # (`servicehub.visits.verification.refresh_exceptions`) whenever it recomputes the visit's exceptions.
    delivery_exception: Mapped[bool | None] = mapped_column(Boolean)
    delivery_manual: Mapped[bool | None] = mapped_column(Boolean)

    series: Mapped[VisitSeries] = relationship()
    recipient = relationship("Recipient")
    worker = relationship("Worker")
    service_type = relationship("ServiceType")

    @property
    def pair_key(self) -> str | None:
        """Both halves of a double-up visit share this key."""
        return f"{self.series_id}:{self.service_date.isoformat()}" if self.series.carers == 2 else None


class RunStatus(enum.StrEnum):
    """queued → running → solved | failed; solved → published (or superseded by a later publication)."""

    QUEUED = "queued"
    RUNNING = "running"
    SOLVED = "solved"
    FAILED = "failed"
    PUBLISHED = "published"


class RunKind(enum.StrEnum):
    """A fresh plan of one or more days, or the re-plan of a day after a worker dropped out."""

    PLAN = "plan"
    REPLAN = "replan"


class ScheduleRun(db.Model):
    """One optimisation of an organisation's days: what was asked, how it went, and the plan it found."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        enum_check("status", RunStatus),
        enum_check("kind", RunKind),
        CheckConstraint("date_from <= date_to", name="period_order"),
        Index("ix_schedule_runs_org_date", "organisation_id", "date_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(8), default=RunKind.PLAN.value)
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    time_limit_s: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(12), default=RunStatus.QUEUED.value)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_by: Mapped[str] = mapped_column(String(100), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    # Re-planning: who dropped out, from when (local time of day, minutes from midnight).
    absent_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    replan_from_min: Mapped[int | None] = mapped_column(Integer)
    objective: Mapped[int | None] = mapped_column(Integer)
    visits_total: Mapped[int] = mapped_column(Integer, default=0)
    placed: Mapped[int] = mapped_column(Integer, default=0)
    unplaced: Mapped[int] = mapped_column(Integer, default=0)
    travel_min: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # visit id -> {"worker_id", "sequence", "arrival", "start", "end", "travel"} (minutes from midnight) or
    # {"unplaced": reason}; and the breaks: worker id -> [[start, end], ...]; per day.
    plan: Mapped[dict] = mapped_column(JSON, default=dict)
    changes: Mapped[list] = mapped_column(JSON, default=list)  # re-plans: what moved, relative to the roster
    error: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RosterVersion(db.Model):
    """A published roster of one organisation's day, kept whole: every publication adds a version."""

    __tablename__ = "roster_versions"
    __table_args__ = (UniqueConstraint("organisation_id", "service_date", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    service_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_runs.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_by: Mapped[str] = mapped_column(String(100), default="")
    # [{"visit_id", "worker_id", "sequence", "start", "end", "status"}, ...] as published.
    snapshot: Mapped[list] = mapped_column(JSON, default=list)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unplaced: Mapped[int] = mapped_column(Integer, default=0)


class WorkerAbsence(Audited, TimestampMixin, db.Model):
    """A worker out for (part of) a day: sick, on leave. From `from_time` on, they get no visits."""

    __tablename__ = "worker_absences"
    __table_args__ = (Index("ix_worker_absences_worker_date", "worker_id", "absence_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"))
    absence_date: Mapped[date] = mapped_column(Date)
    from_time: Mapped[time | None] = mapped_column(Time)  # None: the whole day
    reason: Mapped[str] = mapped_column(String(200), default="")

    worker = relationship("Worker")


class ScheduleSettings(Audited, TimestampMixin, db.Model):
    """An organisation's choices about its rosters: plan the next day every night on its own."""

    __tablename__ = "schedule_settings"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    auto_plan: Mapped[bool] = mapped_column(Boolean, default=False)  # nightly run for tomorrow (not published)
    time_limit_s: Mapped[float] = mapped_column(Float, default=30.0)
