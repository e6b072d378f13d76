"""Matching use cases: run the district-wide matching, and move referrals through their lifecycle.

`run_matching` loads the open needs in scope and every contract line that could serve them into the
plain problem of `servicehub.matching.problem`, checks the hard rules (`eligibility`), scores the
eligible options (`scoring`), assigns needs to lines with CP-SAT (`assignment`) and stores one
proposal (a `proposed` referral) per placed need and one outcome per need (alternatives, and the
organisations ruled out with the rule that ruled them out).

Referral actions check who may act (managers of the recipient's town offer and withdraw; the
organisation's admin accepts or declines; either suspends, resumes or closes), that the referral is in
a state the action applies to (409 otherwise), and keep the need's status in step. Every change is in
the audit log (session hook), with an event carrying the reason.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from servicehub.auth import policy
from servicehub.auth.audit import current_actor, record_event
from servicehub.auth.permissions import Principal, Role
from servicehub.catalog.models import ServiceType
from servicehub.database import paginate, transaction_lock, utcnow
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, ValidationFailed
from servicehub.evaluation.services import latest_scores
from servicehub.extensions import db
from servicehub.gc_pause import collector_paused
from servicehub.matching import assignment, eligibility, scoring
from servicehub.matching.models import (
    COMMITTED_STATUSES,
    LIVE_STATUSES,
    MatchingOutcome,
    MatchingRun,
    Referral,
    ReferralStatus,
)
from servicehub.matching.problem import LineOption, NeedCase, OrganisationProfile
from servicehub.registry import rules, scope
from servicehub.registry.models import (
    Area,
    AreaLevel,
    Contract,
    ContractLine,
    ContractStatus,
    Need,
    NeedStatus,
    Organisation,
    OrganisationStatus,
    Recipient,
    RecipientStatus,
    Station,
    Worker,
    WorkerQualification,
)
from servicehub.timeutil import district_today

ALTERNATIVES = 3  # how many runner-up options an outcome keeps
RULED_OUT_PER_RULE = 10  # organisations listed per rule (the rest are counted)


# --- the problem, from the database ----------------------------------------------------------


def weights() -> scoring.Weights:
    """The configured score weights (SERVICEHUB_MATCHING_WEIGHTS), defaults otherwise."""
    return scoring.Weights.from_mapping(current_app.config.get("SERVICEHUB_MATCHING_WEIGHTS"))


def line_usage(line_ids=None) -> dict[int, dict[str, float]]:
    """Units held on each line by live referrals: {line id: {"committed": accepted/active, "offered": …}}."""
    stmt = (
        select(Referral.contract_line_id, Referral.status, func.sum(Referral.reserved_units))
        .where(Referral.status.in_(LIVE_STATUSES))
        .group_by(Referral.contract_line_id, Referral.status)
    )
    if line_ids is not None:
        stmt = stmt.where(Referral.contract_line_id.in_(line_ids))
    usage: dict[int, dict[str, float]] = defaultdict(lambda: {"committed": 0.0, "offered": 0.0})
    for line_id, status, units in db.session.execute(stmt):
        key = "offered" if status == ReferralStatus.OFFERED else "committed"
        usage[line_id][key] += float(units or 0)
    return usage


def remaining_units(line: ContractLine, usage: dict) -> float:
    """What is left of a line for new referrals: contracted, less what live referrals hold."""
    held = usage.get(line.id, {"committed": 0.0, "offered": 0.0})
    return round(line.contracted_quantity - held["committed"] - held["offered"], 2)


def _line_options(today: date, line_id: int | None = None) -> list[LineOption]:
    """Lines of active contracts not yet ended (or just `line_id`), with what is left of each."""
    stmt = (
        select(Contract)
        .where(Contract.status == ContractStatus.ACTIVE, Contract.end_date >= today)
        .options(
            selectinload(Contract.lines).selectinload(ContractLine.service_type),
            selectinload(Contract.areas),
        )
    )
    if line_id is not None:
        stmt = stmt.where(Contract.lines.any(ContractLine.id == line_id))
    usage = line_usage(None if line_id is None else [line_id])
    options = []
    for contract in db.session.scalars(stmt):
        areas = frozenset(a.code for a in contract.areas)
        for line in contract.lines:
            if line_id is not None and line.id != line_id:
                continue
            options.append(
                LineOption(
                    line_id=line.id,
                    contract_id=contract.id,
                    contract_code=contract.code,
                    organisation_id=contract.organisation_id,
                    service_type=line.service_type.code,
                    unit_price_fen=line.unit_price_fen,
                    reference_price_fen=line.service_type.reference_price_fen,
                    contract_start=contract.start_date,
                    contract_end=contract.end_date,
                    contract_active=True,
                    area_codes=areas,
                    eligible_classes=frozenset(contract.eligible_classes),
                    remaining_units=remaining_units(line, usage),
                )
            )
    return options


def organisation_performance() -> dict[int, float]:
    """Each organisation's evaluated performance (0..1): its latest composite score (docs/kpis.md); organisations
    not scored yet are left out (neutral)."""
    return latest_scores()


def _organisation_profiles(today: date, organisation_id: int | None = None) -> dict[int, OrganisationProfile]:
    """What matching knows of each organisation (or just `organisation_id`)."""
    def only(column):
        return column == organisation_id if organisation_id is not None else column.isnot(None)

    organisations = db.session.scalars(select(Organisation).where(only(Organisation.id))).all()
    bases: dict[int, list] = defaultdict(list)
    for org_id, lat, lon in db.session.execute(
        select(Station.organisation_id, Station.lat, Station.lon).where(Station.active.is_(True),
                                                                          only(Station.organisation_id))
    ):
        bases[org_id].append((lat, lon))
    workers_per_org: dict[int, int] = defaultdict(int)
    genders: dict[int, dict[str | None, set]] = defaultdict(lambda: defaultdict(set))
    workers = db.session.scalars(
        select(Worker).where(Worker.active.is_(True), only(Worker.organisation_id)).options(
            selectinload(Worker.qualifications).selectinload(WorkerQualification.qualification)
        )
    )
    for worker in workers:
        workers_per_org[worker.organisation_id] += 1
        bases[worker.organisation_id].append((worker.start_lat, worker.start_lon))
        genders[worker.organisation_id][None].add(worker.gender)
        for held in worker.qualifications:
            if held.expires_on is None or held.expires_on >= today:
                genders[worker.organisation_id][held.qualification.code].add(worker.gender)
    live = dict(
        db.session.execute(
            select(Referral.organisation_id, func.count())
            .where(Referral.status.in_(COMMITTED_STATUSES), only(Referral.organisation_id))
            .group_by(Referral.organisation_id)
        ).all()
    )
    performance = organisation_performance()
    return {
        org.id: OrganisationProfile(
            organisation_id=org.id,
            name=org.short_name or org.name_zh,
            active=org.status == OrganisationStatus.ACTIVE,
            bases=tuple(bases[org.id]),
            qualified_genders={k: frozenset(v) for k, v in genders[org.id].items()},
            performance=performance.get(org.id),
            load=live.get(org.id, 0) / max(1, workers_per_org[org.id]),
        )
        for org in organisations
    }


def _need_cases(needs: list[Need]) -> list[NeedCase]:
    """The plain view of needs: who, where, what, how much, and what matching already knows of them."""
    def slices(ids) -> list[list[int]]:
        # Long IN lists go in slices: PostgreSQL takes at most 65,535 parameters, some SQLite builds 32,766.
        ids = list(ids)
        return [ids[first:first + 10_000] for first in range(0, len(ids), 10_000)]

    need_ids = [n.id for n in needs]
    recipient_ids = sorted({n.recipient_id for n in needs})
    serving: dict[int, set[int]] = defaultdict(set)
    for some in slices(recipient_ids):
        for recipient_id, org_id in db.session.execute(
            select(Need.recipient_id, Referral.organisation_id)
            .join(Referral, Referral.need_id == Need.id)
            .where(Need.recipient_id.in_(some), Referral.status.in_(COMMITTED_STATUSES))
        ):
            serving[recipient_id].add(org_id)
    declined: dict[int, set[int]] = defaultdict(set)
    live: set[int] = set()
    locked: dict[int, int] = {}
    referrals = (
        row
        for some in slices(need_ids)
        for row in db.session.execute(
            select(Referral.need_id, Referral.organisation_id, Referral.status, Referral.contract_line_id,
                   Referral.locked, Referral.offered_at).where(Referral.need_id.in_(some))
        )
    )
    for need_id, org_id, status, line_id, is_locked, offered_at in referrals:
        # A declined offer, or one withdrawn or left to expire, is not proposed to that organisation again.
        if status == ReferralStatus.DECLINED or (status == ReferralStatus.WITHDRAWN and offered_at is not None):
            declined[need_id].add(org_id)
        if status in LIVE_STATUSES:
            live.add(need_id)
        if status == ReferralStatus.PROPOSED and is_locked:
            locked[need_id] = line_id
    cases = []
    for need in needs:
        recipient, service_type = need.recipient, need.service_type
        cases.append(
            NeedCase(
                need_id=need.id,
                recipient_id=recipient.id,
                service_type=service_type.code,
                assistance_class=recipient.assistance_class.code,
                town_code=recipient.town.code,
                area_code=recipient.area.code,
                location=(recipient.lat, recipient.lon),
                start=need.start_date,
                end=need.end_date,
                monthly_units=rules.monthly_units(need.quantity, need.period, service_type.unit, need.duration_min),
                urgent=need.priority == "urgent",
                required_qualification=service_type.required_qualification.code
                if service_type.required_qualification
                else None,
                carer_gender=recipient.required_carer_gender,
                serving_organisations=frozenset(serving[recipient.id]),
                declined_by=frozenset(declined[need.id]),
                has_live_referral=need.id in live,
                locked_line_id=locked.get(need.id),
            )
        )
    return cases


def _need_query():
    return select(Need).options(
        selectinload(Need.recipient).selectinload(Recipient.assistance_class),
        selectinload(Need.recipient).selectinload(Recipient.town),
        selectinload(Need.recipient).selectinload(Recipient.area),
        selectinload(Need.service_type).selectinload(ServiceType.required_qualification),
    )


def _needs_in_scope(principal: Principal, town: str | None, need_ids: list[int] | None) -> list[Need]:
    stmt = (
        _need_query()
        .join(Need.recipient)
        .where(
            Need.status == NeedStatus.OPEN,
            Recipient.status == RecipientStatus.ACTIVE,
            scope.recipients_visible(principal),
        )
    )
    if town:
        stmt = stmt.where(Recipient.town_id == select(Area.id).where(Area.code == town).scalar_subquery())
    if need_ids is not None:
        stmt = stmt.where(Need.id.in_(need_ids))
    return list(db.session.scalars(stmt.order_by(Need.id)))


# --- evaluating options ----------------------------------------------------------------------


@dataclass
class Evaluation:
    """For each need: its eligible options (scored, best first) and the organisations ruled out."""

    options: dict[int, list[tuple[LineOption, scoring.Score, float]]] = field(default_factory=dict)
    ruled_out: dict[int, list[dict]] = field(default_factory=dict)


def evaluate(cases: list[NeedCase], lines: list[LineOption], orgs: dict[int, OrganisationProfile], today: date,
             score_weights: scoring.Weights) -> Evaluation:
    """Check every line of the need's service type against the rules; score the eligible ones.

    The distance factor wants the organisation's nearest base (a station or a worker's start point, tens
    per organisation). Rather than measuring every base for every option one by one, the distances from
    all the needs to all the bases of each organisation are measured at once (numpy); each option is
    then scored by `scoring.score_option` against the organisation's nearest base(s) only — the same
    score as against all of them.
    """
    from dataclasses import replace

    import numpy as np

    from servicehub.scheduling.travel import EARTH_RADIUS_M

    by_type: dict[str, list[LineOption]] = defaultdict(list)
    for line in lines:
        by_type[line.service_type].append(line)
    checked = []  # (case, eligible [(line, org, units)], first refusal per organisation)
    places: dict[int, set] = defaultdict(set)  # organisation id -> locations of needs it could serve
    for case in cases:
        eligible = []
        refusals: dict[int, eligibility.Refusal] = {}
        for line in by_type.get(case.service_type, ()):
            org = orgs[line.organisation_id]
            refusal = eligibility.first_refusal(case, line, org, today)
            if refusal is None:
                eligible.append((line, org, eligibility.units_until_contract_end(case, line, today)))
                places[line.organisation_id].add(case.location)
            elif line.organisation_id not in refusals:
                refusals[line.organisation_id] = refusal
        checked.append((case, eligible, refusals))

    nearest: dict[tuple[int, tuple], OrganisationProfile] = {}  # (organisation, location) -> it, nearest bases only
    for org_id, locations in places.items():
        org = orgs[org_id]
        if len(org.bases) < 2:
            continue
        bases = np.radians(np.asarray(org.bases, dtype=float))
        trimmed: dict[tuple[int, ...], OrganisationProfile] = {}
        points = list(locations)
        for start in range(0, len(points), 2048):
            chunk = points[start:start + 2048]
            here = np.radians(np.asarray(chunk, dtype=float))
            lat1, lat2 = here[:, 0:1], bases[None, :, 0]
            h = (np.sin((lat2 - lat1) / 2) ** 2
                 + np.cos(lat1) * np.cos(lat2) * np.sin((bases[None, :, 1] - here[:, 1:2]) / 2) ** 2)
            metres = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
            # Within a metre of the nearest: rounding can never make a farther base the nearest one.
            close = metres <= metres.min(axis=1, keepdims=True) + 1.0
            ties, first = close.sum(axis=1).tolist(), metres.argmin(axis=1).tolist()
            for point, row, tied, best in zip(chunk, close, ties, first, strict=True):
                key = (best,) if tied == 1 else tuple(np.flatnonzero(row).tolist())
                if key not in trimmed:
                    trimmed[key] = replace(org, bases=tuple(org.bases[i] for i in key))
                nearest[(org_id, point)] = trimmed[key]

    result = Evaluation()
    for case, eligible, refusals in checked:
        scored = [
            (line, scoring.score_option(case, line, nearest.get((org.organisation_id, case.location), org),
                                        score_weights), units)
            for line, org, units in eligible
        ]
        eligible_orgs = {line.organisation_id for line, _, _ in scored}
        scored.sort(key=lambda option: (-option[1].total, option[0].line_id))
        result.options[case.need_id] = scored
        result.ruled_out[case.need_id] = _ruled_out_summary(
            {org_id: r for org_id, r in refusals.items() if org_id not in eligible_orgs}, orgs,
            any_line=bool(by_type.get(case.service_type)), service_type=case.service_type,
        )
    return result


def _ruled_out_summary(refusals: dict[int, eligibility.Refusal], orgs, *, any_line: bool, service_type: str):
    entries = []
    by_rule: dict[str, list[int]] = defaultdict(list)
    for org_id, refusal in sorted(refusals.items()):
        by_rule[refusal.rule].append(org_id)
        if len(by_rule[refusal.rule]) <= RULED_OUT_PER_RULE:
            entries.append({"organisation_id": org_id, "organisation": orgs[org_id].name, "rule": refusal.rule,
                            "message": refusal.message})
    for rule, org_ids in by_rule.items():
        if len(org_ids) > RULED_OUT_PER_RULE:
            entries.append({"organisation_id": None, "organisation": None, "rule": rule,
                            "message": f"… and {len(org_ids) - RULED_OUT_PER_RULE} more organisations, for the same reason."})
    if not any_line:
        entries.append({"organisation_id": None, "organisation": None, "rule": "no_line",
                        "message": f"No active contract has a {service_type} line."})
    return entries


def _option_summary(line: LineOption, score: scoring.Score, orgs) -> dict:
    # `Score.breakdown()` as plain dicts of the factors' fields, without dataclasses.asdict's deep copies
    # (the values are numbers): a run stores tens of thousands of these.
    return {"organisation_id": line.organisation_id, "organisation": orgs[line.organisation_id].name,
            "line_id": line.line_id, "contract": line.contract_code, "score": score.total,
            "breakdown": {name: dict(vars(factor)) for name, factor in score.factors.items()}}


# --- running --------------------------------------------------------------------------------


def run_matching(
    principal: Principal,
    *,
    town: str | None = None,
    need_ids: list[int] | None = None,
    time_limit_s: float | None = None,
    wait: bool = False,
) -> MatchingRun:
    """Propose an organisation for every open need in scope at once, in one transaction.

    Earlier unlocked proposals of those needs are withdrawn (superseded); locked ones are kept as
    they are. A scope with nothing to match gives an empty run, not an error. One run at a time: runs share
    the contract lines' capacity and may share needs, so a second run started meanwhile gets a 409
    (`matching_running`), or with `wait` queues until the first has committed.
    """
    from itertools import islice

    from sqlalchemy import insert, update
    from sqlalchemy import inspect as sa_inspect

    from servicehub.auth import audit

    if town is not None:
        town_id = db.session.scalar(select(Area.id).where(Area.code == town))
        if town_id is not None and not policy.allows(principal, policy.Resource.MATCHING, policy.Action.WRITE,
                                                     town_id=town_id):
            raise PermissionDenied(N_("You manage another town."), {"town": ["Not your town."]})
    if not transaction_lock(db.session, "matching", wait=wait):
        raise Conflict(N_("Another matching run is in progress; run again when it has finished."),
                       {"matching": ["A run is in progress."]}, code="matching_running")
    with collector_paused():  # millions of small objects that live until the run ends
        started = time.perf_counter()
        today = district_today()
        score_weights = weights()
        actor = current_actor()
        run = MatchingRun(actor_id=actor.user_id, actor=actor.label, weights=score_weights.__dict__,
                          scope={"town": town, "need_ids": need_ids})
        db.session.add(run)
        needs = _needs_in_scope(principal, town, need_ids)
        cases = _need_cases(needs)
        lines = _line_options(today)
        orgs = _organisation_profiles(today)
        evaluation = evaluate(cases, lines, orgs, today, score_weights)

        candidates, locks = [], {}
        for case in cases:
            for line, score, units in evaluation.options[case.need_id]:
                candidates.append(assignment.Candidate(case.need_id, line.line_id, case.service_type, units, score.total,
                                                       case.urgent))
                if case.locked_line_id == line.line_id:
                    locks[case.need_id] = line.line_id
        capacities = {line.line_id: line.remaining_units for line in lines}
        limit = time_limit_s or current_app.config["SERVICEHUB_MATCHING_TIME_LIMIT"]
        solved = assignment.assign(candidates, capacities, locks=locks, time_limit_s=limit)
        run.greedy_placed = assignment.greedy(candidates, capacities, locks=locks).placed

        # The needs' current proposals, fetched in slices (a long IN list would pass the drivers' parameter limits):
        # {need id: (referral id, locked, line id, reason)}.
        existing: dict[int, tuple[int, bool, int, str]] = {}
        need_ids_in_run = [c.need_id for c in cases]
        for first in range(0, len(need_ids_in_run), 10_000):
            existing.update((need_id, rest) for need_id, *rest in db.session.execute(
                select(Referral.need_id, Referral.id, Referral.locked, Referral.contract_line_id, Referral.reason)
                .where(Referral.need_id.in_(need_ids_in_run[first:first + 10_000]),
                       Referral.status == ReferralStatus.PROPOSED)
            ))
        db.session.flush()
        lines_by_id = {line.line_id: line for line in lines}
        kept: dict[int, int] = {}  # need id -> its locked proposal, kept
        withdrawn: list[tuple[int, str]] = []  # superseded proposals: (id, reason before)
        proposals: list[dict] = []  # the new proposals' columns
        for case in cases:
            chosen = solved.chosen.get(case.need_id)
            previous = existing.get(case.need_id)
            if previous is not None:
                referral_id, locked, line_id, reason = previous
                if locked and line_id == chosen:
                    kept[case.need_id] = referral_id
                    continue
                withdrawn.append((referral_id, reason))
            if chosen is not None:
                line = lines_by_id[chosen]
                score, units = next((s, u) for ln, s, u in evaluation.options[case.need_id] if ln.line_id == chosen)
                proposals.append({
                    "need_id": case.need_id, "contract_line_id": chosen, "contract_id": line.contract_id,
                    "organisation_id": line.organisation_id, "run_id": run.id, "status": ReferralStatus.PROPOSED.value,
                    "locked": False, "score": score.total, "score_breakdown": _option_summary(line, score, orgs)["breakdown"],
                    "monthly_units": case.monthly_units, "reserved_units": units, "start_date": max(case.start, today),
                    "reason": "",
                })
        # Tens of thousands of referrals change at once: they are updated and inserted in bulk, each with one
        # audit row — the very row the audit hook writes for a change made through the session
        # (tests/matching/test_run_storage.py).
        now = utcnow()
        batch = 5_000  # rows built and written at a time (the outcomes' summaries are large)
        superseded = f"superseded by matching run {run.id}"
        for first in range(0, len(withdrawn), batch):
            some = withdrawn[first:first + batch]
            db.session.execute(
                update(Referral.__table__).where(Referral.__table__.c.id.in_([rid for rid, _ in some]))
                .values(status=ReferralStatus.WITHDRAWN.value, reason=superseded, updated_at=now)
            )
            audit.append_audit_rows(db.session, [audit.audit_row("update", Referral.__tablename__, str(rid), {
                name: [audit.json_safe(Referral.audit_value(name, before)),
                       audit.json_safe(Referral.audit_value(name, after))]
                for name, before, after in (("status", ReferralStatus.PROPOSED.value, ReferralStatus.WITHDRAWN.value),
                                            ("reason", reason, superseded)) if before != after
            }) for rid, reason in some])
        new_ids: dict[int, int] = {}
        if proposals:
            db.session.execute(insert(Referral), [{**row, "created_at": now, "updated_at": now} for row in proposals])
            new_ids = dict(db.session.execute(
                select(Referral.need_id, Referral.id).where(Referral.run_id == run.id,
                                                            Referral.status == ReferralStatus.PROPOSED)).all())
            columns = [attr.key for attr in sa_inspect(Referral).column_attrs if attr.key not in Referral.__audit_exclude__]
            for first in range(0, len(proposals), batch):
                audit_rows = []
                for row in proposals[first:first + batch]:
                    values = {**row, "id": new_ids[row["need_id"]]}
                    changes = {name: [None, audit.json_safe(Referral.audit_value(name, values[name]))]
                               for name in columns if values.get(name) is not None}
                    audit_rows.append(audit.audit_row("create", Referral.__tablename__, str(values["id"]), changes))
                audit.append_audit_rows(db.session, audit_rows)
        del proposals
        for first in range(0, len(cases), batch):
            rows = []
            for case in cases[first:first + batch]:
                options = evaluation.options[case.need_id]
                chosen = solved.chosen.get(case.need_id)
                runners_up = (option for option in options if option[0].line_id != chosen)
                rows.append({
                    "run_id": run.id, "need_id": case.need_id, "referral_id": kept.get(case.need_id,
                                                                                      new_ids.get(case.need_id)),
                    "alternatives": [_option_summary(ln, s, orgs) for ln, s, _ in islice(runners_up, ALTERNATIVES)],
                    "ruled_out": evaluation.ruled_out[case.need_id],
                    "reason": "" if chosen is not None else ("capacity" if options else "no_eligible_organisation"),
                })
            db.session.execute(insert(MatchingOutcome), rows)
        run.needs_considered = len(cases)
        run.proposed = solved.placed
        run.unmatched = len(cases) - solved.placed
        run.solver_status = solved.status
        run.finished_at = utcnow()
        run.seconds = round(time.perf_counter() - started, 3)
        # A run reads every open need in its scope with its recipient's class, place and preferences.
        record_event(db.session, "matching_run", "matching_runs", run.id, town=town,
                     need_ids=len(need_ids) if need_ids is not None else None, needs_considered=run.needs_considered,
                     proposed=run.proposed, unmatched=run.unmatched)
        db.session.commit()
        return run


def get_run(principal: Principal, run_id: int) -> MatchingRun:
    """One matching run: district-wide callers see all; a town manager their own runs and their town's."""
    run = db.session.get(MatchingRun, run_id)
    if run is None:
        raise NotFound(N_("No matching run with id %(id)s.", id=run_id))
    if not principal.is_district_wide and run.actor_id != principal.user_id:
        town = db.session.get(Area, principal.town_id) if principal.town_id else None
        if town is None or (run.scope or {}).get("town") != town.code:
            raise NotFound(N_("No matching run with id %(id)s.", id=run_id))
    return run


