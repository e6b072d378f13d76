"""Test support: real databases (SQLite files and throw-away PostgreSQL databases)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "SERVICEHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def truthy(name: str) -> bool:
    """Whether an environment flag is set to a true value."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


# In CI a missing PostgreSQL server or Chromium is a failure, not a skip.
REQUIRE_POSTGRES = truthy("CI") or truthy("SERVICEHUB_REQUIRE_POSTGRES")
REQUIRE_BROWSER = truthy("CI") or truthy("SERVICEHUB_REQUIRE_BROWSER")

DEMO_PASSWORD = "demo-password-2026"


def unavailable(reason: str, required: bool) -> None:
    """Skip the test with a visible reason, or fail it where the resource is required."""
    if required:
        pytest.fail(
            f"{reason} (required here: CI=true or the SERVICEHUB_REQUIRE_* flag is set)", pytrace=False
        )
    pytest.skip(reason)


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """A new empty database of `kind` ('sqlite' or 'postgresql'); dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{uuid.uuid4().hex[:8]}.db'}"
        return
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"servicehub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}", REQUIRE_POSTGRES)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wipe_data(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Delete every row of every table (the schema stays), so each test starts empty."""
    tables = [t for t in metadata.sorted_tables]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    # Without SQLite's foreign-key checks, which make each deleted row scan the tables referring to it: a
    # self-referencing ledger of thousands of records (the demo history) would take minutes. The pragma only
    # takes effect outside a transaction, so on the driver's connection (in autocommit mode, see
    # servicehub.database), where SQLAlchemy does not emit BEGIN on its own.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        try:
            cursor.execute("BEGIN")
            try:
                for table in reversed(tables):
                    cursor.execute(f'DELETE FROM "{table.name}"')
            except Exception:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    finally:
        raw.close()


def create_demo_accounts(password: str = DEMO_PASSWORD) -> dict[str, object]:
    """One user per role (as `servicehub demo users` makes them) with a known password; needs the demo loaded."""
    from servicehub.auth import services
    from servicehub.auth.cli import DEMO_ACCOUNTS
    from servicehub.registry.demo_loader import link_demo_caregiver
    from servicehub.registry.services import list_active_organisations_by_credit_code

    organisations = list_active_organisations_by_credit_code()
    users = {}
    for username, role, name, org_index, town in DEMO_ACCOUNTS:
        users[username] = services.create_user(
            username=username, role=role, password=password, display_name=name,
            organisation_id=organisations[org_index].id if org_index is not None else None, town=town,
        )
    link_demo_caregiver()  # to the first worker of its organisation, when the demo's workers are loaded
    return users


def load_demo_district(parts: tuple[str, ...] | None = None) -> None:
    """The catalogue and the demo district from seed_data/ (inside an app context).

    By default only its reference parts (areas, organisations, stations), so that API tests start
    without the demo's contracts, workers, recipients and needs; `parts=PARTS` loads it all.
    """
    from servicehub.catalog import services as catalog_services
    from servicehub.registry.cli import read_demo_files
    from servicehub.registry.demo_loader import REFERENCE_PARTS, load_demo

    catalog_services.seed_catalog(catalog_services.read_catalog_file())
    wanted = parts or REFERENCE_PARTS
    load_demo({part: rows for part, rows in read_demo_files().items() if part in wanted})
