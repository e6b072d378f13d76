"""Data protection around every request: bodies nested too deep, the SQLite file's mode, and no caching of
answers that carry personal data."""

import pytest

from servicehub.app import MAX_JSON_DEPTH, json_nesting_exceeds
from tests.support import DEMO_PASSWORD

# --- nested JSON ----------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(("body", "deeper"), [
    (nested(32), False),
    (nested(33), True),
    ('{"a": ' * 33 + "1" + "}" * 33, True),
    ('{"a": [' * 16 + "1" + "]}" * 16, False),  # objects and arrays count alike: 32 levels
    ('{"a": [' * 16 + "{}" + "]}" * 16, True),
    ('["' + "[" * 100 + '"]', False),  # brackets inside a string do not count
    ('["\\"' + "[" * 100 + '"]', False),  # nor after an escaped quote
    ('["\\\\"' + ", [" * 40 + "]" * 40 + "]", True),  # an escaped backslash ends the string before the quote
    ("[]" * 1000, False),  # many arrays side by side, none inside another
    (nested(100_000), True),
])
def test_nesting_is_counted_without_parsing(body, deeper):
    assert json_nesting_exceeds(body, 32) is deeper


def test_the_limit_is_a_sane_depth():
    assert MAX_JSON_DEPTH == 32


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_a_body_nested_too_deep_is_400_before_any_endpoint(client, depth):
    response = client.post("/api/v1/auth/tokens", data=nested(depth), content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "too_deeply_nested" and "JSON body" in body["message"]
    assert "body" in body["errors"]
    # a page that takes a form answers the same refusal, as a page
    page = client.post("/login", data='{"a":' * depth + "1" + "}" * depth, content_type="application/json")
    assert page.status_code == 400 and page.mimetype == "text/html"


def test_a_body_within_the_limit_reaches_the_endpoint(client):
    inner = nested(MAX_JSON_DEPTH - 1)
    response = client.post("/api/v1/auth/tokens", data='{"username": ' + inner + "}",
                           content_type="application/json")
    assert response.status_code == 422 and "username" in response.get_json()["errors"]


# --- the SQLite file ------------------------------------------------------------------------


@pytest.fixture
def umask_022():
    import os

    previous = os.umask(0o022)  # the usual umask, under which a new file is readable by every account
    yield
    os.umask(previous)


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path, monkeypatch, umask_022):
    import stat

    from sqlalchemy import text

    from servicehub import create_app
    from servicehub.extensions import db

    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'servicehub.db'}"
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as connection:  # an open connection keeps -wal and -shm
        connection.execute(text("SELECT count(*) FROM users"))
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("servicehub.db*")}
        db.engine.dispose()
    assert set(files) == {"servicehub.db", "servicehub.db-wal", "servicehub.db-shm"}
    assert set(files.values()) == {0o600}


# --- caching --------------------------------------------------------------------------------


def test_api_answers_with_personal_data_are_not_stored(app, client, demo, auth_headers):
    from tests.registry import factories

    with app.app_context():
        rid = factories.recipient().id
    headers = auth_headers("manager")
    answers = [
        client.get("/api/v1/recipients", headers=headers),
        client.get(f"/api/v1/recipients/{rid}", headers=headers),
        client.get("/api/v1/auth/me", headers=headers),
        client.post("/api/v1/auth/tokens", json={"username": "auditor", "password": "wrong-password"}),
        client.get("/api/v1/recipients"),  # refused: an error is not kept either
        client.post("/api/v1/auth/tokens", json={"username": "auditor", "password": DEMO_PASSWORD}),
    ]
    assert answers[1].status_code == 200 and answers[1].get_json()["id_number"]
    for response in answers:
        assert response.headers.get("Cache-Control") == "no-store", response.request.path


def test_the_public_catalogue_and_the_api_document_may_be_cached(client, catalog):
    for url in ("/api/v1/catalog/categories", "/api/v1/catalog/service-types", "/api/v1/openapi.json"):
        response = client.get(url)
        assert response.status_code == 200 and "no-store" not in response.headers.get("Cache-Control", ""), url
    assert client.get("/login").headers["Cache-Control"] == "no-store"  # pages, as before
