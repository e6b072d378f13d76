"""The roster solver: OR-Tools routing, one vehicle per worker-shift. Pure module.

A `Problem` (plain data, see `problem.py`) goes in, a `Plan` comes out. Hard rules: visit windows,
durations, shifts and start/end places, qualifications and the gender a recipient asks for (as the
vehicles allowed for a visit), longest working day, most visits a day, carried capacity, breaks inside
their windows, double-up visits (two workers starting together), visits already done or locked.
Soft goals: travel, continuity of carer, urgent visits dropped last, balanced days. Every visit is
optional with a penalty far above any travel, so a plan always comes back; visits that cannot be
placed are listed with the reason found.

OR-Tools 9.15 pitfalls handled here (see STACK-NOTES): skill restriction through
`VehicleVar(index).SetValues([-1] + allowed)` (SetAllowedVehiclesForIndex raises in 9.15); breaks read
through `IntervalVarContainer()`; insertion first solutions (PATH_CHEAPEST_ARC finds nothing on tight
windows); integer costs only.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from servicehub.scheduling import hgs
from servicehub.scheduling.problem import (
    CAPACITY,
    NO_QUALIFIED_WORKER,
    NO_ROOM,
    PAIR_INCOMPLETE,
    WINDOW_OUTSIDE_SHIFTS,
    Plan,
    Problem,
    Reload,
    Route,
    Stop,
    Visit,
    Worker,
    double_ups,
)

# The first plan from PyVRP on the relaxed day (`hgs.py`), then OR-Tools' search from it: the default.
PYVRP = "pyvrp"
# The share of the time limit PyVRP gets for the first plan; OR-Tools polishes the plan in the rest. Where the
# relaxation leaves nothing out (no breaks, double-ups, usual workers or balance: plain routing, as the VRPTW
# benchmarks are) OR-Tools has little to add and PyVRP gets nearly all of it.
PYVRP_SHARE = 0.6
PYVRP_SHARE_EXACT = 0.9
# The least time OR-Tools gets to read the first plan (see _solve_once).
FIRST_PLAN_READ_S = 30.0
# What PyVRP's start (its neighbour lists and first descent, which its time limit does not stop), the repair and
# OR-Tools' read of the first plan take per visit, kept free of PyVRP's time so that a short limit still ends on
# time (measured on a 1,000-visit day with breaks: 0.45 s, 0.1 s and 0.9-1.1 s, with a margin for a busy machine).
FIRST_PLAN_RESERVE_S_PER_VISIT = 0.0019
# With a fixed search budget (`solution_limit`), PyVRP's budget is a fixed number of iterations too: this many
# per visit, at least 100 and at most 500 (a ten-visit day needs no more), and no more than PYVRP_WORK / visits (an
# iteration's cost grows with the day: a 1,000-visit day placed as many after 50 as after 500, in a fifth of the time).
PYVRP_ITERATIONS_PER_VISIT = 20
PYVRP_ITERATIONS = (100, 500)
PYVRP_WORK = 50_000
FIRST_SOLUTIONS = {
    "parallel_cheapest_insertion": routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION,
    "local_cheapest_insertion": routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_INSERTION,
    "savings": routing_enums_pb2.FirstSolutionStrategy.SAVINGS,
    "christofides": routing_enums_pb2.FirstSolutionStrategy.CHRISTOFIDES,
    "path_cheapest_arc": routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC,
}


# A rush (see `rush_visits`): a start window at most this share of the longest shift, long enough for this many
# of its visits one after another, and holding that many for every worker.
RUSH_WINDOW_SHARE = 0.25
RUSH_VISITS_IN_A_ROW = 3
# The status of a plan whose search was stopped by its time limit before the first plan was complete.
NO_FIRST_PLAN = "FAILED_NO_FIRST_PLAN"


@dataclass(frozen=True)
class SolveOptions:
    """How long and how to search."""

    time_limit_s: float = 10.0
    solution_limit: int | None = None  # a fixed search budget: the same problem gives the same plan
    first_solution: str = PYVRP  # or one of OR-Tools' FIRST_SOLUTIONS
    processes: int = 1  # > 1: independent searches in parallel processes, the best plan wins
    initial_routes: dict | None = None  # worker id -> visit ids: a warm start (yesterday, a manual plan)
    # Search in a child process even with one search: OR-Tools holds the GIL while it searches, so a
    # search in a thread of a web or scheduler process would stop its other threads for the whole limit.
    isolated: bool = False
    optional_visit_operators: bool = True  # see OPTIONAL_VISIT_OPERATORS
    seed: int = 1  # PyVRP's
    log: bool = False


# --- which worker may take which visit ---------------------------------------------------------


def suitable_workers(problem: Problem, visit: Visit) -> list[int]:
    """Indexes of the workers qualified for a visit (skills, gender, a fixed or locked assignment)."""
    pinned = visit.fixed_worker if visit.fixed_worker is not None else visit.locked_worker
    return [
        v
        for v, worker in enumerate(problem.workers)
        if visit.skills <= worker.skills
        and (visit.gender is None or worker.gender == visit.gender)
        and (pinned is None or worker.id == pinned)
    ]


def reachable(problem: Problem, worker: Worker, visit: Visit) -> bool:
    """Whether the worker could do the visit at all on this shift: get there in its window and home in time."""
    go = problem.travel_time(worker, worker.start_location, visit.location)
    back = problem.travel_time(worker, visit.location, worker.end_location)
    if worker.max_work is not None and go + visit.duration + back > worker.max_work:
        return False
    if worker.capacity is not None and visit.demand > worker.capacity:
        return False
    # The earliest start that leaves every break room before or after the visit (a break cannot fall
    # inside a visit); later candidates are the ends of the breaks in the way.
    candidates = sorted({max(worker.shift[0] + go, visit.window[0])}
                        | {b.earliest + b.duration + go for b in worker.breaks})
    for start in candidates:
        start = max(start, visit.window[0])
        if start > visit.window[1] or start + visit.duration + back > worker.shift[1]:
            continue
        end = start + visit.duration
        if all(b.earliest + b.duration <= start - go or end <= b.latest
               for b in worker.breaks):
            return True
    return False


class _Reachability:
    """`reachable`, remembered by what it reads of the worker and the visit: workers who share start and end
    places, shift, breaks and limits share the answer (a 1,000-visit day asked it 200,000 times)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        kinds: dict[tuple, int] = {}
        self.kind = [kinds.setdefault((w.start_location, w.end_location, w.shift, w.breaks, w.max_work, w.capacity,
                                       w.profile), len(kinds)) for w in problem.workers]
        self.memo: dict[tuple, bool] = {}

    def __call__(self, w: int, visit: Visit) -> bool:
        key = (self.kind[w], visit.location, visit.duration, visit.window, visit.demand)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = reachable(self.problem, self.problem.workers[w], visit)
        return found


