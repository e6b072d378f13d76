"""Model base, column types and small query helpers shared by every domain's models and services."""

from __future__ import annotations

import contextlib
import contextvars
import enum
import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import CheckConstraint, DateTime, MetaData, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator

# Named constraints so that Alembic batch migrations on SQLite and plain ones on PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every ServiceHub model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def enum_check(column: str, enum_cls: type[enum.StrEnum], name: str | None = None) -> CheckConstraint:
    """A CHECK that `column` holds one of the enum's values."""
    values = ", ".join(repr(m.value) for m in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=name or column)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC on every engine (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a timezone-aware column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A moment every `utcnow()` in this context returns instead of the wall clock: the demo's simulated morning
# records each visit at the time it happened, and tests pin the hour a rule depends on.
_FIXED_NOW: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("servicehub_fixed_now", default=None)
# How far the whole process's clock runs ahead of (or behind) the wall clock: set by `clock_running_from`, read by
# every thread (a test's live server answers in threads of its own, a run solves in one), zero outside tests.
_OFFSET = [timedelta(0)]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (the moment set by `clock_at`, inside one)."""
    return _FIXED_NOW.get() or datetime.now(UTC) + _OFFSET[0]


@contextlib.contextmanager
def clock_at(moment: datetime):
    """Make `utcnow()` (and so `district_today()`) return `moment` inside the block."""
    if moment.tzinfo is None:
        raise ValueError("clock_at takes an aware datetime")
    token = _FIXED_NOW.set(moment.astimezone(UTC))
    try:
        yield moment
    finally:
        _FIXED_NOW.reset(token)


@contextlib.contextmanager
def clock_running_from(moment: datetime):
    """Make the process's clock (every thread's `utcnow()`) read `moment` now and run on from there inside the
    block; a `clock_at` still wins in its own context."""
    if moment.tzinfo is None:
        raise ValueError("clock_running_from takes an aware datetime")
    before = _OFFSET[0]
    _OFFSET[0] = moment - datetime.now(UTC)
    try:
        yield moment
    finally:
        _OFFSET[0] = before


class TimestampMixin:
    """created_at / updated_at columns maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _sqlite_file(cargs: list, cparams: dict) -> str | None:
    """The file a SQLite connection opens (None for an in-memory or temporary database, or one opened read-only)."""
    name = cargs[0] if cargs else cparams.get("database", "")
    if not isinstance(name, str) or name in ("", ":memory:"):
        return None
    if not cparams.get("uri"):
        return name
    parts = urlsplit(name)
    mode = parse_qs(parts.query).get("mode", ["rwc"])[0]
    return unquote(parts.path) if parts.scheme == "file" and parts.path and mode == "rwc" else None


@event.listens_for(Engine, "do_connect")
def _sqlite_file_is_private(dialect, _record, cargs, cparams) -> None:
    """Create a new SQLite database file readable and writable by its owner only (0600), before SQLite creates it
    with the umask's mode (0644: readable by every account on the machine); SQLite gives its -wal and -shm files
    the database file's mode. An existing file keeps the mode it has."""
    if dialect.name != "sqlite" or (path := _sqlite_file(cargs, cparams)) is None:
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # there already; no folder (SQLite says so)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Enforce foreign keys, allow a reader beside a writer, sort with two threads, and let SQLAlchemy own
    transactions on SQLite."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        # pysqlite begins transactions lazily and not before a SAVEPOINT, so a released savepoint
        # would commit on its own; with autocommit off in the driver, SQLAlchemy emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # Large sorts (a district month's report groups 110,000 visits) may use a second thread: 0.85 -> 0.75 s.
        cursor.execute("PRAGMA threads=2")
        cursor.close()


# Processes that write on SQLite beside another writing process (the job scheduler) take the write lock
# at BEGIN: a WAL read snapshot made stale by the other process cannot be upgraded to a write, and SQLite
# answers "database is locked" at once instead of waiting.
IMMEDIATE = contextvars.ContextVar("sqlite_begin_immediate", default=False)


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    """Start a real transaction on SQLite (see _sqlite_pragmas); BEGIN IMMEDIATE where IMMEDIATE is set."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE" if IMMEDIATE.get() else "BEGIN")


def transaction_lock(session: Session, name: str, *, wait: bool) -> bool:
    """Take a named lock until this transaction ends: one holder at a time across every process and machine.
    Without `wait`, False when another transaction holds it. On PostgreSQL an advisory lock; SQLite has one
    writer at a time already (writing requests take the write lock at BEGIN), so there it is always granted."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(f"servicehub:{name}".encode()).digest()[:8], "big", signed=True)
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def commit_keeping_loaded(session: Session) -> None:
    """Commit without expiring what the session holds, for a use case that returns the rows it has just written:
    reading them back only to serialise them would cost a query each (none of their columns is computed by the
    database after the INSERT's RETURNING)."""
    if isinstance(session, scoped_session):  # db.session: the request's own Session
        session = session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def paginate(session: Session, stmt: Select, page: int, page_size: int) -> tuple[list[Any], int]:
    """Run one page of `stmt` and count all its rows: (items, total)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)))
    return items, total


def upsert(session: Session, model: type, key: dict[str, Any], values: dict[str, Any]) -> tuple[Any, str]:
    """Create the row matching `key` or update its changed columns: (row, "created"|"updated"|"unchanged")."""
    row = session.scalars(select(model).filter_by(**key)).one_or_none()
    if row is None:
        row = model(**key, **values)
        session.add(row)
        return row, "created"
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return row, "updated" if changed else "unchanged"


@dataclass
class SeedReport:
    """What a seed run did: counts of created / updated / unchanged rows per kind."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, outcome: str) -> None:
        """Count one row of `kind` with its outcome."""
        self.counts.setdefault(kind, {"created": 0, "updated": 0, "unchanged": 0})[outcome] += 1

    @property
    def changed(self) -> bool:
        """Whether the run wrote anything."""
        return any(c["created"] or c["updated"] for c in self.counts.values())

    def summary(self) -> str:
        """One line per kind, for the CLI."""
        return "\n".join(
            f"{kind}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for kind, c in self.counts.items()
        )


def append_only_ddl(dialect: str, table: str) -> tuple[list[str], list[str]]:
    """SQL that makes `table` refuse UPDATE on this dialect: (statements to create, statements to drop).

    Used by migrations for tables whose rows must never change once written (audit log, service records). On
    PostgreSQL every role but the owner also loses UPDATE, DELETE and TRUNCATE on it: the app's role got them from
    the default privileges of a new table (`servicehub.privileges`, which knows the table by its trigger).
    """
    name = f"{table}_append_only"
    if dialect == "postgresql":
        # A table name a migration gives, never input.
        revoke = ("DO $$ DECLARE grantee text; BEGIN FOR grantee IN "  # noqa: S608
                  "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END "
                  f"FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = '{table}'::regclass "
                  "AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') AND a.grantee <> c.relowner "
                  f"LOOP EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM ' || grantee; END LOOP; END $$")
        return (
            [
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} is append-only: rows cannot be updated'; END; $$",
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
                revoke,
            ],
            [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}()"],
        )
    return (
        [
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows cannot be updated'); END"
        ],
        [f"DROP TRIGGER IF EXISTS {name}"],
    )
