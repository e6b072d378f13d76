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
    # No pool: a connection kept from the CREATE would be dead at the DROP if the server restarted in between.
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """The app served by real gunicorn with the shipped settings (deploy/gunicorn.conf.py) on 127.0.0.1, in a
    process group of its own, so that a test can stop it cleanly or kill every process of it at once."""

    ROOT = Path(__file__).resolve().parent.parent

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2, access_log: Path | None = None) -> None:
        self.env, self.log, self.workers, self.access_log = env, log, workers, access_log
        self.process = None
        self.host = ""

    def start(self, timeout: float = 60) -> str:
        """Start it and wait until /healthz answers (any status: the database may be down); its base URL."""
        import subprocess
        import sys
        import time
        import urllib.error
        import urllib.request

        port = free_port()
        env = {**os.environ, **self.env, "SERVICEHUB_BIND": f"127.0.0.1:{port}",
               "SERVICEHUB_WORKERS": str(self.workers)}
        command = [str(Path(sys.executable).with_name("gunicorn")), "--config", "deploy/gunicorn.conf.py",
                   *(["--access-logfile", str(self.access_log)] if self.access_log else []), "servicehub:create_app()"]
        with self.log.open("a") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, cwd=self.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.host = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.host}/healthz", timeout=2):
                    return self.host
            except urllib.error.HTTPError:
                return self.host
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s")

    def kill(self, signal_number: int | None = None) -> None:
        """Send every process of it a signal (default SIGKILL: a crash) and wait for the master to end."""
        import signal
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal_number or signal.SIGKILL)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: workers finish their requests)."""
        import signal

        self.kill(signal.SIGTERM)
