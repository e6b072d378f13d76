"""Applications for help (申请救助): how a need reaches ServiceHub, the town's work queue with its deadlines,
emergency help first and paperwork later (先救助后补材料), and items raised by active discovery (主动发现)."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import UTCDateTime, enum_check, utcnow
from servicehub.extensions import db
from servicehub.intake import rules
from servicehub.registry import phones


class Source(enum.StrEnum):
    """Where an application came from."""

    PUBLIC = "public"  # 网上申请: the public page, by the person or their family
    PHONE = "phone"  # 电话: a call to the town or district office
    HOTLINE = "hotline"  # 热线: the 12345 hotline's hand-over
    GRID = "grid"  # 网格员: a grid worker's report
    WALK_IN = "walk_in"  # 窗口: at the office counter
    DISCOVERY = "discovery"  # 主动发现: raised by a rule, nobody applied


STAFF_SOURCES = (Source.PHONE, Source.HOTLINE, Source.GRID, Source.WALK_IN)


class Urgency(enum.StrEnum):
    """How fast someone must get in touch."""

    EMERGENCY = "emergency"  # 紧急: first contact within the hour
    NORMAL = "normal"  # 一般: within three working days


class Status(enum.StrEnum):
    """Where an application is."""

    NEW = "new"  # 待联系: nobody has been in touch yet
    CONTACTED = "contacted"  # 已联系
    VISITED = "visited"  # 已入户
    VERIFIED = "verified"  # 已核实
    PROVISIONAL = "provisional"  # 先行救助: help started, documents still missing
    APPROVED = "approved"  # 已批准: a recipient with needs handed to matching
    REJECTED = "rejected"  # 不予救助, with the reason
    CLOSED = "closed"  # 已办结 (or withdrawn, or the risk turned out to be none)


OPEN_STATUSES = (Status.NEW, Status.CONTACTED, Status.VISITED, Status.VERIFIED, Status.PROVISIONAL)


class StepKind(enum.StrEnum):
    """One thing that happened to an application."""

    SUBMITTED = "submitted"
    CONTACTED = "contacted"
    VISITED = "visited"
    VERIFIED = "verified"
    PROVISIONAL = "provisional"  # emergency help approved before the documents are in
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"
    ESCALATED = "escalated"  # the first-contact deadline passed: the district is told
    DOCUMENT_RECEIVED = "document_received"
    REMINDED = "reminded"  # a missing document is overdue or due soon
    NOTE = "note"


class Application(Audited, db.Model):
    """A request for help: who, where, what happened, what help; routed to the town of the address, with a
    deadline for the first contact. Its history is its steps."""

    __audit_mask__ = {**phones.audit_mask("phone", "contact_phone"), "situation": None, "client_hash": None}

    __tablename__ = "applications"
    __table_args__ = (
        enum_check("source", Source),
        enum_check("urgency", Urgency),
        enum_check("status", Status),
        Index("ix_applications_queue", "town_id", "status", "due_at"),
        Index("ix_applications_rule", "rule_code", "recipient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)  # what the applicant is told: SQ-XXXX-XXXX
    source: Mapped[str] = mapped_column(String(12))
    urgency: Mapped[str] = mapped_column(String(12), default=Urgency.NORMAL.value)
    status: Mapped[str] = mapped_column(String(12), default=Status.NEW.value)
    town_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    name: Mapped[str] = mapped_column(String(50))  # the person who needs help
    # Theirs, or the family's: encrypted, found by its keyed hash (the status check), masked (registry.phones).
    phone_encrypted: Mapped[str] = mapped_column(String(255), default="", server_default="")
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20), default="", server_default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    situation: Mapped[str] = mapped_column(Text, default="")  # what happened, in their words
    service_types: Mapped[list] = mapped_column(JSON, default=list)  # catalogue codes asked for
    help_text: Mapped[str] = mapped_column(Text, default="")  # help asked for in their words
    contact_name: Mapped[str] = mapped_column(String(50), default="")  # who applied, if not the person
    contact_phone_encrypted: Mapped[str] = mapped_column(String(255), default="", server_default="")
    contact_phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    contact_phone_masked: Mapped[str] = mapped_column(String(20), default="", server_default="")
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("recipients.id"), index=True)
    rule_code: Mapped[str | None] = mapped_column(String(40))  # active discovery: the rule that raised it
    matching_run_id: Mapped[int | None] = mapped_column(ForeignKey("matching_runs.id"))  # its needs' first run
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the first contact is due by then
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    documents_due_on: Mapped[date | None] = mapped_column(Date)
    client_hash: Mapped[str] = mapped_column(String(64), default="")  # the submitting address, hashed
    created_by: Mapped[str] = mapped_column(String(100), default="")

    town = relationship("Area", foreign_keys=[town_id])
    community = relationship("Area", foreign_keys=[community_id])
    recipient = relationship("Recipient")
    steps: Mapped[list[ApplicationStep]] = relationship(order_by="ApplicationStep.id", back_populates="application")
    documents: Mapped[list[MissingDocument]] = relationship(order_by="MissingDocument.id",
                                                            back_populates="application")

    def is_overdue(self, now: datetime) -> bool:
        """Nobody has been in touch and the deadline has passed (`services.overdue_clause` in SQL)."""
        return self.status == Status.NEW and rules.is_overdue(self.due_at, self.first_contact_at, now)


class ApplicationStep(db.Model):
    """One step of an application, with who and when. Never changed (a database trigger refuses updates)."""

    __tablename__ = "application_steps"
    __table_args__ = (enum_check("kind", StepKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    status_after: Mapped[str] = mapped_column(String(12))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    by_name: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    application: Mapped[Application] = relationship(back_populates="steps")


class MissingDocument(Audited, db.Model):
    """A document an application still owes (emergency help started before the paperwork), with its deadline
    and the reminders sent."""

    __tablename__ = "missing_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    due_on: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_by: Mapped[str] = mapped_column(String(100), default="")
    last_reminded_on: Mapped[date | None] = mapped_column(Date)
    reminders: Mapped[int] = mapped_column(Integer, default=0)

    application: Mapped[Application] = relationship(back_populates="documents")


class DiscoveryRule(Audited, db.Model):
    """A rule of active discovery, as data: whether it runs and its thresholds (the code says what it looks
    at; the numbers are here)."""

    __tablename__ = "discovery_rules"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class DayKind(enum.StrEnum):
    """How a day of the working calendar differs from the week (Monday to Friday working)."""

    HOLIDAY = "holiday"  # 放假: a public holiday, or a day off that goes with one
    WORKDAY = "workday"  # 调休上班: a Saturday or Sunday worked in exchange


class CalendarDay(Audited, db.Model):
    """A day of the district's working calendar that the week alone gets wrong: a day off (法定节假日 and the days
    that go with it) or a weekend day worked in exchange (调休). Entered each year from the State Council's notice
    of the holiday arrangements; intake deadlines count working days by it."""

    __tablename__ = "calendar_days"
    __table_args__ = (enum_check("kind", DayKind),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(40), default="")  # 春节, 国庆节 …
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class SubmissionAttempt(db.Model):
    """A try at the public form, by whom (an address or a phone number, hashed): what the flood limit counts.
    Old rows are pruned."""

    __tablename__ = "submission_attempts"
    __table_args__ = (Index("ix_submission_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
