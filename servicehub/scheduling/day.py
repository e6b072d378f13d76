"""One organisation's day as a solver `Problem`: visits and worker-shifts with coordinates in, plain data out.

Pure module. The service loads rows into `DayVisit` / `DayWorker`; this module turns availability
intervals into a shift with breaks, adds the lunch break, builds the travel matrices per travel mode,
and reads a `Plan` back as plain per-visit assignments. Times are minutes from the day's local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servicehub.scheduling.problem import Break, Plan, Problem, Visit, Weights, Worker
from servicehub.scheduling.travel import Point, TravelTimeSource

ON_DUTY = "on_duty"  # a skill every worker still working holds; a worker who dropped out lacks it


@dataclass(frozen=True)
class DayVisit:
    """A visit of the day, as the service loaded it."""

    id: int
    point: Point
    window: tuple[int, int]  # earliest and latest start
    duration: int
    skills: frozenset[str] = frozenset()
    gender: str | None = None
    urgent: bool = False
    meals: int = 0  # meals carried in the insulated box
    usual_workers: tuple[int, ...] = ()
    pair: str | None = None
    fixed_worker: int | None = None  # done, under way, or already past: stays as it is
    fixed_start: int | None = None
    locked_worker: int | None = None  # moved by hand: stays with this worker


@dataclass(frozen=True)
class DayWorker:
    """A worker available on the day."""

    id: int
    point: Point
    mode: str
    intervals: tuple[tuple[int, int], ...]  # available (start, end), in order
    skills: frozenset[str] = frozenset()
    gender: str | None = None
    max_minutes: int | None = None  # working minutes, breaks not counted
    max_visits: int | None = None
    on_duty: bool = True  # False: dropped out (sick); keeps only the visits fixed on it
    start_point: Point | None = None  # where the day's route starts, if not `point` (planned from now: where they are)


@dataclass(frozen=True)
class DaySettings:
    """The lunch break, the meal box, the soft-goal weights."""

    lunch: tuple[int, int, int] | None = (690, 810, 30)  # earliest start, latest start, minutes
    meal_box: int | None = 8
    weights: Weights = field(default_factory=Weights)


def worker_shift(intervals: tuple[tuple[int, int], ...], lunch: tuple[int, int, int] | None):
    """(shift window, breaks): the day from the first start to the last end, gaps as fixed breaks, and lunch
    if the shift spans the lunch window and no gap already gives the time."""
    ordered = sorted(intervals)
    shift = (ordered[0][0], ordered[-1][1])
    breaks = [Break(a_end, a_end, b_start - a_end) for (_, a_end), (b_start, _) in zip(ordered, ordered[1:], strict=False)
              if b_start > a_end]
    if lunch is not None:
        earliest, latest, minutes = lunch
        spans = shift[0] <= earliest and latest + minutes <= shift[1]
        covered = any(b.duration >= minutes and earliest <= b.earliest <= latest for b in breaks)
        if spans and not covered:
            breaks.append(Break(earliest, latest, minutes))
    return shift, tuple(sorted(breaks, key=lambda b: b.earliest))


@dataclass(frozen=True)
class Done:
    """A visit of the day done or under way: it is not planned again, and its worker goes on from its place."""

    visit_id: int
    worker_id: int
    point: Point  # the recipient's place
    free_at: int  # the minute of its check-out, or the expected end of a visit under way
    minutes: int  # the working minutes it took, or takes


@dataclass(frozen=True)
class WorkerStart:
    """Where and from which minute a worker's route starts when the day is planned from now."""

    point: Point | None  # None: from their own start place
    ready: int
    visits: int = 0  # visits done or under way today: they count towards the day's limits
    minutes: int = 0


@dataclass(frozen=True)
class FromNow:
    """What planning a day from a minute makes of it."""

    passed: frozenset[int]  # open visits whose latest start is already past: left out (WINDOW_PASSED)
    windows: dict[int, tuple[int, int]]  # the other open visits' windows, cut to start no earlier than then
    starts: dict[int, WorkerStart]  # worker id -> where and when they start (workers with nothing done: home, then)
    default: WorkerStart  # the start of a worker not in `starts`


def from_now(now: int, windows: dict[int, tuple[int, int]], done: list[Done] = ()) -> FromNow:
    """Plan from minute `now`: open visits (id -> earliest, latest start) that can no longer start are out, the
    others start at `now` at the earliest; done and under-way visits are not planned again, and each worker
    starts where the last of them ends (its place, when it is over), never before `now`."""
    passed = frozenset(v for v, (_, latest) in windows.items() if latest < now)
    cut = {v: (max(earliest, now), latest) for v, (earliest, latest) in windows.items() if v not in passed}
    last: dict[int, Done] = {}
    counts: dict[int, tuple[int, int]] = {}
    for item in sorted(done, key=lambda d: (d.free_at, d.visit_id)):
        last[item.worker_id] = item
        visits, worked = counts.get(item.worker_id, (0, 0))
        counts[item.worker_id] = (visits + 1, worked + item.minutes)
    starts = {w: WorkerStart(d.point, max(now, d.free_at), *counts[w]) for w, d in last.items()}
    return FromNow(passed, cut, starts, WorkerStart(None, now))


