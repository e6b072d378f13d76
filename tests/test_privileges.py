"""PostgreSQL roles (docs/deploy.md, "Database roles"): migrations run as the role that owns the tables, the app
connects as a role of its own, and that role does the day's work but is refused UPDATE, DELETE and TRUNCATE on
every append-only table. PostgreSQL only: each test here runs on a database of its own, owned by a role of its
own (where CI=true a missing server fails them, as every PostgreSQL test)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import flask_migrate
import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import make_url

from servicehub import backup, create_app
from servicehub.auth.models import AuditLog
from servicehub.database import append_only_ddl, clock_at
from servicehub.extensions import db
from servicehub.privileges import APPEND_ONLY_TABLES, REFUSED
from servicehub.visits.models import ServiceRecord
from tests.conftest import TEST_CONFIG
from tests.scheduling.fixtures import district_today, inline, served  # noqa: F401 - fixtures
from tests.support import PG_ADMIN_URL, REQUIRE_POSTGRES, unavailable, wipe_data
from tests.visits.evv import day, deliver  # noqa: F401 - fixture

# The append-only tables at this revision (a later migration's append-only table is found by its trigger).
LEDGERS = ("application_steps", "audit_log", "confirmation_attempts", "evv_exception_steps", "frozen_reports",
           "service_records")


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="module")
def roles():
    """A database owned by an owner role of its own, and an app role with a random password; all dropped after."""
    suffix = uuid.uuid4().hex[:8]
    names = {"owner": f"servicehub_owner_{suffix}", "app": f"servicehub_app_{suffix}",
             "database": f"servicehub_roles_{suffix}"}
    passwords = {"owner": secrets.token_urlsafe(18), "app": secrets.token_urlsafe(18)}
    admin = _admin()
    try:
        with admin.connect() as conn:
            for who in ("owner", "app"):
                conn.exec_driver_sql(f"CREATE ROLE \"{names[who]}\" LOGIN PASSWORD '{passwords[who]}'")
            conn.exec_driver_sql(f'CREATE DATABASE "{names["database"]}" OWNER "{names["owner"]}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}", REQUIRE_POSTGRES)
    base = make_url(PG_ADMIN_URL).set(database=names["database"])
    urls = {who: base.set(username=names[who], password=passwords[who]).render_as_string(hide_password=False)
            for who in ("owner", "app")}
    try:
        yield {**names, "owner_url": urls["owner"], "app_url": urls["app"]}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{names["database"]}" WITH (FORCE)')
            for who in ("app", "owner"):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{names[who]}"')
        admin.dispose()


@pytest.fixture(scope="module")
def _session_app(roles, tmp_path_factory):
    """The app connected as its own role, migrated as the owner, and the grants given (as the deploy guide says)."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": roles["app_url"],
                      "SERVICEHUB_MIGRATION_DATABASE_URI": roles["owner_url"],
                      "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance"))})
    with app.app_context():
        flask_migrate.upgrade()
    granted = app.test_cli_runner().invoke(args=["db", "grant-app-role", roles["app"]])
    assert granted.exit_code == 0, granted.output
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(_session_app, roles):
    """The app as its own role; rows are wiped afterwards as the owner (the app's role may not)."""
    yield _session_app
    with _session_app.app_context():
        db.session.remove()
    owner = sa.create_engine(roles["owner_url"], poolclass=sa.pool.NullPool)
    wipe_data(owner, db.metadata)
    owner.dispose()


def privileges(roles, table: str) -> set[str]:
    """What the app's role may do to a table."""
    owner = sa.create_engine(roles["owner_url"], poolclass=sa.pool.NullPool)
    with owner.connect() as conn:
        held = {p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                if conn.scalar(sa.text("SELECT has_table_privilege(:role, :table, :p)"),
                               {"role": roles["app"], "table": table, "p": p})}
    owner.dispose()
    return held


