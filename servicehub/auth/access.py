"""Access control for every route: authentication (session or bearer token), the declared permission,
CSRF for cookie-authenticated writes, and the actor the audit log records.

A route declares what it needs with `@requires(Permission.X)` (or `@public`) on the view function or
MethodView method, or for a whole blueprint with `declare_blueprint(blp, Permission.X)`. A route
that declares nothing is refused (fail closed) and `tests/auth/test_route_permissions.py` fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from servicehub.auth import services
from servicehub.auth.audit import Actor, reset_actor, set_actor
from servicehub.auth.permissions import ANONYMOUS, Permission, Principal
from servicehub.errors import N_, PermissionDenied, Unauthenticated, is_api_request, problem_or_page
from servicehub.extensions import csrf, login_manager

log = logging.getLogger(__name__)

# Endpoints that Flask and flask-smorest add themselves.
FRAMEWORK_PUBLIC_ENDPOINTS = frozenset({"static", "api-docs.openapi_json"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BLUEPRINT_PERMISSIONS: dict[str, Permission] = {}


def requires(permission: Permission) -> Callable:
    """Declare the permission a view (function or MethodView method) needs."""

    def decorate(view: Callable) -> Callable:
        view.required_permission = permission
        return view

    return decorate


public = requires(Permission.PUBLIC)


def declare_blueprint(blueprint, permission: Permission):
    """Declare the permission every route of a blueprint needs, unless a view declares its own."""
    _BLUEPRINT_PERMISSIONS[blueprint.name] = permission
    return blueprint


def required_permission(app: Flask, endpoint: str, method: str) -> Permission | None:
    """The permission declared for `endpoint` and `method`, or None if nothing is declared."""
    if endpoint in FRAMEWORK_PUBLIC_ENDPOINTS or method == "OPTIONS":
        return Permission.PUBLIC
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None) or (
            getattr(view_class, "get", None) if method == "HEAD" else None
        )
        declared = getattr(handler, "required_permission", None)
    else:
        declared = getattr(view, "required_permission", None)
    if declared is None and "." in endpoint:
        declared = _BLUEPRINT_PERMISSIONS.get(endpoint.rsplit(".", 1)[0])
    return declared


def current_principal() -> Principal:
    """The signed-in caller, as services see it (ANONYMOUS if nobody)."""
    if not current_user or not current_user.is_authenticated:
        return ANONYMOUS
    return services.principal_of(current_user)


def client_ip() -> str:
    """The client's address (the proxy's, unless ProxyFix is configured in deployment)."""
    return request.remote_addr or ""


def safe_next_url(target: str | None) -> str | None:
    """`target` if it is a path on this site (no open redirects), else None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@login_manager.user_loader
def _load_session_user(session_id: str):
    return services.user_for_session(session_id)


@login_manager.request_loader
def _load_token_user(req):
    header = req.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    user = services.user_for_token(secret.strip())
    if user is not None:
        g.authenticated_by_token = True
    return user


@login_manager.unauthorized_handler
def _unauthorized():
    if is_api_request():
        if request.headers.get("Authorization"):
            message = "The bearer token is invalid, expired or revoked."
        else:
            message = "Sign in or send a bearer token (POST /api/v1/auth/tokens) to use this endpoint."
        raise Unauthenticated(message, headers={"WWW-Authenticate": 'Bearer realm="servicehub"'})
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


def enforce_access():
    """before_request: authenticate, record the actor, check the declared permission and CSRF."""
    if request.endpoint is None:
        return None  # no route: the 404/405 handler answers
    permission = required_permission(current_app, request.endpoint, request.method)
    user = current_user if current_user.is_authenticated else None
    g.actor_token = set_actor(Actor(user.username, user.id, client_ip()) if user else Actor("anonymous", None, client_ip()))
    if permission is None:
        log.error("route %s %s declares no permission; refusing", request.method, request.endpoint)
        raise PermissionDenied(N_("This route declares no permission and is closed."))
    if permission is not Permission.PUBLIC and user is None:
        return login_manager.unauthorized()
    if not current_principal().can(permission):
        raise PermissionDenied(N_("Your role may not do this (needs %(permission)s).", permission=permission.value))
    if request.method not in SAFE_METHODS and not g.get("authenticated_by_token") and not _csrf_exempt():
        csrf.protect()
    return None


# Token creation takes credentials in the body and sets no cookie; the public application endpoints act for
# nobody (anyone may call them, signed in or not, and they use no session): there is nothing to forge.
CSRF_EXEMPT_ENDPOINTS = frozenset({"auth.TokenList", "intake.PublicApplications", "intake.PublicStatus"})


def _csrf_exempt() -> bool:
    return request.endpoint in CSRF_EXEMPT_ENDPOINTS


def register_access(app: Flask) -> None:
    """Install the access check before every request."""
    app.before_request(enforce_access)

    @app.teardown_request
    def _forget_actor(_exc):
        token = g.pop("actor_token", None)
        if token is not None:
            reset_actor(token)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return problem_or_page(
            400, "csrf_failed", gettext("The form has expired or its security token is missing. Reload and try again.")
        )