def run_outcomes(principal: Principal, run_id: int, *, page: int = 1, page_size: int = 50, result: str | None = None):
    """The outcomes of a run (needs the caller may see), with their proposals: (page, total)."""
    get_run(principal, run_id)
    stmt = (
        select(MatchingOutcome)
        .join(Need, Need.id == MatchingOutcome.need_id)
        .join(Recipient, Recipient.id == Need.recipient_id)
        .where(MatchingOutcome.run_id == run_id, scope.recipients_visible(principal))
        .order_by(MatchingOutcome.id)
    )
    if result == "proposed":
        stmt = stmt.where(MatchingOutcome.referral_id.isnot(None))
    elif result == "unmatched":
        stmt = stmt.where(MatchingOutcome.referral_id.is_(None))
    items, total = paginate(db.session, stmt, page, page_size)
    referrals = {r.id: r for r in db.session.scalars(
        _referral_query().where(Referral.id.in_([o.referral_id for o in items if o.referral_id])))}
    for outcome in items:
        outcome.proposal = referrals.get(outcome.referral_id)
    return items, total


# --- referrals: reading ----------------------------------------------------------------------


def _referral_query():
    return select(Referral).options(
        selectinload(Referral.need).selectinload(Need.recipient).selectinload(Recipient.town),
        selectinload(Referral.need).selectinload(Need.service_type),
        selectinload(Referral.organisation),
        selectinload(Referral.contract),
    )


