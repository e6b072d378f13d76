"""District-wide assignment: capacity respected, nobody starved by first-come choices, urgent first, locks kept."""

from hypothesis import given, settings
from hypothesis import strategies as st

from servicehub.matching.assignment import Candidate, assign, greedy


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


@settings(max_examples=60, deadline=None)
@given(problems())
def test_capacity_is_never_exceeded_and_optimiser_places_at_least_as_many_as_greedy(problem):
    candidates, capacities = problem
    optimised, first_come = assign(candidates, capacities, time_limit_s=5), greedy(candidates, capacities)
    units = {(c.need_id, c.line_id): c.units for c in candidates}
    for result in (optimised, first_come):
        for line, capacity in capacities.items():
            used = sum(units[(n, ln)] for n, ln in result.chosen.items() if ln == line)
            assert used <= capacity + 1e-9
        assert all((n, ln) in units for n, ln in result.chosen.items())
    assert optimised.placed >= first_come.placed
    urgent = {c.need_id for c in candidates if c.urgent}
    assert len(urgent & set(optimised.chosen)) >= len(urgent & set(first_come.chosen))
