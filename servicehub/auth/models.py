"""Users, API tokens, login attempts and the audit log."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.auth.permissions import ORGANISATION_ROLES, Role
from servicehub.database import TimestampMixin, UTCDateTime, enum_check, utcnow
from servicehub.extensions import db

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer, "sqlite")


def new_session_nonce() -> str:
    """A random value tied into session cookies; changing it signs the user out everywhere."""
    return secrets.token_hex(16)


_org_roles = ", ".join(f"'{r.value}'" for r in sorted(ORGANISATION_ROLES))


class User(Audited, TimestampMixin, db.Model):
    """Someone who signs in: a role, and for provider roles the organisation they are confined to."""

    __tablename__ = "users"
    __audit_exclude__ = frozenset({"created_at", "updated_at", "last_login_at"})
    __audit_mask__ = {"password_hash": None, "session_nonce": None}
    __table_args__ = (
        enum_check("role", Role),
        CheckConstraint(
            f"(role IN ({_org_roles})) = (organisation_id IS NOT NULL)", name="organisation_iff_provider_role"
        ),
        CheckConstraint("town_id IS NULL OR role = 'manager'", name="town_only_for_managers"),
        CheckConstraint("worker_id IS NULL OR role = 'caregiver'", name="worker_only_for_caregivers"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # A caregiver's own worker record (their roster, their visits).
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str | None] = mapped_column(String(5))
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation = relationship("Organisation")
    town = relationship("Area")
    worker = relationship("Worker")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Session identity: the id and the nonce, so a rotated nonce ends old sessions."""
        return f"{self.id}:{self.session_nonce}"


class ApiToken(TimestampMixin, db.Model):
    """A bearer token for the API. Only its SHA-256 is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()

    secret = None  # set (never stored) on a newly issued token, so that the response can show it once


class LoginAttempt(db.Model):
    """One sign-in attempt, kept to slow down password guessing (by account and by address)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(45), default="")
    success: Mapped[bool] = mapped_column(Boolean)


class AuditLog(db.Model):
    """One change or security event: who, when, what, and the changed fields (before/after, masked).

    Append-only: the ORM refuses to update or delete a row, and a database trigger refuses UPDATE. Hash-chained
    in `sequence` order like the service records (`servicehub.auth.audit.append_audit_rows`).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),
                      Index("ix_audit_log_sequence", "sequence", unique=True))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
