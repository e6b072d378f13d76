"""Solving benchmark instances (Solomon VRPTW, Mankowska home care) with the roster solver. Pure module."""

from __future__ import annotations

import time

from servicehub.scheduling import hhc, solomon
from servicehub.scheduling.solver import SolveOptions, solve
from servicehub.scheduling.validate import plan_violations


def solve_solomon(path: str, time_limit_s: float, vehicles: int | None = None, processes: int = 2) -> dict:
    """Solve one instance file; the JSON-ready result: instance, distance, vehicles, feasible, seconds, routes."""
    instance = solomon.read_instance(path)
    problem = solomon.to_problem(instance, vehicles)
    started = time.perf_counter()
    plan = solve(problem, SolveOptions(time_limit_s=time_limit_s, processes=processes))
    seconds = round(time.perf_counter() - started, 2)
    result = solomon.score(instance, plan)
    result["feasible"] = result["feasible"] and not plan_violations(problem, plan)
    return {**{k: result[k] for k in ("instance", "distance", "vehicles", "feasible")}, "seconds": seconds,
            "routes": result["routes"]}


def solve_hhc(path: str, time_limit_s: float, processes: int = 2) -> dict:
    """Solve one home-care instance file (hhc.InstanceError if it is not one); the JSON-ready result: instance,
    distance, total and largest tardiness, total cost, seconds, unplaced services, violations, routes."""
    instance = hhc.read_instance(path)
    problem = hhc.to_problem(instance)
    started = time.perf_counter()
    plan = solve(problem, SolveOptions(time_limit_s=time_limit_s, processes=processes))
    seconds = round(time.perf_counter() - started, 2)
    routes = hhc.solution_routes(instance, plan)
    return {"instance": instance.name, **hhc.score(instance, routes), "seconds": seconds,
            "unplaced": sorted(map(str, plan.unplaced)), "violations": plan_violations(problem, plan),
            "routes": routes}