def _assess(problem: Problem, visit: Visit, reach: _Reachability) -> tuple[str | None, list[int]]:
    """(a reason no plan could hold the visit or None, the indexes of the workers who could take it)."""
    candidates = suitable_workers(problem, visit)
    if not candidates:
        return NO_QUALIFIED_WORKER, []
    if all(problem.workers[v].capacity is not None and visit.demand > problem.workers[v].capacity
           for v in candidates):
        return CAPACITY, []
    able = [v for v in candidates if reach(v, visit)]
    if not able:
        return WINDOW_OUTSIDE_SHIFTS, []
    return None, able


def _incomplete_pairs(problem: Problem, able: dict) -> set[str]:
    """The double-ups no plan can hold: a half nobody can take, or no two different workers for the halves
    (`able`: visit id -> the workers who could take it, for the visits some worker could)."""
    return {pair for pair, members in double_ups(problem.visits).items()
            if len(members) != 2 or not all(able.get(v.id) for v in members)
            or len(set(able[members[0].id]) | set(able[members[1].id])) < 2}


def why_unplaceable(problem: Problem, visit: Visit) -> str | None:
    """A reason no plan could ever hold this visit, or None if some worker could take it."""
    reach = _Reachability(problem)
    reason, _ = _assess(problem, visit, reach)
    if reason is None and visit.pair is not None:
        halves = [v for v in problem.visits if v.pair == visit.pair]
        able = {v.id: _assess(problem, v, reach)[1] for v in halves}
        if visit.pair in _incomplete_pairs(replace(problem, visits=tuple(halves)), able):
            return PAIR_INCOMPLETE
    return reason


# --- the model ---------------------------------------------------------------------------------


@dataclass
class _Model:
    problem: Problem
    visits: list[Visit]  # the visits in the model (node = 1 + index … after the depot nodes)
    depot_nodes: dict[int, int]  # location -> node
    node_location: list[int]
    node_duration: list[int]
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    time: pywrapcp.RoutingDimension
    breaks: dict[int, list] = field(default_factory=dict)  # vehicle -> interval vars
    reloads: list[tuple[int, int]] = field(default_factory=list)  # (vehicle, location) per refill node, after visits
    horizon: int = 0  # the latest time the time dimension holds
    unplaced: dict[int | str, str] = field(default_factory=dict)
    allowed: dict[int | str, list[int]] = field(default_factory=dict)  # visit id -> vehicles that may take it


@dataclass(frozen=True)
class _Assessed:
    """The visits some plan could hold, the workers who could take each, and why the others cannot be placed."""

    visits: list[Visit]
    allowed: dict[int | str, list[int]]
    unplaced: dict[int | str, str]


