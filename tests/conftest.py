"""Fixtures: the app on SQLite and on PostgreSQL (every test using `app` runs on both), client, runner."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import flask_migrate
import pytest

from servicehub import create_app
from servicehub.config import DEFAULT_TIMEZONE
from servicehub.database import clock_running_from
from servicehub.extensions import db
from tests.support import fresh_database, wipe_data

# Passwords are hashed with the production algorithm but a cheaper work factor, to keep tests fast.
TEST_CONFIG = {"TESTING": True, "SECRET_KEY": "test-secret-key", "SERVICEHUB_PASSWORD_HASH": "scrypt:1024:8:1"}


def pytest_configure(config):
    """Compile stale translations, as `make` does, so a bare `pytest` sees current Chinese strings."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from servicehub.config import PACKAGE_DIR

    for po in (PACKAGE_DIR / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as src:
                catalog = read_po(src)
            with mo.open("wb") as dst:
                write_mo(dst, catalog)


# The suite's clock reads this district time of the real district date when the session starts, and runs on: a test
# that plans today plans a whole day (nothing is past at 06:00), whenever the suite runs.
SUITE_START = time(6, 0)


def district_moment(at: time, day: date | None = None) -> datetime:
    """`at` on `day` (default: the real district date) in the district's zone."""
    zone = ZoneInfo(DEFAULT_TIMEZONE)
    return datetime.combine(day or datetime.now(zone).date(), at, tzinfo=zone)


@pytest.fixture(scope="session", autouse=True)
def suite_clock():
    """Every thread's clock (the live servers' and the runs' too) starts at 06:00 district time today."""
    with clock_running_from(district_moment(SUITE_START)):
        yield


@pytest.fixture
def set_clock():
    """set_clock(time(15, 0)): the process's clock (every thread's) reads that district time of the suite's day
    and runs on from there, until the test ends."""
    from servicehub.database import utcnow

    day = utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    stack = contextlib.ExitStack()

    def _set(at: time) -> datetime:
        return stack.enter_context(clock_running_from(district_moment(at, day)))

    with stack:
        yield _set


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated-to-be database for the whole session, once per engine."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def make_app(database_url, tmp_path_factory):
    """Build an app on the session's database with extra settings."""
    instance = tmp_path_factory.mktemp("instance")
    made = []

    def _make(**overrides):
        app = create_app(
            {
                **TEST_CONFIG,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "INSTANCE_PATH": str(instance),
                **overrides,
            }
        )
        made.append(app)
        return app

    yield _make
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def _session_app(make_app):
    app = make_app()
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture
def app(_session_app):
    """The app, with an empty (migrated) database; rows are wiped after the test."""
    yield _session_app
    with _session_app.app_context():
        db.session.remove()
        wipe_data(db.engine, db.metadata)


@pytest.fixture
def app_ctx(app):
    """An application context for tests that call services directly (do not make requests inside it)."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def catalog(app):
    """The service catalogue loaded from seed_data/catalog.toml."""
    from servicehub.catalog import services

    with app.app_context():
        services.seed_catalog(services.read_catalog_file())
    return app


@pytest.fixture
def demo(app):
    """The catalogue, the demo district and one account per role: {username: user id}."""
    from tests.support import create_demo_accounts, load_demo_district

    with app.app_context():
        load_demo_district()
        return {name: user.id for name, user in create_demo_accounts().items()}


@pytest.fixture
def auth_headers(client, demo):
    """auth_headers("manager") -> {"Authorization": "Bearer …"} for that demo account."""
    from tests.support import DEMO_PASSWORD

    cache: dict[str, dict[str, str]] = {}

    def headers_for(username: str) -> dict[str, str]:
        if username not in cache:
            response = client.post("/api/v1/auth/tokens", json={"username": username, "password": DEMO_PASSWORD})
            assert response.status_code == 201, response.get_json()
            cache[username] = {"Authorization": f"Bearer {response.get_json()['token']}"}
        return cache[username]

    return headers_for
