"""A fast, strong first plan: PyVRP's iterated local search on the day's relaxed problem. Pure module.

OR-Tools keeps the whole model (breaks, double-up visits, continuity, balance) and polishes the plan; what
it lacks is a quick way to a good first plan of a large day with tight windows (its insertion heuristics grow
about n³ and breaks slow them further). PyVRP is fast and strong on the routing core, so it solves the day
without what it cannot express, and `repair_route` then makes each route fit its worker's breaks before
OR-Tools reads the routes as its first plan (measured in bench/README.md, "Scheduling: the first plan").

The relaxation: visits that may go to some workers only (qualifications, gender, a lock) become a routing
profile per class of workers, in which the visits they may not take cost far more than their prize; double-up
visits and breaks are left out (OR-Tools inserts the former and `repair_route` fits the latter); continuity
and balance are left to OR-Tools. Capacity and the most visits a day are load dimensions.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

from servicehub.scheduling.problem import Break, Problem, Visit, Worker, double_ups

try:  # imported with the solver, so that a run's time limit is not spent importing it (about 0.8 s)
    import numpy as np
    import pyvrp
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria
except ImportError as missing:  # pragma: no cover - a broken installation
    pyvrp = None
    _MISSING = missing

# A leg to or from a visit the worker may not take: dearer than any prize, and too long for any window.
FORBIDDEN = 10_000_000
UNBOUNDED = 2**40
PRIZE_LEGS = 30


class SolverMissing(RuntimeError):
    """The first-plan solver is not installed: the run fails with this reason rather than plan worse silently."""


@dataclass(frozen=True)
class _Vehicles:
    """Workers who look the same to PyVRP: one vehicle type."""

    key: tuple
    workers: list[int]  # indexes into problem.workers


def relaxed_routes(problem: Problem, visits: Sequence[Visit], allowed: dict, deadline: float,
                   seed: int = 1, iterations: int | None = None) -> dict:
    """Worker id -> visit ids in route order: PyVRP's plan of `visits` (each to one of the workers `allowed`
    lists by index) without breaks, double-ups or soft goals, searched until `deadline` (time.perf_counter());
    each route repaired to fit its breaks, then the double-up visits put in."""
    if pyvrp is None:  # a runtime dependency: a missing one is a failed run, not a worse plan
        raise SolverMissing(f"PyVRP is not installed ({_MISSING}); the first plan cannot be made.")

    pairs = [(a, b) for a, b in (h for h in double_ups(visits).values() if len(h) == 2)]
    # The halves of the double-ups are planned as single visits too, then taken out again: the routes keep room
    # for them near their place and time, where `insert_pairs` puts them back together (on a day of many
    # double-ups, fitting them into routes planned without them cost a third more travel).
    visits = [v for v in visits if allowed.get(v.id)]
    workers = problem.workers
    if not workers or not (visits or pairs):
        return {}
    if not visits:
        routes = {w: [] for w in range(len(workers))}
        insert_pairs(problem, routes, pairs, allowed)
        return {workers[w].id: [v.id for v in stops] for w, stops in routes.items() if stops}
    # Places: the workers' start and end places, then one place per visit (a profile forbids a visit by its place).
    depot_locations = sorted({w.start_location for w in workers} | {w.end_location for w in workers})
    depot_of = {loc: k for k, loc in enumerate(depot_locations)}
    place_locations = depot_locations + [v.location for v in visits]

    # One profile per travel matrix and set of visits a worker may not take.
    visit_index = {v.id: k for k, v in enumerate(visits)}
    allowed_sets = [set(allowed[v.id]) for v in visits]
    forbidden_by_worker = [frozenset(k for k, able in enumerate(allowed_sets) if w not in able)
                           for w in range(len(workers))]
    profile_keys: dict[tuple, int] = {}
    worker_profile = []
    for w, worker in enumerate(workers):
        key = (worker.profile, forbidden_by_worker[w])
        worker_profile.append(profile_keys.setdefault(key, len(profile_keys)))
    locations = np.asarray(place_locations)
    arrays: dict[int, np.ndarray] = {}  # one conversion per matrix (a 1,000-place one takes a tenth of a second)

    def among_places(matrix) -> np.ndarray:
        if id(matrix) not in arrays:
            arrays[id(matrix)] = np.asarray(matrix, dtype=np.int64)[np.ix_(locations, locations)]
        return arrays[id(matrix)].copy()

    apart = np.asarray([(len(depot_locations) + visit_index[a.id], len(depot_locations) + visit_index[b.id])
                        for a, b in pairs if a.id in visit_index and b.id in visit_index], dtype=np.int64).reshape(-1, 2)
    distances, durations = [], []
    for (profile, forbidden), _ in sorted(profile_keys.items(), key=lambda item: item[1]):
        travel = among_places(problem.travel[profile])
        cost = among_places(problem.cost if problem.cost is not None else problem.travel[profile])
        if forbidden:
            nodes = [len(depot_locations) + k for k in forbidden]
            for matrix in (travel, cost):
                matrix[nodes, :] = FORBIDDEN
                matrix[:, nodes] = FORBIDDEN
                matrix[nodes, nodes] = 0
        for matrix in (travel, cost):  # a double-up's halves go to two workers: never one straight after the other
            matrix[apart[:, 0], apart[:, 1]] = FORBIDDEN
            matrix[apart[:, 1], apart[:, 0]] = FORBIDDEN
        durations.append(travel)
        distances.append(cost)

    # Prizes just above what any visit can cost to add (a detour, or a route of its own, is at most two of the
    # longest legs): the drop penalties of the full model (100,000) dwarf the day's distances, and PyVRP's penalty
    # scaling then takes many seconds to find its way to full routes (423 of 440 visits for 6 s on a meal day).
    longest = max(int(m[m < FORBIDDEN].max()) for m in distances) if distances else 1
    normal_prize = PRIZE_LEGS * max(longest, 1)
    # Urgent visits are required: PyVRP's search then keeps them over others, as the full model does (by a drop
    # penalty ten times larger); were it to miss one for a prize it would rarely find its way back to it (a
    # 4-hour urgent visit displaces several short ones). Too many to fit make PyVRP's plan infeasible, and the
    # repair takes out the others first. Their prize still counts where the repair must drop one.
    urgent_prize = normal_prize * max(1, problem.weights.drop_urgent // max(problem.weights.drop, 1))
    dims_demand = any(v.demand for v in visits)
    dims_count = any(w.max_visits is not None for w in workers)
    clients = []
    for v in visits:
        load = ([v.demand] if dims_demand else []) + ([1] if dims_count else [])
        prize = urgent_prize if v.urgent else normal_prize
        clients.append(pyvrp.Client(location=len(depot_locations) + visit_index[v.id], delivery=load,
                                    service_duration=v.duration, tw_early=v.window[0], tw_late=_on_time(v)[1],
                                    prize=prize, required=v.urgent, name=str(v.id)))
    depots = [pyvrp.Depot(location=k) for k in range(len(depot_locations))]

    groups: dict[tuple, _Vehicles] = {}
    for w, worker in enumerate(workers):
        key = (worker_profile[w], depot_of[worker.start_location], depot_of[worker.end_location],
               worker.shift, worker.max_work, worker.capacity, worker.max_visits)
        groups.setdefault(key, _Vehicles(key, [])).workers.append(w)
    vehicle_types = []
    for group in groups.values():
        worker = workers[group.workers[0]]
        profile, start, end, shift, max_work, capacity, max_visits = group.key
        load = (([capacity if capacity is not None else UNBOUNDED] if dims_demand else [])
                + ([max_visits if max_visits is not None else UNBOUNDED] if dims_count else []))
        vehicle_types.append(pyvrp.VehicleType(
            num_available=len(group.workers), capacity=load, start_depot=start, end_depot=end,
            tw_early=shift[0], tw_late=_relaxed_end(worker), profile=profile,
            shift_duration=max_work if max_work is not None else UNBOUNDED,
        ))
    data = pyvrp.ProblemData(locations=[pyvrp.Location(0, 0) for _ in place_locations], clients=clients,
                             depots=depots, vehicle_types=vehicle_types, distance_matrices=distances,
                             duration_matrices=durations)
    stop = MaxRuntime(max(deadline - time.perf_counter(), 0.01))
    if iterations is not None:  # a fixed budget: the same problem gives the same plan (unless time runs out first)
        stop = MultipleCriteria([MaxIterations(iterations), stop])
    with warnings.catch_warnings():
        # PyVRP warns when its penalties top out on a day it finds hard to make feasible; the routes are repaired
        # below whatever it returns, so the warning tells the caller nothing.
        warnings.simplefilter("ignore", pyvrp.exceptions.PenaltyBoundWarning)
        result = pyvrp.solve(data, stop=stop, seed=seed, collect_stats=False, display=False)
    routes: dict[int, list[Visit]] = {w: [] for w in range(len(workers))}
    taken_out: list[Visit] = []
    free = {k: list(group.workers) for k, group in enumerate(groups.values())}
    hints: dict = {}  # double-up half id -> the start PyVRP planned it alone
    for route in result.best.routes():
        w = free[route.vehicle_type()].pop(0)
        activities = [a for a in route.schedule() if a.type == pyvrp.ActivityType.CLIENT]
        hints.update({visits[a.idx].id: a.start_time for a in activities if visits[a.idx].pair is not None})
        stops = [visits[a.idx] for a in activities if visits[a.idx].pair is None]
        routes[w] = repair_route(problem, workers[w], stops)
        taken_out += [v for v in stops if v not in routes[w]]
    insert_pairs(problem, routes, pairs, allowed, hints)
    # Visits PyVRP could not plan on time may still be planned late (a soft latest start): the nearest fit.
    planned = {v.id for stops in routes.values() for v in stops}
    late = [v for v in visits if v.due is not None and v.pair is None and v.id not in planned and v not in taken_out]
    reinsert(problem, routes, taken_out + late, allowed)
    return {workers[w].id: [v.id for v in stops] for w, stops in routes.items() if stops}


def _relaxed_end(worker: Worker) -> int:
    """The end of the shift PyVRP plans to: the breaks' minutes kept free, so that the routes need little
    repair (the breaks still have to find a place: `repair_route`)."""
    return max(worker.shift[0], worker.shift[1] - sum(b.duration for b in worker.breaks))


# --- double-up visits --------------------------------------------------------------------------

# Rounds of taking each double-up out and putting it back where it costs least (while one moves).
PAIR_ROUNDS = 10
# Start times tried for a double-up visit, spread over its window.
PAIR_START_CANDIDATES = 8


def _on_time(visit: Visit) -> tuple[int, int]:
    """The visit's window without lateness: up to its `due` where it has one."""
    return visit.window[0], visit.window[1] if visit.due is None else min(visit.window[1], visit.due)


