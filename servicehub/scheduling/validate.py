"""An independent check of a plan against its problem's hard rules. Pure module.

It shares no code with the solver on purpose: it recomputes every route from the travel matrices and
the visits' data, so a solver bug cannot hide behind the code that made it.
"""

from __future__ import annotations

from servicehub.scheduling.problem import Plan, Problem


def plan_violations(problem: Problem, plan: Plan) -> list[str]:
    """Every hard rule the plan breaks, in words (empty: the plan is valid)."""
    problems: list[str] = []
    visits = {v.id: v for v in problem.visits}
    workers = {w.id: w for w in problem.workers}
    seen: dict = {}
    starts: dict = {}
    for worker_id, route in plan.routes.items():
        worker = workers.get(worker_id)
        if worker is None:
            problems.append(f"route of unknown worker {worker_id!r}")
            continue
        if not route.stops:
            continue
        here, clock = worker.start_location, route.departure
        if clock is None or clock < worker.shift[0]:
            problems.append(f"{worker_id}: leaves at {clock}, before the shift starts at {worker.shift[0]}")
            clock = worker.shift[0]
        load = 0
        breaks = sorted(route.breaks)
        for b_start, b_end in breaks:
            for stop in route.stops:
                if b_start < stop.end and stop.start < b_end:
                    problems.append(f"{worker_id}: break {b_start}-{b_end} overlaps visit {stop.visit_id}")
        refills = sorted(route.reloads, key=lambda r: (r.after, r.arrival))
        for position, stop in enumerate([*route.stops, None]):
            for refill in [r for r in refills if r.after == position]:
                problems += _refill_violations(problem, worker, refill, here, clock, breaks)
                here, clock, load = refill.location, refill.end, 0
            if stop is None:
                break
            visit = visits.get(stop.visit_id)
            if visit is None:
                problems.append(f"{worker_id}: unknown visit {stop.visit_id!r}")
                continue
            if stop.visit_id in seen:
                problems.append(f"visit {stop.visit_id} is planned twice")
            seen[stop.visit_id] = worker_id
            starts[stop.visit_id] = stop.start
            travel = problem.travel[worker.profile][here][visit.location]
            if stop.start < clock + travel + _in_breaks(breaks, clock, stop.start):
                problems.append(f"{worker_id}: visit {visit.id} starts at {stop.start}, before it can be reached "
                                f"({clock} + {travel} travel)")
            if not visit.window[0] <= stop.start <= visit.window[1]:
                problems.append(f"{worker_id}: visit {visit.id} starts at {stop.start}, outside {visit.window}")
            if stop.end != stop.start + visit.duration:
                problems.append(f"{worker_id}: visit {visit.id} lasts {stop.end - stop.start}, not {visit.duration}")
            if not visit.skills <= worker.skills:
                problems.append(f"{worker_id}: lacks {set(visit.skills - worker.skills)} for visit {visit.id}")
            if visit.gender is not None and worker.gender != visit.gender:
                problems.append(f"{worker_id}: is not the {visit.gender} carer visit {visit.id} asks for")
            for pinned in (visit.fixed_worker, visit.locked_worker):
                if pinned is not None and pinned != worker_id:
                    problems.append(f"visit {visit.id} must stay with {pinned}, not {worker_id}")
            if visit.fixed_start is not None and stop.start != visit.fixed_start:
                problems.append(f"visit {visit.id} must stay at {visit.fixed_start}, not {stop.start}")
            load += visit.demand
            if worker.capacity is not None and load > worker.capacity:
                problems.append(f"{worker_id}: carries {load} at visit {visit.id}, more than {worker.capacity}")
            here, clock = visit.location, stop.end
        back = problem.travel[worker.profile][here][worker.end_location]
        if route.return_time is None or route.return_time < clock + back:
            problems.append(f"{worker_id}: back at {route.return_time}, before {clock} + {back} travel")
        elif route.return_time > worker.shift[1]:
            problems.append(f"{worker_id}: back at {route.return_time}, after the shift ends at {worker.shift[1]}")
        if worker.max_visits is not None and len(route.stops) > worker.max_visits:
            problems.append(f"{worker_id}: {len(route.stops)} visits, more than {worker.max_visits}")
        if worker.max_work is not None and route.return_time is not None and route.departure is not None \
                and route.return_time - route.departure > worker.max_work:
            problems.append(f"{worker_id}: works {route.return_time - route.departure}, more than {worker.max_work}")
        for brk in worker.breaks:
            if not any(brk.earliest <= s <= brk.latest and e - s == brk.duration for s, e in breaks):
                problems.append(f"{worker_id}: no {brk.duration}-long break starting in {brk.earliest}-{brk.latest}")
    for visit in problem.visits:
        placed, dropped = visit.id in seen, visit.id in plan.unplaced
        if placed == dropped:
            problems.append(f"visit {visit.id} is {'both placed and unplaced' if placed else 'neither placed nor listed'}")
        if visit.fixed_worker is not None and not placed:
            problems.append(f"visit {visit.id} is done or under way but was dropped")
    pairs: dict = {}
    for visit in problem.visits:
        if visit.pair is not None:
            pairs.setdefault(visit.pair, []).append(visit.id)
    for pair, ids in pairs.items():
        placed = [i for i in ids if i in seen]
        if placed and len(placed) != len(ids):
            problems.append(f"double-up {pair}: only {placed} placed")
        elif len(placed) == 2:
            a, b = placed
            if seen[a] == seen[b]:
                problems.append(f"double-up {pair}: one worker for both halves")
            first, later = sorted((visits[a], visits[b]), key=lambda v: v.pair_gap is not None)
            gap = starts[later.id] - starts[first.id]
            low, high = later.pair_gap or (0, 0)
            if not low <= gap <= high:
                problems.append(f"double-up {pair}: {later.id} starts {gap} after {first.id}, not {low} to {high}")
    return problems


def _refill_violations(problem: Problem, worker, refill, here: int, clock: int, breaks: list) -> list[str]:
    """What a refill breaks: a place that is not one of the worker's, reached too soon from `here` left at
    `clock`, the wrong length, or a break over it."""
    found = []
    if refill.location not in worker.reload_locations:
        found.append(f"{worker.id}: refills at place {refill.location}, not one of its refill places")
    travel = problem.travel[worker.profile][here][refill.location]
    if refill.arrival < clock + travel + _in_breaks(breaks, clock, refill.arrival):
        found.append(f"{worker.id}: refill at {refill.arrival}, before it can be reached ({clock} + {travel} travel)")
    if refill.end != refill.arrival + worker.reload_duration:
        found.append(f"{worker.id}: refill lasts {refill.end - refill.arrival}, not {worker.reload_duration}")
    found += [f"{worker.id}: break {b_start}-{b_end} overlaps a refill" for b_start, b_end in breaks
              if b_start < refill.end and refill.arrival < b_end]
    return found


def _in_breaks(breaks: list[tuple[int, int]], since: int, until: int) -> int:
    """Time between `since` and `until` spent in breaks."""
    return sum(min(b_end, until) - max(b_start, since) for b_start, b_end in breaks if b_start < until and b_end > since)
