"""The scheduling problem and its plan as plain data. Pure module (no Flask, no SQLAlchemy).

Times are integers in the problem's own unit (minutes from the day's midnight for rosters, tenths of a
Solomon time unit for the benchmark). Travel is a square matrix per travel profile between the
problem's `locations`; a worker uses the matrix of its profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Window = tuple[int, int]


@dataclass(frozen=True)
class Visit:
    """One planned service at one place, to start inside its window."""

    id: int | str
    location: int  # index into Problem.locations / the travel matrices
    duration: int
    window: Window  # earliest and latest start of service
    demand: int = 0  # carried capacity it uses (meals in the box; Solomon demand)
    skills: frozenset[str] = frozenset()  # qualifications the worker must hold
    gender: str | None = None  # the worker's gender the recipient asks for
    urgent: bool = False  # dropped last
    preferred_workers: tuple[int | str, ...] = ()  # continuity: the recipient's usual workers
    # Two visits with the same pair id are one double-up visit on two workers: at the same time, or, where the
    # later half has a `pair_gap` (min, max), that half starts min to max time units after the other starts.
    pair: str | None = None
    pair_gap: Window | None = None
    # A soft latest start: starting after it (up to window[1], the hard latest) is allowed at
    # Weights.tardiness per time unit late, and the day's latest start counts again (Weights.max_tardiness).
    due: int | None = None
    # A visit already done or under way (re-planning): it stays with this worker at this start.
    fixed_worker: int | str | None = None
    fixed_start: int | None = None
    # A manual move locked by a provider admin: it stays with this worker (time may shift in its window).
    locked_worker: int | str | None = None


@dataclass(frozen=True)
class Break:
    """A break a worker must take: `duration` long, starting between `earliest` and `latest`."""

    earliest: int
    latest: int
    duration: int


@dataclass(frozen=True)
class Worker:
    """One worker-shift: a vehicle of the routing model."""

    id: int | str
    start_location: int
    end_location: int
    shift: Window
    skills: frozenset[str] = frozenset()
    gender: str | None = None
    profile: str = "default"  # which travel matrix
    max_work: int | None = None  # longest working day (shift end − start incl. waiting), in time units
    max_visits: int | None = None
    capacity: int | None = None
    breaks: tuple[Break, ...] = ()
    # Places the worker may go back to mid-round to refill what it carries (the kitchen, for a meal round):
    # the load starts again from nothing there; a refill takes `reload_duration`.
    reload_locations: tuple[int, ...] = ()
    reload_duration: int = 0


@dataclass(frozen=True)
class Weights:
    """How the soft goals are traded off (all in time units of travel)."""

    drop: int = 100_000  # penalty per unplaced visit: far above any travel cost
    drop_urgent: int = 1_000_000
    continuity: int = 30  # added when a visit goes to someone other than its usual worker
    balance: int = 1  # per time unit a working day exceeds the fair share
    tardiness: int = 1  # per time unit a visit starts after its `due`
    max_tardiness: int = 1  # per time unit of the day's largest tardiness


@dataclass(frozen=True)
class Problem:
    """Visits to place on workers' routes, with travel times between the places."""

    visits: tuple[Visit, ...]
    workers: tuple[Worker, ...]
    travel: dict[str, tuple[tuple[int, ...], ...]]  # profile -> matrix between locations
    weights: Weights = Weights()
    # The arc cost: travel time of the worker's profile (rosters), or a separate distance matrix
    # (Solomon: distance == time).
    cost: tuple[tuple[int, ...], ...] | None = None
    balance: bool = True  # spread work fairly (soft)

    def travel_time(self, worker: Worker, a: int, b: int) -> int:
        """Travel time between two locations for this worker."""
        return self.travel[worker.profile][a][b]


@dataclass(frozen=True)
class Stop:
    """A visit on a route: when the worker arrives, starts and ends it, and the travel before it."""

    visit_id: int | str
    arrival: int
    start: int
    end: int
    travel_before: int


@dataclass(frozen=True)
class Reload:
    """A refill on a route: at `location`, after the route's first `after` stops, from `arrival` to `end`."""

    location: int
    after: int
    arrival: int
    end: int


@dataclass
class Route:
    """A worker's day: ordered stops, when they leave and get back, breaks, refills, travel."""

    worker_id: int | str
    stops: list[Stop] = field(default_factory=list)
    reloads: list[Reload] = field(default_factory=list)
    departure: int | None = None
    return_time: int | None = None
    breaks: list[tuple[int, int]] = field(default_factory=list)  # (start, end)
    travel: int = 0


@dataclass
class Plan:
    """The solver's answer: routes, the visits it could not place with the reason, and how it went."""

    routes: dict[int | str, Route] = field(default_factory=dict)
    unplaced: dict[int | str, str] = field(default_factory=dict)  # visit id -> reason code
    objective: int | None = None
    status: str = ""
    seconds: float = 0.0
    first_plan_s: float | None = None  # when the first complete plan was read into OR-Tools (PyVRP's path)

    def worker_of(self) -> dict[int | str, int | str]:
        """Visit id -> the worker it is planned for."""
        return {stop.visit_id: worker for worker, route in self.routes.items() for stop in route.stops}

    @property
    def travel(self) -> int:
        """Total travel of all routes."""
        return sum(route.travel for route in self.routes.values())

    def tardiness(self, problem: Problem) -> tuple[int, int]:
        """(total, largest) time units the planned visits start after their `due`."""
        due = {v.id: v.due for v in problem.visits if v.due is not None}
        late = [max(0, stop.start - due[stop.visit_id]) for route in self.routes.values() for stop in route.stops
                if stop.visit_id in due]
        return sum(late), max(late, default=0)


def double_ups(visits) -> dict[str, list[Visit]]:
    """Pair id -> its halves among `visits`, the earlier half first (the one without a `pair_gap`)."""
    halves: dict[str, list[Visit]] = {}
    for visit in visits:
        if visit.pair is not None:
            halves.setdefault(visit.pair, []).append(visit)
    return {pair: sorted(members, key=lambda v: v.pair_gap is not None) for pair, members in halves.items()}


# Reasons a visit could not be placed.
NO_QUALIFIED_WORKER = "no_qualified_worker"  # nobody on shift holds the skills / is of the gender asked for
WINDOW_OUTSIDE_SHIFTS = "window_outside_shifts"  # no suitable worker can reach it inside its window
CAPACITY = "capacity"  # its demand exceeds every suitable worker's capacity
NO_ROOM = "no_room"  # suitable workers exist but their days are full
PAIR_INCOMPLETE = "pair_incomplete"  # a double-up visit needs two suitable workers at once
WINDOW_PASSED = "window_passed"  # planned from now: its latest start is already past
