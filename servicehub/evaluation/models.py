"""Frozen reports (a month's figures stored with what they were computed from) and organisation scores."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicehub.database import UTCDateTime, utcnow
from servicehub.extensions import db


class FrozenReport(db.Model):
    """A contract's report for one period as it was issued: the parameters, the figures, the facts they were
    computed from, a hash of those facts and the code version. Never changed: regenerating the period is a
    comparison against it, not a new number."""

    __tablename__ = "frozen_reports"
    __table_args__ = (UniqueConstraint("contract_id", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    parameters: Mapped[dict] = mapped_column(JSON)  # the report query: period, grouping, filters
    figures: Mapped[dict] = mapped_column(JSON)  # the report as computed (kpis.Report.as_dict plus labels)
    facts: Mapped[list] = mapped_column(JSON)  # the visit facts it was computed from, one dict each
    record_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical facts
    code_version: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    generated_by: Mapped[str] = mapped_column(String(100))
    # The month's settlement as it was issued with the report (`servicehub.evaluation.settlement`), and how many
    # of its visits still had undecided exceptions then; None for reports frozen before settlements existed.
    settlement: Mapped[dict | None] = mapped_column(JSON)
    open_exceptions: Mapped[int | None] = mapped_column(Integer)

    contract = relationship("Contract")


class OrganisationScore(db.Model):
    """An organisation's composite score over a period, with the components and weights it was made of."""

    __tablename__ = "organisation_scores"
    __table_args__ = (UniqueConstraint("organisation_id", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    score: Mapped[float | None] = mapped_column(Float)  # 0..1; None: too few person-times to judge
    components: Mapped[dict] = mapped_column(JSON)
    weights: Mapped[dict] = mapped_column(JSON)
    person_times: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
