"""Hash chains: each row's hash is SHA-256 over the hash of the row before it and the canonical JSON of its own
hashed fields, so changing, removing or inserting a row breaks the chain from that row on. Pure module; the
service records' ledger (`servicehub.visits.ledger`) and the audit log (`servicehub.auth.audit`) are chained
this way, and signed checkpoints (`servicehub.integrity`) pin their heads outside the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

GENESIS = "0" * 64


def canonical(value):
    """A value as the hash sees it: datetimes in UTC to the microsecond, dates ISO, floats to 7 places."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 7))
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def canonical_json(value) -> str:
    """The canonical JSON text of a value (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def link_hash(fields: Mapping, names: Iterable[str], previous_hash: str) -> str:
    """The hash of one link: SHA-256 of the previous hash and the canonical JSON of the named fields."""
    content = canonical_json({name: fields.get(name) for name in names})
    return hashlib.sha256(f"{previous_hash}\n{content}".encode()).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain stops holding: the chain's key, the sequence number, the row, and what is wrong with it."""

    organisation_id: int | None
    sequence: int
    record_id: int | None
    problem: str
    code: str = ""  # missing, out_of_order or changed
    found: int | None = None  # for a missing record: the sequence found in its place


def first_broken_link(key: int | None, rows: Iterable[Mapping], names: Iterable[str]) -> BrokenLink | None:
    """Walk one chain's rows in sequence order (each with `sequence`, `prev_hash`, `hash`, `id` and the named
    fields); the first that does not hold, or None."""
    names = tuple(names)
    previous, expected = GENESIS, 1
    for row in rows:
        sequence, row_id = row["sequence"], row.get("id")
        if sequence != expected:
            return BrokenLink(key, expected, row_id, f"record {expected} is missing (found {sequence} next)",
                              "missing", sequence)
        if row["prev_hash"] != previous:
            return BrokenLink(key, sequence, row_id, "does not follow the record before it", "out_of_order")
        if link_hash(row, names, previous) != row["hash"]:
            return BrokenLink(key, sequence, row_id, "its content was changed after it was written", "changed")
        previous, expected = row["hash"], expected + 1
    return None
