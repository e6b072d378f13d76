"""District-wide assignment of needs to contract lines with OR-Tools. Pure module.

Every eligible (need, line) pair is a candidate with the units it would take from the line and its
score. The result maximises, in this order: urgent needs placed, needs placed, total score — so that a
first-come choice does not use up a line that later needs depend on. A manager's locked choice is kept
as it is (as long as the line has room for it). `greedy` is the first-come baseline the benchmark
compares against.

The problem falls apart into independent components (needs joined by the lines they could share; lines
serve only needs of their own service type). Each component is solved on its own:

- if every need fits on its best-scored line (or its lock), that is the optimum, and no solver runs;
- otherwise the best of three constructions is taken: first come (`greedy`), smallest need first, and
  the LP relaxation (OR-Tools GLOP) rounded and repaired (while the time limit lasts). A basic optimum of this LP leaves about as
  many needs fractional as there are lines at most, so the rounded solution is within a few needs of the
  optimum; when the LP's optimum is whole it is the optimum;
- a contested component small enough for CP-SAT to prove (`CP_SAT_MAX_CANDIDATES`) is then solved by
  CP-SAT, with that solution as its hint, within its share of the time limit; CP-SAT's answer is kept
  only if it is at least as good.

The result is never worse than `greedy` on the same candidates.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver.python import model_builder_helper as mbh
from ortools.sat.python import cp_model

UNIT_SCALE = 100  # units are fractional (4.33 visits a month): work in hundredths
SCORE_SCALE = 1000
# Contested components up to this many candidates also go to CP-SAT: on a few hundred needs it mostly proves
# the optimum within a second or two, a need or two better than the LP rounding. On thousands of needs with
# scarce capacity it neither proves nor improves on the LP rounding within a minute (bench/README.md).
CP_SAT_MAX_CANDIDATES = 2_000
LP_TOLERANCE = 1e-6


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
    # How the components were solved: {"fits": n, "lp": n, "cp_sat": n} (empty for greedy); "lp": the best
    # construction (the LP rounding while the time limit lasts), "cp_sat": then CP-SAT
    methods: dict[str, int] = field(default_factory=dict)

    @property
    def placed(self) -> int:
        """How many needs were placed."""
        return len(self.chosen)


def _scaled_units(units: float) -> int:
    return math.ceil(round(units * UNIT_SCALE, 6))


def _scaled_capacity(capacity: float) -> int:
    return math.floor(round(capacity * UNIT_SCALE, 6))


def _score_points(candidate: Candidate) -> int:
    return round(candidate.score * SCORE_SCALE)


def components(candidates: Iterable[Candidate]) -> list[list[Candidate]]:
    """The independent parts of the problem: candidates whose needs could compete for a line, together.

    Two needs are in one component when they can use a common line (directly or through other needs).
    Components come in the order of their first candidate; candidates keep their order within each.
    """
    candidates = list(candidates)
    parent: dict[int, int] = {}

    def root(line: int) -> int:
        while parent[line] != line:
            parent[line] = parent[parent[line]]
            line = parent[line]
        return line

    first_line: dict[int, int] = {}
    for candidate in candidates:
        parent.setdefault(candidate.line_id, candidate.line_id)
        anchor = first_line.setdefault(candidate.need_id, candidate.line_id)
        a, b = root(anchor), root(candidate.line_id)
        if a != b:
            parent[b] = a
    groups: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(root(candidate.line_id), []).append(candidate)
    return list(groups.values())


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
    deadline = started + time_limit_s
    locks = locks or {}
    result = AssignmentResult()
    statuses = set()
    methods: dict[str, int] = defaultdict(int)
    total = max(1, len(candidates))
    for group in components(candidates):
        chosen = _best_options_if_they_fit(group, capacities, locks)
        status, method = "OPTIMAL", "fits"
        if chosen is None:
            problem = _Component(group, capacities, locks)
            chosen, status = problem.construct(deadline)
            method = "lp"
            if status != "OPTIMAL" and len(group) <= CP_SAT_MAX_CANDIDATES:
                # CP-SAT gets the component's share of the time limit (at least a second), within the deadline.
                budget = min(max(1.0, time_limit_s * len(group) / total), max(0.1, deadline - time.perf_counter()))
                chosen, status = problem.solve_cp_sat(chosen, budget, workers, seed)
                method = "cp_sat"
        result.chosen.update(chosen)
        statuses.add(status)
        methods[method] += 1
    result.unplaced = {c.need_id for c in candidates} - set(result.chosen)
    result.status = "OPTIMAL" if statuses <= {"OPTIMAL"} else "FEASIBLE"
    result.methods = dict(methods)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _rank_key(candidate: Candidate, lock: int | None = None) -> tuple:
    """How a need's options rank: its locked line first, then best score first (ties: the lower line id)."""
    return (candidate.line_id != lock, -candidate.score, candidate.line_id)


