"""The home-care rules of the literature (Mankowska et al. 2014): double-ups whose halves start a gap apart,
soft latest starts priced by their tardiness and by the day's largest tardiness, a worker who refills at the
kitchen mid-round. One small problem per rule, solved by both first-plan paths, and for each rule a plan broken
on purpose that the independent validator catches."""

import random
from dataclasses import replace

import pytest

from servicehub.scheduling import hgs
from servicehub.scheduling.problem import Plan, Reload, Route, Stop, Weights
from servicehub.scheduling.solver import relaxation_holds
from servicehub.scheduling.validate import plan_violations
from tests.scheduling.test_solver import FAST, problem, solved, visit, worker

BOTH_PATHS = [FAST, replace(FAST, first_solution="parallel_cheapest_insertion")]


def starts(plan: Plan) -> dict:
    return {s.visit_id: (worker_id, s.start) for worker_id, r in plan.routes.items() for s in r.stops}


# --- sequential double-ups ------------------------------------------------------------------------


def gapped_pair(low=30, high=40, window=(600, 700)):
    """Two halves at place 1: 'second' starts `low`..`high` after 'first'."""
    return [visit("first", 1, window=window, pair="p"),
            visit("second", 1, window=window, pair="p", pair_gap=(low, high))]


@pytest.mark.parametrize("options", BOTH_PATHS, ids=["pyvrp", "insertion"])
def test_a_sequential_pair_is_kept_in_its_gap(options):
    p = problem(gapped_pair(), [worker("A"), worker("B")])
    plan = solved(p, options)
    at = starts(plan)
    assert not plan.unplaced
    assert at["first"][0] != at["second"][0]
    assert 30 <= at["second"][1] - at["first"][1] <= 40


def test_a_sequential_pair_whose_gap_cannot_fit_the_window_is_not_planned():
    # the window closes 20 minutes after it opens: no second start can be 30 to 40 after a first start
    p = problem(gapped_pair(window=(600, 620)), [worker("A"), worker("B")])
    assert set(solved(p).unplaced) == {"first", "second"}


def test_halves_needing_different_skills_may_go_to_the_one_worker_of_each():
    pair = [visit("first", 1, pair="p", skills=frozenset({"nurse"})),
            visit("second", 1, pair="p", pair_gap=(0, 60), skills=frozenset({"therapist"}))]
    p = problem(pair, [worker("N", skills=frozenset({"nurse"})), worker("T", skills=frozenset({"therapist"}))])
    at = starts(solved(p))
    assert at["first"][0] == "N" and at["second"][0] == "T"


def test_insert_pairs_puts_a_sequential_pair_on_two_routes_inside_its_gap():
    p = problem([], [worker("A"), worker("B")])
    first, second = gapped_pair()
    routes = {0: [], 1: []}
    hgs.insert_pairs(p, routes, [(first, second)], {"first": [0, 1], "second": [0, 1]})
    placed = {v.id: (w, v.window[0]) for w, stops in routes.items() for v in stops}
    assert placed["first"][0] != placed["second"][0]
    assert 30 <= placed["second"][1] - placed["first"][1] <= 40


def test_the_validator_catches_a_sequential_pair_outside_its_gap():
    p = problem(gapped_pair(), [worker("A"), worker("B")])
    broken = Plan(routes={
        "A": Route("A", [Stop("first", 610, 610, 640, 10)], departure=600, return_time=650, travel=20),
        "B": Route("B", [Stop("second", 610, 700, 730, 10)], departure=600, return_time=740, travel=20)})
    assert any("starts 90 after first, not 30 to 40" in p_ for p_ in plan_violations(p, broken))
    kept = replace(broken, routes={**broken.routes, "B": Route("B", [Stop("second", 610, 645, 675, 10)],
                                                              departure=600, return_time=685, travel=20)})
    assert plan_violations(p, kept) == []


# --- soft latest starts -----------------------------------------------------------------------------

# Place 0 the worker's home, "a" at place 1, "b" at place 2: round 0-1-2-0 is 30 minutes, 0-2-1-0 is 72.
ROUND = ((0, 10, 12), (10, 0, 10), (10, 50, 0))


def late_or_long(weights: Weights):
    """The short round reaches 'b' at 8:41, 9 minutes after its due 8:32; the long one reaches it on time."""
    visits = [visit("a", 1, duration=1, window=(480, 1080)), visit("b", 2, duration=1, window=(480, 1080), due=492)]
    return replace(problem(visits, [worker("A")], balance=False), travel={"default": ROUND}, weights=weights)


@pytest.mark.parametrize("options", BOTH_PATHS, ids=["pyvrp", "insertion"])
@pytest.mark.parametrize("weights, first", [
    (Weights(tardiness=0, max_tardiness=0), "a"),  # lateness free: the short round
    (Weights(tardiness=10, max_tardiness=0), "b"),  # 90 for being late beats 42 more travel
    (Weights(tardiness=0, max_tardiness=10), "b"),  # the day's largest tardiness alone decides too
])
def test_tardiness_is_priced(options, weights, first):
    p = late_or_long(weights)
    plan = solved(p, options)
    assert [s.visit_id for s in plan.routes["A"].stops][0] == first
    assert not plan.unplaced  # late is allowed: never dropped for it
    if first == "b":
        assert plan.tardiness(p) == (0, 0)
    else:  # free lateness: 'b' is late by at least the 9 minutes the short round costs
        assert plan.tardiness(p)[0] >= 9


