"""The OpenAPI document says what every operation answers (servicehub.apidocs): its errors, how it is authenticated,
the X-Pagination header as the JSON object it is, the files an export sends. tests/test_api_fuzz.py holds the
answers to it; these tests hold the document's shape."""

import json
from datetime import date

import jsonschema
import pytest

from servicehub.apidocs import error_statuses
from servicehub.auth.permissions import Permission
from servicehub.timeutil import month_days

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def document(client):
    """The served OpenAPI document."""
    return client.get("/api/v1/openapi.json").get_json()


def operations(document):
    """(method, path, operation) of every operation."""
    return [(method, path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def test_every_operation_lists_its_errors_and_no_catch_all(document):
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "default" not in responses, (method, path)
        assert {"400", "422", "503"} <= set(responses), (method, path)
        if operation["security"]:
            assert operation["security"] == [{"bearer": []}]
            assert "401" in responses, (method, path)
        else:
            assert "403" not in responses, (method, path)  # (a 401 only where credentials are sent: sign-in)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method != "get":
            assert "409" in responses, (method, path)
    public = {(m, p) for m, p, o in operations(document) if not o["security"]}
    assert {("post", "/api/v1/auth/tokens"), ("get", "/api/v1/public/challenge"),
            ("post", "/api/v1/public/applications")} <= public
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_error_responses_are_problems_with_the_headers_they_always_carry(document):
    responses = document["components"]["responses"]
    for name in ("BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "SERVICE_UNAVAILABLE"):
        assert list(responses[name]["content"]) == ["application/problem+json"]
    assert responses["UNAUTHORIZED"]["headers"]["WWW-Authenticate"]["required"]
    assert responses["SERVICE_UNAVAILABLE"]["headers"]["Retry-After"]["required"]
    assert set(document["components"]["schemas"]["Error"]["required"]) == {"code", "status", "message"}


def test_error_statuses_follow_from_how_an_operation_is_reached():
    assert error_statuses("get", Permission.PUBLIC, False, False) == {400, 422, 503}
    assert error_statuses("get", Permission.AUTHENTICATED, True, False) == {400, 401, 404, 422, 503}
    assert error_statuses("patch", Permission.RECORDS_WRITE, True, True) == {400, 401, 403, 404, 409, 413, 422, 503}


def test_a_wrong_password_is_told_how_to_authenticate(client, demo):
    response = client.post("/api/v1/auth/tokens", json={"username": "admin", "password": "not it"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="servicehub"'


def test_the_pagination_header_is_documented_as_the_json_object_it_is(client, demo, document):
    listing = document["paths"]["/api/v1/areas"]["get"]
    header = listing["responses"]["200"]["headers"]["X-Pagination"]
    header = document["components"]["headers"][header["$ref"].rsplit("/", 1)[-1]]
    schema = header["content"]["application/json"]["schema"]
    assert header["required"] and "schema" not in header  # not a `simple`-style object: a JSON text
    page = next(p for p in listing["parameters"] if p["name"] == "page")
    assert page["schema"]["maximum"] == 100_000
    for query in ({"page_size": 5, "page": 2}, {"q": "nothing like it"}, {"page": 99}):
        sent = json.loads(client.get("/api/v1/areas", query_string=query,
                                     headers=_token(client)).headers["X-Pagination"])
        jsonschema.validate(sent, {**schema, "components": document["components"]})
    assert sent["total"] > 0 and "page" not in sent  # past the last page: no page to name


def _token(client) -> dict[str, str]:
    from tests.support import DEMO_PASSWORD

    token = client.post("/api/v1/auth/tokens", json={"username": "admin", "password": DEMO_PASSWORD}).get_json()
    return {"Authorization": f"Bearer {token['token']}"}


def test_exports_document_the_files_they_send(document):
    csv, xlsx, pdf = "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf"
    for path in ("/api/v1/reports/kpis/export", "/api/v1/reports/frozen/{frozen_id}/export",
                 "/api/v1/contracts/{contract_id}/settlement/export"):
        assert set(document["paths"][path]["get"]["responses"]["200"]["content"]) == {csv, xlsx, pdf}
    card = document["paths"]["/api/v1/recipients/{recipient_id}/confirmation-cards"]["post"]["responses"]["201"]
    assert set(card["content"]) == {pdf}


def test_times_and_months_are_documented_with_the_patterns_they_are_parsed_by(document):
    schemas = document["components"]["schemas"]
    time_pattern = schemas["NeedCreate"]["properties"]["window_start"]["pattern"]
    month_pattern = schemas["Freeze"]["properties"]["month"]["pattern"]
    for value, ok in (("08:05", True), ("8:5", True), ("23:59", True), ("24:00", False), ("08:05:00", False)):
        assert (jsonschema.Draft4Validator({"pattern": time_pattern}).is_valid(value)) is ok, value
    for value, ok in (("2026-11", True), ("0001-01", True), ("9999-12", True), ("0000-01", False), ("2026-13", False)):
        assert (jsonschema.Draft4Validator({"pattern": month_pattern}).is_valid(value)) is ok, value


def test_the_last_month_there_is_has_a_last_day():
    assert month_days("9999-12") == (date(9999, 12, 1), date(9999, 12, 31))
    assert month_days("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
