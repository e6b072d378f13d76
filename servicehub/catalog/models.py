"""Catalogue models: categories, service types and the qualifications some types require."""

from __future__ import annotations

import enum
from datetime import time

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import TimestampMixin, enum_check
from servicehub.extensions import db


class DeliveryMode(enum.StrEnum):
    """Where and how a service is given."""

    HOME_VISIT = "home_visit"
    CENTRE = "centre"
    ESCORT = "escort"
    REMOTE = "remote"


class Unit(enum.StrEnum):
    """What one contracted unit of a service is."""

    VISIT = "visit"
    HOUR = "hour"
    MEAL = "meal"
    DAY = "day"


class Qualification(Audited, TimestampMixin, db.Model):
    """A certificate a worker may hold (康复治疗师, 执业医师 ...), required by some service types."""

    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class ServiceCategory(Audited, TimestampMixin, db.Model):
    """One of the five service categories (生活照料, 康复护理, 精神慰藉, 喘息托养, 成长关爱)."""

    __tablename__ = "service_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    types: Mapped[list[ServiceType]] = relationship(
        back_populates="category", order_by="ServiceType.sort_order"
    )


class ServiceType(Audited, TimestampMixin, db.Model):
    """A service that can be bought, delivered and counted (助餐, 助浴, 康复理疗 ...).

    A type is never deleted once referenced; `active = False` retires it.
    """

    __tablename__ = "service_types"
    __table_args__ = (
        enum_check("delivery_mode", DeliveryMode),
        enum_check("unit", Unit),
        CheckConstraint("default_duration_min > 0", name="duration_positive"),
        CheckConstraint("reference_price_fen >= 0", name="price_not_negative"),
        CheckConstraint("evv_short_share >= 0 AND evv_short_share <= evv_long_share", name="evv_shares"),
        CheckConstraint("max_duration_min >= default_duration_min", name="max_duration"),
        CheckConstraint(
            "(window_start IS NULL AND window_end IS NULL) OR (window_start < window_end)",
            name="window_order",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("service_categories.id", ondelete="RESTRICT"), index=True
    )
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    delivery_mode: Mapped[str] = mapped_column(String(16))
    default_duration_min: Mapped[int] = mapped_column(Integer)
    # Local wall-clock times in the district's time zone; NULL means "any time in a shift".
    window_start: Mapped[time | None] = mapped_column(Time)
    window_end: Mapped[time | None] = mapped_column(Time)
    required_qualification_id: Mapped[int | None] = mapped_column(
        ForeignKey("qualifications.id", ondelete="RESTRICT"), index=True
    )
    unit: Mapped[str] = mapped_column(String(8))
    reference_price_fen: Mapped[int] = mapped_column(Integer)
    same_gender_preferred: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tasks a caregiver ticks off on a visit: [{"code", "name_zh", "name_en"}, ...].
    checklist: Mapped[list] = mapped_column(JSON, default=list)
    # Visit verification: a stay shorter or longer than these shares of the planned duration is an exception;
    # a correction may not make one longer than `max_duration_min`.
    evv_short_share: Mapped[float] = mapped_column(Float, default=0.5, server_default="0.5")
    evv_long_share: Mapped[float] = mapped_column(Float, default=2.0, server_default="2.0")
    max_duration_min: Mapped[int] = mapped_column(Integer, default=480, server_default="480")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    category: Mapped[ServiceCategory] = relationship(back_populates="types")
    required_qualification: Mapped[Qualification | None] = relationship()


class AssistanceClass(Audited, TimestampMixin, db.Model):
    """A class of assistance (低保, 特困, 困境儿童 ...): who may receive which categories of service."""

    __tablename__ = "assistance_classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    # [{"code", "name_zh", "name_en"}, ...]
    subclasses: Mapped[list] = mapped_column(JSON, default=list)
    # Category codes whose service types members of the class may receive.
    categories: Mapped[list] = mapped_column(JSON, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def subclass_codes(self) -> set[str]:
        """The codes of this class's subclasses."""
        return {s["code"] for s in self.subclasses}
