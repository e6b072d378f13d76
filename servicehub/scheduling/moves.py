"""A manual move: put one visit on a worker's route, or say which hard rule that breaks. Pure module.

The route is re-timed from the start of the shift, every visit as early as its window allows, breaks
taken in the first gap that fits them (or the last gap before they would be missed). Visits already
done or under way keep their start. The first position that gives a valid day wins (the one nearest
the requested start, if one is given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from servicehub.scheduling.day import ON_DUTY
from servicehub.scheduling.problem import Problem, Visit, Worker

# The rules a move can break.
RULES = ("not_on_shift", "worker_absent", "qualification", "gender", "double_up", "max_visits", "capacity",
         "window", "overlap", "break", "shift_end", "max_minutes", "start_past")


@dataclass(frozen=True)
class Refusal:
    """The rule a move breaks, and how."""

    rule: str
    detail: str


def insert(problem: Problem, worker_id, route: list, visit_id, start: int | None = None,
           partner: tuple | None = None, now: int | None = None) -> dict | Refusal:
    """The worker's new route with the visit in it ({visit id: sequence, arrival, start, end, travel}), or a Refusal.

    `route` is the worker's current visits in order; `partner` the (worker id, start) of the other half of
    a double-up visit, if it is placed; `now` the minute the day has reached, if it has begun: the visit then
    starts no earlier.
    """
    worker = next((w for w in problem.workers if w.id == worker_id), None)
    visits = {v.id: v for v in problem.visits}
    visit = visits[visit_id]
    if worker is None:
        return Refusal("not_on_shift", "the worker has no shift on this day")
    if now is not None:
        when = start if start is not None else partner[1] if partner is not None else None
        if (when if when is not None else visit.window[1]) < now:
            clock = f"{now // 60:02d}:{now % 60:02d}"
            return Refusal("start_past", f"it would start before now ({clock})" if when is not None
                           else f"its window closed before now ({clock})")
        visit = visits[visit_id] = replace(visit, window=(max(visit.window[0], now), visit.window[1]))
    refusal = _static_refusal(problem, worker, visit, [visits[v] for v in route], start, partner)
    if refusal:
        return refusal
    if partner is not None:
        start = partner[1]
    failures: list[Refusal] = []
    best = None
    for position in range(len(route) + 1):
        order = [*route[:position], visit_id, *route[position:]]
        timed = _schedule(problem, worker, [visits[v] for v in order], {visit_id: start} if start is not None else {})
        if isinstance(timed, Refusal):
            failures.append(timed)
            continue
        travel = sum(stop["travel"] for stop in timed.values())
        key = (abs(timed[visit_id]["start"] - start) if start is not None else 0, travel)
        if best is None or key < best[0]:
            best = (key, timed)
    if best is not None:
        return best[1]
    # The refusal where the visit would naturally go: after the visits whose windows open before its start.
    target = start if start is not None else visit.window[0]
    natural = sum(1 for v in route if (visits[v].fixed_start or visits[v].window[0]) <= target)
    return failures[natural]


def _static_refusal(problem: Problem, worker: Worker, visit: Visit, route: list[Visit], start, partner):
    missing = visit.skills - worker.skills
    if ON_DUTY in missing:
        return Refusal("worker_absent", "the worker is out for the rest of the day")
    if missing:
        return Refusal("qualification", f"the visit needs {', '.join(sorted(missing))}, which the worker lacks")
    if visit.gender is not None and worker.gender != visit.gender:
        return Refusal("gender", f"the recipient asks for a {visit.gender} carer")
    if partner is not None:
        if partner[0] == worker.id:
            return Refusal("double_up", "both carers of a double-up visit would be the same worker")
        if start is not None and start != partner[1]:
            return Refusal("double_up", "a double-up visit starts when its other carer starts")
    if worker.max_visits is not None and len(route) + 1 > worker.max_visits:
        return Refusal("max_visits", f"the worker already has {len(route)} visits, the most allowed is "
                                     f"{worker.max_visits}")
    if worker.capacity is not None and visit.demand + sum(v.demand for v in route) > worker.capacity:
        return Refusal("capacity", f"the meal box holds {worker.capacity}")
    if start is not None and not visit.window[0] <= start <= visit.window[1]:
        return Refusal("window", "the visit would start outside its time window")
    return None


def _schedule(problem: Problem, worker: Worker, stops: list[Visit], requested: dict) -> dict | Refusal:
    travel = problem.travel[worker.profile]
    pending = sorted(worker.breaks, key=lambda b: b.earliest)
    here, clock = worker.start_location, worker.shift[0]
    departure, timed = None, {}
    for sequence, visit in enumerate(stops, start=1):
        leg = travel[here][visit.location]
        target = requested.get(visit.id, visit.fixed_start)
        # Take a pending break now if the gap allows it, or if after this visit it would be too late.
        rested = None
        while pending:
            brk = pending[0]
            take_at = max(clock, brk.earliest)
            if take_at > brk.latest:
                return Refusal("break", f"no room for the {brk.duration}-minute break")
            earliest_here = max(clock + leg, visit.window[0])
            fits_before = take_at + brk.duration + leg <= max(earliest_here, target or 0)
            last_chance = earliest_here + visit.duration > brk.latest
            if not (fits_before or last_chance):
                break
            clock = take_at + brk.duration
            pending.pop(0)
            rested = brk
        arrival = clock + leg
        begin = max(arrival, visit.window[0]) if target is None else target
        if rested is not None and (begin < arrival or begin > visit.window[1]):
            return Refusal("break", f"no room for the {rested.duration}-minute break before visit {visit.id}")
        if begin < arrival:
            return Refusal("overlap", f"the worker cannot be at visit {visit.id} by then")
        if begin > visit.window[1]:
            return Refusal("window", f"visit {visit.id} would start after its window closes")
        if departure is None:
            departure = max(worker.shift[0], begin - leg)
        timed[visit.id] = {"sequence": sequence, "arrival": arrival, "start": begin, "end": begin + visit.duration,
                           "travel": leg}
        here, clock = visit.location, begin + visit.duration
    for brk in pending:
        take_at = max(clock, brk.earliest)
        if take_at > brk.latest:
            return Refusal("break", f"no room for the {brk.duration}-minute break")
        clock = take_at + brk.duration
    back = clock + travel[here][worker.end_location]
    if back > worker.shift[1]:
        return Refusal("shift_end", "the worker would be back after the shift ends")
    if worker.max_work is not None and departure is not None and back - departure > worker.max_work:
        return Refusal("max_minutes", "the worker's day would be longer than allowed")
    return timed
