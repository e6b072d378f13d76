"""Soft preferences: how good is an eligible option? Pure module.

The score is a weighted mean of factors, each in [0, 1] (1 best): distance from the organisation's
nearest base, its performance score, continuity with the recipient, price against the reference
price, and the organisation's load. Weights are configurable; each proposal carries the breakdown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from servicehub.matching.problem import LineOption, NeedCase, OrganisationProfile
from servicehub.scheduling.travel import haversine_m

NEUTRAL_PERFORMANCE = 0.5  # until evaluation has scored an organisation


@dataclass(frozen=True)
class Weights:
    """How much each factor counts (normalised by their sum)."""

    distance: float = 0.35
    performance: float = 0.20
    continuity: float = 0.20
    price: float = 0.10
    load: float = 0.15
    distance_horizon_km: float = 15.0  # at or beyond this, the distance factor is 0
    load_horizon: float = 8.0  # live referrals per worker at which the load factor is 0

    @classmethod
    def from_mapping(cls, values: dict | None) -> Weights:
        """Weights from configuration, unknown keys refused."""
        values = values or {}
        unknown = set(values) - set(asdict(cls()))
        if unknown:
            raise ValueError(f"unknown matching weights: {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class Factor:
    """One factor of a score: the measured value, its 0..1 score and its weight."""

    value: float | None
    score: float
    weight: float


@dataclass(frozen=True)
class Score:
    """The weighted total in [0, 1] and its factors."""

    total: float
    factors: dict[str, Factor]

    def breakdown(self) -> dict:
        """Plain data for storing and showing: {factor: {value, score, weight}}."""
        return {name: asdict(f) for name, f in self.factors.items()}


def nearest_base_km(need: NeedCase, org: OrganisationProfile) -> float | None:
    """Distance in km from the recipient to the organisation's nearest station or worker base."""
    if not org.bases:
        return None
    return min(haversine_m(need.location, base) for base in org.bases) / 1000


def distance_factor(km: float | None, horizon_km: float) -> float:
    """1 at the door, falling linearly to 0 at the horizon (0 when the organisation has no base)."""
    return 0.0 if km is None else max(0.0, 1.0 - km / horizon_km)


def performance_factor(org: OrganisationProfile) -> float:
    """The organisation's evaluated performance, neutral until it has one."""
    return NEUTRAL_PERFORMANCE if org.performance is None else min(1.0, max(0.0, org.performance))


def continuity_factor(need: NeedCase, org: OrganisationProfile) -> float:
    """1 if the organisation already serves the recipient (the same faces), else 0."""
    return 1.0 if org.organisation_id in need.serving_organisations else 0.0


def price_factor(line: LineOption) -> float:
    """1 at or below the reference price, falling to 0 at twice the reference."""
    if line.reference_price_fen <= 0 or line.unit_price_fen <= line.reference_price_fen:
        return 1.0
    return max(0.0, 1.0 - (line.unit_price_fen - line.reference_price_fen) / line.reference_price_fen)


def load_factor(org: OrganisationProfile, horizon: float) -> float:
    """1 for an idle organisation, falling to 0 at `horizon` live referrals per worker."""
    return max(0.0, 1.0 - org.load / horizon)


def score_option(need: NeedCase, line: LineOption, org: OrganisationProfile, weights: Weights = Weights()) -> Score:
    """The weighted score of serving `need` with `line` of `org`, with its breakdown."""
    km = nearest_base_km(need, org)
    factors = {
        "distance": Factor(None if km is None else round(km, 2), distance_factor(km, weights.distance_horizon_km),
                           weights.distance),
        "performance": Factor(org.performance, performance_factor(org), weights.performance),
        "continuity": Factor(float(org.organisation_id in need.serving_organisations), continuity_factor(need, org),
                             weights.continuity),
        "price": Factor(line.unit_price_fen / line.reference_price_fen if line.reference_price_fen else None,
                        price_factor(line), weights.price),
        "load": Factor(round(org.load, 2), load_factor(org, weights.load_horizon), weights.load),
    }
    total_weight = sum(f.weight for f in factors.values()) or 1.0
    total = sum(f.score * f.weight for f in factors.values()) / total_weight
    return Score(round(total, 4), factors)
