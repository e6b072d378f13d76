"""One error format for the whole API: application/problem+json `{code, status, message, errors}`.

`code` is a stable machine-readable string, `status` the HTTP status, `message` a sentence for
people, `errors` field-level messages (`{"field": ["reason", ...]}`) where there are any.
Services raise the `DomainError` subclasses below; they never build responses themselves.
"""

from __future__ import annotations

import http
import logging
import re

import marshmallow as ma
from flask import current_app, json, request
from flask_babel import gettext
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
BEARER_CHALLENGE = 'Bearer realm="servicehub"'


class DomainError(Exception):
    """A use case refused the request; carries the HTTP status it maps to and field errors."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, errors: dict | None = None, *, code: str | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}
        if code:
            self.code = code


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a lost race, a closed record)."""

    status = 409
    code = "conflict"


class ValidationFailed(DomainError):
    """Input that is well-formed but breaks a business rule; `errors` names the fields."""

    status = 422
    code = "validation_error"


class PermissionDenied(DomainError):
    """The caller is known but lacks the permission."""

    status = 403
    code = "forbidden"


class Unauthenticated(DomainError):
    """No valid credentials: wrong password, or a missing, expired or revoked token. The answer always says how to
    authenticate (WWW-Authenticate, as RFC 9110 requires of a 401)."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, errors: dict | None = None, *, code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message, errors, code=code, headers={"WWW-Authenticate": BEARER_CHALLENGE, **(headers or {})})


class RateLimited(DomainError):
    """Too many attempts; `headers` carries Retry-After."""

    status = 429
    code = "too_many_requests"


def flatten_errors(errors: object, prefix: str = "") -> list[tuple[str, str]]:
    """Nested marshmallow-style errors as (dotted.path, message) pairs."""
    if isinstance(errors, dict):
        pairs = []
        for key, value in errors.items():
            pairs.extend(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return pairs
    if isinstance(errors, list | tuple):
        if all(isinstance(e, str) for e in errors):
            return [(prefix, message) for message in errors]
        return [pair for e in errors for pair in flatten_errors(e, prefix)]
    return [(prefix, str(errors))]


class ErrorSchema(ma.Schema):
    """The error payload, for the OpenAPI document."""

    code = ma.fields.String(required=True, metadata={"description": "Stable machine-readable error code"})
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for people"})
    errors = ma.fields.Dict(metadata={"description": "Field-level messages: {field: [reason, ...]}"})


def _code_for(exc: HTTPException) -> str:
    return {422: "validation_error", 500: "internal_error"}.get(
        exc.code or 500, re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
    )


def problem(status: int, code: str, message: str, errors: dict | None = None, headers: dict | None = None):
    """Build a problem+json response."""
    body = {"code": code, "status": status, "message": message}
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    """Whether the request is for the JSON API (problem+json errors) rather than a page."""
    return request.path.startswith("/api/") or request.path == "/healthz"


class Worded(str):
    """A message made from a marked template and its values: it reads as the English text, and a page words the
    template again in its own language with the same values (`page_message`)."""

    template: str
    values: dict

    def __new__(cls, template: str, values: dict) -> Worded:
        worded = super().__new__(cls, template % values)
        worded.template, worded.values = template, values
        return worded


def N_(message: str, **values) -> str:
    """Mark a service's message for translation without translating it (`pybabel extract -k N_`): the API
    answers in English, a page shows it in the page's language (`page_message`). With values, `message` is a
    template with %(name)s placeholders."""
    return Worded(message, values) if values else message


def page_message(message: str) -> str:
    """A service's message in the page's language when the catalogue has it (marked with N_), else as it is."""
    if isinstance(message, Worded):
        return gettext(message.template, **message.values)
    return gettext(message) if message else message


def problem_or_page(status: int, code: str, message: str, errors: dict | None = None, headers: dict | None = None):
    """problem+json for the API, the error page for everything else (its words in the page's language where the
    catalogue has them)."""
    if is_api_request():
        return problem(status, code, message, errors, headers)
    from flask import render_template

    errors = {name: [page_message(m) for m in messages] if isinstance(messages, list) else messages
              for name, messages in (errors or {}).items()}
    response = current_app.make_response(
        (render_template("errors/error.html", status=status, code=code, message=page_message(message),
                         errors=errors), status)
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_problem(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # webargs nests errors by location ({"query": {"page": [...]}}); one location is the common case.
    if isinstance(errors, dict) and len(errors) == 1:
        ((location, inner),) = errors.items()
        if location in {"query", "json", "form", "files", "headers", "view_args", "path"} and isinstance(
            inner, dict
        ):
            errors = inner
    headers = dict(data.get("headers") or {})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    if status >= 500:
        message = gettext("An internal error occurred. It has been logged.")
    elif errors and status == 422:
        message = data.get("message") or gettext(
            "The request has invalid fields: %(fields)s.", fields=", ".join(sorted(map(str, errors)))
        )
    else:
        message = data.get("message") or exc.description or exc.name
    return problem_or_page(status, _code_for(exc), message, errors if isinstance(errors, dict) else None, headers)


# Headers that answers with these statuses always carry.
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": 'How to authenticate: `Bearer realm="servicehub"`', "required": True,
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before trying again", "required": True,
                          "schema": {"type": "integer", "minimum": 0}}},
    503: {"Retry-After": {"description": "Seconds to wait before trying again", "required": True,
                          "schema": {"type": "integer", "minimum": 0}}},
}


class ServiceHubApi(Api):
    """flask-smorest's Api with ServiceHub's error format, and a document that lists each operation's answers
    (servicehub.apidocs) instead of a catch-all `default` error."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _init_spec(self, *, extra_plugins=None, **options):
        """flask-smorest's spec, completed for every operation by servicehub.apidocs."""
        from servicehub import apidocs  # it imports the access checks, which import this module

        plugins = [*(extra_plugins or ()), apidocs.DocumentedAnswers(self._app)]
        super()._init_spec(extra_plugins=plugins, **options)
        self.ma_plugin.converter.add_attribute_function(apidocs.time_pattern)

    def _register_responses(self):
        """Document every error response as application/problem+json, as it is sent, with its headers."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_MIMETYPE
            prepare_response(response, self.spec, content_type)
            if status in ERROR_HEADERS:
                response["headers"] = ERROR_HEADERS[status]
            self.spec.components.response(status.name, response, lazy=True)

    def _register_pagination_header(self):
        """The X-Pagination header documented as what it is: a JSON object (servicehub.apidocs)."""
        from servicehub import apidocs  # as in _init_spec

        self.spec.components.header("PAGINATION", apidocs.PAGINATION_HEADER, lazy=True)

    def handle_http_exception(self, error):
        """Turn every HTTPException (raised, aborted or unhandled) into the problem format."""
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            log.error(
                "unhandled error on %s %s", request.method, request.path, exc_info=error.original_exception
            )
        return _http_problem(error)


def register_error_handlers(app) -> None:
    """Map domain and database errors to the problem format (HTTPException is handled by the Api)."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        return problem_or_page(exc.status, exc.code, exc.message, exc.errors, exc.headers)

    @app.errorhandler(IntegrityError)
    def _integrity_error(exc: IntegrityError):
        from servicehub.extensions import db

        db.session.rollback()
        log.warning("integrity error: %s", exc.orig)
        return problem_or_page(409, "conflict", gettext("The change conflicts with existing data and was not saved."))

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: DBAPIError):
        from servicehub.extensions import db

        db.session.rollback()
        log.error("database error: %s", exc.orig)
        return problem_or_page(
            503,
            "database_unavailable",
            gettext("The database is not reachable at the moment; nothing was changed. Try again shortly."),
            headers={"Retry-After": "30"},
        )
