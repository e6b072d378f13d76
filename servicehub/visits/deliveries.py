"""The deliveries in force: one row per delivered visit with the numbers reports sum (`DeliveryInForce`), kept
from the ledger so that a report reads one narrow row per visit instead of replaying its entries.

`refresh_deliveries` rewrites the rows of some visits from their entries; the ledger calls it in the same
transaction as every delivery, correction and approval it appends, the history writer after its bulk insert,
and `rebuild_deliveries` (`servicehub audit rebuild-deliveries`, and the migration that made the table) for
every visit at once. It takes a session or a connection, so a migration can run it on its own connection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select

from servicehub.scheduling.models import Visit
from servicehub.timeutil import district_tz
from servicehub.visits import ledger
from servicehub.visits.models import DeliveryInForce, RecordKind, ServiceRecord

CHUNK = 2000  # visits per round trip (well under SQLite's limit on bound parameters)
DELIVERY_KINDS = (RecordKind.DELIVERY, RecordKind.CORRECTION, RecordKind.APPROVAL)


def refresh_deliveries(executor, visit_ids: Iterable[int]) -> int:
    """Rewrite the deliveries in force of these visits from their ledger entries (inside the caller's
    transaction); returns how many of them were delivered."""
    ids = sorted(set(visit_ids))
    written = 0
    tz = district_tz()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        entries = defaultdict(list)
        for row in executor.execute(
                select(ServiceRecord.id, ServiceRecord.visit_id, ServiceRecord.kind, ServiceRecord.flags,
                       ServiceRecord.refers_to_id, ServiceRecord.started_at, ServiceRecord.ended_at,
                       ServiceRecord.satisfaction, ServiceRecord.received_at)
                .where(ServiceRecord.visit_id.in_(chunk), ServiceRecord.kind.in_(DELIVERY_KINDS))
                .order_by(ServiceRecord.visit_id, ServiceRecord.sequence)):
            entries[row.visit_id].append(row)
        rows = []
        if entries:
            for visit_id, day, window_start, planned_start in executor.execute(
                    select(Visit.id, Visit.service_date, Visit.window_start, Visit.planned_start)
                    .where(Visit.id.in_(list(entries)))):
                expected = planned_start or datetime.combine(day, window_start, tzinfo=tz).astimezone(UTC)
                figures = ledger.delivery_figures(entries[visit_id], expected)
                if figures is not None:
                    rows.append({"visit_id": visit_id, **figures})
        executor.execute(delete(DeliveryInForce).where(DeliveryInForce.visit_id.in_(chunk)))
        if rows:
            executor.execute(insert(DeliveryInForce), rows)
        written += len(rows)
    return written


def rebuild_deliveries(executor) -> int:
    """Rebuild every visit's delivery in force from the ledger; returns how many visits were delivered."""
    executor.execute(delete(DeliveryInForce))
    visit_ids = executor.execute(select(ServiceRecord.visit_id).where(ServiceRecord.kind == RecordKind.DELIVERY)
                                 .distinct()).scalars().all()
    return refresh_deliveries(executor, visit_ids)
