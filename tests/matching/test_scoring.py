"""The weighted score and its factors."""

from dataclasses import replace

import pytest

from servicehub.matching.scoring import (
    NEUTRAL_PERFORMANCE,
    Weights,
    distance_factor,
    load_factor,
    price_factor,
    score_option,
)
from tests.matching.test_eligibility import LINE, NEED, ORG


def test_factors_are_between_zero_and_one_and_explained():
    score = score_option(NEED, LINE, ORG)
    assert 0 <= score.total <= 1
    breakdown = score.breakdown()
    assert set(breakdown) == {"distance", "performance", "continuity", "price", "load"}
    assert breakdown["performance"]["score"] == NEUTRAL_PERFORMANCE  # not evaluated yet: neutral
    assert breakdown["distance"]["value"] == pytest.approx(1.45, abs=0.1)  # km to the nearest base


def test_closer_better_rated_continuing_cheaper_idler_organisations_score_higher():
    base = score_option(NEED, LINE, ORG).total
    assert score_option(NEED, LINE, replace(ORG, bases=((32.05, 119.45),))).total < base
    assert score_option(NEED, LINE, replace(ORG, performance=0.9)).total > base
    assert score_option(replace(NEED, serving_organisations=frozenset({7})), LINE, ORG).total > base
    assert score_option(NEED, replace(LINE, unit_price_fen=15000), ORG).total < base
    assert score_option(NEED, LINE, replace(ORG, load=6)).total < base


def test_factor_shapes():
    assert distance_factor(0, 15) == 1 and distance_factor(7.5, 15) == 0.5 and distance_factor(30, 15) == 0
    assert distance_factor(None, 15) == 0
    assert price_factor(replace(LINE, unit_price_fen=9000)) == 1
    assert price_factor(replace(LINE, unit_price_fen=20000)) == 0
    assert load_factor(replace(ORG, load=4), 8) == 0.5


def test_weights_are_configurable_and_checked():
    only_distance = Weights.from_mapping({"distance": 1, "performance": 0, "continuity": 0, "price": 0, "load": 0})
    near = score_option(NEED, LINE, ORG, only_distance).total
    assert near == pytest.approx(score_option(NEED, LINE, ORG).factors["distance"].score, abs=1e-3)
    with pytest.raises(ValueError, match="unknown"):
        Weights.from_mapping({"charisma": 1})
