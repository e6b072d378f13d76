"""The audit log: who changed what, written in the same transaction as the change.

Changes to `Audited` models are captured automatically by a session hook; use cases add security and
workflow events (sign-in, token issued, referral accepted ...) with `record_event`. The acting user
is carried in a context variable set per request, per CLI command and per job.

The log is one hash chain (`servicehub.chain`): every row is appended by `append_audit_rows`, which numbers
it after the head and hashes it with the head's hash, one writer at a time; a deleted, changed or reordered row
breaks the chain, and a signed checkpoint pins its head outside the database (`servicehub.integrity`).
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from servicehub import chain
from servicehub.audit_policy import Audited
from servicehub.auth.models import AuditLog
from servicehub.database import transaction_lock, utcnow
from servicehub.errors import N_, Conflict


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (id and name) or a process ("cli:root", "system:jobs")."""

    label: str
    user_id: int | None = None
    ip: str | None = None


SYSTEM = Actor("system")
_current_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("servicehub_actor", default=SYSTEM)


def current_actor() -> Actor:
    """The actor changes are attributed to right now."""
    return _current_actor.get()


def set_actor(actor: Actor) -> contextvars.Token:
    """Attribute changes to `actor` until reset (per request: the signed-in user)."""
    return _current_actor.set(actor)


def reset_actor(token: contextvars.Token) -> None:
    """Undo `set_actor` (at the end of a request)."""
    _current_actor.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute changes made inside the block to `actor`."""
    token = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(token)


def json_safe(value: object) -> object:
    """A value as JSON can hold it (dates as ISO strings, enums as their values, recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _entity_type(obj: Audited) -> str:
    return type(obj).__tablename__


def _entity_id(obj: object) -> str | None:
    # The identity key is assigned only after the flush; the primary key values are there already.
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return ":".join(map(str, key)) if key and None not in key else None


def audit_row(action: str, entity_type: str, entity_id: str | None, changes: dict, actor: Actor | None = None) -> dict:
    """One audit_log row as a dict, attributed to `actor` (default: the current actor); for bulk inserts."""
    actor = actor or current_actor()
    return {
        "at": utcnow(),
        "actor_id": actor.user_id,
        "actor": actor.label,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "changes": changes,
        "ip": actor.ip,
    }


def _column_changes(obj: Audited, *, created: bool = False, deleted: bool = False) -> dict:
    """{column: [before, after]} for the columns that changed (all columns on create/delete)."""
    state = inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        name = attr.key
        if name in obj.__audit_exclude__:
            continue
        history = state.attrs[name].history
        if created:
            before, after = None, getattr(obj, name)
            if after is None:
                continue
        elif deleted:
            before, after = (history.unchanged or history.deleted or [None])[0], None
        else:
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before == after:
                continue
        changes[name] = [json_safe(obj.audit_value(name, before)), json_safe(obj.audit_value(name, after))]
    return changes


@event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session: Session, _context, _instances) -> None:
    """The audit log is append-only: refuse to update or delete its rows through the ORM."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditLog) and (obj in session.deleted or session.is_modified(obj)):
            raise Conflict(N_("The audit log is append-only; its entries cannot be changed or deleted."))


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, _context) -> None:
    """Write one audit row per inserted, updated or deleted Audited object, in the same transaction."""
    rows = []
    for obj in session.new:
        if isinstance(obj, Audited):
            rows.append(audit_row("create", _entity_type(obj), _entity_id(obj), _column_changes(obj, created=True)))
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            changes = _column_changes(obj)
            if changes:
                rows.append(audit_row("update", _entity_type(obj), _entity_id(obj), changes))
    for obj in session.deleted:
        if isinstance(obj, Audited):
            rows.append(audit_row("delete", _entity_type(obj), _entity_id(obj), _column_changes(obj, deleted=True)))
    if rows:
        append_audit_rows(session, rows)


# What an audit row's hash covers: everything it says.
AUDIT_HASHED_FIELDS = ("sequence", "at", "actor_id", "actor", "action", "entity_type", "entity_id", "changes", "ip")


def append_audit_rows(session: Session, rows: list[dict]) -> None:
    """Append rows (as `audit_row` makes them) to the audit log's chain, inside the caller's transaction."""
    # One appender at a time until this transaction ends (SQLite has one writer at a time already).
    transaction_lock(session, "audit_log", wait=True)
    connection = session.connection()
    head = connection.execute(select(AuditLog.sequence, AuditLog.hash).where(AuditLog.sequence.is_not(None))
                              .order_by(AuditLog.sequence.desc()).limit(1)).first()
    sequence, previous = (head.sequence, head.hash) if head else (0, chain.GENESIS)
    for row in rows:
        sequence += 1
        row["sequence"], row["prev_hash"] = sequence, previous
        row["hash"] = previous = chain.link_hash(row, AUDIT_HASHED_FIELDS, previous)
    connection.execute(insert(AuditLog), rows)


def first_broken_audit_link(rows) -> chain.BrokenLink | None:
    """Walk the audit log's rows in sequence order; the first that does not hold, or None."""
    return chain.first_broken_link(None, rows, AUDIT_HASHED_FIELDS)


def record_event(
    session: Session, action: str, entity_type: str, entity_id: object = None, *, actor: Actor | None = None, **details
) -> None:
    """Add a security or workflow event to the audit log (committed with the caller's transaction)."""
    entity = None if entity_id is None else str(entity_id)
    append_audit_rows(session, [audit_row(action, entity_type, entity, json_safe(details), actor)])
