"""Registry models: areas (district → town → community) and organisations."""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import TimestampMixin, enum_check
from servicehub.extensions import db


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


class OrganisationStatus(enum.StrEnum):
    """Whether an organisation may be given work."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"


class Organisation(Audited, TimestampMixin, db.Model):
    """A social organisation (社会组织) that delivers contracted services."""

    __tablename__ = "organisations"
    __table_args__ = (
        enum_check("status", OrganisationStatus),
    )

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