def _assess_day(problem: Problem) -> _Assessed:
    """Which visits go into the model and who may take them (PyVRP's first plan needs this, not the model)."""
    unplaced = {}
    modelled = []
    reach = _Reachability(problem)
    allowed = {}
    for visit in problem.visits:
        reason, allowed[visit.id] = _assess(problem, visit, reach)
        if reason is None:
            modelled.append(visit)
        else:
            unplaced[visit.id] = reason
    broken = _incomplete_pairs(problem, {v.id: allowed[v.id] for v in modelled})
    for visit in [v for v in modelled if v.pair in broken]:
        unplaced[visit.id] = PAIR_INCOMPLETE
    modelled = [v for v in modelled if v.pair not in broken]
    return _Assessed(modelled, {v.id: allowed[v.id] for v in modelled}, unplaced)


def _build(problem: Problem, assessed: _Assessed | None = None) -> _Model:
    assessed = assessed or _assess_day(problem)
    modelled, allowed, unplaced = assessed.visits, assessed.allowed, dict(assessed.unplaced)

    depot_locations = sorted({w.start_location for w in problem.workers} | {w.end_location for w in problem.workers})
    depot_nodes = {loc: n for n, loc in enumerate(depot_locations)}
    reloads = _reload_nodes(problem, modelled, allowed)
    node_location = depot_locations + [v.location for v in modelled] + [loc for _, loc in reloads]
    node_duration = ([0] * len(depot_locations) + [v.duration for v in modelled]
                     + [problem.workers[w].reload_duration for w, _ in reloads])
    first_visit_node = len(depot_locations)
    n_nodes = len(node_location)
    n_vehicles = len(problem.workers)
    starts = [depot_nodes[w.start_location] for w in problem.workers]
    ends = [depot_nodes[w.end_location] for w in problem.workers]
    manager = pywrapcp.RoutingIndexManager(n_nodes, n_vehicles, starts, ends)
    routing = pywrapcp.RoutingModel(manager)

    # Transit matrices by node: service of the node left + travel. Indexed by node, registered in C++.
    by_node = _NodeMatrices(node_location)
    profiles = sorted({w.profile for w in problem.workers})
    time_callbacks = {}
    leaving = np.asarray(node_duration, dtype=np.int64)[:, None]
    for profile in profiles:
        matrix = by_node(problem.travel[profile]) + leaving
        time_callbacks[profile] = routing.RegisterTransitMatrix(matrix.tolist())
    cost_callbacks = _register_costs(problem, routing, modelled, by_node, first_visit_node)
    for v, callback in enumerate(cost_callbacks):
        routing.SetArcCostEvaluatorOfVehicle(callback, v)

    horizon = max(w.shift[1] for w in problem.workers) if problem.workers else 0
    horizon = max([horizon] + [v.window[1] + v.duration for v in modelled])
    routing.AddDimensionWithVehicleTransits(
        [time_callbacks[w.profile] for w in problem.workers], horizon, horizon, False, "Time"
    )
    time_dim = routing.GetDimensionOrDie("Time")
    model = _Model(problem, modelled, depot_nodes, node_location, node_duration, manager, routing, time_dim,
                   unplaced=unplaced, allowed=allowed, reloads=reloads,
                   horizon=horizon)
    _add_shifts(model)
    _add_visits(model, first_visit_node)
    _add_double_ups(model)
    _add_tardiness(model)
    _add_reloads(model)
    _add_counts_and_loads(model, first_visit_node)
    _add_breaks(model)
    return model


# The most refills a worker's model holds per refill place.
MAX_RELOADS = 8


def _reload_nodes(problem: Problem, visits: list[Visit], allowed: dict) -> list[tuple[int, int]]:
    """(vehicle, location) of each optional refill node: per worker who carries a load and may refill, as many per
    place as the load of the visits it may take could need (at most MAX_RELOADS)."""
    nodes = []
    for w, worker in enumerate(problem.workers):
        if not worker.reload_locations or not worker.capacity:
            continue
        load = sum(v.demand for v in visits if w in allowed[v.id])
        copies = min(MAX_RELOADS, max(0, math.ceil(load / worker.capacity) - 1))
        nodes += [(w, loc) for loc in worker.reload_locations for _ in range(copies)]
    return nodes


class _NodeMatrices:
    """A matrix between locations as one between the model's nodes (numpy: a 1,000-visit day's matrices took
    half a second as lists); each source converted once."""

    def __init__(self, node_location: list[int]):
        self.nodes = np.asarray(node_location)
        self.converted: dict[int, np.ndarray] = {}

    def __call__(self, source) -> np.ndarray:
        if id(source) not in self.converted:
            self.converted[id(source)] = np.asarray(source, dtype=np.int64)[np.ix_(self.nodes, self.nodes)]
        return self.converted[id(source)]


