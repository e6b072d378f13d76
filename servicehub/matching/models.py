"""Matching models: runs, their per-need outcomes, and referrals (派单) with their lifecycle."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.audit_policy import Audited
from servicehub.database import TimestampMixin, UTCDateTime, enum_check, utcnow
from servicehub.extensions import db


class ReferralStatus(enum.StrEnum):
    """proposed → offered → accepted | declined → active → suspended → closed (withdrawn: superseded)."""

    PROPOSED = "proposed"  # the optimiser's (or a manager's) choice, not yet sent
    OFFERED = "offered"  # sent to the organisation, waiting for its answer
    ACCEPTED = "accepted"  # the organisation said yes; service starts on the start date
    DECLINED = "declined"  # the organisation said no, with a reason
    ACTIVE = "active"  # being served
    SUSPENDED = "suspended"  # paused (hospital stay, …)
    CLOSED = "closed"  # ended, with a reason
    WITHDRAWN = "withdrawn"  # a proposal superseded by a later run, or an offer that expired unanswered


# A need has at most one referral in these states; they hold contract units.
LIVE_STATUSES = frozenset({ReferralStatus.OFFERED, ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE,
                           ReferralStatus.SUSPENDED})
COMMITTED_STATUSES = frozenset({ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE, ReferralStatus.SUSPENDED})
_LIVE_SQL = "status IN ('offered', 'accepted', 'active', 'suspended')"


class MatchingRun(db.Model):
    """One district-wide (or town, or chosen needs) matching run and what it found."""

    __tablename__ = "matching_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100), default="")
    scope: Mapped[dict] = mapped_column(JSON, default=dict)
    weights: Mapped[dict] = mapped_column(JSON, default=dict)
    needs_considered: Mapped[int] = mapped_column(Integer, default=0)
    proposed: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    greedy_placed: Mapped[int] = mapped_column(Integer, default=0)  # what first-come would have placed
    solver_status: Mapped[str] = mapped_column(String(20), default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    outcomes: Mapped[list[MatchingOutcome]] = relationship(back_populates="run", order_by="MatchingOutcome.id")


class MatchingOutcome(db.Model):
    """What a run decided for one need: its proposal and alternatives, or why nobody can serve it."""

    __tablename__ = "matching_outcomes"
    __table_args__ = (Index("ix_matching_outcomes_need_run", "need_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id"), index=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    # [{"organisation_id", "organisation", "line_id", "contract", "score", "breakdown"}], best first
    alternatives: Mapped[list] = mapped_column(JSON, default=list)
    # [{"organisation_id", "organisation", "rule", "message"}]: organisations ruled out, and why
    ruled_out: Mapped[list] = mapped_column(JSON, default=list)
    # Why an eligible need was left unplaced ("capacity": the lines were used for others)
    reason: Mapped[str] = mapped_column(String(40), default="")

    run: Mapped[MatchingRun] = relationship(back_populates="outcomes")


class Referral(Audited, TimestampMixin, db.Model):
    """A need referred to an organisation's contract line (派单), through its lifecycle."""

    __tablename__ = "referrals"
    __table_args__ = (
        enum_check("status", ReferralStatus),
        Index("ix_referrals_need_status", "need_id", "status"),
        Index("ix_referrals_organisation_status", "organisation_id", "status"),
        Index("ix_referrals_line_status", "contract_line_id", "status"),
        # At most one live referral per need, enforced by the database (two managers cannot both offer).
        Index("uq_referrals_live_need", "need_id", unique=True, sqlite_where=text(_LIVE_SQL),
              postgresql_where=text(_LIVE_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"))
    contract_line_id: Mapped[int] = mapped_column(ForeignKey("contract_lines.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("matching_runs.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=ReferralStatus.PROPOSED.value)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float)
    score_breakdown: Mapped[dict] = mapped_column(JSON, default=dict)
    monthly_units: Mapped[float] = mapped_column(Float)
    reserved_units: Mapped[float] = mapped_column(Float)  # what it holds of the line until the contract ends
    start_date: Mapped[date] = mapped_column(Date)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")  # of a decline, suspension, closure or withdrawal

    need = relationship("Need")
    contract_line = relationship("ContractLine")
    contract = relationship("Contract")
    organisation = relationship("Organisation")
