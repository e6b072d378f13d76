"""The tamper-evident chain of service records. Pure module.

Each organisation's records form a chain: a record's hash is SHA-256 over its own content and the hash
of the record before it. Changing, removing or inserting a row behind the application's back breaks
the chain from that row on; `first_broken_link` names the first one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

GENESIS = "0" * 64

# The fields a record's hash covers, in this order: everything that says what happened and who said so.
HASHED_FIELDS = (
    "organisation_id", "sequence", "kind", "visit_id", "recipient_id", "worker_id", "service_type_id",
    "service_date", "started_at", "ended_at", "lat", "lon", "distance_m", "tasks", "confirmation",
    "satisfaction", "notes", "outcome_reason", "flags", "refers_to_id", "reason_code", "recorded_by_id",
    "recorded_by", "device_time", "received_at", "idempotency_key",
)


def _canonical(value):
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 7))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def record_hash(fields: Mapping, previous_hash: str) -> str:
    """The hash of a record: SHA-256 of the previous hash and the canonical JSON of its hashed fields."""
    content = json.dumps({name: _canonical(fields.get(name)) for name in HASHED_FIELDS}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{previous_hash}\n{content}".encode()).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain stops holding: the record, and what is wrong with it."""

    organisation_id: int
    sequence: int
    record_id: int | None
    problem: str


def first_broken_link(organisation_id: int, records: Iterable[Mapping]) -> BrokenLink | None:
    """Walk one organisation's records in sequence order; the first that does not hold, or None."""
    previous, expected = GENESIS, 1
    for record in records:
        sequence, record_id = record["sequence"], record.get("id")
        if sequence != expected:
            return BrokenLink(organisation_id, expected, record_id,
                              f"record {expected} is missing (found {sequence} next)")
        if record["prev_hash"] != previous:
            return BrokenLink(organisation_id, sequence, record_id, "does not follow the record before it")
        if record_hash(record, previous) != record["hash"]:
            return BrokenLink(organisation_id, sequence, record_id, "its content was changed after it was written")
        previous, expected = record["hash"], expected + 1
    return None


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