def _register_costs(problem: Problem, routing, visits: list[Visit], by_node: _NodeMatrices,
                    first_visit_node: int) -> list[int]:
    """One arc-cost evaluator per vehicle: travel (or the problem's cost) plus the continuity penalty."""
    preferring = [(first_visit_node + k, visit) for k, visit in enumerate(visits) if visit.preferred_workers]
    shared: dict[str, int] = {}
    callbacks = []
    for worker in problem.workers:
        base = by_node(problem.cost if problem.cost is not None else problem.travel[worker.profile])
        penalised = [node for node, visit in preferring if worker.id not in visit.preferred_workers]
        if not penalised:
            if worker.profile not in shared:
                shared[worker.profile] = routing.RegisterTransitMatrix(base.tolist())
            callbacks.append(shared[worker.profile])
            continue
        matrix = base.copy()
        matrix[:, penalised] += problem.weights.continuity
        matrix[penalised, penalised] -= problem.weights.continuity  # not on the arc from a node to itself
        callbacks.append(routing.RegisterTransitMatrix(matrix.tolist()))
    return callbacks


def _add_shifts(model: _Model) -> None:
    routing, time_dim = model.routing, model.time
    for v, worker in enumerate(model.problem.workers):
        start, end = routing.Start(v), routing.End(v)
        time_dim.CumulVar(start).SetRange(worker.shift[0], worker.shift[1])
        time_dim.CumulVar(end).SetRange(worker.shift[0], worker.shift[1])
        if worker.max_work is not None:
            time_dim.SetSpanUpperBoundForVehicle(worker.max_work, v)
        # Leave as late and come back as early as the route allows: the day as short as it can be.
        routing.AddVariableMaximizedByFinalizer(time_dim.CumulVar(start))
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(end))


def _add_visits(model: _Model, first_visit_node: int) -> None:
    problem, routing, manager, time_dim = model.problem, model.routing, model.manager, model.time
    all_vehicles = set(range(len(problem.workers)))
    for k, visit in enumerate(model.visits):
        index = manager.NodeToIndex(first_visit_node + k)
        cumul = time_dim.CumulVar(index)
        cumul.SetRange(visit.window[0], visit.window[1])
        allowed = model.allowed[visit.id]
        if visit.fixed_worker is not None:
            routing.VehicleVar(index).SetValues(allowed)  # done or under way: always on the route
            if visit.fixed_start is not None:
                cumul.SetValue(visit.fixed_start)
            continue
        if set(allowed) != all_vehicles:
            routing.VehicleVar(index).SetValues([-1, *allowed])
        penalty = problem.weights.drop_urgent if visit.urgent else problem.weights.drop
        routing.AddDisjunction([index], penalty)
        routing.AddToAssignment(routing.ActiveVar(index))


def _add_double_ups(model: _Model) -> None:
    """Both halves of a double-up or neither, on two workers, starting together or the later half inside its gap
    after the other (only when done: an undone pair's times are free)."""
    routing, time_dim = model.routing, model.time
    solver = routing.solver()
    index_of = _index_of(model)
    horizon = model.horizon
    for first, later in double_ups(model.visits).values():
        a, b = index_of[first.id], index_of[later.id]
        solver.Add(routing.ActiveVar(a) == routing.ActiveVar(b))
        solver.Add(solver.AllDifferentExcept([routing.VehicleVar(a), routing.VehicleVar(b)], -1))
        if later.pair_gap is None:
            solver.Add(time_dim.CumulVar(a) == time_dim.CumulVar(b))
            continue
        low, high = later.pair_gap
        gap, done = time_dim.CumulVar(b) - time_dim.CumulVar(a), routing.ActiveVar(a)
        solver.Add(gap + horizon >= (low + horizon) * done)
        solver.Add(gap <= high + horizon - horizon * done)


def _add_tardiness(model: _Model) -> None:
    """A visit's start after its `due` costs Weights.tardiness per time unit; the day's largest tardiness costs
    Weights.max_tardiness per unit: a dimension whose value only grows along a route and is at least each visit's
    tardiness ends every route at no less than its largest, and its global span (the largest end) is priced."""
    problem, routing, time_dim = model.problem, model.routing, model.time
    due = [(index, visit.due) for visit, index in zip(model.visits, _index_of(model).values(), strict=True)
           if visit.due is not None and visit.due < visit.window[1]]
    if not due:
        return
    for index, latest in due:
        time_dim.SetCumulVarSoftUpperBound(index, latest, problem.weights.tardiness)
    if not problem.weights.max_tardiness:
        return
    horizon = model.horizon
    routing.AddConstantDimensionWithSlack(0, horizon, horizon, True, "Lateness")
    lateness = routing.GetDimensionOrDie("Lateness")
    solver = routing.solver()
    for index, latest in due:
        solver.Add(lateness.CumulVar(index) >= time_dim.CumulVar(index) - latest)
    lateness.SetGlobalSpanCostCoefficient(problem.weights.max_tardiness)
    for v in range(len(problem.workers)):
        routing.AddVariableMinimizedByFinalizer(lateness.CumulVar(routing.End(v)))