def insert_pairs(problem: Problem, routes: dict[int, list[Visit]], pairs: Sequence[tuple[Visit, Visit]],
                 allowed: dict, hints: dict | None = None) -> None:
    """Put each double-up visit (urgent first) on two workers' routes, the halves at one start time or the later
    one inside its gap after the other, where it adds the least travel and both routes still fit (on time if it
    can be, else late); a pair that fits nowhere is left for OR-Tools' search. The halves go in with their starts
    fixed, so that what is inserted after them cannot pull them apart. `hints`: half id -> a start to try first
    (where the relaxed plan had room for it). Then each pair is taken out and put back where it now costs least
    once (OR-Tools' moves shift one visit at a time and so cannot move a double-up: where it lands here stays)."""
    hints = hints or {}
    ordered = [tuple(sorted(pair, key=lambda v: v.pair_gap is not None))  # the halves in either order
               for pair in sorted(pairs, key=lambda pair: not pair[0].urgent)]
    for a, b in ordered:
        best = _best_pair_insertion(problem, routes, a, b, allowed, hints)
        if best is not None:
            _place(routes, best[1:])
    for _ in range(PAIR_ROUNDS):
        if not _move_pairs(problem, routes, ordered, allowed, hints):
            break


def _move_pairs(problem: Problem, routes: dict[int, list[Visit]], pairs, allowed: dict, hints: dict) -> bool:
    """Take each double-up out and put it back where it costs least now; whether one moved."""
    moved = False
    for a, b in pairs:
        where = [(w, k) for w, route in routes.items() for k, v in enumerate(route) if v.id in (a.id, b.id)]
        if len(where) != 2:
            continue
        saved = sum(_removal_gain(problem, routes, w, k) for w, k in where)
        taken = [(w, routes[w].pop(k)) for w, k in sorted(where, key=lambda place: -place[1])]
        best = _best_pair_insertion(problem, routes, a, b, allowed, hints)
        if best is not None and best[0] < saved:
            _place(routes, best[1:])
            moved = True
        else:
            for w, k in sorted(where, key=lambda place: place[1]):
                routes[w].insert(k, next(v for u, v in taken if u == w))
    return moved


