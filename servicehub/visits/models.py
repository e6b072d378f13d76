"""Service records: one append-only, hash-chained ledger per organisation of what happened at each visit."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.database import UTCDateTime, enum_check, utcnow
from servicehub.extensions import db


class RecordKind(enum.StrEnum):
    """What a ledger entry records."""

    CHECK_IN = "check_in"  # the caregiver arrived: where and when
    DELIVERY = "delivery"  # the check-out: the service as delivered (the six facts and the rest)
    MISSED = "missed"  # the visit did not happen, with the reason
    CANCELLED = "cancelled"  # called off in advance, with the reason
    CORRECTION = "correction"  # replaces an earlier delivery's facts, with who and why
    APPROVAL = "approval"  # a provider admin approves a caregiver's correction of times


class MissedReason(enum.StrEnum):
    """Why a visit did not happen."""

    NOT_HOME = "not_home"
    REFUSED = "refused"
    IN_HOSPITAL = "in_hospital"
    WORKER_ABSENT = "worker_absent"
    NOT_DONE = "not_done"  # nobody recorded it by the end of its window (set by the missed-visit check)
    OTHER = "other"


class CorrectionReason(enum.StrEnum):
    """Why a delivery record was corrected."""

    WRONG_TIME = "wrong_time"  # forgot to check out, checked in late …
    WRONG_TASKS = "wrong_tasks"
    WRONG_SATISFACTION = "wrong_satisfaction"
    DATA_ENTRY = "data_entry"
    OTHER = "other"


class ServiceRecord(db.Model):
    """One entry of an organisation's ledger. Never updated or deleted (a database trigger refuses updates;
    the hash chain shows any change made behind the application's back)."""

    __tablename__ = "service_records"
    __table_args__ = (
        enum_check("kind", RecordKind),
        UniqueConstraint("organisation_id", "sequence"),
        UniqueConstraint("idempotency_key"),
        Index("ix_service_records_visit", "visit_id", "kind"),
        Index("ix_service_records_org_date", "organisation_id", "service_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    sequence: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … within the organisation
    kind: Mapped[str] = mapped_column(String(12))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"))
    service_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)  # from the recipient's address
    tasks: Mapped[list] = mapped_column(JSON, default=list)  # checklist codes done
    # {"method": "code" | "signature" | "none", "signature": data URL (signatures only)}
    confirmation: Mapped[dict] = mapped_column(JSON, default=dict)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    outcome_reason: Mapped[str] = mapped_column(String(20), default="")  # missed / cancelled: why
    flags: Mapped[list] = mapped_column(JSON, default=list)  # exceptions found: far_from_address, duration …
    refers_to_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(24), default="")  # corrections: why
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when the phone says it happened
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    visit = relationship("Visit")
    refers_to: Mapped[ServiceRecord | None] = relationship(remote_side=[id])


class AlertKind(enum.StrEnum):
    """What an alert is about."""

    LATE = "late"  # a visit not started after its grace period: to the provider
    MISSED = "missed"  # a visit not done by the end of its window: to the managers
    MISSED_STREAK = "missed_streak"  # three missed visits in a row for one recipient: to the town's managers
    LINE_80 = "line_80"  # a contract line has delivered 80% of its contracted quantity
    LINE_100 = "line_100"  # … all of it (more is delivered above contract)
    BUDGET_80 = "budget_80"  # a contract has used 80% of its budget
    BUDGET_100 = "budget_100"
    CONTRACT_ENDING = "contract_ending"  # a contract ends within 30 days
    QUALIFICATION_EXPIRING = "qualification_expiring"  # a worker's certificate expires within 30 days
    # nobody got in touch with an applicant by the deadline (escalated to the district): to the town's managers
    APPLICATION_OVERDUE = "application_overdue"
    # documents of a case helped at once (先救助后补材料) are due within days or overdue: to the town's managers
    DOCUMENTS_DUE = "documents_due"


class Alert(db.Model):
    """Something someone must look at. Raised once (by its key), acknowledged with a note, never deleted."""

    __tablename__ = "alerts"
    __table_args__ = (
        enum_check("kind", AlertKind),
        UniqueConstraint("dedupe_key"),
        Index("ix_alerts_org_open", "organisation_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(100))  # the same situation never raises two alerts
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    town_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("recipients.id"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_by: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    visit = relationship("Visit")