def _ranked(options: list[Candidate], lock: int | None = None) -> list[Candidate]:
    """A need's options, best first (see `_rank_key`)."""
    return sorted(options, key=lambda c: _rank_key(c, lock))


def _best_options_if_they_fit(group: list[Candidate], capacities: dict[int, float], locks: dict[int, int]):
    """Each need on its locked or best-scored line, if all of those fit together (then that is optimal)."""
    best: dict[int, tuple[tuple, Candidate]] = {}
    for candidate in group:
        key = _rank_key(candidate, locks.get(candidate.need_id))
        held = best.get(candidate.need_id)
        if held is None or key < held[0]:
            best[candidate.need_id] = (key, candidate)
    used: dict[int, int] = defaultdict(int)
    for _, candidate in best.values():
        used[candidate.line_id] += _scaled_units(candidate.units)
    if any(units > _scaled_capacity(capacities.get(line, 0)) for line, units in used.items()):
        return None
    return {need: candidate.line_id for need, (_, candidate) in best.items()}


class _Component:
    """One contested component: its needs, their options (best first) and the lines' room, in scaled units."""

    def __init__(self, group: list[Candidate], capacities: dict[int, float], locks: dict[int, int]) -> None:
        self.group = group
        self.capacities = capacities
        self.units = {(c.need_id, c.line_id): _scaled_units(c.units) for c in group}
        self.by_pair = {(c.need_id, c.line_id): c for c in group}
        options: dict[int, list[Candidate]] = defaultdict(list)
        for candidate in group:
            options[candidate.need_id].append(candidate)
        self.ranked = {need: _ranked(choices) for need, choices in options.items()}
        self.urgent = {need: any(c.urgent for c in choices) for need, choices in options.items()}
        smallest = {need: min(self.units[(need, c.line_id)] for c in choices) for need, choices in options.items()}
        # Urgent needs first, then the needs taking the fewest units (then by need id): the most needs fit.
        self.smallest_first_order = sorted(options, key=lambda n: (not self.urgent[n], smallest[n], n))
        self.capacity = {c.line_id: _scaled_capacity(capacities.get(c.line_id, 0)) for c in group}
        self.locks = {need: line for need, line in locks.items() if (need, line) in self.by_pair}

    # --- constructions -------------------------------------------------------------------------

    def _place_locks(self) -> tuple[dict[int, int], dict[int, int]]:
        """Locked choices first (urgent first, then by need id), each while its line has room."""
        left, chosen = dict(self.capacity), {}
        for need in sorted(self.locks, key=lambda n: (not self.urgent[n], n)):
            line = self.locks[need]
            if left[line] >= self.units[(need, line)]:
                left[line] -= self.units[(need, line)]
                chosen[need] = line
        return chosen, left

    def _fill(self, needs: Iterable[int], chosen: dict[int, int], left: dict[int, int]) -> None:
        """Place each need not placed yet, in the order given, on its best-scored line with room."""
        units = self.units
        for need in needs:
            if need in chosen:
                continue
            for candidate in self.ranked[need]:
                taken = units[(need, candidate.line_id)]
                if left[candidate.line_id] >= taken:
                    left[candidate.line_id] -= taken
                    chosen[need] = candidate.line_id
                    break

    def smallest_first(self) -> dict[int, int]:
        """Locks, then urgent needs, then the needs taking the fewest units, each on its best line with room."""
        chosen, left = self._place_locks()
        self._fill(self.smallest_first_order, chosen, left)
        return chosen

    def lp_rounding(self, deadline: float | None = None) -> tuple[dict[int, int] | None, bool]:
        """The LP relaxation (GLOP) of the weighted objective, rounded down and repaired: (chosen, exact).

        `exact`: the LP's own optimum was whole (and kept), so the rounded solution is optimal. None when
        the deadline (a `time.perf_counter()` value) passes first.
        """
        chosen, left = self._place_locks()
        free = [c for c in self.group if c.need_id not in chosen]
        if not free:
            return chosen, True  # every need is locked, and every lock fits
        if deadline is not None and time.perf_counter() >= deadline:
            return None, False
        weight = self._lp_weights()
        # The model is built through OR-Tools' model-builder helper (vectorised; several times faster to fill
        # than pywraplp's one Python object per variable) and solved by GLOP.
        model = mbh.ModelBuilderHelper()
        count = len(free)
        indices = model.add_var_array_with_bounds(np.zeros(count), np.ones(count), np.zeros(count, dtype=bool), "")
        model.set_objective_coefficients(indices.tolist(), [weight(c) for c in free])
        model.set_maximize(True)
        per_need: dict[int, list[int]] = defaultdict(list)
        per_line: dict[int, list[int]] = defaultdict(list)
        for index, candidate in enumerate(free):
            per_need[candidate.need_id].append(index)
            per_line[candidate.line_id].append(index)
        for variables in per_need.values():
            constraint = model.add_linear_constraint()
            model.set_constraint_upper_bound(constraint, 1.0)
            for index in variables:
                model.set_constraint_coefficient(constraint, index, 1.0)
        for line, variables in per_line.items():
            constraint = model.add_linear_constraint()
            model.set_constraint_upper_bound(constraint, float(left[line]))
            for index in variables:
                model.set_constraint_coefficient(constraint, index, float(self.units[(free[index].need_id, line)]))
        solver = mbh.ModelSolverHelper("glop")
        if deadline is not None:
            solver.set_time_limit_in_seconds(max(0.01, deadline - time.perf_counter()))
        solver.solve(model)
        if solver.status() != mbh.SolveStatus.OPTIMAL or not solver.has_solution():
            return None, False
        whole: dict[int, int] = {}
        integral = True
        for value, candidate in zip(solver.variable_values().tolist(), free, strict=True):
            if value > 1 - LP_TOLERANCE:
                whole[candidate.need_id] = candidate.line_id
            elif value > LP_TOLERANCE:
                integral = False
        # Keep the LP's whole assignments (urgent ones first) while they fit, then fill in the rest
        # (the fractional needs and any that no longer fit) urgent first, smallest first.
        kept_all = True
        for need in sorted(whole, key=lambda n: (not self.urgent[n], n)):
            line = whole[need]
            if left[line] >= self.units[(need, line)]:
                left[line] -= self.units[(need, line)]
                chosen[need] = line
            else:
                kept_all = False
        self._fill(self.smallest_first_order, chosen, left)
        return chosen, integral and kept_all

    def _lp_weights(self):
        """Weights that make the LP lexicographic: an urgent need outweighs any normal ones; a need any score."""
        n = len(self.ranked)
        return lambda c: (n + 1 if c.urgent else 0) + 1 + c.score / (n + 1)

    def construct(self, deadline: float | None = None) -> tuple[dict[int, int], str]:
        """The best of first come, smallest first and the rounded LP (OPTIMAL when the LP's optimum was whole)."""
        rounded, exact = self.lp_rounding(deadline)
        if rounded is not None and exact:
            return rounded, "OPTIMAL"
        options = [greedy(self.group, self.capacities, locks=self.locks).chosen, self.smallest_first()]
        best = max(options, key=self.value)
        if rounded is not None and self.value(rounded) >= self.value(best):
            best = rounded
        return best, "FEASIBLE"

    def value(self, chosen: dict[int, int]) -> tuple[int, int, int, int]:
        """What is maximised, in order: locks kept, urgent needs placed, needs placed, score points."""
        picked = [self.by_pair[pair] for pair in chosen.items()]
        return (sum(self.locks.get(c.need_id) == c.line_id for c in picked), sum(c.urgent for c in picked),
                len(picked), sum(_score_points(c) for c in picked))

    # --- CP-SAT ---------------------------------------------------------------------------------

    def solve_cp_sat(self, hint: dict[int, int], time_limit_s: float, workers: int, seed: int):
        """CP-SAT from the hint, keeping the locks the hint keeps; its answer if at least as good: (chosen, status)."""
        model = cp_model.CpModel()
        chosen_var = {}
        per_need: dict[int, list] = defaultdict(list)
        per_line: dict[int, list] = defaultdict(list)
        for candidate in self.group:
            pair = (candidate.need_id, candidate.line_id)
            var = model.new_bool_var(f"x_{candidate.need_id}_{candidate.line_id}")
            chosen_var[pair] = var
            per_need[candidate.need_id].append(var)
            per_line[candidate.line_id].append((self.units[pair], var))
            model.add_hint(var, hint.get(candidate.need_id) == candidate.line_id)
        for variables in per_need.values():
            model.add_at_most_one(variables)
        for need, line in self.locks.items():
            if hint.get(need) == line:
                model.add(chosen_var[(need, line)] == 1)
        for line, terms in per_line.items():
            model.add(sum(units * var for units, var in terms) <= self.capacity[line])
        # Lexicographic by weights: one more placed need outweighs any scores; one more urgent need
        # outweighs any number of normal ones.
        n = len(per_need)
        place_weight = SCORE_SCALE * n + 1
        urgent_weight = place_weight * (n + 1)
        model.maximize(sum(
            var * ((urgent_weight if self.by_pair[pair].urgent else 0) + place_weight + _score_points(self.by_pair[pair]))
            for pair, var in chosen_var.items()
        ))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit_s
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return hint, "FEASIBLE"
        solved = {need: line for (need, line), var in chosen_var.items() if solver.value(var)}
        if self.value(solved) < self.value(hint):
            return hint, "FEASIBLE"
        return solved, "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE"


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
        ranked = _ranked(options[need_id], locks.get(need_id))
        for candidate in ranked:
            units = _scaled_units(candidate.units)
            if left.get(candidate.line_id, 0) >= units:
                left[candidate.line_id] -= units
                result.chosen[need_id] = candidate.line_id
                break
    result.unplaced = set(options) - set(result.chosen)
    result.seconds = round(time.perf_counter() - started, 3)
    return result
