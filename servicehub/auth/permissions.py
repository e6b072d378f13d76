"""Roles and the one table that maps them to permissions. Pure module.

Every route declares the permission it needs (see `servicehub.auth.access.requires`); this table
decides who holds it. Scoping (a provider sees only its own organisation, a town manager only its
town, a caregiver only its own worker's) is the table in `servicehub.auth.policy`, which the services apply
on top of the permission, in their queries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a user is, and so what they may do."""

    ADMIN = "admin"  # 系统管理员
    MANAGER = "manager"  # 区/镇民政工作人员 (optionally confined to one town)
    PROVIDER_ADMIN = "provider_admin"  # 社会组织管理员 (confined to one organisation)
    CAREGIVER = "caregiver"  # 服务人员 (confined to one organisation and one worker record)
    AUDITOR = "auditor"  # 审计/评估人员 (read-only, district-wide)


ORGANISATION_ROLES = frozenset({Role.PROVIDER_ADMIN, Role.CAREGIVER})


class Permission(enum.StrEnum):
    """A capability a route can require."""

    PUBLIC = "public"  # no login: health, API docs, token creation, the catalogue, the login page
    AUTHENTICATED = "authenticated"  # any signed-in user: dashboard, own account, own tokens
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    REGISTRY_READ = "registry.read"  # areas, stations, organisations, contracts, workers (scoped)
    REGISTRY_MANAGE = "registry.manage"  # areas, stations, organisations, contracts (district level)
    WORKERS_MANAGE = "workers.manage"  # a provider manages its own workers
    RECIPIENTS_READ = "recipients.read"  # recipients and needs (scoped; ID numbers masked unless allowed)
    RECIPIENTS_MANAGE = "recipients.manage"  # register recipients and needs (a town manager: that town)
    IMPORTS_RUN = "imports.run"  # spreadsheet imports (what of, by role)
    REFERRALS_READ = "referrals.read"  # referrals (a provider: its own, once offered)
    MATCHING_RUN = "matching.run"  # run matching, offer, lock, withdraw, re-offer (managers)
    REFERRALS_RESPOND = "referrals.respond"  # accept or decline offers made to one's organisation (providers)
    REFERRALS_SERVE = "referrals.serve"  # suspend, resume, close a referral (managers; providers their own)
    SCHEDULE_MANAGE = "schedule.manage"  # generate visits, run, publish and re-plan rosters, move visits (providers)
    ROSTERS_READ = "rosters.read"  # rosters and visits (a provider: its own; a caregiver: own, today)
    SCHEDULE_READ = "schedule.read"  # solver runs and plans, planning settings, days off: organisation-wide (no caregiver)
    RECORDS_WRITE = "records.write"  # check in and out, outcomes, corrections and approvals (providers)
    RECORDS_READ = "records.read"  # service records (a provider: its own; a caregiver: their own)
    ALERTS_READ = "alerts.read"  # the alert inbox (a provider: its late and missed visits; managers: missed, escalations)
    ALERTS_ACK = "alerts.acknowledge"  # acknowledge an alert with a note
    REPORTS_READ = "reports.read"  # KPI reports, drill-downs, frozen reports, scores (a provider: its own)
    REPORTS_FREEZE = "reports.freeze"  # issue a month's frozen report by hand (the monthly job does it too)
    EXCEPTIONS_READ = "exceptions.read"  # the EVV exception queue (a provider: its own; a town manager: the town's)
    EXCEPTIONS_RESOLVE = "exceptions.resolve"  # explain an exception with a reason code (provider admins)
    EXCEPTIONS_DECIDE = "exceptions.decide"  # approve or reject an explained exception (the bureau: managers, admins)
    CARDS_ISSUE = "cards.issue"  # print a recipient's confirmation card (managers, admins, the provider serving them)
    APPLICATIONS_READ = "applications.read"  # applications and the work queue (a town manager: the town's)
    APPLICATIONS_MANAGE = "applications.manage"  # register, take steps, approve, reject; discovery rules


_READ = {Permission.REGISTRY_READ, Permission.RECIPIENTS_READ, Permission.REFERRALS_READ, Permission.ROSTERS_READ,
         Permission.SCHEDULE_READ, Permission.RECORDS_READ, Permission.ALERTS_READ, Permission.REPORTS_READ, Permission.EXCEPTIONS_READ}
# Applications hold the sensitive details of people not yet served: managers, admins and auditors only.
_INTAKE = {Permission.APPLICATIONS_READ, Permission.APPLICATIONS_MANAGE}
_MANAGE = {Permission.REGISTRY_MANAGE, Permission.WORKERS_MANAGE, Permission.RECIPIENTS_MANAGE, Permission.IMPORTS_RUN,
           Permission.MATCHING_RUN, Permission.REFERRALS_SERVE, Permission.ALERTS_ACK, Permission.REPORTS_FREEZE,
           Permission.EXCEPTIONS_DECIDE, Permission.CARDS_ISSUE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.USERS_MANAGE, Permission.AUDIT_READ, *_READ, *_MANAGE, Permission.SCHEDULE_MANAGE,
                           *_INTAKE}),
    Role.MANAGER: frozenset({*_READ, *_MANAGE, *_INTAKE}),
    Role.PROVIDER_ADMIN: frozenset(
        {*_READ, Permission.WORKERS_MANAGE, Permission.IMPORTS_RUN, Permission.REFERRALS_RESPOND,
         Permission.REFERRALS_SERVE, Permission.SCHEDULE_MANAGE, Permission.RECORDS_WRITE, Permission.ALERTS_ACK,
         Permission.EXCEPTIONS_RESOLVE, Permission.CARDS_ISSUE}
    ),
    Role.CAREGIVER: frozenset({Permission.ROSTERS_READ, Permission.RECORDS_READ, Permission.RECORDS_WRITE}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ, *_READ, Permission.APPLICATIONS_READ}),
}


def has_permission(role: str | None, permission: Permission) -> bool:
    """Whether a user of `role` (None: anonymous) holds `permission`."""
    if permission is Permission.PUBLIC:
        return True
    if role is None:
        return False
    if permission is Permission.AUTHENTICATED:
        return True
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())


@dataclass(frozen=True)
class Principal:
    """The caller as services see it: who, in which role, confined to which organisation or town."""

    user_id: int | None
    username: str
    role: Role | None
    organisation_id: int | None = None
    town_id: int | None = None
    worker_id: int | None = None  # a caregiver's own worker record

    def can(self, permission: Permission) -> bool:
        """Whether the caller holds `permission`."""
        return has_permission(self.role, permission)

    @property
    def is_anonymous(self) -> bool:
        """Nobody signed in."""
        return self.role is None

    @property
    def is_district_wide(self) -> bool:
        """Sees and acts on the whole district: an admin, an auditor or a manager confined to no town."""
        return self.role in (Role.ADMIN, Role.AUDITOR) or (self.role == Role.MANAGER and self.town_id is None)

    @property
    def is_provider(self) -> bool:
        """Confined to one organisation."""
        return self.role in ORGANISATION_ROLES


ANONYMOUS = Principal(user_id=None, username="anonymous", role=None)

# The command line acts with an administrator's rights (whoever runs it has the server).
COMMAND_LINE = Principal(user_id=None, username="cli", role=Role.ADMIN)