def test_migrations_ran_as_the_owner_and_the_app_holds_only_its_grants(app, roles):
    owner = sa.create_engine(roles["owner_url"], poolclass=sa.pool.NullPool)
    with owner.connect() as conn:
        owners = set(conn.scalars(sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")))
    owner.dispose()
    assert owners == {roles["owner"]}
    assert set(LEDGERS) == set(APPEND_ONLY_TABLES)
    for table in LEDGERS:
        assert privileges(roles, table) == {"SELECT", "INSERT"}, table
    for table in ("recipients", "visits", "evv_exceptions", "confirmation_cards", "apscheduler_jobs"):
        assert privileges(roles, table) == {"SELECT", "INSERT", "UPDATE", "DELETE"}, table
    assert privileges(roles, "alembic_version") == {"SELECT"}


def test_the_days_work_is_done_as_the_app_role(app, client, served, day):  # noqa: F811 - fixtures
    stop = day["mine"][0]
    done = deliver(client, served, stop)  # a check-in and a check-out through the API, written to the ledger
    assert done["kind"] == "delivery"
    recipient = served["recipients"][0]
    changed = client.patch(f"/api/v1/recipients/{recipient}", json={"notes": "家属电话已更新"},
                           headers=served["manager"])
    assert changed.status_code == 200, changed.get_json()
    today = district_today()
    next_month = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    with app.app_context():
        contract_id = db.session.scalar(sa.text("SELECT id FROM contracts ORDER BY id LIMIT 1"))
    with clock_at(datetime.combine(next_month, time(9), ZoneInfo("Asia/Shanghai"))):
        frozen = client.post("/api/v1/reports/frozen", headers=served["manager"], json={
            "contract_id": contract_id, "month": today.strftime("%Y-%m"), "accept_open_exceptions": True})
    assert frozen.status_code == 201, frozen.get_json()
    assert frozen.get_json()["record_count"] >= 1
    with app.app_context():
        actions = set(db.session.scalars(select(AuditLog.action)))
        assert db.session.scalar(select(sa.func.count(ServiceRecord.id))) >= 2
    assert {"report_frozen", "update"} <= actions


@pytest.mark.parametrize("statement", REFUSED)
def test_the_app_role_may_not_rewrite_an_append_only_table(app, client, served, day, statement):  # noqa: F811
    deliver(client, served, day["mine"][0])
    with app.app_context():
        counts = {table: db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in LEDGERS}
        for table in LEDGERS:
            sql = {"UPDATE": f"UPDATE {table} SET id = id", "DELETE": f"DELETE FROM {table}",
                   "TRUNCATE": f"TRUNCATE {table}"}[statement]
            with pytest.raises(sa.exc.ProgrammingError) as refused:
                db.session.execute(sa.text(sql))
            assert refused.value.orig.sqlstate == "42501", table  # insufficient_privilege
            assert "permission denied" in str(refused.value.orig), table
            db.session.rollback()
        assert {table: db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in LEDGERS} == counts
    assert counts["service_records"] >= 2 and counts["audit_log"] > 0


def test_granting_again_gives_the_same_and_tables_made_later_are_covered(app, roles):
    runner = app.test_cli_runner()
    before = {table: privileges(roles, table) for table in ("service_records", "recipients", "alembic_version")}
    again = runner.invoke(args=["db", "grant-app-role", roles["app"]])
    assert again.exit_code == 0, again.output
    assert {table: privileges(roles, table) for table in before} == before
    owner = sa.create_engine(roles["owner_url"], poolclass=sa.pool.NullPool)
    try:
        with owner.begin() as conn:  # as a later migration would: one plain table, one append-only
            conn.exec_driver_sql("CREATE TABLE later_notes (id serial PRIMARY KEY, note text)")
            conn.exec_driver_sql("CREATE TABLE later_ledger (id serial PRIMARY KEY, note text)")
            for statement in append_only_ddl("postgresql", "later_ledger")[0]:
                conn.exec_driver_sql(statement)
        assert privileges(roles, "later_notes") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert privileges(roles, "later_ledger") == {"SELECT", "INSERT"}  # the append-only trigger's DDL revoked
        with app.app_context():
            db.session.execute(sa.text("INSERT INTO later_notes (note) VALUES ('a serial the app may use')"))
            db.session.commit()
        after = runner.invoke(args=["db", "grant-app-role", roles["app"]])
        assert after.exit_code == 0, after.output
        assert "later_ledger" in after.output
        assert privileges(roles, "later_ledger") == {"SELECT", "INSERT"}
        assert privileges(roles, "later_notes") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    finally:
        with owner.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS later_notes, later_ledger")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS later_ledger_append_only()")
        owner.dispose()


def test_a_role_grants_cannot_restrict_is_refused(app, roles):
    runner = app.test_cli_runner()
    for role, said in ((roles["owner"], "owner of the tables"), (make_url(PG_ADMIN_URL).username, "superuser"),
                       ("nobody_of_that_name", "No database role")):
        refused = runner.invoke(args=["db", "grant-app-role", role])
        assert refused.exit_code == 1 and said in refused.output, refused.output


def test_a_restore_as_the_owner_keeps_the_app_role_from_rewriting_the_ledger(app, roles, served, day, client,  # noqa: F811
                                                                             tmp_path):
    deliver(client, served, day["mine"][0])
    with app.app_context():
        made = backup.make_backup(tmp_path)  # pg_dump as the app's role: it may read everything
        restored = backup.restore_backup(tmp_path / made["file"])  # pg_restore as the owner, then the grants
        assert restored["counts"] == made["counts"]
    assert privileges(roles, "service_records") == {"SELECT", "INSERT"}
    assert privileges(roles, "recipients") == {"SELECT", "INSERT", "UPDATE", "DELETE"}


def test_upgrading_as_the_app_role_does_nothing_when_the_schema_is_current(app, roles, tmp_path):
    alone = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": roles["app_url"], "INSTANCE_PATH": str(tmp_path)})
    upgraded = alone.test_cli_runner().invoke(args=["db", "upgrade"])  # the web unit's ExecStartPre, as the app
    assert upgraded.exit_code == 0, upgraded.output
    with alone.app_context():
        db.engine.dispose()
