"""Evaluation use cases: KPI reports over the ledger, drill-down to the records behind a figure, frozen monthly
reports and their comparison with today's data, organisation scores.

The arithmetic is `kpis.py` and `score.py` (pure); this module loads their plain records from the database
in a few set-based queries, scoped to what the caller may see, and stores what must stay as it was issued.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections import defaultdict
from dataclasses import MISSING, asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import metadata
from pathlib import Path

from flask import current_app
from sqlalchemy import DateTime, Integer, and_, case, func, join, literal, or_, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from servicehub.auth.audit import record_event
from servicehub.auth.permissions import Principal
from servicehub.auth.policy import Action, Resource, Scope, allows, scope_of
from servicehub.catalog.models import AssistanceClass, ServiceCategory, ServiceType
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.evaluation import kpis, settlement
from servicehub.evaluation import score as scoring
from servicehub.evaluation.models import FrozenReport, OrganisationScore
from servicehub.extensions import db
from servicehub.gc_pause import collector_paused
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry import scope
from servicehub.registry.models import (
    Area,
    Contract,
    ContractLine,
    Need,
    NeedStatus,
    Organisation,
    Recipient,
    Worker,
    WorkerQualification,
)
from servicehub.registry.rules import units_per_delivery
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.timeutil import district_today, district_tz, local_dates, month_days
from servicehub.visits import alerts as alert_rules
from servicehub.visits import ledger, queue
from servicehub.visits.exceptions import Code
from servicehub.visits.models import UNDECIDED, EvvException, ExceptionStatus, RecordKind, ServiceRecord

FROZEN_CORRECTION = Code.FROZEN_MONTH.value
MAX_DAYS = 5 * 366  # a report spans at most five years
FILTERS = ("organisation_id", "contract_id", "service_type", "category", "town_id", "recipient_class", "worker_id",
           "recipient_id")
# A group's key part -> the filter that selects it (drill-down turns a group into filters).
FILTER_OF = {"organisation": "organisation_id", "contract": "contract_id", "service_type": "service_type",
             "category": "category", "town": "town_id", "recipient_class": "recipient_class", "worker": "worker_id",
             "recipient": "recipient_id"}
IN_FORCE_NEEDS = (NeedStatus.OPEN, NeedStatus.MATCHED, NeedStatus.ACTIVE)
SERVING = (ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE, ReferralStatus.SUSPENDED, ReferralStatus.CLOSED)
IDS_LISTED = 1000  # up to this many recipients or referrals are read by id for a report's blocks; more, all
SCORE_MONTHS = 3  # an organisation's score is over its last three full months


@dataclass(frozen=True)
class ReportQuery:
    """A report's period, grouping and filters (each filter None: all)."""

    first: date
    last: date
    group_by: tuple[str, ...] = ()
    filters: dict = field(default_factory=dict)

    @property
    def period(self) -> kpis.Period:
        """The report's range of days."""
        return kpis.Period(self.first, self.last)

    @property
    def grouping(self) -> kpis.Grouping:
        """The report's grouping (checked by `checked_query`)."""
        return kpis.Grouping.parse(self.group_by)

    def as_dict(self) -> dict:
        """Plain data, for storing with a frozen report and for links."""
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "group_by": list(self.group_by),
                "filters": {k: v for k, v in self.filters.items() if v is not None}}


def checked_query(principal: Principal, first: date, last: date, group_by=(), **filters) -> ReportQuery:
    """A report query the caller may run: the period and grouping checked (422 naming the field), a provider
    confined to its organisation and a town manager to the town (403 when asking for another)."""
    if first > last:
        raise ValidationFailed(N_("The period ends before it starts."), {"to": ["Must be on or after 'from'."]})
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(N_("A report spans at most five years."), {"to": ["At most five years after 'from'."]})
    try:
        kpis.Grouping.parse(group_by)
    except ValueError as exc:
        raise ValidationFailed(f"Unknown or repeated grouping: {exc}.", {"group_by": [
            f"Unknown or repeated: {exc}. Use any of {', '.join(kpis.DIMENSIONS)} and one of "
            f"{', '.join(kpis.PERIODS)}."]}) from None
    filters = {name: filters.get(name) for name in FILTERS}
    reach = require_report_reader(principal)
    if reach is Scope.ORGANISATION:
        filters["organisation_id"] = _confined(filters["organisation_id"], principal.organisation_id, "organisation_id")
    elif reach is Scope.TOWN:
        filters["town_id"] = _confined(filters["town_id"], principal.town_id, "town_id")
    return ReportQuery(first, last, tuple(group_by), filters)


def require_report_reader(principal: Principal, resource: Resource = Resource.REPORTS) -> Scope:
    """Reports are for managers, provider admins, auditors and admins (not caregivers); how far the caller reads
    them (the access table: a contract's frozen reports and settlements are not for town managers)."""
    reach = scope_of(principal, resource)
    if reach is Scope.NONE:
        if resource is Resource.REPORTS:
            raise PermissionDenied(N_("Reports are for managers, providers and auditors."))
        raise PermissionDenied(N_("A contract's frozen reports and settlements are the district's and the "
                                  "organisation's; a town manager reads the town's share in the KPI report."))
    return reach


def _confined(asked, own, name: str):
    if asked is not None and asked != own:
        raise PermissionDenied(N_("You may see reports of your own organisation or town only."), {name: ["Not yours."]})
    return own


# --- loading the facts ------------------------------------------------------------------------------------


def _grace() -> alert_rules.Grace:
    config = current_app.config
    return alert_rules.Grace(config["SERVICEHUB_LATE_MINUTES"], config["SERVICEHUB_LATE_MINUTES_MEAL"])


def _visit_filters(query: ReportQuery) -> list:
    """The query's period and filters as conditions on visits and their referral. Whatever is matched in another
    table (a service type's code or category, a recipient's town or class) is a subquery, so that a query joins
    only the tables whose columns it reads."""
    f = query.filters
    conditions = [Visit.service_date.between(query.first, query.last),
                  Visit.status.in_((VisitStatus.COMPLETED, VisitStatus.MISSED, VisitStatus.CANCELLED))]
    matched = {
        "organisation_id": lambda v: Visit.organisation_id == v,
        "contract_id": lambda v: Visit.referral_id.in_(select(Referral.id).where(Referral.contract_id == v)),
        "worker_id": lambda v: Visit.worker_id == v,
    }
    conditions += [condition(f[name]) for name, condition in matched.items() if f.get(name) is not None]
    conditions += _type_and_recipient_conditions(f, Visit.service_type_id, Visit.recipient_id)
    return conditions


def _type_and_recipient_conditions(filters: dict, service_type_id, recipient_id) -> list:
    """The filters that name a service type, a category, a town, a class of recipient or a recipient, as
    conditions on a table's service type and recipient columns: subqueries, so the query joins no more tables."""
    types, recipients = select(ServiceType.id), select(Recipient.id)
    matched = {
        "service_type": lambda v: service_type_id.in_(types.where(ServiceType.code == v)),
        "category": lambda v: service_type_id.in_(
            types.join(ServiceCategory, ServiceCategory.id == ServiceType.category_id).where(ServiceCategory.code == v)),
        "town_id": lambda v: recipient_id.in_(recipients.where(Recipient.town_id == v)),
        "recipient_class": lambda v: recipient_id.in_(
            recipients.join(AssistanceClass, AssistanceClass.id == Recipient.assistance_class_id)
            .where(AssistanceClass.code == v)),
        "recipient_id": lambda v: recipient_id == v,
    }
    return [condition(filters[name]) for name, condition in matched.items() if filters.get(name) is not None]