def referrals_visible(principal: Principal):
    """Referrals the caller may see: managers those of their recipients; a provider its own, once offered."""
    if principal.is_provider:
        return (Referral.organisation_id == principal.organisation_id) & Referral.offered_at.isnot(None)
    return Referral.need_id.in_(
        select(Need.id).join(Recipient, Recipient.id == Need.recipient_id).where(scope.recipients_visible(principal))
    )


def _overdue_clause(now: datetime):
    return (Referral.status == ReferralStatus.OFFERED) & (Referral.offer_expires_at < now)


def list_referrals(
    principal: Principal,
    *,
    status=None,
    organisation_id=None,
    need_id=None,
    recipient_id=None,
    town=None,
    service_type=None,
    overdue=None,
    sort="-id",
    page=1,
    page_size=50,
):
    """Referrals the caller may see, filtered (overdue: offers past their answer deadline)."""
    stmt = _referral_query().where(referrals_visible(principal))
    if status:
        stmt = stmt.where(Referral.status == status)
    if organisation_id:
        stmt = stmt.where(Referral.organisation_id == organisation_id)
    if need_id:
        stmt = stmt.where(Referral.need_id == need_id)
    if recipient_id or town:
        needs = select(Need.id).join(Recipient, Recipient.id == Need.recipient_id)
        if recipient_id:
            needs = needs.where(Recipient.id == recipient_id)
        if town:
            needs = needs.where(Recipient.town_id == select(Area.id).where(Area.code == town).scalar_subquery())
        stmt = stmt.where(Referral.need_id.in_(needs))
    if service_type:
        stmt = stmt.where(Referral.need.has(Need.service_type.has(ServiceType.code == service_type)))
    if overdue is not None:
        clause = _overdue_clause(utcnow())
        stmt = stmt.where(clause if overdue else ~clause)
    column = {"id": Referral.id, "score": Referral.score, "offered_at": Referral.offered_at}[sort.lstrip("-")]
    stmt = stmt.order_by(column.desc() if sort.startswith("-") else column.asc(), Referral.id)
    return paginate(db.session, stmt, page, page_size)


