"""The app factory, settings, health check, API documents and the error format outside the catalogue."""

import os
import stat

import pytest

from servicehub import create_app
from servicehub.auth.access import public
from servicehub.config import ConfigError, normalise_database_url, secret_key_from_instance, settings_from_env


def test_settings_default_to_sqlite_in_the_instance_folder(tmp_path):
    settings = settings_from_env(str(tmp_path), environ={})
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'servicehub.db'}"
    assert settings["SERVICEHUB_TIMEZONE"] == "Asia/Shanghai"
    assert settings["SECRET_KEY"] is None


def test_settings_from_environment(tmp_path):
    settings = settings_from_env(
        str(tmp_path),
        environ={
            "DATABASE_URL": "postgres://u:p@db:5432/sh",
            "SERVICEHUB_TIMEZONE": "Asia/Urumqi",
            "SECRET_KEY": "k",
        },
    )
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/sh"
    assert settings["SERVICEHUB_TIMEZONE"] == "Asia/Urumqi"
    assert settings["SECRET_KEY"] == "k"


def test_unknown_timezone_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="SERVICEHUB_TIMEZONE"):
        settings_from_env(str(tmp_path), environ={"SERVICEHUB_TIMEZONE": "Mars/Olympus"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://x@h/d", "postgresql+psycopg://x@h/d"),
        ("postgresql+psycopg://x@h/d", "postgresql+psycopg://x@h/d"),
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    ],
)
def test_database_url_normalisation(given, expected):
    assert normalise_database_url(given) == expected


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = secret_key_from_instance(str(tmp_path))
    assert len(first) == 64
    assert secret_key_from_instance(str(tmp_path)) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_app_without_a_secret_uses_the_instance_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    )
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text()


def test_config_argument_overrides_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICEHUB_TIMEZONE", "Asia/Urumqi")
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "SERVICEHUB_TIMEZONE": "Asia/Shanghai", "SECRET_KEY": "x"}
    )
    assert app.config["SERVICEHUB_TIMEZONE"] == "Asia/Shanghai"


def test_healthz_reports_the_database_and_its_revision(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok" and body["database"]["revision"]


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"]["status"] == "unavailable"


def test_unhandled_error_is_a_json_500_without_traceback(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/api/v1/boom")
    @public
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    text = response.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert response.get_json()["code"] == "internal_error"


def test_database_outage_during_a_request_is_503(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    response = app.test_client().get("/api/v1/catalog/categories")
    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "30"


def test_openapi_document_lists_the_catalogue(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {
        "/api/v1/catalog/categories",
        "/api/v1/catalog/service-types",
        "/api/v1/catalog/service-types/{code}",
    } <= set(spec["paths"])
    error = spec["components"]["responses"]["NOT_FOUND"]["content"]
    assert "application/problem+json" in error


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    validate(client.get("/api/v1/openapi.json").get_json())


def test_docs_page_works_offline(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "<script>" not in html
    for url in [
        f"/api/v1/docs/assets/{asset}"
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js")
    ] + ["/static/js/apidocs.js"]:
        with client.get(url) as response:
            assert response.status_code == 200, url