def _reported_visits():
    """Visits joined to what a record of the report shows: referral, contract line and contract, service type
    and category, recipient and assistance class."""
    return (join(Visit, Referral, Referral.id == Visit.referral_id)
            .join(ContractLine, ContractLine.id == Referral.contract_line_id)
            .join(Contract, Contract.id == Referral.contract_id)
            .join(ServiceType, ServiceType.id == Visit.service_type_id)
            .join(ServiceCategory, ServiceCategory.id == ServiceType.category_id)
            .join(Recipient, Recipient.id == Visit.recipient_id)
            .join(AssistanceClass, AssistanceClass.id == Recipient.assistance_class_id))


def load_visit_facts(query: ReportQuery) -> list[kpis.VisitFact]:
    """The period's delivered, missed and cancelled visits under the query's filters, as the ledger has them."""
    rows = db.session.execute(
        select(Visit.id, Visit.organisation_id, Referral.contract_id, Referral.contract_line_id, Referral.need_id,
               ServiceType.code, ServiceCategory.code, ServiceType.unit, Visit.duration_min, Recipient.town_id,
               Visit.recipient_id, AssistanceClass.code, Visit.worker_id, Visit.service_date, Visit.status,
               Visit.planned_start, Visit.window_start, Visit.travel_min, ContractLine.unit_price_fen,
               Contract.start_date, Contract.end_date, Visit.delivery_exception, Visit.delivery_manual)
        .select_from(_reported_visits())
        .where(*_visit_filters(query))
    ).all()
    deliveries = _deliveries(query, {row[0] for row in rows if row[14] == VisitStatus.COMPLETED})
    certified = _certificates({row[12] for row in rows if row[12] is not None})
    tz = district_tz()
    facts = []
    for (visit_id, organisation, contract, line, need, type_code, category, unit, duration, town, recipient, klass,
         worker, day, status, planned_start, window_start, travel, price, contract_first, contract_last, exception,
         manual) in rows:
        in_force = contract_first <= day <= contract_last
        if query.filters.get("contract_id") is not None and not in_force:
            continue
        expected = planned_start or datetime.combine(day, window_start, tzinfo=tz).astimezone(UTC)
        fact = kpis.VisitFact(
            visit_id=visit_id, organisation=organisation, contract=contract if in_force else None,
            line=line if in_force else None, need=need, service_type=type_code, category=category, town=town,
            recipient=recipient, recipient_class=klass, worker=worker, service_date=day,
            outcome={VisitStatus.COMPLETED: kpis.DELIVERED, VisitStatus.MISSED: kpis.MISSED}.get(status, kpis.CANCELLED),
            expected_start=_aware(expected), meal=unit == "meal", units=units_per_delivery(unit, duration),
            unit_price_fen=price, travel_min=travel or 0)
        if fact.outcome == kpis.DELIVERED:
            delivery = deliveries.get(visit_id)
            if delivery is None:
                continue  # marked completed without a delivery in the ledger: not a person-time
            entry, record_ids = delivery
            fact = replace(fact, started_at=_aware(entry.started_at), ended_at=_aware(entry.ended_at),
                           satisfaction=entry.satisfaction, exception=bool(exception), manual=bool(manual),
                           corrected=entry.kind == RecordKind.CORRECTION, received_at=_aware(entry.received_at),
                           certified=any(until is None or until >= day for until in certified.get(worker, ())),
                           record_ids=record_ids)
        facts.append(fact)
    return facts


