"""Who may read and write what, and how far: the one access table of the application. Pure module.

`ROLE_PERMISSIONS` (permissions.py) says which routes a role may call at all; this table says, for every
resource, how far each kind of caller reaches once it is in: everything in the district, its own town's
recipients, its own organisation, its own worker record, or nothing. The services' queries and checks take
their scope from here (`scope_of`, `allows`; the SQL side is `servicehub.registry.scope.visible`), and
tests/auth/test_policy.py holds the table and the permission mapping consistent; tests/auth/test_access_walk.py
calls every operation of the API as every kind of caller with another party's ids (docs/security.md, V4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from servicehub.auth.permissions import Permission, Principal, Role


class Caller(enum.StrEnum):
    """The kinds of caller the table distinguishes: a role, and for a manager whether it is confined to a town."""

    ADMIN = "admin"
    DISTRICT_MANAGER = "district_manager"
    TOWN_MANAGER = "town_manager"
    PROVIDER_ADMIN = "provider_admin"
    CAREGIVER = "caregiver"
    AUDITOR = "auditor"

    @property
    def role(self) -> Role:
        """The role a caller of this kind has."""
        return Role.MANAGER if self in (Caller.DISTRICT_MANAGER, Caller.TOWN_MANAGER) else Role(self.value)


def caller_of(principal: Principal) -> Caller | None:
    """What kind of caller `principal` is (None: nobody signed in)."""
    if principal.role is None:
        return None
    if principal.role == Role.MANAGER:
        return Caller.DISTRICT_MANAGER if principal.town_id is None else Caller.TOWN_MANAGER
    return Caller(principal.role.value)


class Scope(enum.StrEnum):
    """How far a caller reaches into a resource."""

    ALL = "all"  # the whole district
    TOWN = "town"  # what belongs to recipients (applications, alerts) of the caller's town
    ORGANISATION = "organisation"  # the caller's organisation's (recipients: those referred to it)
    WORKER = "worker"  # the caller's own worker record's (a caregiver's own visits, route and records)
    NONE = "none"  # nothing: refused, or an empty list


class Action(enum.StrEnum):
    """Reading or changing."""

    READ = "read"
    WRITE = "write"


class Resource(enum.StrEnum):
    """What the API and the pages show and change."""

    USERS = "users"  # accounts of other people (one's own account and tokens: any signed-in user)
    AUDIT_LOG = "audit_log"  # the audit log and the ledgers' verification
    AREAS = "areas"  # areas, stations, the holiday calendar
    ORGANISATIONS = "organisations"
    CONTRACTS = "contracts"
    WORKERS = "workers"  # workers, their qualifications and absences
    RECIPIENTS = "recipients"
    NEEDS = "needs"
    APPLICATIONS = "applications"  # applications for assistance, the work queue, discovery rules
    IMPORTS = "imports"  # spreadsheet imports (each row as the resource it writes)
    MATCHING = "matching"  # matching runs, their outcomes, unmet needs (a provider: of recipients referred to it)
    REFERRALS = "referrals"
    VISITS = "visits"  # planned visits, their moves, visit generation
    ROSTERS = "rosters"  # a worker's published day in route order (a caregiver's route)
    SCHEDULE_RUNS = "schedule_runs"  # solver runs, their plans, roster versions: an organisation's whole day
    SCHEDULE_SETTINGS = "schedule_settings"  # an organisation's planning settings (the nightly plan)
    DAYS_OFF = "days_off"  # days without visits: holidays, a recipient's absence
    RECORDS = "records"  # service records: check-in, check-out, outcomes, corrections, approvals
    CARDS = "cards"  # recipients' confirmation cards, the codes printed on them
    EXCEPTIONS = "exceptions"  # the EVV exception queue: explained by the provider, decided by the bureau
    ALERTS = "alerts"
    REPORTS = "reports"  # KPI reports, their drill-down to records, their exports, organisations' scores
    FROZEN_REPORTS = "frozen_reports"  # a contract's issued monthly report, its exports and its differences
    SETTLEMENTS = "settlements"  # what a contract's month pays, and its exports


@dataclass(frozen=True)
class Access:
    """How far a caller reads and writes a resource."""

    read: Scope
    write: Scope

    def __post_init__(self):
        if self.read is Scope.NONE and self.write is not Scope.NONE:
            raise ValueError("whoever may change a resource may read it")


@dataclass(frozen=True)
class Rule:
    """A resource's row: the permissions its routes declare and each caller's access."""

    read: frozenset[Permission]  # a route that reads the resource declares one of these
    write: frozenset[Permission]  # a route that changes it declares one of these
    access: dict[Caller, Access]


ALL, TOWN, ORG, OWN, NO = Scope.ALL, Scope.TOWN, Scope.ORGANISATION, Scope.WORKER, Scope.NONE
P = Permission
COLUMNS = (Caller.ADMIN, Caller.DISTRICT_MANAGER, Caller.TOWN_MANAGER, Caller.PROVIDER_ADMIN, Caller.CAREGIVER,
           Caller.AUDITOR)


def _row(read, write, *cells: tuple[Scope, Scope]) -> Rule:
    """A row of the table: permissions, then (read, write) for each caller in the order of `COLUMNS`."""
    as_set = lambda p: frozenset(p if isinstance(p, (set, frozenset, tuple)) else {p})  # noqa: E731
    return Rule(as_set(read), as_set(write), {caller: Access(*cell) for caller, cell in zip(COLUMNS, cells, strict=True)})


POLICY: dict[Resource, Rule] = {
    # resource: _row(read permissions, write permissions,
    #                (read, write) of: admin, district manager, town manager, provider admin, caregiver, auditor)
    Resource.USERS: _row(P.USERS_MANAGE, P.USERS_MANAGE,
        (ALL, ALL), (NO, NO), (NO, NO), (NO, NO), (NO, NO), (NO, NO)),
    Resource.AUDIT_LOG: _row(P.AUDIT_READ, (),
        (ALL, NO), (NO, NO), (NO, NO), (NO, NO), (NO, NO), (ALL, NO)),
    Resource.AREAS: _row(P.REGISTRY_READ, P.REGISTRY_MANAGE,
        (ALL, ALL), (ALL, ALL), (ALL, NO), (ALL, NO), (NO, NO), (ALL, NO)),
    Resource.ORGANISATIONS: _row(P.REGISTRY_READ, P.REGISTRY_MANAGE,
        (ALL, ALL), (ALL, ALL), (ALL, NO), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.CONTRACTS: _row(P.REGISTRY_READ, P.REGISTRY_MANAGE,
        (ALL, ALL), (ALL, ALL), (ALL, NO), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.WORKERS: _row(P.REGISTRY_READ, {P.WORKERS_MANAGE, P.SCHEDULE_MANAGE},
        (ALL, ALL), (ALL, ALL), (ALL, ALL), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.RECIPIENTS: _row(P.RECIPIENTS_READ, P.RECIPIENTS_MANAGE,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.NEEDS: _row(P.RECIPIENTS_READ, P.RECIPIENTS_MANAGE,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.APPLICATIONS: _row(P.APPLICATIONS_READ, P.APPLICATIONS_MANAGE,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (NO, NO), (NO, NO), (ALL, NO)),
    Resource.IMPORTS: _row(P.IMPORTS_RUN, P.IMPORTS_RUN,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, ORG), (NO, NO), (NO, NO)),
    Resource.MATCHING: _row(P.REFERRALS_READ, P.MATCHING_RUN,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.REFERRALS: _row(P.REFERRALS_READ, {P.MATCHING_RUN, P.REFERRALS_RESPOND, P.REFERRALS_SERVE},
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.VISITS: _row(P.ROSTERS_READ, P.SCHEDULE_MANAGE,
        (ALL, ALL), (ALL, NO), (TOWN, NO), (ORG, ORG), (OWN, NO), (ALL, NO)),
    Resource.ROSTERS: _row(P.ROSTERS_READ, (),
        (ALL, NO), (ALL, NO), (TOWN, NO), (ORG, NO), (OWN, NO), (ALL, NO)),
    Resource.SCHEDULE_RUNS: _row(P.SCHEDULE_READ, P.SCHEDULE_MANAGE,
        (ALL, ALL), (ALL, NO), (NO, NO), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.SCHEDULE_SETTINGS: _row(P.SCHEDULE_READ, P.SCHEDULE_MANAGE,
        (ALL, ALL), (ALL, NO), (ALL, NO), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.DAYS_OFF: _row(P.SCHEDULE_READ, P.SCHEDULE_MANAGE,
        (ALL, ALL), (ALL, NO), (TOWN, NO), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.RECORDS: _row(P.RECORDS_READ, P.RECORDS_WRITE,
        (ALL, NO), (ALL, NO), (TOWN, NO), (ORG, ORG), (OWN, OWN), (ALL, NO)),
    Resource.CARDS: _row(P.CARDS_ISSUE, P.CARDS_ISSUE,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, ORG), (NO, NO), (NO, NO)),
    Resource.EXCEPTIONS: _row(P.EXCEPTIONS_READ, {P.EXCEPTIONS_RESOLVE, P.EXCEPTIONS_DECIDE},
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.ALERTS: _row(P.ALERTS_READ, P.ALERTS_ACK,
        (ALL, ALL), (ALL, ALL), (TOWN, TOWN), (ORG, ORG), (NO, NO), (ALL, NO)),
    Resource.REPORTS: _row(P.REPORTS_READ, (),
        (ALL, NO), (ALL, NO), (TOWN, NO), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.FROZEN_REPORTS: _row(P.REPORTS_READ, P.REPORTS_FREEZE,
        (ALL, ALL), (ALL, ALL), (NO, NO), (ORG, NO), (NO, NO), (ALL, NO)),
    Resource.SETTLEMENTS: _row(P.REPORTS_READ, (),
        (ALL, NO), (ALL, NO), (NO, NO), (ORG, NO), (NO, NO), (ALL, NO)),
}
"""Why some cells are what they are:
- a town manager reads no schedule runs (an organisation's day runs through every town it serves; the town's
  visits are under visits and rosters), and no frozen reports or settlements: they are a contract's month as it
  is paid, which a town cut would make into another document (its hash, totals and money); the town's share of a
  contract's month is the KPI report with the town as filter (`reports`, confined to the town);