def _add_reloads(model: _Model) -> None:
    """Refill nodes: optional, free, each on its own worker's route only."""
    routing, manager = model.routing, model.manager
    first = len(model.depot_nodes) + len(model.visits)
    for k, (w, _) in enumerate(model.reloads):
        index = manager.NodeToIndex(first + k)
        routing.VehicleVar(index).SetValues([-1, w])
        routing.AddDisjunction([index], 0)


def _add_counts_and_loads(model: _Model, first_visit_node: int) -> None:
    problem, routing = model.problem, model.routing
    counts = [0] * first_visit_node + [1] * len(model.visits) + [0] * len(model.reloads)
    if any(w.max_visits is not None for w in problem.workers) or problem.balance:
        big = len(model.visits) + 1
        count_cb = routing.RegisterUnaryTransitVector(counts)
        routing.AddDimensionWithVehicleCapacity(
            count_cb, 0, [w.max_visits if w.max_visits is not None else big for w in problem.workers], True, "Visits"
        )
        if problem.balance and problem.workers and model.visits:
            visits_dim = routing.GetDimensionOrDie("Visits")
            fair = math.ceil(len(model.visits) / len(problem.workers))
            for v in range(len(problem.workers)):
                visits_dim.SetCumulVarSoftUpperBound(routing.End(v), fair, problem.weights.balance * 10)
    if any(v.demand for v in model.visits):
        # A refill node takes the whole box off the load; its slack puts back what is still in the box (the load
        # after it is anything from nothing to what it was); no other node has slack.
        refills = [-problem.workers[w].capacity for w, _ in model.reloads]
        demands = [0] * first_visit_node + [v.demand for v in model.visits] + refills
        demand_cb = routing.RegisterUnaryTransitVector(demands)
        huge = sum(v.demand for v in model.visits) + 1
        routing.AddDimensionWithVehicleCapacity(
            demand_cb, -min(refills, default=0),
            [w.capacity if w.capacity is not None else huge for w in problem.workers], True, "Load"
        )
        if model.reloads:
            load = routing.GetDimensionOrDie("Load")
            first_reload = first_visit_node + len(model.visits)
            for index in range(routing.Size()):
                if routing.IsStart(index) or model.manager.IndexToNode(index) < first_reload:
                    load.SlackVar(index).SetValue(0)


def _add_breaks(model: _Model) -> None:
    problem, routing, manager, time_dim = model.problem, model.routing, model.manager, model.time
    if not any(w.breaks for w in problem.workers):
        return
    solver = routing.solver()
    node_visit_transits = [model.node_duration[manager.IndexToNode(i)] for i in range(routing.Size())]
    for v, worker in enumerate(problem.workers):
        if not worker.breaks:
            continue
        intervals = [
            solver.FixedDurationIntervalVar(b.earliest, b.latest, b.duration, False, f"break_{v}_{k}")
            for k, b in enumerate(worker.breaks)
        ]
        time_dim.SetBreakIntervalsOfVehicle(intervals, v, node_visit_transits)
        model.breaks[v] = intervals


# Operators for optional visits, off by default in OR-Tools 9.15: they add visits a full day left out (measured
# in bench/README.md, "Scheduling: the first plan").
OPTIONAL_VISIT_OPERATORS = (
    "use_exchange_and_make_active", "use_relocate_and_make_active", "use_extended_swap_active",
    "use_global_cheapest_insertion_close_nodes_lns", "use_local_cheapest_insertion_close_nodes_lns",
)


def _parameters(options: SolveOptions) -> pywrapcp.DefaultRoutingSearchParameters:
    params = pywrapcp.DefaultRoutingSearchParameters()
    insertion = options.first_solution if options.first_solution in FIRST_SOLUTIONS else "parallel_cheapest_insertion"
    params.first_solution_strategy = FIRST_SOLUTIONS[insertion]
    # Candidate lists: insertion scans each visit's nearest places only, not every route position (its first
    # plan of a 1,000-visit day went from 23 s to 3.8 s).
    params.global_cheapest_insertion_first_solution_parameters.neighbors_ratio = 0.05
    params.global_cheapest_insertion_first_solution_parameters.min_neighbors = 50
    if options.optional_visit_operators:
        for name in OPTIONAL_VISIT_OPERATORS:
            setattr(params.local_search_operators, name, 3)  # BOOL_TRUE
    # Guided local search. (Iterated local search with SISR ruin is in the 9.15 parameters, but
    # setting it through pywrapcp changed nothing on the Solomon instances: the search stopped at the
    # first local optimum. Measured in bench/README.md.)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, int(options.time_limit_s * 1000)))
    if options.solution_limit:
        params.solution_limit = options.solution_limit
    params.log_search = options.log
    return params