def get_referral(principal: Principal, referral_id: int, *, for_update: bool = False) -> Referral:
    """One referral the caller may see (otherwise not found)."""
    stmt = _referral_query().where(Referral.id == referral_id, referrals_visible(principal))
    if for_update:
        stmt = stmt.with_for_update(of=Referral)
    referral = db.session.scalars(stmt).one_or_none()
    if referral is None:
        raise NotFound(N_("No referral with id %(id)s.", id=referral_id))
    return referral


# --- referrals: acting -----------------------------------------------------------------------

MANAGER, PROVIDER, EITHER = "manager", "provider", "either"


@dataclass(frozen=True)
class Action:
    """A lifecycle step: from which states, to which state, who may take it, whether a reason is needed."""

    name: str
    sources: frozenset[ReferralStatus]
    target: ReferralStatus
    actor: str
    needs_reason: bool = False


ACTIONS = {
    a.name: a
    for a in (
        Action("offer", frozenset({ReferralStatus.PROPOSED}), ReferralStatus.OFFERED, MANAGER),
        Action("withdraw", frozenset({ReferralStatus.PROPOSED, ReferralStatus.OFFERED}), ReferralStatus.WITHDRAWN,
               MANAGER, needs_reason=True),
        Action("accept", frozenset({ReferralStatus.OFFERED}), ReferralStatus.ACCEPTED, PROVIDER),
        Action("decline", frozenset({ReferralStatus.OFFERED}), ReferralStatus.DECLINED, PROVIDER, needs_reason=True),
        Action("suspend", frozenset({ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE}), ReferralStatus.SUSPENDED, EITHER,
               needs_reason=True),
        Action("resume", frozenset({ReferralStatus.SUSPENDED}), ReferralStatus.ACTIVE, EITHER),
        Action("close", frozenset({ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE, ReferralStatus.SUSPENDED}),
               ReferralStatus.CLOSED, EITHER, needs_reason=True),
    )
}