def test_the_earliest_start_stays_hard():
    p = problem([visit("a", 1, window=(700, 1080), due=720)], [worker("A")])
    assert starts(solved(p))["a"][1] >= 700


def test_tardiness_adds_up_over_the_plan():
    p = problem([visit("a", 1, due=500), visit("b", 2, due=600)], [worker("A")])
    plan = Plan(routes={"A": Route("A", [Stop("a", 490, 510, 540, 10), Stop("b", 550, 640, 670, 10)],
                                   departure=480, return_time=690, travel=40)})
    assert plan_violations(p, plan) == []  # late is allowed (the hard latest is the window's)
    assert plan.tardiness(p) == (10 + 40, 40)


def test_the_validator_catches_a_start_past_the_hard_latest():
    p = problem([visit("a", 1, window=(480, 600), due=500)], [worker("A")])
    plan = Plan(routes={"A": Route("A", [Stop("a", 490, 610, 640, 10)], departure=480, return_time=650, travel=20)})
    assert any("outside (480, 600)" in v for v in plan_violations(p, plan))


# --- refills ----------------------------------------------------------------------------------------


def meal_round(reload_locations=(0,)):
    """Four meals, one each, at places 1-4; a box of two; the kitchen (place 0) is the worker's start."""
    meals = [visit(f"m{k}", k, duration=10, demand=1) for k in range(1, 5)]
    return problem(meals, [worker("A", capacity=2, reload_locations=reload_locations, reload_duration=5)])


@pytest.mark.parametrize("options", BOTH_PATHS, ids=["pyvrp", "insertion"])
def test_a_meal_worker_refills_at_the_kitchen_mid_round(options):
    p = meal_round()
    assert not relaxation_holds(p)  # refills are OR-Tools' alone: the PyVRP path falls back to insertion
    plan = solved(p, options)
    route = plan.routes["A"]
    assert not plan.unplaced and len(route.stops) == 4
    assert route.reloads and all(r.location == 0 and r.end - r.arrival == 5 for r in route.reloads)
    loads = [0]
    for k in range(len(route.stops)):
        if any(r.after == k for r in route.reloads):
            loads.append(0)
        loads[-1] += 1
    assert max(loads) <= 2


def test_without_a_refill_place_the_box_limits_the_round():
    plan = solved(meal_round(reload_locations=()))
    assert len(plan.routes["A"].stops) == 2 and len(plan.unplaced) == 2


def refilled_plan(reload: Reload | None, place=0) -> Plan:
    stops = [Stop("m1", 490, 490, 500, 10), Stop("m2", 510, 510, 520, 10)]
    later = [Stop("m3", 575, 580, 590, 30), Stop("m4", 600, 600, 610, 10)]
    route = Route("A", stops + later, reloads=[reload] if reload else [], departure=480, return_time=650, travel=0)
    return Plan(routes={"A": route})


def test_the_validator_accepts_a_refill_that_keeps_the_box():
    p = meal_round()
    assert plan_violations(p, refilled_plan(Reload(0, 2, 540, 545))) == []


def test_the_validator_catches_a_box_overfilled_without_a_refill():
    assert any("carries 3 at visit m3, more than 2" in v for v in plan_violations(meal_round(), refilled_plan(None)))


def test_the_validator_catches_a_refill_at_a_place_that_is_not_a_kitchen():
    p = meal_round()
    assert any("not one of its refill places" in v for v in plan_violations(p, refilled_plan(Reload(3, 2, 540, 545))))


def test_the_validator_catches_a_refill_reached_too_soon():
    # m2 ends at 520 at place 2, twenty minutes from the kitchen
    p = meal_round()
    assert any("refill at 530, before it can be reached" in v
               for v in plan_violations(p, refilled_plan(Reload(0, 2, 530, 535))))


# --- the fast fit check agrees with the exact one ------------------------------------------------------


def test_the_constant_time_fit_check_agrees_with_the_route_walk():
    rng = random.Random(7)
    p = problem([], [], n_places=8)
    for _ in range(300):
        w = worker("A", shift=(480, rng.choice([700, 900, 1080])), capacity=rng.choice([None, 3]),
                   max_visits=rng.choice([None, 4]))
        route = []
        for k in range(rng.randint(0, 5)):
            early = rng.randrange(480, 1000)
            route.append(visit(f"r{k}", rng.randrange(8), window=(early, early + rng.choice([0, 30, 120])),
                               duration=rng.choice([10, 30]), demand=rng.choice([0, 1]),
                               due=rng.choice([None, early + 10])))
        route.sort(key=lambda v: v.window[0])
        on_time = rng.random() < 0.5
        if not hgs.route_fits(p, w, route, on_time):
            continue
        early = rng.randrange(480, 1000)
        new = visit("new", rng.randrange(8), window=(early, early + rng.choice([0, 60])), duration=20,
                    demand=1, due=rng.choice([None, early]))
        check = hgs._TimeSlack(p, w, route, on_time)
        for pos in range(len(route) + 1):
            assert check.fits(new, pos) == hgs.route_fits(p, w, route[:pos] + [new] + route[pos:], on_time)