def _read_plan(model: _Model, solution) -> Plan:
    problem, routing, manager, time_dim = model.problem, model.routing, model.manager, model.time
    plan = Plan(unplaced=dict(model.unplaced), objective=solution.ObjectiveValue())
    first_visit_node = len(model.depot_nodes)
    intervals = solution.IntervalVarContainer()
    break_values = {}
    for k in range(intervals.Size()):
        element = intervals.Element(k)
        if element.PerformedValue():
            break_values[element.Var().Name()] = (element.StartValue(), element.StartValue() + element.DurationValue())
    for v, worker in enumerate(problem.workers):
        route = Route(worker_id=worker.id)
        index = routing.Start(v)
        route.departure = solution.Min(time_dim.CumulVar(index))
        previous_end, previous_location = route.departure, worker.start_location
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            if node - first_visit_node >= len(model.visits):  # a refill
                location = model.node_location[node]
                travel = problem.travel_time(worker, previous_location, location)
                arrival = previous_end + travel
                route.reloads.append(Reload(location, len(route.stops), arrival, arrival + worker.reload_duration))
                route.travel += travel
                previous_end, previous_location = arrival + worker.reload_duration, location
                index = solution.Value(routing.NextVar(index))
                continue
            visit = model.visits[node - first_visit_node]
            travel = problem.travel_time(worker, previous_location, visit.location)
            start = solution.Min(time_dim.CumulVar(index))
            route.stops.append(Stop(visit.id, previous_end + travel, start, start + visit.duration, travel))
            route.travel += travel
            previous_end, previous_location = start + visit.duration, visit.location
            index = solution.Value(routing.NextVar(index))
        back = problem.travel_time(worker, previous_location, worker.end_location)
        route.travel += back
        route.return_time = solution.Min(time_dim.CumulVar(index))
        route.breaks = sorted(value for name, value in break_values.items() if name.startswith(f"break_{v}_"))
        if not route.stops:
            route.departure = route.return_time = None
            route.travel = 0
            route.reloads = []
        plan.routes[worker.id] = route
    placed = {stop.visit_id for route in plan.routes.values() for stop in route.stops}
    demand = {visit.id: visit.demand for visit in model.visits}
    loads = {worker.id: sum(demand[s.visit_id] for s in plan.routes[worker.id].stops) for worker in problem.workers}
    for visit in model.visits:
        if visit.id not in placed:
            plan.unplaced[visit.id] = _why_left_out(problem, visit, loads)
    return plan


def _why_left_out(problem: Problem, visit: Visit, loads: dict) -> str:
    """Why a visit that some worker could take was left out: every box full (capacity), or days full."""
    if visit.demand:
        able = [problem.workers[v] for v in suitable_workers(problem, visit)
                if reachable(problem, problem.workers[v], visit)]
        if all(w.capacity is not None and not w.reload_locations and loads[w.id] + visit.demand > w.capacity
               for w in able):
            return CAPACITY
    return NO_ROOM


def _initial_assignment(model: _Model, initial_routes: dict | None):
    if not initial_routes:
        return None
    routes = _route_indexes(model, initial_routes)
    model.routing.CloseModelWithParameters(pywrapcp.DefaultRoutingSearchParameters())
    return model.routing.ReadAssignmentFromRoutes(routes, True)


def _route_indexes(model: _Model, routes: dict) -> list[list[int]]:
    """Worker id -> visit ids, as OR-Tools' routes: one list of routing indexes per vehicle."""
    index_of = _index_of(model)
    return [[index_of[v] for v in routes.get(worker.id, []) if v in index_of] for worker in model.problem.workers]


def _first_plan_assignment(model: _Model, routes: dict, deadline: float):
    """The relaxed first plan as an OR-Tools assignment: all of it, or, if OR-Tools refuses it (a route the
    repair let through that breaks a rule of the full model), the routes it accepts one by one until `deadline`."""
    indexes = _route_indexes(model, routes)
    assignment = model.routing.ReadAssignmentFromRoutes(indexes, True)
    if assignment is not None:
        return assignment
    empty = [[] for _ in indexes]
    kept = []
    for v, route in enumerate(indexes):
        alone = empty[:v] + [route] + empty[v + 1:]
        fits = route and time.perf_counter() < deadline and model.routing.ReadAssignmentFromRoutes(alone, True)
        kept.append(route if fits else [])
    return model.routing.ReadAssignmentFromRoutes(kept, True)


def relaxation_holds(problem: Problem) -> bool:
    """Whether PyVRP's relaxed first plan (hgs.py) can be repaired into one of this day: not with refills, which
    it neither models nor repairs (OR-Tools' insertion plans those days)."""
    return not any(w.reload_locations for w in problem.workers)


