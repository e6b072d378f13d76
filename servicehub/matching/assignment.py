"""District-wide assignment of needs to contract lines with OR-Tools CP-SAT. Pure module.

Every eligible (need, line) pair is a candidate with the units it would take from the line and its
score. One solve per service type (lines of a type serve only needs of that type), maximising, in
this order: urgent needs placed, needs placed, total score — so that a first-come choice does not
use up a line that later needs depend on. A manager's locked choice is kept as it is. `greedy` is the
first-come baseline the benchmark compares against.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

UNIT_SCALE = 100  # units are fractional (4.33 visits a month): work in hundredths
SCORE_SCALE = 1000


@dataclass(frozen=True)
class Candidate:
    """A need that a line could serve: the units it takes and how good the match is (0..1)."""

    need_id: int
    line_id: int
    service_type: str
    units: float
    score: float
    urgent: bool = False


@dataclass
class AssignmentResult:
    """Which line each placed need goes to; the needs left unplaced; how the solve went."""

    chosen: dict[int, int] = field(default_factory=dict)  # need id -> line id
    unplaced: set[int] = field(default_factory=set)
    status: str = "OPTIMAL"
    seconds: float = 0.0

    @property
    def placed(self) -> int:
        """How many needs were placed."""
        return len(self.chosen)


def _scaled_units(units: float) -> int:
    return math.ceil(round(units * UNIT_SCALE, 6))


def _scaled_capacity(capacity: float) -> int:
    return math.floor(round(capacity * UNIT_SCALE, 6))


def assign(
    candidates: list[Candidate],
    capacities: dict[int, float],
    *,
    locks: dict[int, int] | None = None,
    time_limit_s: float = 30.0,
    workers: int = 2,
    seed: int = 0,
) -> AssignmentResult:
    """Place as many needs (urgent first) as the lines' remaining units allow, then the best-scored way."""
    started = time.perf_counter()
    locks = locks or {}
    result = AssignmentResult()
    by_type: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_type[candidate.service_type].append(candidate)
    total = max(1, len(candidates))
    statuses = set()
    for group in by_type.values():
        budget = max(1.0, time_limit_s * len(group) / total)
        statuses.add(_solve_group(group, capacities, locks, budget, workers, seed, result))
    all_needs = {c.need_id for c in candidates}
    result.unplaced = all_needs - set(result.chosen)
    result.status = "OPTIMAL" if statuses <= {"OPTIMAL"} else ("FEASIBLE" if "FEASIBLE" in statuses else "UNKNOWN")
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _solve_group(group, capacities, locks, time_limit_s, workers, seed, result) -> str:
    model = cp_model.CpModel()
    chosen_var = {}
    per_need: dict[int, list] = defaultdict(list)
    per_line: dict[int, list] = defaultdict(list)
    for candidate in group:
        var = model.new_bool_var(f"x_{candidate.need_id}_{candidate.line_id}")
        chosen_var[(candidate.need_id, candidate.line_id)] = (var, candidate)
        per_need[candidate.need_id].append(var)
        per_line[candidate.line_id].append((_scaled_units(candidate.units), var))
    for need_id, variables in per_need.items():
        model.add_at_most_one(variables)
        if need_id in locks and (need_id, locks[need_id]) in chosen_var:
            model.add(chosen_var[(need_id, locks[need_id])][0] == 1)
    for line_id, terms in per_line.items():
        model.add(sum(units * var for units, var in terms) <= _scaled_capacity(capacities.get(line_id, 0)))
    # Lexicographic by weights: one more placed need outweighs any scores; one more urgent need
    # outweighs any number of normal ones.
    n = len(per_need)
    place_weight = SCORE_SCALE * n + 1
    urgent_weight = place_weight * (n + 1)
    model.maximize(
        sum(
            var * ((urgent_weight if c.urgent else 0) + place_weight + round(c.score * SCORE_SCALE))
            for var, c in chosen_var.values()
        )
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for (need_id, line_id), (var, _) in chosen_var.items():
            if solver.value(var):
                result.chosen[need_id] = line_id
    return {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE"}.get(status, "UNKNOWN")


def greedy(candidates: list[Candidate], capacities: dict[int, float], *, locks: dict[int, int] | None = None):
    """First come, first served: needs in order (urgent first), each taking its best line with room left."""
    started = time.perf_counter()
    locks = locks or {}
    left = {line: _scaled_capacity(cap) for line, cap in capacities.items()}
    options: dict[int, list[Candidate]] = defaultdict(list)
    urgent: dict[int, bool] = {}
    for candidate in candidates:
        options[candidate.need_id].append(candidate)
        urgent[candidate.need_id] = urgent.get(candidate.need_id, False) or candidate.urgent
    result = AssignmentResult(status="GREEDY")
    for need_id in sorted(options, key=lambda n: (not urgent[n], n)):
        ranked = sorted(options[need_id], key=lambda c: (c.line_id != locks.get(need_id), -c.score, c.line_id))
        for candidate in ranked:
            units = _scaled_units(candidate.units)
            if left.get(candidate.line_id, 0) >= units:
                left[candidate.line_id] -= units
                result.chosen[need_id] = candidate.line_id
                break
    result.unplaced = set(options) - set(result.chosen)
    result.seconds = round(time.perf_counter() - started, 3)
    return result