# The need's status while its referral is in each state.
NEED_STATUS_FOR = {
    ReferralStatus.OFFERED: NeedStatus.MATCHED,
    ReferralStatus.ACCEPTED: NeedStatus.ACTIVE,
    ReferralStatus.ACTIVE: NeedStatus.ACTIVE,
    ReferralStatus.SUSPENDED: NeedStatus.SUSPENDED,
    ReferralStatus.DECLINED: NeedStatus.OPEN,
    ReferralStatus.WITHDRAWN: NeedStatus.OPEN,
    ReferralStatus.CLOSED: NeedStatus.OPEN,
}


def _check_actor(principal: Principal, referral: Referral, who: str) -> None:
    is_manager = principal.role in (Role.ADMIN, Role.MANAGER)
    is_own_provider = principal.role == Role.PROVIDER_ADMIN and principal.organisation_id == referral.organisation_id
    allowed = {MANAGER: is_manager, PROVIDER: is_own_provider, EITHER: is_manager or is_own_provider}[who]
    if not allowed:
        raise PermissionDenied(
            {MANAGER: "Only a manager of the recipient's town can do this.",
             PROVIDER: "Only the organisation the need is offered to can answer the offer.",
             EITHER: "Only a manager or the serving organisation can do this."}[who]
        )
    if is_manager:
        scope.require_town(principal, referral.need.recipient.town_id)


