"""Wiring of the web shell into the app: blueprints, template helpers and security headers."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import lazy_gettext as _l

from servicehub.auth.access import current_principal
from servicehub.auth.permissions import Permission, Role
from servicehub.i18n import current_language, localized
from servicehub.web.format import register_format
from servicehub.web.navigation import nav_items

ROLE_LABELS = {
    Role.ADMIN: _l("System administrator"),
    Role.MANAGER: _l("Civil-affairs manager"),
    Role.PROVIDER_ADMIN: _l("Provider administrator"),
    Role.CAREGIVER: _l("Caregiver"),
    Role.AUDITOR: _l("Auditor"),
}

ERROR_TITLES = {
    400: _l("Bad request"),
    401: _l("Please sign in"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    409: _l("Conflict"),
    422: _l("Invalid input"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong"),
    503: _l("Temporarily unavailable"),
}

# No inline scripts anywhere; styles may be set inline by Swagger UI and Chart.js.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


# API answers that carry no personal data and may be kept by a browser or a proxy: the public catalogue, the
# OpenAPI document and the docs page's assets. Every other API answer (recipients, visits, reports, exports, even an
# error naming a person) is sent with `Cache-Control: no-store`, as pages are.
CACHEABLE_API_PATHS = ("/api/v1/catalog/", "/api/v1/openapi.json", "/api/v1/docs/")


def may_be_cached(path: str) -> bool:
    """Whether an answer to `path` may be stored by a browser or a proxy, unless it is a page (never stored): a
    static file may, an API answer only under CACHEABLE_API_PATHS."""
    return not path.startswith("/api/") or path.startswith(CACHEABLE_API_PATHS)


def role_label(role: str | None) -> str:
    """A role's name in the page language."""
    return str(ROLE_LABELS.get(role, role or ""))


def register_web(app: Flask) -> None:
    """Register the shell's pages, the helpers every template uses and the security headers."""
    from servicehub.web.views import blp

    app.register_blueprint(blp)
    register_format(app)

    @app.context_processor
    def _shell_context():
        principal = current_principal()
        return {
            "principal": principal,
            "can": lambda permission: principal.can(Permission(permission)),
            "nav_items": nav_items(principal),
            "current_language": current_language(),
            "localized": localized,
            "role_label": role_label,
            "error_title": lambda status: str(ERROR_TITLES.get(status, "")),
        }

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # the phone's location for check-in (this site only); no camera, microphone or payment
        headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(), microphone=(), payment=()")
        if app.config.get("SESSION_COOKIE_SECURE"):  # served over HTTPS: browsers must not fall back to HTTP
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html" or not may_be_cached(request.path):
            headers.setdefault("Cache-Control", "no-store")
        return response