def intervals_from(intervals: tuple[tuple[int, int], ...], ready: int) -> tuple[tuple[int, int], ...]:
    """Available intervals cut to begin at `ready` (those over by then dropped)."""
    return tuple((max(a, ready), b) for a, b in intervals if b > max(a, ready))


def build_problem(visits: list[DayVisit], workers: list[DayWorker], travel: TravelTimeSource,
                  settings: DaySettings = DaySettings()) -> Problem:
    """The solver's problem for one day: one vehicle per worker-shift, places shared by their coordinates."""
    points: dict[Point, int] = {}

    def place(point: Point) -> int:
        return points.setdefault((round(point[0], 6), round(point[1], 6)), len(points))

    solver_workers = []
    for w in workers:
        if not w.intervals:
            continue
        shift, breaks = worker_shift(w.intervals, settings.lunch)
        resting = sum(b.duration for b in breaks)
        home = place(w.point)
        solver_workers.append(Worker(
            id=w.id, start_location=home if w.start_point is None else place(w.start_point), end_location=home,
            shift=shift,
            skills=w.skills | ({ON_DUTY} if w.on_duty else frozenset()), gender=w.gender, profile=w.mode,
            max_work=None if w.max_minutes is None else w.max_minutes + resting, max_visits=w.max_visits,
            capacity=settings.meal_box if any(v.meals for v in visits) else None, breaks=breaks,
        ))
    solver_visits = tuple(
        Visit(id=v.id, location=place(v.point), duration=v.duration, window=v.window, demand=v.meals,
              skills=v.skills | (frozenset() if v.fixed_worker is not None else {ON_DUTY}), gender=v.gender,
              urgent=v.urgent, preferred_workers=v.usual_workers, pair=v.pair, fixed_worker=v.fixed_worker,
              fixed_start=v.fixed_start, locked_worker=v.locked_worker)
        for v in visits
    )
    coordinates = list(points)
    modes = sorted({w.profile for w in solver_workers}) or ["walk"]
    matrices = {mode: tuple(tuple(row) for row in travel.matrix(coordinates, mode)) for mode in modes}
    return Problem(visits=solver_visits, workers=tuple(solver_workers), travel=matrices, weights=settings.weights)


def assignments(plan: Plan) -> dict[int, dict]:
    """Visit id -> where the plan put it: worker, sequence, arrival, start, end, travel; or why it could not."""
    result: dict[int, dict] = {}
    for worker_id, route in plan.routes.items():
        for sequence, stop in enumerate(route.stops, start=1):
            result[stop.visit_id] = {"worker_id": worker_id, "sequence": sequence, "arrival": stop.arrival,
                                     "start": stop.start, "end": stop.end, "travel": stop.travel_before}
    for visit_id, reason in plan.unplaced.items():
        result[visit_id] = {"unplaced": reason}
    return result


def route_breaks(plan: Plan) -> dict[int, list[list[int]]]:
    """Worker id -> the breaks the plan gives them, [start, end]."""
    return {worker_id: [list(b) for b in route.breaks] for worker_id, route in plan.routes.items() if route.stops}


def changes(before: dict[int, dict], after: dict[int, dict]) -> list[dict]:
    """What a re-plan changed, visit by visit: moved to another worker, moved in time, or dropped."""
    found = []
    for visit_id, old in before.items():
        new = after.get(visit_id, {"unplaced": "removed"})
        if "unplaced" in new:
            if "unplaced" not in old:
                found.append({"visit_id": visit_id, "change": "unplaced", "from_worker": old["worker_id"],
                              "to_worker": None, "from_start": old["start"], "to_start": None,
                              "reason": new["unplaced"]})
            continue
        if "unplaced" in old:
            kind = "placed"
        elif old["worker_id"] != new["worker_id"]:
            kind = "reassigned"
        elif old["start"] != new["start"]:
            kind = "retimed"
        else:
            continue
        found.append({"visit_id": visit_id, "change": kind, "from_worker": old.get("worker_id"),
                      "to_worker": new["worker_id"], "from_start": old.get("start"), "to_start": new["start"],
                      "reason": ""})
    return sorted(found, key=lambda c: (c["change"], c["visit_id"]))
