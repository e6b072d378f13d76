"""An organisation's day as a solver problem: shifts and breaks from availability, places, read-back, changes."""

from servicehub.scheduling.day import (
    ON_DUTY,
    DaySettings,
    DayVisit,
    DayWorker,
    Done,
    WorkerStart,
    assignments,
    build_problem,
    changes,
    from_now,
    intervals_from,
    worker_shift,
)
from servicehub.scheduling.problem import Break, Plan, Route, Stop
from servicehub.scheduling.travel import HaversineTravel

LUNCH = (690, 810, 30)


def test_a_split_shift_gets_its_gap_as_a_fixed_break_and_no_extra_lunch():
    shift, breaks = worker_shift(((480, 720), (810, 1050)), LUNCH)
    assert shift == (480, 1050) and breaks == (Break(720, 720, 90),)


def test_a_full_day_gets_a_lunch_break_inside_the_lunch_window():
    assert worker_shift(((480, 1050),), LUNCH) == ((480, 1050), (Break(690, 810, 30),))


def test_a_morning_shift_has_no_lunch_break():
    assert worker_shift(((480, 720),), LUNCH) == ((480, 720), ())


def test_places_are_shared_and_limits_carried_over():
    home = (32.2, 119.68)
    visits = [DayVisit(1, (32.21, 119.69), (600, 660), 30, meals=1), DayVisit(2, (32.21, 119.69), (600, 900), 60)]
    workers = [DayWorker(7, home, "ebike", ((480, 1050),), max_minutes=420, max_visits=6)]
    problem = build_problem(visits, workers, HaversineTravel(), DaySettings(lunch=LUNCH, meal_box=5))
    (worker,) = problem.workers
    assert problem.visits[0].location == problem.visits[1].location != worker.start_location
    assert worker.max_work == 420 + 30 and worker.max_visits == 6 and worker.capacity == 5
    assert ON_DUTY in worker.skills and all(ON_DUTY in v.skills for v in problem.visits)
    assert set(problem.travel) == {"ebike"} and len(problem.travel["ebike"]) == 2


def test_a_worker_who_dropped_out_keeps_only_what_is_fixed_on_them():
    visits = [DayVisit(1, (32.21, 119.69), (480, 600), 30, fixed_worker=7, fixed_start=500),
              DayVisit(2, (32.21, 119.69), (600, 900), 60)]
    workers = [DayWorker(7, (32.2, 119.68), "walk", ((480, 1050),), on_duty=False)]
    problem = build_problem(visits, workers, HaversineTravel())
    assert ON_DUTY not in problem.workers[0].skills
    assert ON_DUTY not in problem.visits[0].skills and ON_DUTY in problem.visits[1].skills


def test_assignments_and_changes_read_a_plan_back():
    plan = Plan(routes={7: Route(7, [Stop(1, 500, 510, 540, 20), Stop(2, 550, 560, 620, 10)])}, unplaced={3: "no_room"})
    found = assignments(plan)
    assert found[2] == {"worker_id": 7, "sequence": 2, "arrival": 550, "start": 560, "end": 620, "travel": 10}
    assert found[3] == {"unplaced": "no_room"}
    before = {1: {"worker_id": 7, "start": 510}, 2: {"worker_id": 8, "start": 560}, 3: {"worker_id": 8, "start": 700},
              4: {"unplaced": "no_room"}}
    kinds = {c["visit_id"]: c["change"] for c in changes(before, {**found, 4: found[1] | {"start": 800}})}
    assert kinds == {2: "reassigned", 3: "unplaced", 4: "placed"}


# --- planning from now (a day that has begun) -------------------------------------------------------------


def test_a_visit_whose_latest_start_has_passed_is_left_out_and_an_open_window_starts_now():
    cut = from_now(900, {1: (540, 600), 2: (540, 960), 3: (960, 1020), 4: (840, 900)})
    assert cut.passed == {1}
    assert cut.windows == {2: (900, 960), 3: (960, 1020), 4: (900, 900)}  # latest start at now: still in


def test_a_worker_with_nothing_done_starts_from_their_own_place_at_now():
    cut = from_now(900, {}, [])
    assert cut.starts == {} and cut.default == WorkerStart(None, 900)


def test_a_worker_starts_where_their_last_visit_ends_never_before_now():
    x, y = (32.21, 119.69), (32.22, 119.70)
    done = [Done(11, 7, x, free_at=840, minutes=60), Done(12, 7, y, free_at=600, minutes=45),
            Done(13, 8, y, free_at=930, minutes=50)]  # 13: under way, ends after now
    cut = from_now(900, {}, done)
    assert cut.starts[7] == WorkerStart(x, 900, visits=2, minutes=105)  # checked out at 14:00 at X: from X, at 15:00
    assert cut.starts[8] == WorkerStart(y, 930, visits=1, minutes=50)  # still at Y until 15:30


def test_intervals_are_cut_to_begin_when_the_worker_is_ready():
    assert intervals_from(((480, 720), (810, 1050)), 900) == ((900, 1050),)
    assert intervals_from(((480, 720), (810, 1050)), 600) == ((600, 720), (810, 1050))
    assert intervals_from(((480, 720),), 720) == ()


def test_a_worker_who_starts_where_they_are_still_ends_at_home():
    home, there = (32.2, 119.68), (32.21, 119.69)
    visits = [DayVisit(1, (32.22, 119.70), (900, 960), 30)]
    workers = [DayWorker(7, home, "walk", ((900, 1050),), start_point=there), DayWorker(8, home, "walk", ((900, 1050),))]
    problem = build_problem(visits, workers, HaversineTravel())
    moved, stayed = problem.workers
    assert moved.start_location != moved.end_location == stayed.start_location == stayed.end_location


def test_a_day_planned_from_now_plans_nothing_before_now_and_the_validator_catches_a_start_in_the_past():
    from servicehub.scheduling.solver import SolveOptions, solve
    from servicehub.scheduling.validate import plan_violations

    home = (32.2, 119.68)
    windows = {1: (540, 1000), 2: (600, 1020), 3: (480, 720)}
    cut = from_now(900, windows)  # 15:00: visit 3's window has closed
    visits = [DayVisit(v, (32.2 + v / 1000, 119.68), window, 30) for v, window in cut.windows.items()]
    workers = [DayWorker(7, home, "walk", intervals_from(((480, 1080),), cut.default.ready))]
    problem = build_problem(visits, workers, HaversineTravel())
    plan = solve(problem, SolveOptions(time_limit_s=2, solution_limit=100))
    assert cut.passed == {3} and not plan.unplaced and plan_violations(problem, plan) == []
    assert plan.routes[7].departure >= 900 and all(s.start >= 900 for s in plan.routes[7].stops)
    stop = plan.routes[7].stops[0]
    plan.routes[7].stops[0] = Stop(stop.visit_id, 840, 840, 870, stop.travel_before)  # 14:00: already past
    assert any("outside" in v for v in plan_violations(problem, plan))
