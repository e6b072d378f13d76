"""Registry models: areas, stations, organisations, contracts, workers, recipients and their needs."""

from __future__ import annotations

import enum
from datetime import date, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import TimestampMixin, enum_check
from servicehub.extensions import db
from servicehub.registry import phones


class AreaLevel(enum.StrEnum):
    """The three levels of the district's administrative areas."""

    DISTRICT = "district"  # 区
    TOWN = "town"  # 镇 / 街道
    COMMUNITY = "community"  # 社区 / 村


class Area(Audited, TimestampMixin, db.Model):
    """An administrative area with its code and centroid."""

    __tablename__ = "areas"
    __table_args__ = (
        enum_check("level", AreaLevel),
        CheckConstraint("(level = 'district') = (parent_id IS NULL)", name="parent_unless_district"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str] = mapped_column(String(12))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    centroid_lat: Mapped[float | None] = mapped_column(Float)
    centroid_lon: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Area | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent")

    @property
    def town_id(self) -> int | None:
        """The town this area is in (itself for a town; None for the district)."""
        if self.level == AreaLevel.TOWN:
            return self.id
        return self.parent_id if self.level == AreaLevel.COMMUNITY else None


class OrganisationStatus(enum.StrEnum):
    """Whether an organisation may be given work."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"


class Organisation(Audited, TimestampMixin, db.Model):
    """A social organisation (社会组织) that delivers contracted services."""

    __tablename__ = "organisations"
    __table_args__ = (enum_check("status", OrganisationStatus),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    short_name: Mapped[str] = mapped_column(String(50), default="")
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    legal_representative: Mapped[str] = mapped_column(String(50), default="")
    contact_name: Mapped[str] = mapped_column(String(50), default="")
    contact_phone: Mapped[str] = mapped_column(String(20), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default=OrganisationStatus.ACTIVE.value)


class StationKind(enum.StrEnum):
    """Kinds of places services are given from or at."""

    SOCIAL_WORK_STATION = "social_work_station"  # 社工站
    HOME_CARE_CENTRE = "home_care_centre"  # 居家养老服务中心
    DISABILITY_HOME = "disability_home"  # 残疾人之家
    INCLUSIVE_EDUCATION_CENTRE = "inclusive_education_centre"  # 融合教育中心
    CHILD_REHAB_CENTRE = "child_rehab_centre"  # 儿童康复中心
    CHILD_CARE_HOME = "child_care_home"  # 儿童关爱之家


class Station(Audited, TimestampMixin, db.Model):
    """A place services are given from or at, run by an organisation."""

    __tablename__ = "stations"
    __table_args__ = (enum_check("kind", StationKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    capacity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    area: Mapped[Area] = relationship()
    organisation: Mapped[Organisation | None] = relationship()


class ContractStatus(enum.StrEnum):
    """The life of a purchase contract."""

    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class FundingSource(enum.StrEnum):
    """Who pays (funding is 多元化)."""

    GOVERNMENT = "government"  # 政府购买
    CHARITY = "charity"  # 慈善资金
    ORGANISATION = "organisation"  # 组织自筹
    OTHER = "other"


contract_areas = Table(
    "contract_areas",
    db.Model.metadata,
    Column("contract_id", ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("areas.id"), primary_key=True),
)


class Contract(Audited, TimestampMixin, db.Model):
    """A government purchase-of-services contract (项目) with one organisation."""

    __tablename__ = "contracts"
    __table_args__ = (
        enum_check("status", ContractStatus),
        CheckConstraint("start_date <= end_date", name="period_order"),
        CheckConstraint("budget_fen >= 0", name="budget_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    budget_fen: Mapped[int] = mapped_column(Integer)
    # Assistance class codes whose members the contract serves.
    eligible_classes: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default=ContractStatus.ACTIVE.value)
    notes: Mapped[str] = mapped_column(Text, default="")

    organisation: Mapped[Organisation] = relationship()
    fundings: Mapped[list[ContractFunding]] = relationship(
        back_populates="contract", cascade="all, delete-orphan", order_by="ContractFunding.id"
    )
    lines: Mapped[list[ContractLine]] = relationship(
        back_populates="contract", cascade="all, delete-orphan", order_by="ContractLine.id"
    )
    areas: Mapped[list[Area]] = relationship(secondary=contract_areas, order_by="Area.code")


class ContractFunding(Audited, db.Model):
    """One funding source of a contract and its amount."""

    __tablename__ = "contract_fundings"
    __table_args__ = (enum_check("source", FundingSource), CheckConstraint("amount_fen > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    funder: Mapped[str] = mapped_column(String(200), default="")
    amount_fen: Mapped[int] = mapped_column(Integer)

    contract: Mapped[Contract] = relationship(back_populates="fundings")


class Billing(enum.StrEnum):
    """How a contract line pays a verified visit."""

    VISIT = "visit"  # the units one delivery counts for (whole hours of the plan for hourly types, else one)
    MINUTE = "minute"  # the verified minutes, rounded to the line's step, as a share of the unit


class ContractLine(Audited, db.Model):
    """A contracted service line: a service type, its unit price and the quantity bought."""

    __tablename__ = "contract_lines"
    __table_args__ = (
        UniqueConstraint("contract_id", "service_type_id"),
        CheckConstraint("unit_price_fen >= 0", name="price_not_negative"),
        CheckConstraint("contracted_quantity > 0", name="quantity_positive"),
        enum_check("billing", Billing),
        CheckConstraint("billing_step_min BETWEEN 1 AND 60", name="billing_step"),
        CheckConstraint("min_billable_share BETWEEN 0 AND 1", name="min_billable_share"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"), index=True)
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    contracted_quantity: Mapped[int] = mapped_column(Integer)
    # How a verified visit is paid: per visit (its contracted units), or per verified minute rounded to the step.
    # Below `min_billable_share` of the planned duration nothing is paid unless the bureau approves the short visit.
    billing: Mapped[str] = mapped_column(String(8), default="visit", server_default="visit")
    billing_step_min: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    min_billable_share: Mapped[float] = mapped_column(Float, default=0.5, server_default="0.5")

    contract: Mapped[Contract] = relationship(back_populates="lines")
    service_type = relationship("ServiceType")


class Gender(enum.StrEnum):
    """Gender, as recorded on the resident ID."""

    MALE = "male"
    FEMALE = "female"


class TravelMode(enum.StrEnum):
    """How a worker gets from visit to visit."""

    WALK = "walk"
    BICYCLE = "bicycle"
    EBIKE = "ebike"
    CAR = "car"


class Worker(Audited, TimestampMixin, db.Model):
    """A caregiver or professional of one organisation, with qualifications, availability and limits."""

    __tablename__ = "workers"
    __audit_mask__ = phones.audit_mask("phone")
    __table_args__ = (
        enum_check("gender", Gender),
        enum_check("travel_mode", TravelMode),
        CheckConstraint("max_minutes_per_day > 0 AND max_minutes_per_day <= 720", name="minutes_limit"),
        CheckConstraint("max_visits_per_day > 0 AND max_visits_per_day <= 40", name="visits_limit"),
        UniqueConstraint("organisation_id", "employee_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    employee_no: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(8))
    # The mobile, encrypted; found by its keyed hash; masked for those who must not see it (registry.phones).
    phone_encrypted: Mapped[str] = mapped_column(String(255), default="", server_default="")
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # Where the working day starts and ends: the worker's home or a station.
    start_station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    start_lat: Mapped[float] = mapped_column(Float)
    start_lon: Mapped[float] = mapped_column(Float)
    travel_mode: Mapped[str] = mapped_column(String(10), default=TravelMode.EBIKE.value)
    # {"mon": [["08:00", "12:00"], ["13:30", "17:30"]], ...}: local times, weekdays mon..sun.
    availability: Mapped[dict] = mapped_column(JSON, default=dict)
    max_minutes_per_day: Mapped[int] = mapped_column(Integer, default=480)
    max_visits_per_day: Mapped[int] = mapped_column(Integer, default=10)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    organisation: Mapped[Organisation] = relationship()
    start_station: Mapped[Station | None] = relationship()
    qualifications: Mapped[list[WorkerQualification]] = relationship(
        back_populates="worker", cascade="all, delete-orphan", order_by="WorkerQualification.id"
    )


class WorkerQualification(Audited, db.Model):
    """A certificate a worker holds, until when."""

    __tablename__ = "worker_qualifications"
    __table_args__ = (UniqueConstraint("worker_id", "qualification_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), index=True)
    qualification_id: Mapped[int] = mapped_column(ForeignKey("qualifications.id"), index=True)
    certificate_no: Mapped[str] = mapped_column(String(64), default="")
    expires_on: Mapped[date | None] = mapped_column(Date)

    worker: Mapped[Worker] = relationship(back_populates="qualifications")
    qualification = relationship("Qualification")


class RecipientStatus(enum.StrEnum):
    """Whether a recipient is being served."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # in hospital, away ...
    EXITED = "exited"  # no longer eligible, moved, died


class CarerGender(enum.StrEnum):
    """A recipient's wish about the carer's gender."""

    ANY = "any"
    MALE = "male"
    FEMALE = "female"
    SAME = "same"


class Recipient(Audited, TimestampMixin, db.Model):
    """A person in hardship receiving services (救助对象).

    The resident ID number is sensitive: it is stored encrypted, found by a keyed hash, and shown
    masked (`id_number_masked`) to everyone who does not need it. So are the phones (`registry.phones`).
    """

    __tablename__ = "recipients"
    __audit_mask__ = {
        "id_number_encrypted": None,
        "id_number_hash": None,
        "birth_date": None,  # beside the masked number it would rebuild the full one
        **phones.audit_mask("phone", "family_carer_phone"),
    }
    __table_args__ = (
        enum_check("gender", Gender),
        enum_check("status", RecipientStatus),
        enum_check("carer_gender", CarerGender),
        CheckConstraint("disability_grade IS NULL OR disability_grade BETWEEN 1 AND 4", name="disability_grade"),
        Index("ix_recipients_area_status", "area_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    id_number_encrypted: Mapped[str] = mapped_column(String(255))
    id_number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))
    gender: Mapped[str] = mapped_column(String(8))
    birth_date: Mapped[date] = mapped_column(Date)
    assistance_class_id: Mapped[int] = mapped_column(ForeignKey("assistance_classes.id"), index=True)
    subclass: Mapped[str | None] = mapped_column(String(40))
    class_valid_until: Mapped[date | None] = mapped_column(Date)
    disability_grade: Mapped[int | None] = mapped_column(Integer)
    lives_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    # The town of `area_id`, kept for scoping queries by town without a join.
    town_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    address: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    phone_encrypted: Mapped[str] = mapped_column(String(255), default="", server_default="")
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20), default="", server_default="")
    family_carer_name: Mapped[str] = mapped_column(String(50), default="")
    family_carer_phone_encrypted: Mapped[str] = mapped_column(String(255), default="", server_default="")
    family_carer_phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    family_carer_phone_masked: Mapped[str] = mapped_column(String(20), default="", server_default="")
    carer_gender: Mapped[str] = mapped_column(String(8), default=CarerGender.ANY.value)
    language: Mapped[str] = mapped_column(String(20), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=RecipientStatus.ACTIVE.value)

    assistance_class = relationship("AssistanceClass")
    area: Mapped[Area] = relationship(foreign_keys=[area_id])
    town: Mapped[Area] = relationship(foreign_keys=[town_id])
    needs: Mapped[list[Need]] = relationship(back_populates="recipient", order_by="Need.id")

    @property
    def required_carer_gender(self) -> str | None:
        """The carer's gender the recipient asks for (their own, for "same"), or None for anyone."""
        if self.carer_gender == CarerGender.SAME:
            return self.gender
        return None if self.carer_gender == CarerGender.ANY else self.carer_gender


