"""Travel times from coordinates."""

import pytest

from servicehub.scheduling.travel import HaversineTravel, haversine_m


def test_haversine_known_distance():
    # One degree of latitude is about 111.2 km everywhere.
    assert haversine_m((32.0, 119.4), (33.0, 119.4)) == pytest.approx(111_195, rel=1e-3)


def test_same_point_is_zero_minutes():
    assert HaversineTravel().minutes((32.1, 119.5), (32.1, 119.5), "car") == 0


def test_minutes_round_up_and_scale_with_mode():
    travel = HaversineTravel(detour_factor=1.0, speeds_kmh={"walk": 6.0, "car": 60.0})
    a, b = (32.0, 119.4), (32.0 + 990 / 111_195, 119.4)  # 990 m apart: 9.9 min on foot
    assert travel.minutes(a, b, "walk") == 10
    assert travel.minutes(a, b, "car") == 1


def test_matrix_is_square_with_zero_diagonal():
    points = [(32.1, 119.5), (32.15, 119.55), (32.2, 119.45)]
    matrix = HaversineTravel().matrix(points, "ebike")
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert [matrix[i][i] for i in range(3)] == [0, 0, 0]
    assert matrix[0][1] == matrix[1][0] > 0


def test_the_matrix_agrees_with_one_at_a_time_minutes():
    import random

    rng = random.Random(3)
    points = [(32.1 + rng.random() * 0.2, 119.5 + rng.random() * 0.3) for _ in range(40)] + [(32.15, 119.6)] * 2
    travel = HaversineTravel()
    for mode in ("walk", "ebike", "car"):
        assert travel.matrix(points, mode) == [[travel.minutes(a, b, mode) for b in points] for a in points]
    assert travel.matrix([], "car") == []
