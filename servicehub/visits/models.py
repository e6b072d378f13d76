"""Service records: one append-only, hash-chained ledger per organisation of what happened at each visit."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import UTCDateTime, enum_check, utcnow
from servicehub.extensions import db
from servicehub.visits.exceptions import Code


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
    WRONG_SATISFACTION = "wrong_satisfaction"  # no longer accepted: satisfaction is the recipient's (old entries)
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
    # SHA-256 of the request that wrote it: the same idempotency key with another body is refused (not hashed into
    # the chain: it says nothing about what happened).
    request_hash: Mapped[str | None] = mapped_column(String(64))
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
    # as many wrong confirmation codes as a visit allows were tried: to the provider
    CODE_FAILED = "code_failed"
    # a provider printed a recipient's confirmation card (a replacement stops the old one): to the managers
    CARD_REISSUED = "card_reissued"


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


# --- the exception queue ---------------------------------------------------------------------------------------


class ExceptionStatus(enum.StrEnum):
    """open → resolved (the provider's reason) → approved | rejected (the bureau); cleared when a correction makes
    it no longer apply; open again when the facts behind a decision change. Waived: raised for records made before
    the queue existed, in months already settled."""

    OPEN = "open"
    RESOLVED = "resolved"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLEARED = "cleared"
    WAIVED = "waived"


# Exceptions that still stand between a visit and its payment.
UNDECIDED = frozenset({ExceptionStatus.OPEN, ExceptionStatus.RESOLVED, ExceptionStatus.REJECTED})
# … and those that no longer do.
SETTLED_STATUSES = frozenset({ExceptionStatus.APPROVED, ExceptionStatus.WAIVED})


class ResolutionReason(enum.StrEnum):
    """Why a visit departed from its plan, as the provider explains it."""

    GPS_INACCURATE = "gps_inaccurate"  # the phone's position was off (tall buildings, indoors)
    MET_ELSEWHERE = "met_elsewhere"  # served where the recipient was (a clinic, a relative's home, the centre)
    DEVICE_PROBLEM = "device_problem"  # phone broken, flat or offline: recorded later or from the office
    RECIPIENT_REQUEST = "recipient_request"  # the recipient asked for a shorter, longer, earlier or later visit
    TRAFFIC_DELAY = "traffic_delay"
    SCHEDULE_AGREED = "schedule_agreed"  # the time was changed with the recipient beforehand
    EMERGENCY = "emergency"  # an emergency at this or the previous visit
    UNABLE_TO_CONFIRM = "unable_to_confirm"  # the recipient cannot read a code or sign (dementia, sight)
    DATA_ENTRY_ERROR = "data_entry_error"  # a wrong entry, corrected
    RECIPIENT_ABSENT = "recipient_absent"  # not at home, in hospital, refused at the door (a missed visit)
    STAFF_SHORTAGE = "staff_shortage"  # the caregiver was ill and nobody could stand in (a missed visit)
    OTHER = "other"


class EvvException(Audited, db.Model):
    """One exception of one visit (a visit has each code at most once), as the queue works it: raised by the
    rules (`servicehub.visits.exceptions`), resolved by the provider, decided by the bureau. Its history is in
    `evv_exception_steps`."""

    __tablename__ = "evv_exceptions"
    __audit_exclude__ = frozenset({"updated_at", "details", "fingerprint"})
    __table_args__ = (
        enum_check("status", ExceptionStatus),
        enum_check("code", Code),
        UniqueConstraint("visit_id", "code"),
        Index("ix_evv_exceptions_org_status", "organisation_id", "status", "service_date"),
        Index("ix_evv_exceptions_town_status", "town_id", "status", "service_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default=ExceptionStatus.OPEN.value)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    town_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))  # the recipient's (managers' scope)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # the figures behind it (minutes late, metres …)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the details: a decision holds while they do
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    reason_code: Mapped[str] = mapped_column(String(24), default="")  # the provider's resolution
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str] = mapped_column(String(100), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str] = mapped_column(Text, default="")  # the bureau's
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    visit = relationship("Visit")
    worker = relationship("Worker")
    recipient = relationship("Recipient")
    organisation = relationship("Organisation")
    steps: Mapped[list[ExceptionStep]] = relationship(back_populates="exception", order_by="ExceptionStep.id")


class ExceptionStep(db.Model):
    """One step in an exception's life: raised, resolved, approved, rejected, cleared, reopened, waived. Never
    changed or deleted."""

    __tablename__ = "evv_exception_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    exception_id: Mapped[int] = mapped_column(ForeignKey("evv_exceptions.id"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))  # after the step
    reason_code: Mapped[str] = mapped_column(String(24), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    by: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    exception: Mapped[EvvException] = relationship(back_populates="steps")


# --- the recipient's confirmation -------------------------------------------------------------------------------


class ConfirmationCard(db.Model):
    """A recipient's confirmation card: the secret behind the one-time codes of a family member's phone (RFC 6238,
    every 30 s) and of the printed list (RFC 4226, crossed out in order). Only the recipient's current card (not
    revoked) is accepted; no role can read the secret or a code (it is printed once, when the card is issued)."""

    __tablename__ = "confirmation_cards"
    __table_args__ = (UniqueConstraint("recipient_id", "card_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    card_no: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … per recipient
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    printed_codes: Mapped[int] = mapped_column(Integer)  # how many one-time codes the printed list holds
    printed_next: Mapped[int] = mapped_column(Integer, default=0)  # the first printed code not used yet
    phone_steps: Mapped[list] = mapped_column(JSON, default=list)  # time steps whose phone codes were used (a week)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_by: Mapped[str] = mapped_column(String(100), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AttemptOutcome(enum.StrEnum):
    """Why a confirmation code was refused."""

    WRONG = "wrong"
    EXPIRED = "expired"  # the code of a time step already past
    REUSED = "reused"  # a code already used for a visit
    NO_CARD = "no_card"  # the recipient has no card in force
    LOCKED = "locked"  # the visit had used up its tries


class ConfirmationAttempt(db.Model):
    """A refused confirmation code: every one is kept, with who tried it, for which visit, and from where."""

    __tablename__ = "confirmation_attempts"
    __table_args__ = (enum_check("outcome", AttemptOutcome), Index("ix_confirmation_attempts_visit", "visit_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("confirmation_cards.id"))
    outcome: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(100), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