class NeedPeriod(enum.StrEnum):
    """What a need's quantity counts per."""

    WEEK = "week"
    MONTH = "month"


class Priority(enum.StrEnum):
    """Urgent needs are matched and scheduled first, and dropped last."""

    URGENT = "urgent"
    NORMAL = "normal"


class NeedSource(enum.StrEnum):
    """How a need became known."""

    APPLICATION = "application"  # 申请
    ASSESSMENT = "assessment"  # 评估
    ACTIVE_DISCOVERY = "active_discovery"  # 主动发现


class NeedStatus(enum.StrEnum):
    """Where a need is on its way to being served."""

    OPEN = "open"  # waiting for a provider
    MATCHED = "matched"  # a referral is proposed or offered
    ACTIVE = "active"  # a provider has accepted and serves it
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Need(Audited, TimestampMixin, db.Model):
    """One line of a recipient's need list (需求清单): which service, how often, when."""

    __tablename__ = "needs"
    __table_args__ = (
        enum_check("period", NeedPeriod),
        enum_check("priority", Priority),
        enum_check("source", NeedSource),
        enum_check("status", NeedStatus),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("duration_min > 0", name="duration_positive"),
        CheckConstraint("window_start < window_end", name="window_order"),
        CheckConstraint("end_date IS NULL OR start_date <= end_date", name="period_order"),
        CheckConstraint("carers IN (1, 2)", name="carers"),
        Index("ix_needs_status_priority", "status", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(8), default=NeedPeriod.WEEK.value)
    # ISO weekdays 1 (Monday) .. 7 (Sunday); empty: any day.
    preferred_days: Mapped[list] = mapped_column(JSON, default=list)
    window_start: Mapped[time] = mapped_column(Time)
    window_end: Mapped[time] = mapped_column(Time)
    duration_min: Mapped[int] = mapped_column(Integer)
    # 2: a double-up visit (lifting a bedridden person): two carers at the same time.
    carers: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL.value)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20), default=NeedSource.ASSESSMENT.value)
    status: Mapped[str] = mapped_column(String(12), default=NeedStatus.OPEN.value)
    notes: Mapped[str] = mapped_column(Text, default="")

    recipient: Mapped[Recipient] = relationship(back_populates="needs")
    service_type = relationship("ServiceType")
