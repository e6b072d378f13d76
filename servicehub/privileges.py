"""PostgreSQL roles: the app connects as a role that reads every table and adds rows to the append-only ones (the
ledgers, frozen reports, the audit log …) but can never UPDATE, DELETE or TRUNCATE them; migrations and restores
run as the role that owns the tables (docs/deploy.md, "Database roles").

`grant_app_role` gives the app's role exactly that, on every table there is and, through default privileges, on
every table a later migration makes; run again (after a migration, a restore) it gives the same. A table is
append-only when it is in APPEND_ONLY_TABLES or carries the trigger `servicehub.database.append_only_ddl` makes,
so a later migration's append-only table is known without a change here.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from servicehub.errors import N_, Conflict, ValidationFailed
from servicehub.extensions import db

# Rows written once and never changed or removed: the app's role may only read and add them. Most also carry the
# append-only trigger (which stops even their owner from updating them); confirmation_attempts has none.
APPEND_ONLY_TABLES = ("audit_log", "service_records", "frozen_reports", "evv_exception_steps", "application_steps",
                      "confirmation_attempts")
# Read by the app, written by migrations only.
READ_ONLY_TABLES = ("alembic_version",)
APPEND_ONLY_TRIGGER = "{table}_append_only"  # as servicehub.database.append_only_ddl names its triggers
REFUSED = ("UPDATE", "DELETE", "TRUNCATE")  # what the app's role must never hold on an append-only table


def migration_engine() -> Engine:
    """The engine of the role that owns the tables: SERVICEHUB_MIGRATION_DATABASE_URL's when given, else the app's
    own (DATABASE_URL). `servicehub db upgrade` migrates through it."""
    url = current_app.config.get("SERVICEHUB_MIGRATION_DATABASE_URI")
    if not url:
        return db.engine
    engines = current_app.extensions.setdefault("servicehub_migration_engines", {})
    if url not in engines:
        engines[url] = create_engine(url, poolclass=NullPool)  # a command's few connections, none kept open
    return engines[url]


def migration_url() -> str:
    """The URL of the role that owns the tables (SERVICEHUB_MIGRATION_DATABASE_URL, else DATABASE_URL)."""
    return current_app.config.get("SERVICEHUB_MIGRATION_DATABASE_URI") or current_app.config["SQLALCHEMY_DATABASE_URI"]


def separate_app_role() -> str | None:
    """The role DATABASE_URL connects as, when migrations connect as another one (the owner); else None."""
    owner_url = current_app.config.get("SERVICEHUB_MIGRATION_DATABASE_URI")
    if not owner_url:
        return None
    app_url, owner_url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]), make_url(owner_url)
    if app_url.get_backend_name() != "postgresql" or not app_url.username or app_url.username == owner_url.username:
        return None
    return app_url.username


def append_only_tables(connection: Connection, schema: str) -> list[str]:
    """The schema's append-only tables: those declared so, and those carrying the append-only trigger."""
    present = set(connection.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"), {"schema": schema}))
    triggered = set(connection.scalars(text(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND NOT t.tgisinternal AND t.tgname = replace(:pattern, '{table}', c.relname)"),
        {"schema": schema, "pattern": APPEND_ONLY_TRIGGER}))
    return sorted((set(APPEND_ONLY_TABLES) & present) | triggered)


def _checked_role(connection: Connection, role: str, owners: list[str]) -> None:
    found = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
    if found is None:
        raise ValidationFailed(N_("No database role is called %(role)s.", role=role),
                               {"role": ["Create it first (docs/deploy.md, \"Database roles\")."]})
    acts_as_owner = any(connection.scalar(text("SELECT pg_has_role(:role, :owner, 'MEMBER')"),
                                          {"role": role, "owner": owner}) for owner in owners)
    if found.rolsuper or acts_as_owner:
        raise ValidationFailed(N_("The role %(role)s is a superuser or acts as the owner of the tables: no grant can "
                                  "restrict it.", role=role),
                               {"role": ["The app needs a role of its own, not the owner's or a superuser."]},
                               code="role_not_restricted")


def _owners(connection: Connection, schema: str) -> list[str]:
    """The roles owning the schema's tables; refused unless the caller may act as each of them."""
    owners = dict(connection.execute(text(
        "SELECT pg_get_userbyid(c.relowner), bool_and(pg_has_role(current_user, c.relowner, 'MEMBER')) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'S') GROUP BY c.relowner"), {"schema": schema}).all())
    if not owners:
        raise Conflict(N_("The database has no tables yet: run `servicehub db upgrade` first."),
                       {"database": ["No tables."]}, code="no_tables")
    foreign = sorted(owner for owner, mine in owners.items() if not mine)
    if foreign:
        raise Conflict(N_("Grant as the role that owns the tables (SERVICEHUB_MIGRATION_DATABASE_URL)."),
                       {"database": [f"Tables owned by {', '.join(foreign)}."]}, code="not_the_owner")
    return sorted(owners)


def grant_app_role(role: str) -> dict:
    """Let `role` (the app's, DATABASE_URL's) read every table, add rows to the append-only ones and change the
    others, use the sequences, and the same on tables later migrations make; run as the owner of the tables
    (through `migration_engine`), in one transaction. What it granted, by kind of table."""
    from servicehub.jobs.runner import job_store

    engine = migration_engine()
    if engine.dialect.name != "postgresql":
        raise Conflict(N_("Database roles are PostgreSQL's; SQLite has none to grant."),
                       {"database": [engine.dialect.name]}, code="not_postgresql")
    with engine.begin() as connection:
        schema = connection.scalar(text("SELECT current_schema()"))
        owners = _owners(connection, schema)
        _checked_role(connection, role, owners)
        # The scheduler's job store makes its table on first start; the app's role may not create tables.
        job_store(engine).jobs_t.create(connection, checkfirst=True)
        quote = connection.dialect.identifier_preparer.quote
        tables = sorted(connection.scalars(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"), {"schema": schema}))
        append_only = append_only_tables(connection, schema)
        read_only = [t for t in READ_ONLY_TABLES if t in tables]
        read_write = [t for t in tables if t not in append_only and t not in read_only]
        who, where = quote(role), quote(schema)

        def listed(names: list[str]) -> str:
            return ", ".join(quote(name) for name in names)

        statements = [
            f"GRANT USAGE ON SCHEMA {where} TO {who}",
            # From nothing, so that a second run (after a migration, a restore) leaves exactly the same.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {listed(read_write)} TO {who}" if read_write else "",
            f"GRANT SELECT, INSERT ON {listed(append_only)} TO {who}" if append_only else "",
            f"GRANT SELECT ON {listed(read_only)} TO {who}" if read_only else "",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}",
        ]
        for owner in owners:  # tables later migrations make (append_only_ddl takes UPDATE, DELETE, TRUNCATE back)
            statements += [
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner)} IN SCHEMA {where} "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {who}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner)} IN SCHEMA {where} "
                f"GRANT USAGE, SELECT ON SEQUENCES TO {who}",
            ]
        for statement in filter(None, statements):
            connection.exec_driver_sql(statement)
        # A privilege held another way (granted to PUBLIC, or to a role it belongs to) is not revoked above.
        kept = [f"{table}: {privilege}" for table in append_only for privilege in REFUSED
                if connection.scalar(text("SELECT has_table_privilege(:role, :table, :privilege)"),
                                     {"role": role, "table": f"{quote(schema)}.{quote(table)}", "privilege": privilege})]
        if kept:
            raise Conflict(N_("The role %(role)s may still change append-only tables through another grant (to PUBLIC "
                              "or to a role it belongs to); revoke that first.", role=role),
                           {"role": kept}, code="append_only_writable")
    return {"role": role, "schema": schema, "append_only": append_only, "read_only": read_only,
            "read_write": read_write}
