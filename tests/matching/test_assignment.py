"""District-wide assignment: capacity respected, nobody starved by first-come choices, urgent first, locks kept."""

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicehub.matching import assignment
from servicehub.matching.assignment import Candidate, assign, components, greedy


def test_the_optimiser_does_not_starve_a_need_that_greedy_would():
    candidates = [Candidate(1, 10, "LC02", 4, 0.9), Candidate(1, 11, "LC02", 4, 0.5), Candidate(2, 10, "LC02", 4, 0.4)]
    capacities = {10: 4, 11: 4}
    assert greedy(candidates, capacities).chosen == {1: 10}
    result = assign(candidates, capacities)
    assert result.chosen == {1: 11, 2: 10} and result.unplaced == set()


def test_urgent_needs_win_the_last_capacity():
    candidates = [Candidate(1, 10, "LC01", 20, 0.9), Candidate(2, 10, "LC01", 20, 0.1, urgent=True)]
    result = assign(candidates, {10: 20})
    assert result.chosen == {2: 10} and result.unplaced == {1}


def test_with_room_for_all_the_best_scores_win():
    candidates = [Candidate(1, 10, "LC02", 1, 0.2), Candidate(1, 11, "LC02", 1, 0.8)]
    assert assign(candidates, {10: 5, 11: 5}).chosen == {1: 11}


def test_a_locked_choice_is_kept_even_if_worse():
    candidates = [Candidate(1, 10, "LC02", 1, 0.2), Candidate(1, 11, "LC02", 1, 0.8)]
    assert assign(candidates, {10: 5, 11: 5}, locks={1: 10}).chosen == {1: 10}
    assert greedy(candidates, {10: 5, 11: 5}, locks={1: 10}).chosen == {1: 10}


def test_nothing_to_match_is_an_empty_result():
    result = assign([], {})
    assert result.chosen == {} and result.unplaced == set() and result.placed == 0


@st.composite
def problems(draw):
    lines = draw(st.integers(1, 4))
    capacities = {line: draw(st.integers(0, 30)) for line in range(lines)}
    candidates = []
    for need in range(draw(st.integers(0, 12))):
        units, urgent = draw(st.sampled_from([1, 4.33, 8.66, 21.7])), draw(st.booleans())
        for line in draw(st.sets(st.integers(0, lines - 1), min_size=1, max_size=lines)):
            candidates.append(Candidate(need, line, "LC02", units, draw(st.floats(0, 1)), urgent))
    return candidates, capacities


def without_cp_sat():
    """Contested components solved by the constructions alone (as big ones are): no CP-SAT."""
    return mock.patch.object(assignment, "CP_SAT_MAX_CANDIDATES", 0)


@pytest.mark.parametrize("cp_sat", [True, False], ids=["cp-sat", "lp-rounding"])
@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_capacity_is_never_exceeded_and_optimiser_places_at_least_as_many_as_greedy(cp_sat, problem):
    candidates, capacities = problem
    with mock.patch.object(assignment, "CP_SAT_MAX_CANDIDATES", 2_000 if cp_sat else 0):
        optimised = assign(candidates, capacities, time_limit_s=5)
    first_come = greedy(candidates, capacities)
    units = {(c.need_id, c.line_id): c.units for c in candidates}
    for result in (optimised, first_come):
        for line, capacity in capacities.items():
            used = sum(units[(n, ln)] for n, ln in result.chosen.items() if ln == line)
            assert used <= capacity + 1e-9
        assert all((n, ln) in units for n, ln in result.chosen.items())
    # Urgent needs first: the optimiser places at least as many urgent needs, and when it places no more
    # of them than first come, at least as many needs in all (one more urgent need may cost several others).
    urgent = {c.need_id for c in candidates if c.urgent}
    optimised_urgent, first_come_urgent = len(urgent & set(optimised.chosen)), len(urgent & set(first_come.chosen))
    assert optimised_urgent >= first_come_urgent
    assert optimised_urgent > first_come_urgent or optimised.placed >= first_come.placed


def test_components_are_needs_joined_by_the_lines_they_could_share():
    candidates = [
        Candidate(1, 10, "LC02", 1, 0.5), Candidate(2, 10, "LC02", 1, 0.5), Candidate(2, 11, "LC02", 1, 0.5),
        Candidate(3, 11, "LC02", 1, 0.5),  # joined to need 1 through need 2's lines
        Candidate(4, 12, "LC02", 1, 0.5),  # a line of its own
        Candidate(5, 20, "LC01", 1, 0.5), Candidate(6, 20, "LC01", 1, 0.5),
    ]
    parts = components(candidates)
    assert [sorted({c.need_id for c in part}) for part in parts] == [[1, 2, 3], [4], [5, 6]]
    def pairs(items):
        return sorted((c.need_id, c.line_id) for c in items)

    assert pairs(c for part in parts for c in part) == pairs(candidates)
    assert components([]) == []