def load_visit_blocks(query: ReportQuery) -> list[kpis.VisitBlock]:
    """The period's visits under the query's filters summed into blocks by the database, from their deliveries
    in force (`Visit.delivery_*`): the sums of `kpis.visit_sums`, written in SQL (one row per block, not one fact per visit)."""
    grace = _grace()
    by_unit = defaultdict(list)
    for type_id, unit in db.session.execute(select(ServiceType.id, ServiceType.unit)).all():
        by_unit[unit].append(type_id)
    contracts = {contract: (first, last) for contract, first, last
                 in db.session.execute(select(Contract.id, Contract.start_date, Contract.end_date)).all()}
    delivered = Visit.status == VisitStatus.COMPLETED
    # What a service type decides is matched by its id: the visits are not joined to the catalogue.
    units = case((Visit.service_type_id.in_(by_unit["hour"]), (Visit.duration_min + 59) // literal(60, Integer)), else_=1)
    grace_s = case((Visit.service_type_id.in_(by_unit["meal"]), grace.meal * 60), else_=grace.default * 60)
    # A worker is certified on a day when any qualification of theirs is valid then, i.e. when the latest expiry
    # (none: never) is on or after it: one row per worker joined, not a subquery per visit.
    valid_until = (select(WorkerQualification.worker_id,
                          func.max(func.coalesce(WorkerQualification.expires_on, date.max)).label("until"))
                   .group_by(WorkerQualification.worker_id).subquery())
    certified = valid_until.c.until >= Visit.service_date

    def when(condition, value=1):
        return case((condition, value), else_=0)

    # Units count only while the contract is in force, and value_fen is units x the line's price: both are
    # settled below, per block (each block is of one referral, so of one contract line, and of one piece).
    sums = {
        "visits": literal(1, Integer),
        "person_times": when(delivered),
        "missed": when(Visit.status == VisitStatus.MISSED),
        "service_s": when(delivered, Visit.delivery_service_s),
        "units": when(delivered, units),
        **{f"score_{k}": when(and_(delivered, Visit.delivery_satisfaction == k)) for k in kpis.SCORES},
        "exceptions": when(and_(delivered, Visit.delivery_exception)),
        "corrected": when(and_(delivered, Visit.delivery_corrected)),
        "manual": when(and_(delivered, Visit.delivery_manual)),
        "certified": when(and_(delivered, certified)),
        "on_time": when(and_(delivered, Visit.delivery_late_s <= grace_s)),
        "late": when(and_(delivered, Visit.delivery_late_s > grace_s)),
        "within_24h": when(and_(delivered, Visit.delivery_submit_s <= kpis.SUBMITTED_WITHIN.total_seconds())),
        "travel_min": when(delivered, func.coalesce(Visit.travel_min, 0)),
    }
    by_day = query.grouping.period == "day"
    pieces = [] if by_day else _pieces(query, contracts.values())
    # Grouped by what is on the visit row, no more: the visits (their deliveries in force on the row) are joined
    # to no table but the workers' certification. A block's need, contract and line follow from its referral, its
    # category, town and class from its service type and recipient, and its bucket from its piece; each is put
    # back from smaller tables below. Each table joined and each key sorted cost a district month's query about a tenth.
    keys = {"organisation": Visit.organisation_id, "referral": Visit.referral_id,
            "piece": Visit.service_date if by_day else _piece_of(Visit.service_date, [p[0] for p in pieces]),
            "service_type": Visit.service_type_id, "worker": Visit.worker_id, "recipient": Visit.recipient_id}
    rows = (select(*(column.label(name) for name, column in keys.items()),
                   *(column.label(name) for name, column in sums.items()))
            .select_from(join(Visit, valid_until, valid_until.c.worker_id == Visit.worker_id, isouter=True))
            .where(*_visit_filters(query), or_(~delivered, Visit.delivery_record_id.is_not(None))))
    inner = rows.subquery()
    key_columns = [inner.c[name] for name in keys]
    summed_in_sql = kpis.SUMS[:-1]  # all but value_fen, the last
    found = _all_rows(
        select(*key_columns, *(func.sum(inner.c[name]) for name in summed_in_sql)).group_by(*key_columns))
    if not found:
        return []
    referrals = _rows_by_id(select(Referral.id, Referral.need_id, Referral.contract_id, Referral.contract_line_id),
                            {row[1] for row in found})
    prices = dict(db.session.execute(select(ContractLine.id, ContractLine.unit_price_fen)
                                     .where(ContractLine.id.in_({line for _, _, line in referrals.values()}))).all())
    places = _recipient_places({row[5] for row in found})
    types = _service_type_codes()
    width, units_at = len(keys), len(keys) + summed_in_sql.index("units")
    one_contract = query.filters.get("contract_id") is not None
    blocks = []
    for row in found:
        need, contract, line = referrals[row[1]]
        first, bucket = _day_and_label(row[2]) if by_day else pieces[row[2]]
        contract_first, contract_last = contracts[contract]
        if contract_first <= first <= contract_last:
            sums = (*row[width:], row[units_at] * prices[line])
        elif one_contract:
            continue  # a contract's report holds only what was delivered while it was in force
        else:  # no units and no value out of contract
            contract, sums = None, (*row[width:units_at], 0, *row[units_at + 1:], 0)
        blocks.append(kpis.VisitBlock(row[0], contract, *types[row[3]], *places[row[5]], row[4], row[5], need, bucket,
                                      sums))
    return blocks


def _all_rows(stmt) -> list:
    """Every row of a statement. On SQLite as one JSON array made inside the engine (dates as text): its driver
    gives the interpreter up and takes it back at every row it steps through, so reading 60,000 rows one by one
    waits behind any other thread's Python at each row; one step for the whole array lets the other run."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return connection.execute(stmt).all()
    inner = stmt.subquery()
    return json.loads(connection.execute(select(func.json_group_array(func.json_array(*inner.c)))).scalar_one())


def _day_and_label(day: date | str) -> tuple[date, str]:
    return (date.fromisoformat(day), day) if isinstance(day, str) else (day, day.isoformat())


def _pieces(query: ReportQuery, contract_periods) -> list[tuple[date, str | None]]:
    """The query's period cut at each of its buckets and at each day a contract starts or ends: the first day
    and the bucket label of every piece, in order. No contract starts or ends within a piece, so a visit's
    contract is in force on every day of its piece or on none."""
    cuts = sorted({day for first, last in contract_periods for day in (first, last + timedelta(days=1))
                   if query.first < day <= query.last})
    period = query.grouping.period
    buckets = ([(b.first, b.last, b.label) for b in kpis.buckets_between(query.first, query.last, period)] if period
               else [(query.first, query.last, None)])
    pieces = []
    for first, last, label in buckets:
        pieces.append((max(first, query.first), label))
        pieces += [(day, label) for day in cuts if first < day <= last]
    return pieces


def _piece_of(day, starts: list[date], low: int = 0, high: int | None = None):
    """The index of the piece (`starts`: their first days, in order) a day falls in, in SQL: a balanced tree of
    CASEs, so a visit is compared log2(pieces) times however many months and contracts a report spans."""
    high = len(starts) if high is None else high
    if high - low == 1:
        return literal(low, Integer)
    middle = (low + high) // 2
    return case((day < starts[middle], _piece_of(day, starts, low, middle)), else_=_piece_of(day, starts, middle, high))


def _rows_by_id(stmt, ids: set[int]) -> dict[int, tuple]:
    """The rows of `stmt` (its first column an id) for the ids given, as id -> the rest of the row. When they
    are many, every row is read: one scan beats a long list of ids."""
    if len(ids) <= IDS_LISTED:
        stmt = stmt.where(stmt.selected_columns[0].in_(ids))
    return {row[0]: tuple(row[1:]) for row in db.session.connection().execute(stmt).all()}


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class _Entry:
    id: int
    visit_id: int
    kind: str
    flags: list
    refers_to_id: int | None
    reason_code: str
    started_at: datetime | None
    ended_at: datetime | None
    satisfaction: int | None
    received_at: datetime


def _deliveries(query: ReportQuery, visit_ids: set[int]) -> dict[int, tuple[_Entry, tuple[int, ...]]]:
    """Visit id -> (the delivery in force, the ids of its delivery, correction and approval entries)."""
    if not visit_ids:
        return {}
    conditions = [ServiceRecord.service_date.between(query.first, query.last),
                  ServiceRecord.kind.in_((RecordKind.DELIVERY, RecordKind.CORRECTION, RecordKind.APPROVAL))]
    if query.filters.get("organisation_id") is not None:
        conditions.append(ServiceRecord.organisation_id == query.filters["organisation_id"])
    by_visit: dict[int, list[_Entry]] = defaultdict(list)
    for row in db.session.execute(
            select(ServiceRecord.id, ServiceRecord.visit_id, ServiceRecord.kind, ServiceRecord.flags,
                   ServiceRecord.refers_to_id, ServiceRecord.reason_code, ServiceRecord.started_at,
                   ServiceRecord.ended_at, ServiceRecord.satisfaction, ServiceRecord.received_at)
            .where(*conditions).order_by(ServiceRecord.organisation_id, ServiceRecord.sequence)):
        if row.visit_id in visit_ids:
            by_visit[row.visit_id].append(_Entry(*row))
    found = {}
    for visit_id, entries in by_visit.items():
        current = ledger.effective_delivery(entries)
        if current is not None:
            found[visit_id] = (current, tuple(e.id for e in entries))
    return found


def _certificates(worker_ids: set[int]) -> dict[int, list[date | None]]:
    """Worker id -> the expiry dates of the certificates they hold (None: no expiry)."""
    held: dict[int, list[date | None]] = defaultdict(list)
    if worker_ids:
        for worker_id, expires in db.session.execute(
                select(WorkerQualification.worker_id, WorkerQualification.expires_on)
                .where(WorkerQualification.worker_id.in_(worker_ids))):
            held[worker_id].append(expires)
    return held


def load_need_facts(query: ReportQuery) -> list[kpis.NeedFact]:
    """Needs in force during the period under the query's filters, with the referral serving them and the day
    each was first served."""
    f = query.filters
    if f.get("worker_id") is not None:
        return []
    # Two plain reads merged here: joining the serving referrals and the first deliveries to 42,000 needs in SQL
    # cost SQLite more than the reads themselves (it built an index on each of the two for the join).
    connection = db.session.connection()
    # Each referral's first delivery: one step into the index on (referral, status, date) per referral.
    first_day = (select(func.min(Visit.service_date))
                 .where(Visit.referral_id == Referral.id, Visit.status == VisitStatus.COMPLETED).scalar_subquery())
    serving, first_served = {}, {}
    for need, organisation, contract, is_serving, first in connection.execute(
            select(Referral.need_id, Referral.organisation_id, Referral.contract_id, Referral.status.in_(SERVING),
                   first_day).order_by(Referral.id)).all():
        if is_serving:
            serving[need] = (organisation, contract)  # the latest serving referral of each need
        if first is not None and (need not in first_served or first < first_served[need]):
            first_served[need] = first
    # created_at read as the engine gives it (naive UTC on SQLite): local_date takes either, one zone lookup a
    # quarter hour, where the column's own type would make each an aware UTC datetime first.
    stmt = (select(Need.id, Need.recipient_id, Need.service_type_id, Need.period,
                   type_coerce(Need.created_at, DateTime(timezone=True)), Need.start_date, Need.end_date)
            .where(Need.status.in_(IN_FORCE_NEEDS), or_(Need.end_date.is_(None), Need.end_date >= query.first)))
    referred = select(Referral.need_id).where(Referral.status.in_(SERVING))
    matched = {  # in SQL what narrows the read; the serving referral's organisation and contract exactly below
        "organisation_id": lambda v: Need.id.in_(referred.where(Referral.organisation_id == v)),
        "contract_id": lambda v: Need.id.in_(referred.where(Referral.contract_id == v)),
    }
    stmt = stmt.where(*(condition(f[name]) for name, condition in matched.items() if f.get(name) is not None),
                      *_type_and_recipient_conditions(f, Need.service_type_id, Need.recipient_id))
    rows = connection.execute(stmt).all()
    if not rows:
        return []
    types = _service_type_codes()
    places = _recipient_places({row[1] for row in rows})
    organisation, contract = f.get("organisation_id"), f.get("contract_id")
    local_date = local_dates(district_tz())
    facts = []
    for need, recipient, type_id, period, created_at, starts, ends in rows:
        first = first_served.get(need)
        # A need served before its start date (a need carried over from an earlier contract period) was in force
        # from its first delivery.
        if first is not None and first < starts:
            starts = first
        if starts > query.last:
            continue
        served_by = serving.get(need, (None, None))
        if (organisation is not None and served_by[0] != organisation) or (contract is not None and served_by[1] != contract):
            continue
        facts.append(kpis.NeedFact(need, recipient, *places[recipient], *types[type_id], period, local_date(created_at),
                                   starts, ends, *served_by, first))
    return facts


def _service_type_codes() -> dict[int, tuple[str, str]]:
    """Service type id -> (its code, its category's code)."""
    return {type_id: (code, category) for type_id, code, category in db.session.execute(
        select(ServiceType.id, ServiceType.code, ServiceCategory.code)
        .join(ServiceCategory, ServiceCategory.id == ServiceType.category_id)).all()}


def _recipient_places(recipient_ids: set[int]) -> dict[int, tuple[int, str]]:
    """Recipient id -> (town id, assistance class code), for the ids given."""
    return _rows_by_id(select(Recipient.id, Recipient.town_id, AssistanceClass.code)
                       .join(AssistanceClass, AssistanceClass.id == Recipient.assistance_class_id), recipient_ids)


def load_line_facts(query: ReportQuery) -> list[kpis.LineFact]:
    """Contract lines of contracts overlapping the period under the query's filters (none when the report is
    confined to what a line cannot be split by: a town, a class of recipient, a worker or a recipient)."""
    f = query.filters
    if any(f.get(name) is not None for name in ("town_id", "recipient_class", "worker_id", "recipient_id")):
        return []
    stmt = (select(ContractLine.id, Contract.id, Contract.organisation_id, ServiceType.code, ServiceCategory.code,
                   ContractLine.contracted_quantity, ContractLine.unit_price_fen, Contract.start_date,
                   Contract.end_date, Contract.budget_fen)
            .join(Contract, Contract.id == ContractLine.contract_id)
            .join(ServiceType, ServiceType.id == ContractLine.service_type_id)
            .join(ServiceCategory, ServiceCategory.id == ServiceType.category_id)
            .where(Contract.start_date <= query.last, Contract.end_date >= query.first))
    for column, value in ((Contract.organisation_id, f.get("organisation_id")), (Contract.id, f.get("contract_id")),
                          (ServiceType.code, f.get("service_type")), (ServiceCategory.code, f.get("category"))):
        if value is not None:
            stmt = stmt.where(column == value)
    return [kpis.LineFact(*row) for row in db.session.execute(stmt)]


# --- reports ----------------------------------------------------------------------------------------------


def compute(query: ReportQuery, visits: list[kpis.VisitFact] | None = None, needs: list[kpis.NeedFact] | None = None,
            lines: list[kpis.LineFact] | None = None, blocks: list[kpis.VisitBlock] | None = None) -> kpis.Report:
    """The query's report from the visit facts given, else from blocks the database sums (the same figures:
    a test holds them equal) — those given, bucketed by the query's period granularity, or loaded; needs and
    lines loaded unless given."""
    with collector_paused():
        # What is loaded is freed inside the block, when _computed returns: the collector, once back, would scan
        # every object still alive that was made while it was off (a district month: 0.05 s).
        return _computed(query, visits, needs, lines, blocks)


def _computed(query: ReportQuery, visits, needs, lines, blocks) -> kpis.Report:
    if visits is None and blocks is None and needs is None:
        blocks, needs = _blocks_and_needs(query)
    needs = load_need_facts(query) if needs is None else needs
    lines = load_line_facts(query) if lines is None else lines
    if visits is not None:
        return kpis.kpi_report(visits, needs, lines, query.period, query.grouping, _grace())
    blocks = load_visit_blocks(query) if blocks is None else blocks
    return kpis.report_from_blocks(blocks, needs, lines, query.period, query.grouping)


def _blocks_and_needs(query: ReportQuery) -> tuple[list[kpis.VisitBlock], list[kpis.NeedFact]]:
    """The blocks and the need facts, their two queries run at once on two connections: PostgreSQL runs them on
    two backends, SQLite sums the blocks in one step while the other thread reads the needs (`_all_rows`), so
    both engines use both cores (a district month, one after the other -> side by side: PostgreSQL 0.93 ->
    0.72 s, SQLite 0.89 -> 0.69 s). Each query reads one consistent snapshot of its own, as each statement does
    under PostgreSQL's READ COMMITTED one after the other; a report was never one snapshot across its queries
    there."""
    app = current_app._get_current_object()
    found: dict = {}

    def needs_beside():
        with app.app_context():
            try:
                found["needs"] = load_need_facts(query)
            except Exception as exc:  # raised again in the request's thread
                found["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=needs_beside, name="report-needs")
    thread.start()
    try:
        blocks = load_visit_blocks(query)
    finally:
        thread.join()
    if "error" in found:
        raise found["error"]
    return blocks, found["needs"]


def kpi_report(principal: Principal, first: date, last: date, group_by=(), **filters) -> dict:
    """The KPIs of a period, grouped and filtered, with the names of what the groups are and the definitions."""
    query = checked_query(principal, first, last, group_by, **filters)
    return _presented(query, compute(query).as_dict())


def _presented(query: ReportQuery, report: dict) -> dict:
    report["filters"] = query.as_dict()["filters"]
    report["labels"] = labels_for(report)
    return report


def labels_for(report: dict) -> dict:
    """Names (zh, en) of the organisations, contracts, service types … that the report's groups and filters
    name, by dimension and key."""
    wanted: dict[str, set] = defaultdict(set)
    for group in report["groups"]:
        for name, value in group["key"].items():
            if name in kpis.DIMENSIONS and value is not None:
                wanted[name].add(value)
    for name, value in report.get("filters", {}).items():
        dimension = next((d for d, f in FILTER_OF.items() if f == name), None)
        if dimension:
            wanted[dimension].add(value)
    return {dimension: _names(dimension, values) for dimension, values in wanted.items()}


def _names(dimension: str, values: set) -> dict:
    sources = {
        "organisation": (Organisation.id, Organisation.name_zh, Organisation.name_en),
        "contract": (Contract.id, Contract.name_zh, Contract.name_en),
        "service_type": (ServiceType.code, ServiceType.name_zh, ServiceType.name_en),
        "category": (ServiceCategory.code, ServiceCategory.name_zh, ServiceCategory.name_en),
        "town": (Area.id, Area.name_zh, Area.name_en),
        "recipient_class": (AssistanceClass.code, AssistanceClass.name_zh, AssistanceClass.name_en),
        "worker": (Worker.id, Worker.name, Worker.name),
        "recipient": (Recipient.id, Recipient.name, Recipient.name),
    }
    key, zh, en = sources[dimension]
    rows = db.session.execute(select(key, zh, en).where(key.in_(values))).all()
    if dimension == "contract":
        codes = dict(db.session.execute(select(Contract.id, Contract.code).where(Contract.id.in_(values))).all())
        return {str(k): {"zh": f"{codes[k]} {z}", "en": f"{codes[k]} {e or z}"} for k, z, e in rows}
    return {str(k): {"zh": z, "en": e or z} for k, z, e in rows}


def drill_down(principal: Principal, first: date, last: date, key: dict | None = None, **filters) -> dict:
    """The records behind a group's figures: each visit with what it adds, and the sums (which equal the
    group's figures). `key` is the group's key (dimension -> value, None for a group of visits with no contract
    in force or no worker; a period name -> its bucket label)."""
    key = dict(key or {})
    period_names = [name for name in key if name in kpis.PERIODS]
    unset = tuple(name for name, value in key.items() if name in FILTER_OF and value is None)
    for name, value in key.items():
        if name in unset:
            continue  # no filter selects "none": the facts are picked below
        if name in FILTER_OF:
            if filters.get(FILTER_OF[name]) not in (None, value):
                return _with_labels(_drilled(checked_query(principal, first, last, (), **filters), [], key))
            filters[FILTER_OF[name]] = value
        elif name not in kpis.PERIODS:
            raise ValidationFailed(N_("Unknown group key: %(name)s.", name=name), {"key": [f"Unknown: {name}."]})
    if len(period_names) > 1:
        raise ValidationFailed(N_("A group has at most one period."), {"key": ["At most one period."]})
    query = checked_query(principal, first, last, tuple(period_names), **filters)
    facts = load_visit_facts(query)
    if period_names or unset:
        grouping = kpis.Grouping(unset, period_names[0] if period_names else None)
        wanted = (None,) * len(unset) + ((key[period_names[0]],) if period_names else ())
        facts = [f for f in facts if kpis.in_group(f, grouping, wanted)]
    return _with_labels(_drilled(query, facts, key))


def _drilled(query: ReportQuery, facts: list[kpis.VisitFact], key: dict) -> dict:
    rows, sums = [], dict.fromkeys(("person_times", "service_hours", "delivered_units", "delivered_value_fen",
                                    "missed"), 0)
    service_s = 0.0
    for fact in sorted(facts, key=lambda f: (f.service_date, f.visit_id)):
        share = kpis.contribution(fact)
        for name in sums:
            sums[name] += share[name]
        service_s += kpis.service_seconds(fact) if share["person_times"] else 0.0
        rows.append({**fact_dict(fact), **share})
    # Hours from the summed seconds, as the report's figure is: a sum of each visit's hours (each a float division)
    # put a total of exactly 14.765 h on the other side of the rounding (14.76 beside the report's 14.77).
    sums["service_hours"] = round(service_s / 3600, 2)
    sums["delivered_units"] = round(sums["delivered_units"], 2)
    drilled = {"from": query.first.isoformat(), "to": query.last.isoformat(), "key": key,
               "filters": query.as_dict()["filters"], "records": rows, "sums": sums}
    return drilled


def _with_labels(drilled: dict) -> dict:
    """The drill-down with the names of the organisations, services and workers of its records and filters."""
    drilled["labels"] = labels_for({"groups": [{"key": {"organisation": r["organisation"],
                                                        "service_type": r["service_type"], "worker": r["worker"]}}
                                               for r in drilled["records"]], "filters": drilled["filters"]})
    return drilled


FACT_FIELDS = tuple(kpis.VisitFact.__dataclass_fields__)
FACT_DEFAULTS = {name: f.default for name, f in kpis.VisitFact.__dataclass_fields__.items() if f.default is not MISSING}


def fact_dict(fact: kpis.VisitFact) -> dict:
    """A visit fact as plain JSON-ready data (what a frozen report stores and a drill-down lists)."""
    data = {}
    for name in FACT_FIELDS:
        value = getattr(fact, name)
        data[name] = value.isoformat() if isinstance(value, (date, datetime)) else value
    data["record_ids"] = list(fact.record_ids)
    return data


def fact_from_dict(data: dict) -> kpis.VisitFact:
    """The inverse of `fact_dict`."""
    values = dict(data)
    values["service_date"] = date.fromisoformat(values["service_date"])
    for name in ("expected_start", "started_at", "ended_at", "received_at"):
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    values["record_ids"] = tuple(values.get("record_ids", ()))
    return kpis.VisitFact(**{k: v for k, v in values.items() if k in FACT_FIELDS})


SHEET_GROUPINGS = ("organisation", "service_type", "town")  # the by-… parts of a downloaded report


def build_document(query: ReportQuery, title: str = "", with_records: bool = True) -> dict:
    """Everything a downloaded report shows: the report as asked, the same period by organisation, by service
    type and by town, the records behind it (or only their count), the definitions, and when and by which code
    it was made. Without the records, the database sums the visits once for every grouping without a period
    (a block holds every dimension; see `compute`)."""
    facts = load_visit_facts(query) if with_records else None
    needs, lines = load_need_facts(query), load_line_facts(query)
    unbucketed = None if with_records else load_visit_blocks(replace(query, group_by=()))

    def report(grouped: ReportQuery) -> dict:
        blocks = unbucketed if grouped.grouping.period is None else None
        return _presented(grouped, compute(grouped, facts, needs, lines, blocks).as_dict())

    asked = compute(query, facts, needs, lines, unbucketed if query.grouping.period is None else None)
    document = {"title": title, "query": query.as_dict(), "report": _presented(query, asked.as_dict()),
                "by": {name: report(replace(query, group_by=(name,))) for name in SHEET_GROUPINGS},
                "record_count": asked.visits, "definitions": definitions(),
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "code_version": code_version()}
    if with_records:
        document["records"] = _drilled(query, facts, {})["records"]
    return document


def report_document(principal: Principal, first: date, last: date, group_by=(), with_records: bool = True,
                    **filters) -> dict:
    """The document of a report the caller may run (see `build_document`)."""
    return build_document(checked_query(principal, first, last, group_by, **filters), with_records=with_records)


def frozen_document(principal: Principal, frozen_id: int) -> dict:
    """The document of a frozen report exactly as it was issued."""
    frozen = get_frozen(principal, frozen_id)
    return {**frozen.figures, "records": frozen.facts, "frozen": {
        "id": frozen.id, "content_hash": frozen.content_hash, "code_version": frozen.code_version,
        "generated_at": frozen.generated_at.isoformat(timespec="seconds"), "generated_by": frozen.generated_by}}


def definitions() -> list[dict]:
    """Every KPI's definition, as reports print it."""
    return [asdict(d) for d in kpis.DEFINITIONS]


# --- frozen reports ---------------------------------------------------------------------------------------


@cache
def code_version() -> str:
    """The installed version and, in a git checkout, the commit the code is at."""
    version = metadata.version("servicehub")
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def content_hash(facts: list[dict]) -> str:
    """SHA-256 of the facts in canonical JSON."""
    text = json.dumps(sorted(facts, key=lambda f: f["visit_id"]), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


month_of = month_days


CONTRACT_GROUPING = ("service_type",)


def freeze_contract_month(principal: Principal, contract_id: int, month: str,
                          accept_open_exceptions: bool = False) -> FrozenReport:
    """Issue the monthly report of a contract with its settlement: compute both and store them with the facts,
    their hash and the code version. A month is frozen once (409 when it already is) and only once it is over;
    while any of its visits has undecided exceptions it is frozen only when the caller says so
    (`accept_open_exceptions`), and the settlement lists them."""
    first, last = month_of(month)
    contract = db.session.get(Contract, contract_id)
    if contract is None or not allows(principal, Resource.CONTRACTS, organisation_id=contract.organisation_id):
        raise NotFound(N_("No such contract."), {"contract_id": ["Unknown."]})
    if not allows(principal, Resource.FROZEN_REPORTS, Action.WRITE, organisation_id=contract.organisation_id):
        raise PermissionDenied(N_("Only district-level managers and admins freeze a contract's month."))
    if last >= district_today():
        raise ValidationFailed(N_("Only a month that is over can be frozen."), {"month": ["Not over yet."]})
    if contract.end_date < first or contract.start_date > last:
        raise ValidationFailed(N_("The contract does not run in that month."), {"month": ["Outside the contract."]})
    existing = db.session.scalar(select(FrozenReport).where(
        FrozenReport.contract_id == contract_id, FrozenReport.period_start == first, FrozenReport.period_end == last))
    if existing is not None:
        raise Conflict(N_("This month's report of the contract is already frozen."), {"month": ["Already frozen."]},
                       code="already_frozen")
    undecided = undecided_exceptions(contract_id, first, last)
    if undecided and not accept_open_exceptions:
        raise Conflict(N_("%(count)d exceptions of the month are not decided yet: decide them first, or say that the "
                          "month is frozen with them open.", count=undecided),
                       {"accept_open_exceptions": [f"{undecided} exceptions not decided; set it to freeze anyway."]},
                       code="open_exceptions")
    query = ReportQuery(first, last, CONTRACT_GROUPING, {"contract_id": contract_id})
    document = build_document(query, title=f"{contract.code} {contract.name_zh} {month}")
    stored = document.pop("records")
    frozen = FrozenReport(contract_id=contract_id, organisation_id=contract.organisation_id, period_start=first,
                          period_end=last, parameters=query.as_dict(), figures=document, facts=stored,
                          record_count=len(stored), content_hash=content_hash(stored), code_version=code_version(),
                          generated_by=principal.username,
                          settlement=load_settlement(contract, first, last).as_dict(), open_exceptions=undecided)
    db.session.add(frozen)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(N_("This month's report of the contract is already frozen."), {"month": ["Already frozen."]},
                       code="already_frozen") from None
    record_event(db.session, "report_frozen", "frozen_reports", frozen.id, contract=contract.code, month=month,
                 records=len(stored), content_hash=frozen.content_hash, total_fen=frozen.settlement["total_fen"],
                 open_exceptions=undecided)
    db.session.commit()
    return frozen


def frozen_visible(principal: Principal):
    """Frozen reports the caller may see (a provider its own; no town manager)."""
    return scope.visible(principal, Resource.FROZEN_REPORTS, organisation=FrozenReport.organisation_id)


def list_frozen(principal: Principal, contract_id: int | None = None, month: str | None = None,
                organisation_id: int | None = None) -> list[FrozenReport]:
    """Frozen reports the caller may see, newest month first (none for a town manager)."""
    require_report_reader(principal)
    stmt = select(FrozenReport).where(frozen_visible(principal))
    if organisation_id is not None:
        stmt = stmt.where(FrozenReport.organisation_id == organisation_id)
    if contract_id is not None:
        stmt = stmt.where(FrozenReport.contract_id == contract_id)
    if month is not None:
        stmt = stmt.where(FrozenReport.period_start == month_of(month)[0])
    return list(db.session.scalars(stmt.order_by(FrozenReport.period_start.desc(), FrozenReport.contract_id)))


def get_frozen(principal: Principal, frozen_id: int) -> FrozenReport:
    """One frozen report the caller may see."""
    require_report_reader(principal, Resource.FROZEN_REPORTS)
    frozen = db.session.scalar(select(FrozenReport).where(FrozenReport.id == frozen_id, frozen_visible(principal)))
    if frozen is None:
        raise NotFound(N_("No such frozen report."))
    return frozen


def compare_frozen(principal: Principal, frozen_id: int) -> dict:
    """Regenerate a frozen report's period from today's data and say what differs, record by record and figure
    by figure; the frozen report itself stays as it was."""
    frozen = get_frozen(principal, frozen_id)
    params = frozen.parameters
    query = ReportQuery(date.fromisoformat(params["from"]), date.fromisoformat(params["to"]),
                        tuple(params["group_by"]), {name: params["filters"].get(name) for name in FILTERS})
    facts = load_visit_facts(query)
    now = compute(query, facts).as_dict()
    stored = _drilled(query, facts, {})["records"]
    before = {f["visit_id"]: f for f in frozen.facts}
    after = {f["visit_id"]: f for f in stored}
    records = [{"visit_id": visit_id, "change": change, "fields": fields}
               for visit_id, change, fields in _record_changes(before, after)]
    settled = None
    if frozen.settlement is not None:
        contract = _settlement_contract(principal, frozen.contract_id)
        settled = settlement_changes(frozen.settlement,
                                     load_settlement(contract, frozen.period_start, frozen.period_end).as_dict())
    return {"frozen_id": frozen.id, "content_hash": frozen.content_hash, "current_hash": content_hash(stored),
            "unchanged": frozen.content_hash == content_hash(stored), "records": records,
            "figures": _figure_changes(frozen.figures["report"], now), "settlement": settled or [],
            "pending_corrections": pending_corrections(frozen)}


def _record_changes(before: dict, after: dict):
    for visit_id in sorted(before.keys() | after.keys()):
        old, new = before.get(visit_id), after.get(visit_id)
        if old is None:
            yield visit_id, "added", {}
        elif new is None:
            yield visit_id, "removed", {}
        else:
            # A fact added since the report was frozen counts as its default there (nothing changed by it).
            fields = {name: {"frozen": old.get(name, FACT_DEFAULTS.get(name)), "now": new.get(name)}
                      for name in sorted(old.keys() | new.keys())
                      if old.get(name, FACT_DEFAULTS.get(name)) != new.get(name, FACT_DEFAULTS.get(name))}
            if fields:
                yield visit_id, "changed", fields


def _figure_changes(frozen: dict, now: dict) -> list[dict]:
    def rows(report):
        yield "total", report["total"]
        for group in report["groups"]:
            yield json.dumps(group["key"], sort_keys=True, ensure_ascii=False), group["figures"]

    old, new = dict(rows(frozen)), dict(rows(now))
    changes = []
    for group in sorted(old.keys() | new.keys()):
        for code in kpis.FIGURES:
            a, b = (old.get(group) or {}).get(code), (new.get(group) or {}).get(code)
            if a != b:
                changes.append({"group": group, "figure": code, "frozen": a, "now": b})
    return changes


# --- scores and the monthly close -------------------------------------------------------------------------


def score_weights() -> dict[str, float]:
    """The composite score's weights: the defaults with SERVICEHUB_SCORE_WEIGHTS applied."""
    return scoring.checked_weights(current_app.config.get("SERVICEHUB_SCORE_WEIGHTS"))


def compute_scores(first: date, last: date) -> list[OrganisationScore]:
    """Score every organisation over first..last and store the scores (replacing the same period's)."""
    query = ReportQuery(first, last, ("organisation",))
    report = compute(query)
    weights = score_weights()
    stored = []
    for key, figures in report.groups:
        organisation_id = key[0]
        row = db.session.scalar(select(OrganisationScore).where(
            OrganisationScore.organisation_id == organisation_id, OrganisationScore.period_start == first,
            OrganisationScore.period_end == last)) or OrganisationScore(
            organisation_id=organisation_id, period_start=first, period_end=last)
        row.score = scoring.composite_score(figures, weights)
        row.components = scoring.components(figures)
        row.weights = weights
        row.person_times = figures["person_times"]
        row.computed_at = datetime.now(UTC)
        db.session.add(row)
        stored.append(row)
    db.session.commit()
    return stored


def latest_scores() -> dict[int, float]:
    """Each organisation's most recent composite score (organisations with none are left out)."""
    latest = (select(OrganisationScore.organisation_id, func.max(OrganisationScore.period_end).label("period_end"))
              .group_by(OrganisationScore.organisation_id).subquery())
    rows = db.session.execute(
        select(OrganisationScore.organisation_id, OrganisationScore.score)
        .join(latest, and_(latest.c.organisation_id == OrganisationScore.organisation_id,
                           latest.c.period_end == OrganisationScore.period_end))
        .where(OrganisationScore.score.is_not(None))).all()
    return {organisation_id: value for organisation_id, value in rows}


def scores_visible(principal: Principal) -> list[OrganisationScore]:
    """The latest score of each organisation the caller may see."""
    require_report_reader(principal)
    stmt = (select(OrganisationScore)
            .where(scope.visible(principal, Resource.ORGANISATIONS, organisation=OrganisationScore.organisation_id))
            .order_by(OrganisationScore.period_end.desc(), OrganisationScore.organisation_id))
    seen, rows = set(), []
    for row in db.session.scalars(stmt):
        if row.organisation_id not in seen:
            seen.add(row.organisation_id)
            rows.append(row)
    return rows


def budget_burn(principal: Principal, today: date | None = None) -> list[dict]:
    """Each contract in force today that the caller may see, with the value delivered under it since it began
    against its whole budget, the most burnt first."""
    today = today or district_today()
    stmt = (select(Contract)
            .where(Contract.start_date <= today, Contract.end_date >= today, scope.contracts_visible(principal))
            .order_by(Contract.code))
    contracts = list(db.session.scalars(stmt))
    if not contracts:
        return []
    require_report_reader(principal)
    by_contract = compute(ReportQuery(min(c.start_date for c in contracts), today, ("contract",)), needs=[], lines=[])
    delivered = {key[0]: figures["delivered_value_fen"] for key, figures in by_contract.groups}
    delivered = defaultdict(int, {k: v for k, v in delivered.items() if k is not None})
    rows = [{"contract": c, "budget_fen": c.budget_fen, "value_fen": delivered[c.id],
             "share": round(delivered[c.id] / c.budget_fen, 4) if c.budget_fen else None} for c in contracts]
    return sorted(rows, key=lambda row: -(row["share"] or 0))


def previous_month(today: date) -> str:
    """The month before `today`'s, as YYYY-MM."""
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year}-{last.month:02d}"


def monthly_close(principal: Principal, today: date | None = None) -> dict[str, int]:
    """Freeze last month's report and settlement of every contract that ran in it (once: a month already frozen
    is left as it is; exceptions still undecided are listed in its settlement) and score the organisations over the
    last three full months."""
    today = today or district_today()
    month = previous_month(today)
    first, last = month_of(month)
    frozen = 0
    for contract_id in db.session.scalars(select(Contract.id).where(Contract.start_date <= last,
                                                                    Contract.end_date >= first).order_by(Contract.id)):
        try:
            freeze_contract_month(principal, contract_id, month, accept_open_exceptions=True)
            frozen += 1
        except Conflict:
            db.session.rollback()
    score_first = kpis.add_months(first, 1 - SCORE_MONTHS)
    scores = compute_scores(score_first, last)
    return {"frozen": frozen, "scored": len(scores)}


# --- monthly settlements -------------------------------------------------------------------------------------------


def frozen_visit_ids(visit_ids) -> set[int]:
    """The visits among these whose month's report is frozen for their contract (visits ask before they let a
    correction count: `servicehub.visits.verification.frozen_visits`)."""
    ids = sorted(set(visit_ids))
    if not ids:
        return set()
    return set(db.session.scalars(
        select(Visit.id).join(Referral, Referral.id == Visit.referral_id)
        .join(FrozenReport, and_(FrozenReport.contract_id == Referral.contract_id,
                                 FrozenReport.period_start <= Visit.service_date,
                                 FrozenReport.period_end >= Visit.service_date))
        .where(Visit.id.in_(ids))))


def _contract_visits(contract_id: int, first: date, last: date):
    return (select(Visit.id).join(Referral, Referral.id == Visit.referral_id)
            .where(Referral.contract_id == contract_id, Visit.service_date.between(first, last)))


def undecided_exceptions(contract_id: int, first: date, last: date) -> int:
    """How many exceptions of a contract's visits in first..last are not decided yet (open, explained, rejected)."""
    return db.session.scalar(select(func.count(EvvException.id)).where(
        EvvException.visit_id.in_(_contract_visits(contract_id, first, last)),
        EvvException.status.in_(UNDECIDED))) or 0


def load_settlement(contract: Contract, first: date, last: date) -> settlement.Settlement:
    """A contract's settlement of first..last (the days it is in force) from its lines, funding, delivered visits
    and their exceptions."""
    first, last = max(first, contract.start_date), min(last, contract.end_date)
    terms = [settlement.LineTerms(line.id, line.service_type.code, line.service_type.unit, line.unit_price_fen,
                                  line.contracted_quantity, line.billing, line.billing_step_min,
                                  line.min_billable_share) for line in contract.lines]
    rows = db.session.execute(
        select(Visit.id, Referral.contract_line_id, Visit.service_date, Visit.recipient_id, Visit.worker_id,
               Visit.duration_min, Visit.delivery_service_s)
        .join(Referral, Referral.id == Visit.referral_id)
        .where(Referral.contract_id == contract.id, Visit.service_date.between(first, last),
               Visit.status == VisitStatus.COMPLETED, Visit.delivery_record_id.is_not(None))).all()
    found = defaultdict(list)
    for visit_id, code, status in db.session.execute(
            select(EvvException.visit_id, EvvException.code, EvvException.status)
            .where(EvvException.visit_id.in_(_contract_visits(contract.id, first, last)),
                   EvvException.status != ExceptionStatus.CLEARED).order_by(EvvException.id)).all():
        found[visit_id].append((code, status))
    visits = [settlement.SettlementVisit(visit_id, line_id, day, recipient, worker, planned, settlement.DELIVERED,
                                         served or 0.0, tuple(found.get(visit_id, ())))
              for visit_id, line_id, day, recipient, worker, planned, served in rows]
    fundings = [settlement.Funding(f.source, f.funder, f.amount_fen) for f in contract.fundings]
    return settlement.settle(contract.id, first, last, terms, visits, fundings)


def _settlement_contract(principal: Principal, contract_id: int) -> Contract:
    require_report_reader(principal, Resource.SETTLEMENTS)
    contract = db.session.scalar(select(Contract).options(selectinload(Contract.lines), selectinload(Contract.fundings))
                                 .where(Contract.id == contract_id))
    if contract is None or not allows(principal, Resource.SETTLEMENTS, organisation_id=contract.organisation_id):
        raise NotFound(N_("No such contract."), {"contract_id": ["Unknown."]})
    return contract


def contract_settlement(principal: Principal, contract_id: int, month: str) -> dict:
    """A contract's settlement of a month: as frozen with the month's report (and what changed since), or as it
    stands today while the month is not frozen; the exceptions still undecided, the queue's id of each exception
    of the visits not paid yet, and the names a page shows."""
    contract = _settlement_contract(principal, contract_id)
    first, last = month_of(month)
    if contract.end_date < first or contract.start_date > last:
        raise ValidationFailed(N_("The contract does not run in that month."), {"month": ["Outside the contract."]})
    live = load_settlement(contract, first, last).as_dict()
    frozen = db.session.scalar(select(FrozenReport).where(
        FrozenReport.contract_id == contract.id, FrozenReport.period_start == first, FrozenReport.period_end == last))
    kept = frozen.settlement if frozen is not None and frozen.settlement is not None else None
    shown = kept or live
    return {"contract_id": contract.id, "contract_code": contract.code, "contract_name": contract.name_zh,
            "contract_name_en": contract.name_en or contract.name_zh, "organisation_id": contract.organisation_id,
            "organisation_name": contract.organisation.name_zh, "month": month, "frozen": kept is not None,
            "frozen_id": frozen.id if frozen is not None else None,
            "frozen_at": frozen.generated_at if frozen is not None else None,
            "frozen_by": frozen.generated_by if frozen is not None else None,
            "frozen_open_exceptions": frozen.open_exceptions if frozen is not None else None,
            "settlement": shown, "current": live if kept is not None else None,
            "differences": settlement_changes(kept, live) if kept is not None else [],
            "pending_corrections": pending_corrections(frozen) if kept is not None else [],
            "undecided": undecided_exceptions(contract.id, first, last),
            "exception_ids": _exception_ids({row["visit_id"] for d in (shown, live) for row in d["unsettled"]}),
            "names": _settlement_names(shown, live)}


def _exception_ids(visit_ids: set[int]) -> dict[int, dict[str, int]]:
    """Visit id -> exception code -> the exception's id in the queue (a visit has each code once)."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    ids = sorted(visit_ids)
    for start in range(0, len(ids), IDS_LISTED):
        for exception_id, visit_id, code in db.session.execute(
                select(EvvException.id, EvvException.visit_id, EvvException.code)
                .where(EvvException.visit_id.in_(ids[start:start + IDS_LISTED]))).all():
            found[visit_id][code] = exception_id
    return dict(found)


def settlement_undecided(principal: Principal, contract_id: int, month: str) -> int:
    """How many exceptions of a contract's month (one the caller may see) are not decided yet."""
    contract = _settlement_contract(principal, contract_id)
    first, last = month_of(month)
    return undecided_exceptions(contract.id, first, last)


def settlement_document(principal: Principal, contract_id: int, month: str) -> dict:
    """Everything a downloaded settlement shows: the settlement as `contract_settlement` gives it, the contract's
    period and when and by which code the file was made."""
    document = contract_settlement(principal, contract_id, month)
    contract = _settlement_contract(principal, contract_id)
    return {**document, "contract_start": contract.start_date.isoformat(),
            "contract_end": contract.end_date.isoformat(),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "code_version": code_version()}


def exception_counts(principal: Principal, first: date, last: date, organisation_id: int | None = None) -> list[dict]:
    """How many EVV exceptions of each code the visits of first..last have (those the caller may see; of one
    organisation when given), by where they stand: undecided (to explain or to decide), rejected, approved (or
    waived), cleared (no longer applying). One row per code that occurs, in the order of the codes."""
    if require_report_reader(principal) is Scope.ORGANISATION:
        organisation_id = _confined(organisation_id, principal.organisation_id, "organisation_id")
    counts = queue.counts_by_code(principal, status="all", organisation_id=organisation_id, first=first, last=last)
    rows = []
    for code, by_status in counts.items():
        row = {"code": code, "by_status": by_status,
               "undecided": by_status.get(ExceptionStatus.OPEN, 0) + by_status.get(ExceptionStatus.RESOLVED, 0),
               "rejected": by_status.get(ExceptionStatus.REJECTED, 0),
               "approved": by_status.get(ExceptionStatus.APPROVED, 0) + by_status.get(ExceptionStatus.WAIVED, 0),
               "cleared": by_status.get(ExceptionStatus.CLEARED, 0)}
        row["standing"] = row["undecided"] + row["rejected"] + row["approved"]  # raised and still applying
        rows.append(row)
    return rows


def settlement_changes(frozen: dict, now: dict) -> list[dict]:
    """What differs between a frozen settlement and today's: each line's figures, the total, and the visits whose
    payment changed (paid now and not then, or the other way)."""
    changes = []
    old = {line["line_id"]: line for line in frozen["lines"]}
    for line in now["lines"]:
        before = old.get(line["line_id"], {})
        for name in ("verified", "units", "amount_fen", "unverified", "unverified_fen"):
            if before.get(name) != line[name]:
                changes.append({"line_id": line["line_id"], "service_type": line["service_type"], "figure": name,
                                "frozen": before.get(name), "now": line[name]})
    if frozen["total_fen"] != now["total_fen"]:
        changes.append({"line_id": None, "service_type": None, "figure": "total_fen", "frozen": frozen["total_fen"],
                        "now": now["total_fen"]})
    then_open = {row["visit_id"] for row in frozen["unsettled"]}
    now_open = {row["visit_id"] for row in now["unsettled"]}
    changes += [{"visit_id": visit_id, "figure": "verified", "frozen": False, "now": True}
                for visit_id in sorted(then_open - now_open)]
    changes += [{"visit_id": visit_id, "figure": "verified", "frozen": True, "now": False}
                for visit_id in sorted(now_open - then_open)]
    return changes


def _settlement_names(*documents: dict) -> dict:
    recipients = {row["recipient"] for d in documents for row in d["unsettled"]}
    workers = {row["worker"] for d in documents for row in d["unsettled"] if row["worker"]}
    types = {line["service_type"] for d in documents for line in d["lines"]}
    return {
        "recipients": dict(db.session.execute(select(Recipient.id, Recipient.name)
                                              .where(Recipient.id.in_(recipients))).all()) if recipients else {},
        "workers": dict(db.session.execute(select(Worker.id, Worker.name)
                                           .where(Worker.id.in_(workers))).all()) if workers else {},
        "service_types": {code: {"zh": zh, "en": en} for code, zh, en in db.session.execute(
            select(ServiceType.code, ServiceType.name_zh, ServiceType.name_en)
            .where(ServiceType.code.in_(types))).all()},
    }


def pending_corrections(frozen: FrozenReport) -> list[dict]:
    """Corrections of a frozen month's visits waiting for the bureau (shown with its differences either way)."""
    rows = db.session.execute(
        select(EvvException.visit_id, EvvException.details, EvvException.status)
        .where(EvvException.code == FROZEN_CORRECTION,
               EvvException.visit_id.in_(_contract_visits(frozen.contract_id, frozen.period_start, frozen.period_end)),
               EvvException.status != ExceptionStatus.CLEARED).order_by(EvvException.visit_id)).all()
    return [{"visit_id": visit_id, "correction_id": details.get("correction_id"), "status": status}
            for visit_id, details, status in rows]
