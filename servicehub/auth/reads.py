"""Audit events for reads of sensitive data: a full ID number shown, a report, settlement or frozen report
downloaded. Reads change nothing, so no session hook sees them; the use case that answers one records it with
`record_read`, which commits the event at once, on a GET as on any request.

The events (stable names, details saying what was read, never a secret itself): `id_number_shown`
(recipient_ids), `export_downloaded` (what, format, period, filters), and, recorded in the transaction of the
write they come with, `card_printed` (visits.services.issue_card), `confirmation_refused` (visits.cards) and
`matching_run` (matching.services.run_matching).
"""

from __future__ import annotations

from servicehub.auth.audit import record_event
from servicehub.database import IMMEDIATE, commit_keeping_loaded
from servicehub.extensions import db


def record_read(action: str, entity_type: str, entity_id: object = None, **details) -> None:
    """Put a read of sensitive data in the audit log and commit it now, in a transaction of its own; what the
    session held is committed first, and the objects read stay loaded (a read use case calls it last)."""
    session = db.session
    # Ends the read: on PostgreSQL an API GET reads without a transaction (autocommit), and the audit log's chain
    # is appended to inside one; on SQLite a read's snapshot could not be turned into a write.
    commit_keeping_loaded(session)
    token = IMMEDIATE.set(True)  # SQLite: take the write lock when the transaction begins
    try:
        record_event(session, action, entity_type, entity_id, **details)
        commit_keeping_loaded(session)
    finally:
        IMMEDIATE.reset(token)
