"""A manual move: each hard rule refuses it by name; a valid one re-times the route."""

import pytest

from servicehub.scheduling.day import ON_DUTY
from servicehub.scheduling.moves import Refusal, insert
from servicehub.scheduling.problem import Break, Problem, Visit, Worker


def line(n, step=10):
    return tuple(tuple(abs(i - j) * step for j in range(n)) for i in range(n))


def problem(visits, **worker_kwargs):
    options = {"shift": (480, 1020), "skills": frozenset({ON_DUTY}), "gender": "female", **worker_kwargs}
    worker = Worker(id="A", start_location=0, end_location=0, **options)
    return Problem(visits=tuple(visits), workers=(worker,), travel={"default": line(6)})


def visit(vid, place=1, window=(480, 960), duration=60, **kwargs):
    return Visit(id=vid, location=place, duration=duration, window=window,
                 skills=frozenset({ON_DUTY}) | kwargs.pop("skills", frozenset()), **kwargs)


def test_a_valid_move_goes_where_it_costs_least_and_retimes_the_route():
    p = problem([visit("a", 1), visit("b", 3), visit("new", 2)])
    route = insert(p, "A", ["a", "b"], "new")
    assert [v for v, _ in sorted(route.items(), key=lambda kv: kv[1]["sequence"])] == ["a", "new", "b"]
    assert route["a"] == {"sequence": 1, "arrival": 490, "start": 490, "end": 550, "travel": 10}
    assert route["new"]["start"] == 560 and route["b"]["start"] == 630


def test_a_requested_start_is_kept():
    route = insert(problem([visit("a", 1), visit("new", 2)]), "A", ["a"], "new", start=900)
    assert route["new"]["start"] == 900 and route["new"]["sequence"] == 2


@pytest.mark.parametrize(("visits", "worker", "kwargs", "rule"), [
    ([visit("new", skills=frozenset({"doctor"}))], {}, {}, "qualification"),
    ([visit("new", gender="male")], {}, {}, "gender"),
    ([visit("new")], {"skills": frozenset()}, {}, "worker_absent"),
    ([visit("a"), visit("new")], {"max_visits": 1}, {}, "max_visits"),
    ([visit("a", demand=2), visit("new", demand=1)], {"capacity": 2}, {}, "capacity"),
    ([visit("new", window=(600, 660))], {}, {"start": 700}, "window"),
    ([visit("a", 1, window=(600, 600)), visit("new", 5)], {}, {"start": 620}, "overlap"),
    ([visit("a", 1, window=(720, 720), duration=120), visit("new", 1, window=(600, 600), duration=120)],
     {"breaks": (Break(690, 720, 30),)}, {}, "break"),
    ([visit("new", 5, window=(960, 960))], {}, {}, "shift_end"),
    ([visit("a", 1, window=(500, 500)), visit("new", 1, window=(900, 900))], {"max_work": 300}, {}, "max_minutes"),
    ([visit("new", window=(480, 590))], {}, {"now": 600}, "start_past"),  # its window closed before now
    ([visit("new")], {}, {"start": 590, "now": 600}, "start_past"),  # asked to start before now
])
def test_each_hard_rule_refuses_a_move_by_name(visits, worker, kwargs, rule):
    p = problem(visits, **worker)
    route = [v.id for v in visits if v.id != "new"]
    result = insert(p, "A", route, "new", **kwargs)
    assert isinstance(result, Refusal) and result.rule == rule, result


def test_a_worker_without_a_shift_and_a_double_up_partner_are_refused():
    p = problem([visit("new", pair="x")])
    assert insert(p, "B", [], "new").rule == "not_on_shift"
    assert insert(p, "A", [], "new", partner=("A", 600)).rule == "double_up"
    assert insert(p, "A", [], "new", start=650, partner=("B", 600)).rule == "double_up"
    assert insert(p, "A", [], "new", partner=("B", 600))["new"]["start"] == 600


def test_a_move_on_a_day_that_has_begun_starts_no_earlier_than_now():
    route = insert(problem([visit("new", 2)]), "A", [], "new", now=700)
    assert route["new"]["start"] == 700
    assert insert(problem([visit("new", pair="x")]), "A", [], "new", partner=("B", 650), now=700).rule == "start_past"
