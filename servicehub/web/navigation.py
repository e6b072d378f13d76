"""The main navigation: each entry shows only to roles holding its permission."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for
from flask_babel import lazy_gettext as _l

from servicehub.auth.permissions import Permission, Principal


@dataclass(frozen=True)
class NavEntry:
    """A menu entry: the page's endpoint, its label and the permission it needs."""

    key: str
    endpoint: str
    label: object
    permission: Permission


NAVIGATION: list[NavEntry] = [
    NavEntry("dashboard", "web.dashboard", _l("Dashboard"), Permission.AUTHENTICATED),
    NavEntry("catalog", "catalog_pages.index", _l("Service catalogue"), Permission.PUBLIC),
    NavEntry("users", "auth_pages.users", _l("Users"), Permission.USERS_MANAGE),
    NavEntry("audit", "auth_pages.audit_log", _l("Audit log"), Permission.AUDIT_READ),
]


def nav_items(principal: Principal) -> list[dict]:
    """The entries the caller may use, with URLs and the current page marked."""
    if principal.is_anonymous:
        return []
    return [
        {"key": e.key, "label": str(e.label), "url": url_for(e.endpoint), "active": request.endpoint == e.endpoint}
        for e in NAVIGATION
        if principal.can(e.permission)
    ]
