"""The first plan from PyVRP (hgs.py): routes fitted to breaks, double-ups put in, restrictions kept; and the
solver's default path built on it. Each rule on a small problem where only that rule decides."""

import time

import pytest

from servicehub.scheduling import hgs, solver
from servicehub.scheduling.problem import NO_ROOM, Break
from servicehub.scheduling.solver import SolveOptions, solve
from servicehub.scheduling.validate import plan_violations
from tests.scheduling.test_solver import order, problem, solved, visit, worker

LUNCH = Break(690, 720, 30)  # 11:30-12:00 at the latest


def soon(seconds=1.0) -> float:
    return time.perf_counter() + seconds


def test_a_route_fits_when_the_break_finds_a_gap():
    p = problem([], [])
    w = worker("A", breaks=(LUNCH,))
    morning = visit("m", 1, window=(600, 600), duration=60)  # 10:00-11:00
    afternoon = visit("a", 1, window=(760, 760), duration=60)  # 12:40
    assert hgs.route_fits(p, w, [morning, afternoon])


def test_a_route_does_not_fit_when_visits_cover_the_break_window():
    p = problem([], [])
    w = worker("A", breaks=(LUNCH,))
    long_one = visit("l", 1, window=(660, 660), duration=120)  # 11:00-13:00 covers every start of the break
    assert not hgs.route_fits(p, w, [long_one])
    assert hgs.route_fits(p, worker("B"), [long_one])


def test_travel_may_be_split_by_the_break():
    # 11:20 the first visit ends; the next starts 12:00 five places (50 min) away: too far with a 30-minute break
    # unless travel and break together fit the 40 minutes: they do not; at 12:30 they do
    p = problem([], [], n_places=6)
    w = worker("A", at=0, breaks=(Break(680, 720, 30),))
    first = visit("f", 0, window=(620, 620), duration=60)
    assert not hgs.route_fits(p, w, [first, visit("s", 5, window=(720, 720))])
    assert hgs.route_fits(p, w, [first, visit("s", 1, window=(730, 730))])


def test_repair_takes_out_the_visit_that_blocks_the_break():
    p = problem([], [])
    w = worker("A", breaks=(LUNCH,))
    route = [visit("early", 1, window=(540, 540)), visit("noon", 1, window=(680, 680), duration=60),
             visit("late", 1, window=(840, 840))]
    assert [v.id for v in hgs.repair_route(p, w, route)] == ["early", "late"]


def test_the_longest_day_is_kept():
    p = problem([], [])
    w = worker("A", max_work=200)
    assert hgs.route_fits(p, w, [visit("a", 1, window=(490, 490)), visit("b", 1, window=(600, 600))])
    assert not hgs.route_fits(p, w, [visit("a", 1, window=(490, 490)), visit("b", 1, window=(700, 700))])


def test_relaxed_routes_keep_qualifications_and_capacity():
    nurse = worker("N", at=5, skills=frozenset({"nurse"}), capacity=1)
    other = worker("O", at=0, capacity=1)
    visits = [visit("inject", 0, skills=frozenset({"nurse"})), visit("meal-1", 0, demand=1),
              visit("meal-2", 5, demand=1)]
    p = problem(visits, [nurse, other])
    model = solver._build(p)
    routes = hgs.relaxed_routes(p, model.visits, model.allowed, soon())
    assert "inject" in routes["N"] and "inject" not in routes.get("O", [])
    for ids in routes.values():
        assert sum(1 for i in ids if i.startswith("meal")) <= 1


def test_relaxed_routes_keep_the_most_visits_a_day():
    p = problem([visit(i, 1 + i % 4, duration=10) for i in range(6)], [worker("A", max_visits=2), worker("B", max_visits=3)])
    model = solver._build(p)
    routes = hgs.relaxed_routes(p, model.visits, model.allowed, soon())
    assert len(routes.get("A", [])) <= 2 and len(routes.get("B", [])) <= 3
    assert sum(len(r) for r in routes.values()) == 5


def test_double_ups_are_put_on_two_routes_at_one_start():
    pair = [visit("lift-1", 2, pair="lift", window=(600, 700)), visit("lift-2", 2, pair="lift", window=(600, 700))]
    p = problem(pair + [visit("x", 3)], [worker("A"), worker("B", at=4)])
    model = solver._build(p)
    routes = hgs.relaxed_routes(p, model.visits, model.allowed, soon())
    holders = {w for w, ids in routes.items() for i in ids if i.startswith("lift")}
    assert holders == {"A", "B"}


def test_the_default_path_plans_a_double_up_and_the_breaks():
    pair = [visit("lift-1", 2, pair="lift"), visit("lift-2", 2, pair="lift")]
    busy = [visit(f"v{i}", 1 + i % 5, window=(480 + 40 * i, 560 + 40 * i)) for i in range(10)]
    p = problem(pair + busy, [worker("A", breaks=(LUNCH,)), worker("B", at=4, breaks=(LUNCH,))])
    plan = solved(p)
    starts = {s.visit_id: s.start for r in plan.routes.values() for s in r.stops}
    assert starts["lift-1"] == starts["lift-2"]
    assert all(len(route.breaks) == 1 for route in plan.routes.values() if route.stops)


def test_both_ways_to_a_first_plan_give_valid_plans_of_a_busy_day():
    visits = [visit(i, i % 6, window=(480 + (i * 37) % 400, 600 + (i * 37) % 400), duration=20 + i % 3 * 10)
              for i in range(40)]
    workers = [worker(f"W{w}", at=w % 6, breaks=(Break(690, 780, 30),), max_visits=8) for w in range(4)]
    p = problem(visits, workers)
    for way in ("pyvrp", "parallel_cheapest_insertion"):
        plan = solve(p, SolveOptions(time_limit_s=3, first_solution=way, solution_limit=300))
        assert plan_violations(p, plan) == [] and plan.status == "SOLVED"
        assert len(plan.unplaced) < 40 and set(plan.unplaced.values()) <= {NO_ROOM}


def test_a_replan_with_visits_done_keeps_to_the_insertion_path():
    done = visit("done", 1, window=(490, 490), fixed_worker="A", fixed_start=490)
    p = problem([done, visit("next", 2)], [worker("A")])
    plan = solved(p)
    assert order(plan) == ["done", "next"]


def test_a_missing_pyvrp_fails_the_solve_with_the_reason(monkeypatch):
    monkeypatch.setattr(hgs, "pyvrp", None)
    monkeypatch.setattr(hgs, "_MISSING", ImportError("No module named 'pyvrp'"), raising=False)
    with pytest.raises(hgs.SolverMissing, match="PyVRP is not installed"):
        solve(problem([visit("v", 1)], [worker()]), SolveOptions(time_limit_s=1))


def test_a_visit_the_repair_takes_out_goes_to_another_route_that_fits():
    busy, free = worker("A", breaks=(LUNCH,)), worker("B", at=1)
    noon = visit("noon", 1, window=(680, 680), duration=60)  # covers A's every break start
    routes = {0: [visit("early", 1, window=(540, 540))], 1: []}
    p = problem([noon], [busy, free])
    hgs.reinsert(p, routes, [noon], {"noon": [0, 1]})
    assert [v.id for v in routes[1]] == ["noon"] and [v.id for v in routes[0]] == ["early"]