def _pyvrp_share(problem: Problem) -> float:
    """The share of the time limit for PyVRP's first plan (see PYVRP_SHARE)."""
    relaxed = (problem.balance or any(w.breaks for w in problem.workers)
               or any(v.pair or v.preferred_workers for v in problem.visits))
    return PYVRP_SHARE if relaxed else PYVRP_SHARE_EXACT


def _pyvrp_routes(problem: Problem, assessed: _Assessed, options: SolveOptions, deadline: float) -> dict:
    """The first plan of the day's relaxed problem from PyVRP (see hgs.py), repaired for the breaks."""
    return hgs.relaxed_routes(problem, assessed.visits, assessed.allowed, deadline, seed=options.seed,
                              iterations=_fixed_iterations(len(assessed.visits)) if options.solution_limit else None)


def _fixed_iterations(visits: int) -> int:
    """PyVRP's iterations under a fixed search budget (see PYVRP_ITERATIONS)."""
    low, high = PYVRP_ITERATIONS
    return max(low, min(high, PYVRP_ITERATIONS_PER_VISIT * visits, PYVRP_WORK // max(visits, 1)))


def rush_visits(problem: Problem) -> list[Visit]:
    """The visits of a rush: one start window, narrow against the day but long enough for a worker to do several
    of its visits in a row, holds that many for every worker (lunches between 10:30 and 12:30).

    Cheapest insertion over the whole day lets the flexible visits take the rush's hours first, and the local
    search cannot undo it in seconds; so `_solve_once` plans the rush first (see `_rush_routes`). Not on a day
    with visits done, under way or moved by hand: the rush, locked at the start of the routes, could shut them out.
    """
    pinned = any(v.fixed_worker is not None or v.locked_worker is not None for v in problem.visits)
    if not problem.workers or pinned:
        return []
    longest = max(w.shift[1] - w.shift[0] for w in problem.workers)
    by_window: dict[tuple[int, int], list[Visit]] = {}
    for visit in problem.visits:
        width = visit.window[1] - visit.window[0]
        if visit.pair is None and RUSH_VISITS_IN_A_ROW * visit.duration <= width <= RUSH_WINDOW_SHARE * longest:
            by_window.setdefault(visit.window, []).append(visit)
    rush = [visit for group in by_window.values() if len(group) >= RUSH_VISITS_IN_A_ROW * len(problem.workers)
            for visit in group]
    return rush if len(rush) < len(problem.visits) else []


def _rush_routes(problem: Problem, options: SolveOptions) -> dict | None:
    """Worker id -> the rush visits of a first plan of the rush alone, in route order; None without a rush (or a
    warm start, or when no plan of the rush is found in half the time)."""
    rush = rush_visits(problem)
    if not rush or options.initial_routes:
        return None
    plan = _solve_once(replace(problem, visits=tuple(rush)),
                       replace(options, time_limit_s=options.time_limit_s / 2, solution_limit=1))
    if plan.status != "SOLVED":
        return None
    return {worker: [stop.visit_id for stop in route.stops] for worker, route in plan.routes.items()}


def _index_of(model: _Model) -> dict[int | str, int]:
    """Visit id -> its routing index in the model."""
    first_visit_node = len(model.depot_nodes)
    return {visit.id: model.manager.NodeToIndex(first_visit_node + k) for k, visit in enumerate(model.visits)}


def _lock_rush(model: _Model, routes: dict) -> bool:
    """Start each worker's route with its rush visits, in the rush plan's order (OR-Tools locks, which hold through
    the search: the rest of the day is planned after them); False if OR-Tools refuses the chains."""
    return model.routing.ApplyLocksToAllVehicles(_route_indexes(model, routes), False)


def _solve_once(problem: Problem, options: SolveOptions) -> Plan:
    started = time.perf_counter()
    if not problem.workers:
        return Plan(unplaced={v.id: NO_QUALIFIED_WORKER for v in problem.visits}, status="NO_WORKERS")
    pinned = any(v.fixed_worker is not None for v in problem.visits)
    use_pyvrp = (options.first_solution == PYVRP and not options.initial_routes and not pinned
                 and relaxation_holds(problem))
    rush = None if use_pyvrp else _rush_routes(problem, options)
    assessed = _assess_day(problem)
    routes = None
    if use_pyvrp and assessed.visits:
        # PyVRP first, the OR-Tools model after (its start-up overlaps nothing else), stopping early enough for the
        # repair and OR-Tools' read of its plan to end inside the limit.
        reserve = FIRST_PLAN_RESERVE_S_PER_VISIT * len(assessed.visits)
        deadline = min(started + options.time_limit_s * _pyvrp_share(problem),
                       started + options.time_limit_s - reserve)
        routes = _pyvrp_routes(problem, assessed, options, deadline)
    model = _build(problem, assessed)
    initial = first_plan_s = None
    if routes is not None:
        # Reading the plan runs under the closing parameters' time limit and may take seconds on a large day with
        # breaks (1.3 s for 1,000 visits on a busy machine): it gets at least FIRST_PLAN_READ_S, since a plan read
        # late beats none, and the search (its own parameters) what is left of the limit after it.
        model.routing.CloseModelWithParameters(
            _parameters(replace(options, time_limit_s=max(options.time_limit_s, FIRST_PLAN_READ_S))))
        initial = _first_plan_assignment(model, routes, started + options.time_limit_s)
        first_plan_s = time.perf_counter() - started if initial is not None else None
        left = options.time_limit_s - (time.perf_counter() - started)
        params = _parameters(replace(options, time_limit_s=max(left, 0.001)))
        if initial is not None and left <= 0.05:
            params = None  # no time to improve it: the first plan is the plan
    else:
        left = options.time_limit_s - (time.perf_counter() - started)
        params = _parameters(replace(options, time_limit_s=max(left, 0.001)))
        if options.initial_routes:
            model.routing.CloseModelWithParameters(params)
            initial = _initial_assignment(model, options.initial_routes)
        elif rush:
            model.routing.CloseModelWithParameters(params)
            if not _lock_rush(model, rush):
                model = _build(problem, assessed)
    if initial is not None:
        solution = initial if params is None else model.routing.SolveFromAssignmentWithParameters(initial, params)
        if solution is None:  # no time left to improve it: the first plan is the plan
            solution = initial
    else:
        solution = model.routing.SolveWithParameters(params)
    status = model.routing.status()
    if solution is None:
        plan = Plan(unplaced={**model.unplaced, **{v.id: NO_ROOM for v in model.visits}}, status=f"FAILED_{status}")
    else:
        plan = _read_plan(model, solution)
        plan.status = "SOLVED" if _placed_any(plan) or all(v.pair for v in model.visits) else NO_FIRST_PLAN
    plan.seconds = round(time.perf_counter() - started, 3)
    if first_plan_s is not None and plan.status == "SOLVED":
        plan.first_plan_s = round(first_plan_s, 3)
    return plan


def relaxed_plan(problem: Problem, time_limit_s: float, seed: int = 1) -> dict:
    """Worker id -> visit ids: PyVRP's plan alone of the day's relaxed problem, breaks repaired and double-ups put
    in, searched for the whole limit (the benchmarks' anchor: what the best open solver places on the same day)."""
    assessed = _assess_day(problem)
    return hgs.relaxed_routes(problem, assessed.visits, assessed.allowed, time.perf_counter() + time_limit_s,
                              seed=seed)


def _placed_any(plan: Plan) -> bool:
    """Whether the plan holds a visit. Every modelled visit but a double-up fits some route alone, so a plan of
    empty routes is what OR-Tools returns when its time limit stops the insertion heuristic, not a full day."""
    return any(route.stops for route in plan.routes.values())


def _variants(options: SolveOptions) -> list[SolveOptions]:
    """The independent searches of a solve: PyVRP first plans from different seeds, or OR-Tools' searches from
    different insertion heuristics."""
    one = replace(options, processes=1, isolated=False)
    if options.first_solution == PYVRP:
        return [replace(one, seed=options.seed + k) for k in range(options.processes)]
    alternatives = ["local_cheapest_insertion", "parallel_cheapest_insertion", "savings"]
    others = [s for s in alternatives if s != options.first_solution]
    return [one] + [replace(one, first_solution=others[k % len(others)]) for k in range(options.processes - 1)]


def solve(problem: Problem, options: SolveOptions = SolveOptions()) -> Plan:
    """Plan the visits on the workers' routes; the best of `options.processes` independent searches."""
    if options.processes <= 1 and not options.isolated:
        return _solve_once(problem, options)
    started = time.perf_counter()
    variants = _variants(options)
    # spawn, not fork: the caller may be a threaded web or scheduler process.
    with ProcessPoolExecutor(max_workers=len(variants), mp_context=multiprocessing.get_context("spawn")) as pool:
        plans = list(pool.map(_solve_once, [problem] * len(variants), variants))
    best = min(plans, key=lambda p: (len(p.unplaced), p.objective if p.objective is not None else math.inf))
    best.seconds = round(time.perf_counter() - started, 3)
    return best


def plan_summary(plan: Plan, visits: Sequence[Visit]) -> dict:
    """Counts for reports: placed, unplaced by reason, travel."""
    reasons: dict[str, int] = {}
    for reason in plan.unplaced.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"visits": len(visits), "placed": len(visits) - len(plan.unplaced), "unplaced": reasons,
            "travel": plan.travel, "status": plan.status, "seconds": plan.seconds}