def _place(routes: dict[int, list[Visit]], placements) -> None:
    for w, position, visit in placements:
        routes[w].insert(position, visit)


def _removal_gain(problem: Problem, routes: dict[int, list[Visit]], w: int, k: int) -> int:
    """The travel saved by taking the k-th visit off worker w's route."""
    worker, route = problem.workers[w], routes[w]
    places = [worker.start_location] + [v.location for v in route] + [worker.end_location]
    before, here, after = places[k], places[k + 1], places[k + 2]
    return (problem.travel_time(worker, before, here) + problem.travel_time(worker, here, after)
            - problem.travel_time(worker, before, after))


def _best_pair_insertion(problem: Problem, routes: dict[int, list[Visit]], a: Visit, b: Visit, allowed: dict,
                         hints: dict):
    """(cost, (worker, position, half) for each half, with its start fixed) of the cheapest way to put a
    double-up in, on time if it can be; None if it fits nowhere."""
    on_time = _on_time(a)
    best = None
    passes = [(True, on_time)] + ([(False, _late_window(a))] if a.due is not None else [])
    for in_time, window in passes:
        for start in _hinted_starts(a, b, hints, window) + _start_candidates(window):
            fixed_a = replace(a, window=(start, start))
            options_a = _cheapest_insertions(problem, routes, fixed_a, allowed.get(a.id, []), in_time)
            if not options_a:
                continue
            for gap in _gap_candidates(b.pair_gap, hints.get(b.id, start) - start):
                fixed_b = replace(b, window=(start + gap, start + gap))
                if not b.window[0] <= start + gap <= b.window[1]:
                    continue
                options_b = _cheapest_insertions(problem, routes, fixed_b, allowed.get(b.id, []), in_time)
                for cost_a, w_a, pos_a in options_a[:3]:
                    for cost_b, w_b, pos_b in options_b[:3]:
                        late = max(0, start - on_time[1]) + max(0, start + gap - _on_time(b)[1])
                        cost = cost_a + cost_b + late * problem.weights.tardiness
                        if w_a != w_b and (best is None or cost < best[0]):
                            best = (cost, (w_a, pos_a, fixed_a), (w_b, pos_b, fixed_b))
        if best is not None:
            return best
    return None


