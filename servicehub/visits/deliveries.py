"""The deliveries in force: on each delivered visit's row, the numbers of its delivery in force that reports sum
(`Visit.delivery_*`), kept from the ledger so that a report reads one index entry per visit instead of replaying
its entries.

`refresh_deliveries` rewrites those columns of some visits from their entries; the ledger calls it in the same
transaction as every delivery, correction and approval it appends, the history writer after its bulk insert,
and `rebuild_deliveries` (`servicehub audit rebuild-deliveries`, and the migration that moved them onto the
visits) for every visit at once. It takes a session or a connection, so a migration can run it on its own
connection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update

from servicehub.scheduling.models import Visit
from servicehub.timeutil import district_tz
from servicehub.visits import ledger
from servicehub.visits.models import RecordKind, ServiceRecord

CHUNK = 2000  # visits per round trip (well under SQLite's limit on bound parameters)
DELIVERY_KINDS = (RecordKind.DELIVERY, RecordKind.CORRECTION, RecordKind.APPROVAL)
# Whether the delivery carries exceptions (`delivery_exception`, `delivery_manual`) is the exception queue's to write
# (`servicehub.visits.verification.refresh_exceptions`), from the same entries and more.
FIGURES = ("record_id", "late_s", "service_s", "submit_s", "satisfaction", "corrected")
NOT_DELIVERED = dict.fromkeys(FIGURES)
visits = Visit.__table__
# Keyed by the visit's id; updated_at kept (setting a column to itself stops its onupdate): a projection of the
# ledger changing is not a change to the visit, and a roster's fingerprint (`scheduling.services._basis`) reads it.
_WRITE = (update(visits).where(visits.c.id == bindparam("visit_id"))
          .values(updated_at=visits.c.updated_at, **{f"delivery_{name}": bindparam(name) for name in FIGURES}))


def derived_deliveries(executor, visit_ids: Iterable[int]) -> Iterator[dict[int, dict]]:
    """What the ledger says each of these visits' delivery in force is, a chunk of visits at a time: {visit id:
    the figures reports sum (`FIGURES`), all None for a visit not delivered}."""
    ids = sorted(set(visit_ids))
    tz = district_tz()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        entries = defaultdict(list)
        for row in executor.execute(
                select(ServiceRecord.id, ServiceRecord.visit_id, ServiceRecord.kind, ServiceRecord.flags,
                       ServiceRecord.refers_to_id, ServiceRecord.reason_code, ServiceRecord.started_at, ServiceRecord.ended_at,
                       ServiceRecord.satisfaction, ServiceRecord.received_at)
                .where(ServiceRecord.visit_id.in_(chunk), ServiceRecord.kind.in_(DELIVERY_KINDS))
                .order_by(ServiceRecord.visit_id, ServiceRecord.sequence)):
            entries[row.visit_id].append(row)
        rows = {visit_id: NOT_DELIVERED for visit_id in chunk}
        if entries:
            for visit_id, day, window_start, planned_start in executor.execute(
                    select(Visit.id, Visit.service_date, Visit.window_start, Visit.planned_start)
                    .where(Visit.id.in_(list(entries)))):
                expected = planned_start or datetime.combine(day, window_start, tzinfo=tz).astimezone(UTC)
                figures = ledger.delivery_figures(entries[visit_id], expected)
                if figures is not None:
                    rows[visit_id] = figures
        yield rows


def refresh_deliveries(executor, visit_ids: Iterable[int]) -> int:
    """Rewrite the deliveries in force of these visits from their ledger entries (inside the caller's
    transaction); returns how many of them were delivered."""
    written = 0
    for rows in derived_deliveries(executor, visit_ids):
        written += sum(1 for figures in rows.values() if figures["record_id"] is not None)
        executor.execute(_WRITE, [{"visit_id": visit_id, **figures} for visit_id, figures in rows.items()])
    return written


def rebuild_deliveries(executor) -> int:
    """Rebuild every visit's delivery in force from the ledger; returns how many visits were delivered."""
    delivered = select(ServiceRecord.visit_id).where(ServiceRecord.kind == RecordKind.DELIVERY).distinct()
    # A visit the ledger holds no delivery of has none in force; every other one is rewritten below (once).
    executor.execute(update(visits).where(visits.c.delivery_record_id.is_not(None), visits.c.id.not_in(delivered))
                     .values(updated_at=visits.c.updated_at, **{f"delivery_{name}": None for name in FIGURES}))
    return refresh_deliveries(executor, executor.execute(delivered).scalars().all())
