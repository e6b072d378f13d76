"""The main navigation: each entry shows only to roles holding its permission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import request, url_for
from flask_babel import lazy_gettext as _l

from servicehub.auth.permissions import Permission, Principal, Role


@dataclass(frozen=True)
class NavEntry:
    """A menu entry: the page's endpoint, its label and the permission it needs.

    `section` lists the endpoints of the pages under the entry (they mark it current too); `target`, if
    given, picks the endpoint and its arguments for the caller (a provider's own organisation); `roles`, if
    given, shows the entry to those roles only (of the holders of the permission).
    """

    key: str
    endpoint: str
    label: object
    permission: Permission
    section: tuple[str, ...] = ()
    target: Callable[[Principal], tuple[str, dict]] | None = None
    roles: frozenset[Role] = frozenset()

    def shown_to(self, principal: Principal) -> bool:
        """Whether the caller sees the entry."""
        return principal.can(self.permission) and (not self.roles or principal.role in self.roles)

    def url(self, principal: Principal) -> str:
        """Where the entry leads the caller."""
        endpoint, args = self.target(principal) if self.target else (self.endpoint, {})
        return url_for(endpoint, **args)


def _own_organisation(principal: Principal) -> tuple[str, dict]:
    if principal.is_provider and principal.organisation_id:
        return "registry_pages.organisation", {"organisation_id": principal.organisation_id}
    return "registry_pages.organisations", {}


NAVIGATION: list[NavEntry] = [
    NavEntry("dashboard", "web.dashboard", _l("Dashboard"), Permission.AUTHENTICATED),
    NavEntry("recipients", "registry_pages.recipients", _l("Recipients"), Permission.RECIPIENTS_READ,
             section=("registry_pages.recipient", "registry_pages.new_recipient",
                      "registry_pages.edit_need")),
    NavEntry("intake", "intake_pages.queue", _l("Applications"), Permission.APPLICATIONS_READ,
             section=("intake_pages.application", "intake_pages.new", "intake_pages.discovery_rules",
                      "intake_pages.record_step", "intake_pages.reject", "intake_pages.approve",
                      "intake_pages.update_rule")),
    NavEntry("matching", "matching_pages.queue", _l("Matching"), Permission.MATCHING_RUN,
             section=("matching_pages.referrals", "matching_pages.referral")),
    NavEntry("referrals", "matching_pages.referrals", _l("Referrals"), Permission.REFERRALS_RESPOND,
             section=("matching_pages.referral",)),
    NavEntry("schedule", "scheduling_pages.day", _l("Roster"), Permission.SCHEDULE_READ,
             section=("scheduling_pages.my_route",),
             roles=frozenset({Role.PROVIDER_ADMIN, Role.MANAGER, Role.ADMIN, Role.AUDITOR})),
    NavEntry("route", "scheduling_pages.my_route", _l("Today's route"), Permission.ROSTERS_READ,
             roles=frozenset({Role.CAREGIVER})),
    NavEntry("alerts", "visits_pages.alerts", _l("Alerts"), Permission.ALERTS_READ),
    NavEntry("exceptions", "visits_pages.exceptions", _l("Exceptions"), Permission.EXCEPTIONS_READ,
             section=("visits_pages.exception",)),
    NavEntry("reports", "evaluation_pages.report", _l("Reports"), Permission.REPORTS_READ,
             section=("evaluation_pages.records", "evaluation_pages.definitions", "evaluation_pages.frozen_list",
                      "evaluation_pages.frozen", "evaluation_pages.freeze", "evaluation_pages.settlement")),
    NavEntry("performance", "evaluation_pages.dashboard", _l("Performance"), Permission.REPORTS_READ,
             roles=frozenset({Role.MANAGER, Role.ADMIN})),
    NavEntry("scorecard", "evaluation_pages.scorecard", _l("Scorecard"), Permission.REPORTS_READ,
             roles=frozenset({Role.PROVIDER_ADMIN})),
    NavEntry("organisations", "registry_pages.organisations", _l("Organisations"), Permission.REGISTRY_READ,
             section=("registry_pages.organisation", "registry_pages.contract"), target=_own_organisation),
    NavEntry("workers", "registry_pages.workers", _l("Workers"), Permission.REGISTRY_READ,
             section=("registry_pages.worker", "registry_pages.new_worker", "registry_pages.edit_worker")),
    NavEntry("imports", "imports_pages.index", _l("Import"), Permission.IMPORTS_RUN),
    NavEntry("catalog", "catalog_pages.index", _l("Service catalogue"), Permission.PUBLIC),
    NavEntry("users", "auth_pages.users", _l("Users"), Permission.USERS_MANAGE),
    NavEntry("audit", "auth_pages.audit_log", _l("Audit log"), Permission.AUDIT_READ),
    NavEntry("integrity", "integrity_pages.index", _l("Integrity"), Permission.AUDIT_READ),
]


def nav_items(principal: Principal) -> list[dict]:
    """The entries the caller may use, with URLs and the current page marked."""
    if principal.is_anonymous:
        return []
    return [
        {
            "key": e.key,
            "label": str(e.label),
            "url": e.url(principal),
            "active": request.endpoint == e.endpoint or request.endpoint in e.section,
        }
        for e in NAVIGATION
        if e.shown_to(principal)
    ]
