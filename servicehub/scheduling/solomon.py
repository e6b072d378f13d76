"""Solomon VRPTW instances (the original text format) as scheduling problems, and their scores. Pure module.

The DIMACS convention: Euclidean distances truncated to one decimal, travel time equal to distance,
total distance the objective. Internally everything is in tenths, so all arithmetic is exact integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from servicehub.scheduling.problem import Plan, Problem, Visit, Weights, Worker

SCALE = 10  # tenths: one decimal, truncated


@dataclass(frozen=True)
class Customer:
    """One row of the CUSTOMER table (number 0 is the depot)."""

    number: int
    x: float
    y: float
    demand: int
    ready: int
    due: int
    service: int


@dataclass(frozen=True)
class Instance:
    """A Solomon instance: its name, fleet and customers."""

    name: str
    vehicles: int
    capacity: int
    customers: tuple[Customer, ...]  # depot first


def read_instance(path: str | Path) -> Instance:
    """Parse the original Solomon text format (NAME, VEHICLE NUMBER/CAPACITY, CUSTOMER table)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    name = next(line for line in lines if line)
    numbers = [line.split() for line in lines if line and line.split()[0].isdigit()]
    vehicles, capacity = (int(v) for v in numbers[0])
    customers = tuple(
        Customer(int(r[0]), float(r[1]), float(r[2]), int(float(r[3])), int(float(r[4])), int(float(r[5])),
                 int(float(r[6])))
        for r in numbers[1:]
    )
    if customers[0].number != 0:
        raise ValueError(f"{path}: the first customer row must be the depot (number 0)")
    return Instance(name=name, vehicles=vehicles, capacity=capacity, customers=customers)


def distance_matrix(instance: Instance) -> tuple[tuple[int, ...], ...]:
    """Distances in tenths, truncated (DIMACS): floor(10 × Euclidean distance)."""
    points = [(c.x, c.y) for c in instance.customers]
    return tuple(
        tuple(math.floor(SCALE * math.hypot(ax - bx, ay - by) + 1e-9) for bx, by in points) for ax, ay in points
    )


def to_problem(instance: Instance, vehicles: int | None = None) -> Problem:
    """The instance as a scheduling problem: customers are visits, vehicles are workers at the depot."""
    matrix = distance_matrix(instance)
    depot = instance.customers[0]
    visits = tuple(
        Visit(id=c.number, location=c.number, duration=c.service * SCALE, window=(c.ready * SCALE, c.due * SCALE),
              demand=c.demand)
        for c in instance.customers[1:]
    )
    workers = tuple(
        Worker(id=k, start_location=0, end_location=0, shift=(depot.ready * SCALE, depot.due * SCALE),
               capacity=instance.capacity)
        for k in range(vehicles or instance.vehicles)
    )
    return Problem(visits=visits, workers=workers, travel={"default": matrix}, cost=matrix,
                   weights=Weights(drop=10_000_000, drop_urgent=10_000_000, continuity=0, balance=0), balance=False)


def score(instance: Instance, plan: Plan) -> dict:
    """Distance (DIMACS, one decimal), vehicles used, feasibility, and the routes by customer number."""
    matrix = distance_matrix(instance)
    routes = [[stop.visit_id for stop in route.stops] for route in plan.routes.values() if route.stops]
    total = 0
    for route in routes:
        path = [0, *route, 0]
        total += sum(matrix[a][b] for a, b in zip(path, path[1:], strict=False))
    return {
        "instance": instance.name,
        "distance": round(total / SCALE, 1),
        "vehicles": len(routes),
        "feasible": not plan.unplaced,
        "routes": routes,
    }