def _refuse_if_ineligible(referral: Referral, today: date, profiles: dict[int, OrganisationProfile] | None = None) -> None:
    """Re-check the hard rules at offer time (the line may have been used up since the proposal); `profiles`
    keeps the organisations' profiles across a batch of offers (offering changes none of them)."""
    case = _need_cases([referral.need])[0]
    line = next(iter(_line_options(today, referral.contract_line_id)), None)
    profiles = {} if profiles is None else profiles
    if referral.organisation_id not in profiles:
        profiles.update(_organisation_profiles(today, referral.organisation_id))
    org = profiles[referral.organisation_id]
    if line is None:
        raise Conflict(N_("The contract is no longer active."), {"contract_line_id": ["contract_inactive"]})
    refusal = eligibility.first_refusal(case, line, org, today)
    if refusal is not None:
        raise Conflict(refusal.message, {"contract_line_id": [refusal.rule]}, code=refusal.rule)


def act(principal: Principal, referral_id: int, action_name: str, *, reason: str = "") -> Referral:
    """Take a lifecycle step on a referral (offer, withdraw, accept, decline, suspend, resume, close)."""
    action = ACTIONS[action_name]
    referral = get_referral(principal, referral_id, for_update=True)
    _take_step(principal, referral, action, reason, utcnow(), district_today())
    db.session.commit()
    return referral


def act_many(principal: Principal, referral_ids: list[int], action_name: str, *, reason: str = "") -> list[Referral]:
    """Take the same lifecycle step on several referrals in one transaction: all or none (the first refusal
    names its referral). The rules, states and audit entries are those of `act`; a provider admin accepts a
    day's offers this way."""
    action = ACTIONS[action_name]
    ids = list(dict.fromkeys(referral_ids))
    found = _referrals_for_update(principal, ids)
    now, today = utcnow(), district_today()
    for referral_id in ids:
        try:
            if referral_id not in found:
                raise NotFound(N_("No referral with id %(id)s.", id=referral_id))
            _take_step(principal, found[referral_id], action, reason, now, today)
        except (Conflict, NotFound, PermissionDenied, ValidationFailed) as exc:
            db.session.rollback()
            raise type(exc)(f"Referral {referral_id}: {exc.message}", {"referral_ids": [f"{referral_id}: {exc.message}"]},
                            code=exc.code) from exc
    db.session.commit()
    return [found[referral_id] for referral_id in ids]


def _referrals_for_update(principal: Principal, referral_ids: list[int]) -> dict[int, Referral]:
    """The referrals the caller may see among `referral_ids`, locked for update, by id (loaded in slices)."""
    found: dict[int, Referral] = {}
    for first in range(0, len(referral_ids), 10_000):  # long IN lists pass the drivers' parameter limits
        stmt = (_referral_query().where(Referral.id.in_(referral_ids[first:first + 10_000]), referrals_visible(principal))
                .with_for_update(of=Referral))
        found.update((r.id, r) for r in db.session.scalars(stmt))
    return found


def _take_step(principal: Principal, referral: Referral, action: Action, reason: str, now: datetime,
               today: date) -> None:
    """Move one referral (locked for update) by an action if the caller and its state allow; log the event."""
    _check_actor(principal, referral, action.actor)
    if referral.status not in action.sources:
        raise Conflict(
            f"The referral is {referral.status}; it cannot be {action.name}ed "
            f"(only when {' or '.join(sorted(action.sources))}).",
            {"status": [referral.status]},
        )
    if action.needs_reason and not reason.strip():
        raise ValidationFailed(N_("Give a reason."), {"reason": ["Required for this step."]})
    if action.name == "offer":
        _refuse_if_ineligible(referral, today)
        referral.offered_at = now
        referral.offer_expires_at = now + timedelta(hours=current_app.config["SERVICEHUB_OFFER_HOURS"])
    elif action.name in ("accept", "decline"):
        referral.responded_at = now
    elif action.name == "close":
        referral.ended_at = now
    target = action.target
    if action.name == "accept" and referral.start_date <= today:
        target = ReferralStatus.ACTIVE  # service starts now: accepted and active at once
        referral.activated_at = now
    elif action.name == "resume":
        referral.activated_at = referral.activated_at or now
    referral.status = target
    referral.reason = reason.strip() if action.needs_reason else referral.reason
    referral.decided_by_id = principal.user_id
    referral.need.status = NEED_STATUS_FOR[target]
    record_event(db.session, action.name, "referrals", referral.id, reason=reason.strip() or None,
                 status=target.value, need_id=referral.need_id, organisation_id=referral.organisation_id)


