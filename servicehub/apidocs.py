"""The API's documentation: the interactive page (served with its assets from the package, works offline), and
what the OpenAPI document says the same way for every operation.

Every operation's document lists the errors any request to it can get, as they are sent (problem+json): 400 (text
no database can store, a malformed body), 422 (invalid fields), 503 (the database is down) everywhere; 401 and 403
where it needs a signed-in caller with a permission; 404 where its path names something; 409 and 413 where it
writes. There is no catch-all `default` answer: a status an operation does not list is a fault of the document or
of the answer (tests/test_api_fuzz.py runs schemathesis over every operation with that check).
"""

from __future__ import annotations

from apispec import BasePlugin
from flask import Blueprint, render_template, send_from_directory, url_for
from flask_smorest import Blueprint as ApiBlueprint
from flask_smorest.pagination import PaginationMetadataSchema
from marshmallow import fields
from swagger_ui_bundle import swagger_ui_path

from servicehub.auth.access import public, required_permission
from servicehub.auth.permissions import Permission

blp = Blueprint("apidocs", __name__, url_prefix="/api/v1/docs")

# What `strptime("%H:%M")` takes: hours and minutes of one or two digits.
HH_MM_PATTERN = "^([01]?[0-9]|2[0-3]):[0-5]?[0-9]$"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
BODY_METHODS = frozenset({"post", "put", "patch"})
BEARER_SCHEME = {"type": "http", "scheme": "bearer",
                 "description": "A token from POST /api/v1/auth/tokens (or the signed-in session's cookie)"}
# The error responses (components registered by ServiceHubApi) an operation can get without saying so itself.
ERROR_RESPONSES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
                   413: "REQUEST_ENTITY_TOO_LARGE", 422: "UNPROCESSABLE_ENTITY", 503: "SERVICE_UNAVAILABLE"}


@blp.get("")
@blp.get("/")
@public
def docs_page():
    """Swagger UI for /api/v1/openapi.json."""
    return render_template("apidocs/swagger.html", spec_url=url_for("api-docs.openapi_json"))


@blp.get("/assets/<path:filename>")
@public
def docs_asset(filename: str):
    """Swagger UI's own files, from the swagger-ui-bundle package."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)


def error_statuses(method: str, permission: Permission | None, names_a_row: bool, takes_body: bool) -> set[int]:
    """The error statuses any request to an operation can get, from how it is reached."""
    statuses = {400, 422, 503}
    if permission is not Permission.PUBLIC:
        statuses.add(401)
        if permission is not Permission.AUTHENTICATED:
            statuses.add(403)
    if names_a_row:
        statuses.add(404)
    if method in WRITE_METHODS:
        statuses.add(409)
    if takes_body:
        statuses.add(413)
    return statuses


def is_id(name: str) -> bool:
    """Whether a parameter or property names rows by their ids (`recipient_id`, `referral_ids`)."""
    return name.endswith(("_id", "_ids"))


class DocumentedAnswers(BasePlugin):
    """An apispec plugin (after the marshmallow one) that adds to every operation the error responses any request
    to it can get (`error_statuses`), how it is authenticated, and the limit the request guards put on `page`."""

    def __init__(self, app) -> None:
        self.app = app
        self.spec = None

    def init_spec(self, spec) -> None:
        """Keep the spec, whose schemas tell what a request body holds; declare the bearer token."""
        self.spec = spec
        spec.components.security_scheme("bearer", BEARER_SCHEME)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        """Complete each operation of one route."""
        from servicehub.app import MAX_PAGE  # the app factory imports this module

        rule = kwargs["rule"]
        for method, operation in (operations or {}).items():
            parameters = [p for p in operation.get("parameters", []) if isinstance(p, dict)]
            permission = required_permission(self.app, rule.endpoint, method.upper())
            names_a_row = bool(rule.arguments) or any(
                is_id(p["name"]) and p.get("required") for p in parameters if p.get("in") == "query"
            ) or (method in WRITE_METHODS and any(map(is_id, self._body_properties(operation))))
            takes_body = method in BODY_METHODS or "requestBody" in operation
            responses = operation.setdefault("responses", {})
            documented = {str(status) for status in responses}
            for status in sorted(error_statuses(method, permission, names_a_row, takes_body)):
                if str(status) not in documented:
                    responses[status] = ERROR_RESPONSES[status]
            operation["security"] = [] if permission is Permission.PUBLIC else [{"bearer": []}]
            for parameter in parameters:
                if parameter.get("in") == "query" and parameter.get("name") == "page":
                    parameter["schema"]["maximum"] = MAX_PAGE

    def _body_properties(self, operation: dict) -> list[str]:
        """The top-level property names of an operation's request body (of its schema in the components)."""
        names = []
        for content in operation.get("requestBody", {}).get("content", {}).values():
            schema = content.get("schema", {})
            schema = schema.get("items", schema) if schema.get("type") == "array" else schema
            if "$ref" in schema:
                schema = self.spec.components.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
            names.extend(schema.get("properties", {}))
        return names


class PageMetadataSchema(PaginationMetadataSchema):
    """The X-Pagination header of a list: a JSON object. `total` and `total_pages` are always there; the page
    numbers only when there is a page to name (none on an empty list, no `page` past the last one)."""

    total = fields.Integer(required=True, metadata={"description": "Total number of items."})
    total_pages = fields.Integer(required=True, metadata={"description": "Total number of pages."})


PAGINATION_HEADER = {
    "description": "Where this page is in the list, as a JSON object, e.g. "
    '`{"total": 21, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 1, "next_page": 2}`',
    "required": True,
    "content": {"application/json": {"schema": PageMetadataSchema}},
}


def time_pattern(converter, field, ret, **kwargs) -> dict:
    """An apispec attribute function: a time written HH:MM is documented with the pattern it is parsed by."""
    if isinstance(field, fields.Time) and field.format == "%H:%M":
        return {"pattern": HH_MM_PATTERN}
    return {}


def file_response(description: str, mimetypes, status: int = 200):
    """Document an answer that is a file: `status` with binary content of one of `mimetypes`."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return ApiBlueprint.doc(responses={status: {"description": description,
                                                "content": {mimetype: binary for mimetype in mimetypes}}})
