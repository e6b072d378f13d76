"""Which visits are late, which are missed, and when missed visits call for escalation. Pure module.

The same definitions serve the alerts and, later, the KPIs: a visit is **late** when it has not started
`grace` minutes (5 for meal delivery, 15 otherwise) after its time opened — its planned start on a
published roster (the time the caregiver is expected; a need's window is often the whole working day),
otherwise the opening of its window; it is **missed** when it has not started by the time its window
closes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

NOT_STARTED = frozenset({"planned", "published"})


@dataclass(frozen=True)
class VisitState:
    """What detection needs to know of a visit."""

    id: int
    recipient_id: int
    window_opens: datetime
    window_closes: datetime
    status: str
    meal: bool = False
    planned_start: datetime | None = None  # on a published roster

    @property
    def expected(self) -> datetime:
        """When the visit should start: its planned start if it has one, else when its window opens."""
        return self.planned_start or self.window_opens


@dataclass(frozen=True)
class Grace:
    """Minutes after the window opens before a visit not started is late."""

    default: int = 15
    meal: int = 5

    def for_visit(self, visit: VisitState) -> timedelta:
        """The grace period of this visit."""
        return timedelta(minutes=self.meal if visit.meal else self.default)


def is_late(visit: VisitState, now: datetime, grace: Grace = Grace()) -> bool:
    """Not started, its grace period after the expected start over, its window still open."""
    return visit.status in NOT_STARTED and visit.expected + grace.for_visit(visit) <= now < visit.window_closes


def arrived_late(expected: datetime, started_at: datetime, meal: bool = False, grace: Grace = Grace()) -> bool:
    """Whether a visit that started at `started_at` was late: after its expected start plus the grace period."""
    return started_at > expected + timedelta(minutes=grace.meal if meal else grace.default)


def is_missed(visit: VisitState, now: datetime) -> bool:
    """Not started by the time its window closed."""
    return visit.status in NOT_STARTED and now >= visit.window_closes


def late_visits(visits: Iterable[VisitState], now: datetime, grace: Grace = Grace()) -> list[VisitState]:
    """The visits that are late now."""
    return [v for v in visits if is_late(v, now, grace)]


def missed_visits(visits: Iterable[VisitState], now: datetime) -> list[VisitState]:
    """The visits that became missed by now."""
    return [v for v in visits if is_missed(v, now)]


def missed_streak(outcomes: Sequence[str], length: int = 3) -> bool:
    """Whether a recipient's latest visits (oldest first: 'missed', 'completed' …) end in `length` misses."""
    return len(outcomes) >= length and all(o == "missed" for o in outcomes[-length:])