def offer_many(principal: Principal, referral_ids: list[int]) -> list[Referral]:
    """Offer several proposals at once; all or none (the first refusal names the referral)."""
    found = _referrals_for_update(principal, list(dict.fromkeys(referral_ids)))
    profiles: dict[int, OrganisationProfile] = {}
    offered = []
    for referral_id in referral_ids:
        try:
            referral = found.get(referral_id)
            if referral is None:
                raise NotFound(N_("No referral with id %(id)s.", id=referral_id))
            _check_actor(principal, referral, MANAGER)
            if referral.status != ReferralStatus.PROPOSED:
                raise Conflict(f"Referral {referral_id} is {referral.status}, not a proposal.",
                               {"status": [referral.status]})
            _refuse_if_ineligible(referral, district_today(), profiles)
        except (Conflict, NotFound, PermissionDenied) as exc:
            db.session.rollback()
            raise type(exc)(exc.message, {"referral_ids": [f"{referral_id}: {exc.message}"]}, code=exc.code) from exc
        now = utcnow()
        referral.status = ReferralStatus.OFFERED
        referral.offered_at = now
        referral.offer_expires_at = now + timedelta(hours=current_app.config["SERVICEHUB_OFFER_HOURS"])
        referral.decided_by_id = principal.user_id
        referral.need.status = NeedStatus.MATCHED
        record_event(db.session, "offer", "referrals", referral.id, need_id=referral.need_id,
                     organisation_id=referral.organisation_id)
        db.session.flush()  # later offers in the batch see this one's units as held
        offered.append(referral)
    db.session.commit()
    return offered


def set_locked(principal: Principal, referral_id: int, locked: bool) -> Referral:
    """Lock (or unlock) a proposal so that the next matching run keeps it."""
    referral = get_referral(principal, referral_id, for_update=True)
    _check_actor(principal, referral, MANAGER)
    if referral.status != ReferralStatus.PROPOSED:
        raise Conflict(N_("Only a proposal can be locked."), {"status": [referral.status]})
    referral.locked = locked
    db.session.commit()
    return referral


def propose(principal: Principal, need_id: int, contract_line_id: int) -> Referral:
    """A manager's own choice for a need (locked); refused with the rule if the line cannot serve it."""
    need = db.session.scalars(
        _need_query().join(Need.recipient).where(Need.id == need_id, scope.recipients_visible(principal))
    ).one_or_none()
    if need is None:
        raise NotFound(N_("No need with id %(id)s.", id=need_id))
    scope.require_town(principal, need.recipient.town_id)
    if need.status != NeedStatus.OPEN:
        raise Conflict(f"The need is {need.status}; only an open need can be referred.", {"need_id": [need.status]})
    today = district_today()
    line = next(iter(_line_options(today, contract_line_id)), None)
    if line is None:
        raise ValidationFailed(N_("No active contract line with that id."), {"contract_line_id": ["Unknown or inactive."]})
    case = _need_cases([need])[0]
    org = _organisation_profiles(today, line.organisation_id)[line.organisation_id]
    refusal = eligibility.first_refusal(case, line, org, today)
    if refusal is not None:
        raise ValidationFailed(refusal.message, {"contract_line_id": [refusal.message]}, code=refusal.rule)
    for previous in db.session.scalars(
        select(Referral).where(Referral.need_id == need_id, Referral.status == ReferralStatus.PROPOSED)
    ):
        previous.status = ReferralStatus.WITHDRAWN
        previous.reason = "replaced by a manager's choice"
    score = scoring.score_option(case, line, org, weights())
    referral = Referral(
        need_id=need.id, contract_line_id=line.line_id, contract_id=line.contract_id,
        organisation_id=line.organisation_id, status=ReferralStatus.PROPOSED, locked=True, score=score.total,
        score_breakdown=score.breakdown(), monthly_units=case.monthly_units,
        reserved_units=eligibility.units_until_contract_end(case, line, today), start_date=max(need.start_date, today),
    )
    db.session.add(referral)
    db.session.commit()
    return referral


def reoffer(principal: Principal, referral_id: int) -> Referral:
    """Withdraw an offer left unanswered past its deadline and offer the need to the next-best organisation."""
    referral = get_referral(principal, referral_id, for_update=True)
    _check_actor(principal, referral, MANAGER)
    if referral.status != ReferralStatus.OFFERED or referral.offer_expires_at > utcnow():
        raise Conflict(N_("Only an offer past its answer deadline can be re-offered."), {"status": [referral.status]})
    if not _another_organisation_can_serve(referral):
        raise Conflict(N_("No other organisation can serve this need now; the offer stays as it is."),
                       {"need_id": ["no_eligible_organisation"]}, code="no_eligible_organisation")
    need_id = referral.need_id
    referral.status = ReferralStatus.WITHDRAWN
    referral.reason = "offer expired unanswered"
    referral.need.status = NeedStatus.OPEN
    record_event(db.session, "offer_expired", "referrals", referral.id, need_id=need_id,
                 organisation_id=referral.organisation_id)
    db.session.commit()
    run_matching(principal, need_ids=[need_id])
    proposal = db.session.scalars(
        select(Referral).where(Referral.need_id == need_id, Referral.status == ReferralStatus.PROPOSED)
    ).first()
    if proposal is None:
        raise Conflict(N_("No other organisation can serve this need now; it is back in the unmet queue."),
                       {"need_id": ["no_eligible_organisation"]})
    return act(principal, proposal.id, "offer")


