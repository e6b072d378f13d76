"""Production mode: the app refuses unsafe settings, `servicehub check-config` says why, gunicorn serves the
app from the shipped settings, and the client's address is the proxy's X-Forwarded-For when told to trust it."""

import base64
import secrets
import urllib.request
from pathlib import Path

import flask_migrate
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from servicehub import create_app
from servicehub.auth.access import client_ip
from servicehub.auth.permissions import Permission
from servicehub.config import ConfigError, production_problems
from servicehub.extensions import db
from tests.conftest import TEST_CONFIG
from tests.support import Gunicorn, fresh_database

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"SECRET_KEY": secrets.token_hex(32), "SERVICEHUB_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SERVICEHUB_LEDGER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SESSION_COOKIE_SECURE": True, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@127.0.0.1/servicehub"}


def problems(**changes) -> list[str]:
    config = {**GOOD, **changes}
    return production_problems(config, secret_given=bool(config["SECRET_KEY"]),
                               data_key_given=bool(config["SERVICEHUB_DATA_KEY"]))


def test_production_settings_have_no_problems_and_each_unsafe_one_is_named():
    assert problems() == []
    assert "SECRET_KEY is not set" in problems(SECRET_KEY="")[0]
    assert "default or shorter" in problems(SECRET_KEY="change-me")[0]
    assert "default or shorter" in problems(SECRET_KEY="x" * 31)[0]
    assert "SERVICEHUB_DATA_KEY" in problems(SERVICEHUB_DATA_KEY="")[0]
    assert "SERVICEHUB_LEDGER_KEY is not set" in problems(SERVICEHUB_LEDGER_KEY="")[0]
    assert "SQLite" in problems(SQLALCHEMY_DATABASE_URI="sqlite:///x.db")[0]
    assert "Debug" in problems(DEBUG=True)[0]
    assert "TESTING" in problems(TESTING=True)[0]
    assert "SECURE_COOKIES" in problems(SESSION_COOKIE_SECURE=False)[0]


def test_the_app_refuses_to_start_in_production_with_sqlite_and_generated_secrets(tmp_path):
    with pytest.raises(ConfigError) as refused:
        create_app({"SERVICEHUB_ENV": "production", "INSTANCE_PATH": str(tmp_path),
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})
    message = str(refused.value)
    assert message.startswith("Refusing to start in production")
    assert "SECRET_KEY" in message and "SQLite" in message and "SERVICEHUB_DATA_KEY" in message
    with pytest.raises(ConfigError, match="SERVICEHUB_ENV"):
        create_app({"SERVICEHUB_ENV": "staging", "INSTANCE_PATH": str(tmp_path)})


def test_check_config_names_each_problem_and_fails(tmp_path, monkeypatch):
    from servicehub.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("SERVICEHUB_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SERVICEHUB_DATA_KEY", raising=False)
    monkeypatch.delenv("SERVICEHUB_ENV", raising=False)
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code == 1
    assert "database: sqlite, answering" in result.output and "not fit for production" in result.output
    assert "SQLite" in result.output and "SECRET_KEY is not set" in result.output
    monkeypatch.setenv("SERVICEHUB_ENV", "production")
    refused = CliRunner().invoke(main, ["check-config"])
    assert refused.exit_code == 1 and "Refusing to start in production" in refused.output
    assert "Traceback" not in refused.output


def test_check_config_passes_in_production_on_postgresql(tmp_path, monkeypatch):
    from servicehub.cli import main

    with fresh_database("postgresql", tmp_path) as url:
        for name, value in {"DATABASE_URL": url, "SERVICEHUB_INSTANCE_PATH": str(tmp_path),
                            "SERVICEHUB_ENV": "production", "SECRET_KEY": GOOD["SECRET_KEY"],
                            "SERVICEHUB_DATA_KEY": GOOD["SERVICEHUB_DATA_KEY"], "SERVICEHUB_SECURE_COOKIES": "1",
                            "SERVICEHUB_LEDGER_KEY": GOOD["SERVICEHUB_LEDGER_KEY"]}.items():
            monkeypatch.setenv(name, value)
        made = []

        def factory():
            made.append(create_app())
            return made[-1]

        result = CliRunner().invoke(main, ["check-config"], obj=ScriptInfo(create_app=factory))
        for app in made:  # its connections closed before the database is dropped
            with app.app_context():
                db.engine.dispose()
    assert result.exit_code == 0, result.output
    assert "database: postgresql, answering" in result.output and "fit for production" in result.output


def test_the_client_address_comes_from_the_trusted_proxy(tmp_path):
    def address(app) -> str:
        seen = {}

        @app.get("/whoami-test")
        def whoami():
            seen["ip"] = client_ip()
            return "ok"

        whoami.required_permission = Permission.PUBLIC
        app.test_client().get("/whoami-test", headers={"X-Forwarded-For": "203.0.113.7"},
                              environ_base={"REMOTE_ADDR": "127.0.0.1"})
        return seen["ip"]

    assert address(create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path / "a")})) == "127.0.0.1"
    behind = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path / "b"), "SERVICEHUB_PROXIES": 1})
    assert address(behind) == "203.0.113.7"


def test_gunicorn_serves_the_app_with_the_shipped_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'served.db'}"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    server = Gunicorn({"DATABASE_URL": url, "SERVICEHUB_INSTANCE_PATH": str(tmp_path), "SERVICEHUB_ENV": "development"},
                      tmp_path / "gunicorn.log")
    try:
        with urllib.request.urlopen(f"{server.start(timeout=30)}/healthz", timeout=5) as response:
            assert '"database"' in response.read().decode()
        with urllib.request.urlopen(f"{server.host}/apply", timeout=5) as response:
            assert response.status == 200 and "申请救助" in response.read().decode()
    finally:
        server.stop()
    assert "Booting worker" in (tmp_path / "gunicorn.log").read_text()