- a caregiver reads its own visits, route and records only, nothing organisation-wide (no runs, no settings,
  no days off, no reports, no exception queue, no alerts);
- an auditor reads the district and changes nothing; workers and recipients are changed by the bureau and, for
  workers, their own organisation."""


def scope_of(principal: Principal, resource: Resource, action: Action = Action.READ) -> Scope:
    """How far `principal` reaches into `resource` for `action` (NONE for nobody signed in)."""
    caller = caller_of(principal)
    if caller is None:
        return Scope.NONE
    access = POLICY[resource].access[caller]
    return access.read if action is Action.READ else access.write


def allows(principal: Principal, resource: Resource, action: Action = Action.READ, *, town_id: int | None = None,
           organisation_id: int | None = None, worker_id: int | None = None) -> bool:
    """Whether `principal` may `action` one row of `resource` that belongs to that town, organisation and worker
    (a value not given is not the caller's)."""
    scope = scope_of(principal, resource, action)
    if scope is Scope.ALL:
        return True
    own = {Scope.TOWN: (principal.town_id, town_id), Scope.ORGANISATION: (principal.organisation_id, organisation_id),
           Scope.WORKER: (principal.worker_id, worker_id)}.get(scope)
    return own is not None and own[0] is not None and own[0] == own[1]