def _another_organisation_can_serve(referral: Referral) -> bool:
    """Whether some other organisation's contract line could take the need of this offer."""
    from dataclasses import replace

    today = district_today()
    case = _need_cases([referral.need])[0]
    case = replace(case, has_live_referral=False, declined_by=case.declined_by | {referral.organisation_id})
    orgs = _organisation_profiles(today)
    return any(
        eligibility.first_refusal(case, line, orgs[line.organisation_id], today) is None
        for line in _line_options(today) if line.service_type == case.service_type
    )


def activate_due_referrals(today: date | None = None) -> int:
    """Accepted referrals whose start date has come become active (run daily)."""
    today = today or district_today()
    due = db.session.scalars(
        select(Referral).where(Referral.status == ReferralStatus.ACCEPTED, Referral.start_date <= today)
    ).all()
    for referral in due:
        referral.status = ReferralStatus.ACTIVE
        referral.activated_at = utcnow()
    db.session.commit()
    return len(due)


def unmet_needs(principal: Principal, *, town=None, service_type=None, priority=None, page=1, page_size=50):
    """Open needs the caller may see, urgent first, each with its proposal and latest outcome: (page, total)."""
    stmt = (
        _need_query()
        .join(Need.recipient)
        .where(Need.status == NeedStatus.OPEN, Recipient.status == RecipientStatus.ACTIVE,
               scope.recipients_visible(principal))
    )
    if town:
        stmt = stmt.where(Recipient.town_id == select(Area.id).where(Area.code == town,
                                                                     Area.level == AreaLevel.TOWN).scalar_subquery())
    if service_type:
        stmt = stmt.where(Need.service_type.has(ServiceType.code == service_type))
    if priority:
        stmt = stmt.where(Need.priority == priority)
    stmt = stmt.order_by((Need.priority == "urgent").desc(), Need.start_date, Need.id)
    needs, total = paginate(db.session, stmt, page, page_size)
    ids = [n.id for n in needs]
    proposals = {
        r.need_id: r
        for r in db.session.scalars(
            _referral_query().where(Referral.need_id.in_(ids), Referral.status == ReferralStatus.PROPOSED)
        )
    }
    latest = dict(
        db.session.execute(
            select(MatchingOutcome.need_id, func.max(MatchingOutcome.id))
            .where(MatchingOutcome.need_id.in_(ids))
            .group_by(MatchingOutcome.need_id)
        ).all()
    )
    outcomes = {o.need_id: o for o in db.session.scalars(select(MatchingOutcome).where(
        MatchingOutcome.id.in_(latest.values())))}
    for need in needs:
        need.proposal = proposals.get(need.id)
        need.outcome = outcomes.get(need.id)
    return needs, total


# --- for pages --------------------------------------------------------------------------------
# What the matching pages and the dashboard read besides the use cases above (servicehub/matching/views.py).

HISTORY_LIMIT = 500  # audit entries a referral's page shows


def unmet_need_count(principal: Principal) -> int:
    """How many open needs the caller may see (the dashboard's unmet-needs card)."""
    stmt = (
        select(func.count())
        .select_from(Need)
        .join(Recipient, Recipient.id == Need.recipient_id)
        .where(Need.status == NeedStatus.OPEN, scope.recipients_visible(principal))
    )
    return db.session.scalar(stmt) or 0


def offers_waiting_count(principal: Principal) -> int:
    """How many offers the caller may see wait for an answer (a provider: those made to it)."""
    stmt = (
        select(func.count())
        .select_from(Referral)
        .where(Referral.status == ReferralStatus.OFFERED, referrals_visible(principal))
    )
    return db.session.scalar(stmt) or 0


def is_overdue(referral: Referral, now: datetime | None = None) -> bool:
    """Whether the referral is an offer past its answer deadline."""
    return (
        referral.status == ReferralStatus.OFFERED
        and referral.offer_expires_at is not None
        and referral.offer_expires_at < (now or utcnow())
    )


def present_referrals(principal: Principal, referrals: list[Referral]) -> list[Referral]:
    """Attach what the caller may see of each recipient (masked ID number …) and `overdue` to each referral (the
    pages show them; whose full ID numbers they show goes to the audit log)."""
    from servicehub.registry.services import present_recipients

    # The recipients' communities in one query (the lazy loads below then find them in the session).
    db.session.scalars(select(Area).where(Area.id.in_({r.need.recipient.area_id for r in referrals}))).all()
    present_recipients(principal, [referral.need.recipient for referral in referrals])
    now = utcnow()
    for referral in referrals:
        referral.overdue = is_overdue(referral, now)
    return referrals


def _inbox_query():
    return _referral_query().options(
        selectinload(Referral.need).selectinload(Need.recipient).selectinload(Recipient.area)
    )


def referral_inbox(principal: Principal, *, page: int = 1, page_size: int = 50):
    """The offers waiting (earliest deadline first) and a page of the referrals being served: (offers, page, total)."""
    visible = referrals_visible(principal)
    offers = list(
        db.session.scalars(
            _inbox_query()
            .where(visible, Referral.status == ReferralStatus.OFFERED)
            .order_by(Referral.offer_expires_at, Referral.id)
        )
    )
    serving, total = paginate(
        db.session,
        _inbox_query().where(visible, Referral.status.in_(COMMITTED_STATUSES)).order_by(Referral.id.desc()),
        page,
        page_size,
    )
    return present_referrals(principal, offers), present_referrals(principal, serving), total


def referral_with_history(principal: Principal, referral_id: int):
    """One referral the caller may see, presented, and its history from the audit log, oldest first."""
    from servicehub.auth.services import list_audit_log

    referral = db.session.scalars(
        _inbox_query().where(Referral.id == referral_id, referrals_visible(principal))
    ).one_or_none()
    if referral is None:
        raise NotFound(N_("No referral with id %(id)s.", id=referral_id))
    entries, _total = list_audit_log(entity_type="referrals", entity_id=str(referral_id), page_size=HISTORY_LIMIT)
    return present_referrals(principal, [referral])[0], entries[::-1]