def _hinted_starts(a: Visit, b: Visit, hints: dict, window: tuple[int, int]) -> list[int]:
    """Starts of the first half that keep one half at its hinted start and the other inside the gap (the nearest
    to its hint), inside `window`."""
    low, high = b.pair_gap or (0, 0)
    found = []
    if a.id in hints and b.id in hints:
        found = [hints[a.id], hints[b.id] - high, hints[b.id] - low,
                 min(max(hints[a.id], hints[b.id] - high), hints[b.id] - low)]
    return sorted({t for t in found if window[0] <= t <= window[1]})


def _late_window(visit: Visit) -> tuple[int, int]:
    """Starts tried for a double-up with a `due` that fits nowhere on time: after it, up to twice its on-time
    window later."""
    early, due = _on_time(visit)
    return due, min(visit.window[1], due + 2 * max(due - early, PAIR_START_CANDIDATES))


def _gap_candidates(gap: tuple[int, int] | None, hinted: int) -> list[int]:
    """Gaps tried between the starts of a double-up's halves: its ends, middle and the one nearest `hinted`."""
    if gap is None:
        return [0]
    low, high = gap
    return sorted({low, (low + high) // 2, high, min(max(hinted, low), high)})


# Routes tried for a visit the repair took out: the nearest ones (by their closest stop) among its workers'.
REINSERT_ROUTES = 8


def reinsert(problem: Problem, routes: dict[int, list[Visit]], visits: Sequence[Visit], allowed: dict) -> None:
    """Put the visits the repair took out (urgent first) where they add the least travel on one of the nearest
    routes that still fits: the lunch break the relaxation could not see cost a 1,000-visit day about 40 visits."""
    for visit in sorted(visits, key=lambda v: (not v.urgent, v.duration)):
        nearest = sorted(allowed.get(visit.id, []), key=lambda w, to=visit: _route_distance(problem, routes, w, to))
        nearest = nearest[:REINSERT_ROUTES]
        options = (visit.due is not None and _cheapest_insertions(problem, routes, visit, nearest, on_time=True)
                   or _cheapest_insertions(problem, routes, visit, nearest))
        if options:
            _, w, position = options[0]
            routes[w].insert(position, visit)


def _route_distance(problem: Problem, routes: dict[int, list[Visit]], w: int, visit: Visit) -> int:
    """Travel to the visit from the nearest place on worker w's route (its start included)."""
    worker = problem.workers[w]
    places = [worker.start_location] + [v.location for v in routes[w]]
    return min(problem.travel_time(worker, place, visit.location) for place in places)


def _start_candidates(window: tuple[int, int]) -> list[int]:
    early, late = window
    if late <= early:
        return [early]
    return sorted({early + (late - early) * k // (PAIR_START_CANDIDATES - 1) for k in range(PAIR_START_CANDIDATES)})


def _cheapest_insertions(problem: Problem, routes: dict[int, list[Visit]], visit: Visit,
                         workers: Sequence[int], on_time: bool = False, limit: int = 3) -> list[tuple[int, int, int]]:
    """(added travel, worker index, position) of the cheapest place that still fits (`on_time`: with every visit
    of the route starting by its `due`) in each of the `limit` allowed workers' routes where it is cheapest,
    cheapest first. Places are tried cheapest first, so most are never checked (a day of 60 double-ups spent
    20 s checking every place)."""
    candidates = []
    for w in workers:
        worker, route = problem.workers[w], routes[w]
        matrix = problem.travel[worker.profile]
        places = [worker.start_location] + [v.location for v in route] + [worker.end_location]
        back = matrix[visit.location]
        for pos in range(len(route) + 1):
            before, after = places[pos], places[pos + 1]
            candidates.append((matrix[before][visit.location] + back[after] - matrix[before][after], w, pos))
    candidates.sort()
    found, done, slack = [], set(), {}
    for added, w, pos in candidates:
        if w in done:
            continue
        route, worker = routes[w], problem.workers[w]
        if worker.breaks or worker.max_work is not None:
            fits = route_fits(problem, worker, route[:pos] + [visit] + route[pos:], on_time)
        else:
            if w not in slack:
                slack[w] = _TimeSlack(problem, worker, route, on_time)
            fits = slack[w].fits(visit, pos)
        if fits:
            found.append((added, w, pos))
            done.add(w)
            if len(found) == limit:
                break
    return found


class _TimeSlack:
    """Whether a visit fits a route at a position, in constant time, for a worker without breaks or longest day:
    each stop's earliest end (forward) and latest start (backward) over the route as it is."""

    def __init__(self, problem: Problem, worker: Worker, route: Sequence[Visit], on_time: bool):
        self.worker, self.route, self.on_time = worker, route, on_time
        self.matrix = problem.travel[worker.profile]
        self.windows = [_on_time(v) if on_time else v.window for v in route]
        self.places = [worker.start_location] + [v.location for v in route] + [worker.end_location]
        self.ready = [worker.shift[0]]  # ready[k]: earliest the worker leaves the k-th place (0: its start)
        for k, visit in enumerate(route):
            arrive = self.ready[-1] + self.matrix[self.places[k]][visit.location]
            self.ready.append(max(arrive, self.windows[k][0]) + visit.duration)
        n = len(route)
        self.latest = [0] * (n + 2)  # latest[k]: the latest start at the k-th place (n+1: the latest back home)
        self.latest[n + 1] = worker.shift[1]
        for k in range(n, 0, -1):
            visit = route[k - 1]
            leave_by = self.latest[k + 1] - self.matrix[visit.location][self.places[k + 1]]
            self.latest[k] = min(self.windows[k - 1][1], leave_by - visit.duration)
        self.load = sum(v.demand for v in route)

    def fits(self, visit: Visit, pos: int) -> bool:
        """Whether the route still fits with `visit` put in before its pos-th stop."""
        worker = self.worker
        if worker.max_visits is not None and len(self.route) + 1 > worker.max_visits:
            return False
        if worker.capacity is not None and self.load + visit.demand > worker.capacity:
            return False
        early, late = _on_time(visit) if self.on_time else visit.window
        start = max(self.ready[pos] + self.matrix[self.places[pos]][visit.location], early)
        if start > late:
            return False
        after = self.places[pos + 1]
        arrive = start + visit.duration + self.matrix[visit.location][after]
        if pos == len(self.route):
            return arrive <= self.latest[pos + 1]
        return max(arrive, self.windows[pos][0]) <= self.latest[pos + 1]


# --- fitting a route to its breaks -------------------------------------------------------------


def route_fits(problem: Problem, worker: Worker, visits: Sequence[Visit], on_time: bool = False) -> bool:
    """Whether the worker can do these visits in this order inside their windows and the shift, taking every
    break inside its window and outside the visits (travel may be split by a break), within the longest day, the
    most visits a day and what the worker carries (PyVRP's best plan may break the last two: it is repaired)."""
    if worker.max_visits is not None and len(visits) > worker.max_visits:
        return False
    if worker.capacity is not None and sum(v.demand for v in visits) > worker.capacity:
        return False
    return _earliest_return(problem, worker, visits, on_time) is not None


def _earliest_return(problem: Problem, worker: Worker, visits: Sequence[Visit], on_time: bool = False) -> int | None:
    """The earliest time the worker can be back, or None if the route cannot be done.

    Forward over the route, keeping per number of breaks taken (in their order) the earliest time the worker
    is free: an earlier time is never worse, so the table is exact. A break goes into the gap before a visit
    or after the last one: it starts once the previous visit ends and its window opens, and the next visit
    starts no sooner than the break's end and the travel with the break."""
    breaks = sorted(worker.breaks, key=lambda b: (b.earliest, b.latest))
    n_breaks = len(breaks)
    # free[j]: earliest end of the last visit with j breaks taken (None: impossible)
    free: list[int | None] = [worker.shift[0]] + [None] * n_breaks
    here = worker.start_location
    first_start = None
    for visit in visits:
        travel = problem.travel_time(worker, here, visit.location)
        nxt: list[int | None] = [None] * (n_breaks + 1)
        for j, ready in enumerate(free):
            if ready is None:
                continue
            for k, arrive in _through_gap(breaks, j, ready, travel):
                early, late = _on_time(visit) if on_time else visit.window
                start = max(arrive, early)
                if start > late:
                    continue
                end = start + visit.duration
                if nxt[k] is None or end < nxt[k]:
                    nxt[k] = end
        if all(t is None for t in nxt):
            return None
        if first_start is None:
            first_start = min(t - visit.duration for t in nxt if t is not None)
        free, here = nxt, visit.location
    back = problem.travel_time(worker, here, worker.end_location)
    best = None
    for j, ready in enumerate(free):
        if ready is None:
            continue
        for k, arrive in _through_gap(breaks, j, ready, back):
            # breaks still pending after the return can be taken off the route, if their windows allow
            if all(b.latest >= arrive for b in breaks[k:]) and arrive <= worker.shift[1]:
                best = arrive if best is None else min(best, arrive)
    if best is None:
        return None
    if worker.max_work is not None and visits:
        go = problem.travel_time(worker, worker.start_location, visits[0].location)
        if best - (first_start - go) > worker.max_work:
            return None
    return best


def _through_gap(breaks: Sequence[Break], taken: int, ready: int, travel: int):
    """(breaks taken after the gap, earliest arrival) for each number of further breaks taken in this gap."""
    yield taken, ready + travel
    clock, rest = ready, 0
    for k in range(taken, len(breaks)):
        brk = breaks[k]
        start = max(clock, brk.earliest)
        if start > brk.latest:
            return
        clock, rest = start + brk.duration, rest + brk.duration
        yield k + 1, max(ready + travel + rest, clock)


def repair_route(problem: Problem, worker: Worker, visits: Sequence[Visit]) -> list[Visit]:
    """The route with as few visits taken out as this greedy finds so that it fits the worker's breaks: each
    round takes out the visit whose removal leaves a route that fits (the least urgent and shortest first), or
    else the first visit that cannot be reached in time."""
    route = list(visits)
    while route and not route_fits(problem, worker, route):
        order = sorted(range(len(route)), key=lambda i: (route[i].urgent, route[i].duration))
        fixed = next((i for i in order if route_fits(problem, worker, route[:i] + route[i + 1:])), None)
        route.pop(fixed if fixed is not None else _first_late(problem, worker, route))
    return route


def _first_late(problem: Problem, worker: Worker, visits: list[Visit]) -> int:
    """The index of the first visit the route cannot reach in time (the last one if it is the way home)."""
    for k in range(1, len(visits) + 1):
        if not route_fits(problem, worker, visits[:k]):
            return k - 1
    return len(visits) - 1