def test_when_every_best_choice_fits_no_solver_runs():
    candidates = [Candidate(1, 10, "LC02", 4, 0.9), Candidate(1, 11, "LC02", 4, 0.5), Candidate(2, 10, "LC02", 4, 0.4),
                  Candidate(2, 11, "LC02", 4, 0.8), Candidate(3, 12, "LC02", 4, 0.1)]
    result = assign(candidates, {10: 4, 11: 4, 12: 4})
    assert result.chosen == {1: 10, 2: 11, 3: 12}
    assert result.status == "OPTIMAL" and result.methods == {"fits": 2}


@pytest.mark.parametrize("cp_sat", [True, False], ids=["cp-sat", "lp-rounding"])
def test_a_big_need_first_in_line_does_not_crowd_out_several_small_ones(cp_sat):
    # First come takes the 8-unit need and one 2-unit need; five 2-unit needs fit instead.
    candidates = [Candidate(1, 10, "LC02", 8, 0.9)] + [Candidate(n, 10, "LC02", 2, 0.5) for n in range(2, 7)]
    assert greedy(candidates, {10: 10}).placed == 2
    with mock.patch.object(assignment, "CP_SAT_MAX_CANDIDATES", 2_000 if cp_sat else 0):
        result = assign(candidates, {10: 10})
    assert result.chosen == {n: 10 for n in range(2, 7)} and result.unplaced == {1}


def test_an_lp_optimum_that_is_whole_is_reported_optimal_without_cp_sat():
    # Equal units: the LP relaxation is a transportation problem, whose optimum is whole.
    candidates = [Candidate(n, line, "LC02", 1, score) for n in range(6)
                  for line, score in ((10, 0.9), (11, 0.5 + n / 100))]
    with without_cp_sat():
        result = assign(candidates, {10: 3, 11: 2})
    assert result.status == "OPTIMAL" and result.methods == {"lp": 1}
    assert result.placed == 5 and list(result.chosen.values()).count(10) == 3


def test_locks_that_do_not_all_fit_keep_what_fits_and_place_the_rest():
    # Two locked 4-unit needs on a 4-unit line: the first keeps its lock; everything else is still placed.
    candidates = [Candidate(1, 10, "LC02", 4, 0.9), Candidate(1, 11, "LC02", 4, 0.2), Candidate(2, 10, "LC02", 4, 0.9),
                  Candidate(2, 11, "LC02", 4, 0.2), Candidate(3, 11, "LC02", 4, 0.5)]
    for cp_sat in (2_000, 0):
        with mock.patch.object(assignment, "CP_SAT_MAX_CANDIDATES", cp_sat):
            result = assign(candidates, {10: 4, 11: 8}, locks={1: 10, 2: 10})
        assert result.chosen[1] == 10 and result.placed == 3, cp_sat


def test_a_large_scarce_district_is_solved_without_cp_sat_and_beats_first_come():
    import random

    rng = random.Random(7)
    lines = {line: rng.choice((300, 500, 800)) for line in range(100, 108)}
    candidates = []
    for need in range(1, 801):
        units, urgent = rng.choice((1, 4.33, 8.66, 17.32)), rng.random() < 0.06
        for line in rng.sample(sorted(lines), 4):
            candidates.append(Candidate(need, line, "LC02", units, round(rng.random(), 4), urgent))
    assert len(candidates) > assignment.CP_SAT_MAX_CANDIDATES
    result, first_come = assign(candidates, lines, time_limit_s=5), greedy(candidates, lines)
    assert "cp_sat" not in result.methods and result.status in ("OPTIMAL", "FEASIBLE")
    for line, capacity in lines.items():
        assert sum(c.units for c in candidates if result.chosen.get(c.need_id) == line == c.line_id) <= capacity
    urgent = {c.need_id for c in candidates if c.urgent}
    assert urgent <= set(result.chosen) and urgent <= set(first_come.chosen)
    assert result.placed > first_come.placed
    assert assign(candidates, lines, time_limit_s=5).chosen == result.chosen  # the same answer every time
