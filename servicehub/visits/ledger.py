"""The tamper-evident chain of service records. Pure module.

Each organisation's records form a chain: a record's hash is SHA-256 over its own content and the hash
of the record before it. Changing, removing or inserting a row behind the application's back breaks
the chain from that row on; `first_broken_link` names the first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from servicehub import chain
from servicehub.chain import GENESIS, BrokenLink  # noqa: F401  (the ledger's names for them)

# The fields a record's hash covers, in this order: everything that says what happened and who said so.
HASHED_FIELDS = (
    "organisation_id", "sequence", "kind", "visit_id", "recipient_id", "worker_id", "service_type_id",
    "service_date", "started_at", "ended_at", "lat", "lon", "distance_m", "tasks", "confirmation",
    "satisfaction", "notes", "outcome_reason", "flags", "refers_to_id", "reason_code", "recorded_by_id",
    "recorded_by", "device_time", "received_at", "idempotency_key",
)


def record_hash(fields, previous_hash: str) -> str:
    """The hash of a record: SHA-256 of the previous hash and the canonical JSON of its hashed fields."""
    return chain.link_hash(fields, HASHED_FIELDS, previous_hash)


def first_broken_link(organisation_id: int, records: Iterable) -> BrokenLink | None:
    """Walk one organisation's records in sequence order; the first that does not hold, or None."""
    return chain.first_broken_link(organisation_id, records, HASHED_FIELDS)


# A correction waits for the provider admin (a caregiver's change of times) or for the bureau (a visit of a frozen
# month) before it is in force; an approval entry names whose it is in its reason code ('' is the provider's).
PENDING = {"pending_approval": "provider", "pending_bureau": "bureau"}


def approver_of(approval) -> str:
    """Whose approval an approval entry is: 'provider' or 'bureau'."""
    return approval.reason_code or "provider"


def effective_delivery(entries: Iterable) -> object | None:
    """Of one visit's entries in sequence order (objects with `id`, `kind`, `flags`, `refers_to_id`,
    `reason_code`), what counts as delivered: its latest correction in force (every approval it waits for given),
    otherwise the delivery; None if it was not delivered."""
    entries = list(entries)
    approved = {(e.refers_to_id, approver_of(e)) for e in entries if e.kind == "approval"}
    current = None
    for entry in entries:
        if entry.kind == "delivery" or (entry.kind == "correction" and all(
                (entry.id, whose) in approved for flag, whose in PENDING.items() if flag in entry.flags)):
            current = entry
    return current


def delivery_figures(entries: Iterable, expected_start: datetime) -> dict | None:
    """Of one visit's entries in sequence order (objects as for `effective_delivery`, with `started_at`,
    `ended_at`, `received_at` and `satisfaction` too), the delivery in force as the numbers reports sum:
    seconds late against `expected_start`, seconds of service, seconds from check-out to the ledger, the
    score and whether a correction is in force (its exceptions are the exception queue's:
    `servicehub.visits.verification`). None if the visit was not delivered."""
    current = effective_delivery(entries)
    if current is None:
        return None
    started, ended, received = (_utc(current.started_at), _utc(current.ended_at), _utc(current.received_at))
    return {
        "record_id": current.id,
        "late_s": (started - _utc(expected_start)).total_seconds() if started else None,
        "service_s": max(0.0, (ended - started).total_seconds()) if started and ended else 0.0,
        "submit_s": (received - ended).total_seconds() if received and ended else None,
        "satisfaction": current.satisfaction,
        "corrected": current.kind == "correction",
    }


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# The visit status each kind of entry leaves a visit in; corrections and approvals leave it as it is.
STATUS_AFTER = {"check_in": "in_progress", "delivery": "completed", "missed": "missed", "cancelled": "cancelled"}
# Statuses only the ledger can give a visit: one in these with no entry to say so was set behind its back.
LEDGER_STATUSES = frozenset({"in_progress", "completed", "missed"})


def status_from_ledger(kinds: Iterable[str]) -> str | None:
    """The status a visit's entries (their kinds, in sequence order) leave it in; None if they say nothing."""
    status = None
    for kind in kinds:
        status = STATUS_AFTER.get(kind, status)
    return status
