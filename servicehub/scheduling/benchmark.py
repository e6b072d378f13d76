"""Solving Solomon VRPTW instances with the roster solver, for the benchmark. Pure module."""

from __future__ import annotations

import time

from servicehub.scheduling import solomon
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
