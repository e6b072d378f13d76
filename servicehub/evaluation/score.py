"""The composite organisation score (机构综合评分) that matching uses as its performance factor. Pure module.

Each component is a KPI put on a 0..1 scale where 1 is best; the score is their weighted mean over the
components the organisation has (a component with no data leaves its weight out). Fewer than
`MIN_PERSON_TIMES` person-times in the period: no score (matching then treats the organisation as neutral).
"""

from __future__ import annotations

from collections.abc import Mapping

# Defaults (SERVICEHUB_SCORE_WEIGHTS overrides any of them); they sum to 1.
DEFAULT_WEIGHTS: dict[str, float] = {
    "on_time": 0.20,  # on-time rate
    "not_missed": 0.25,  # 1 - missed rate
    "satisfaction": 0.20,  # (mean satisfaction - 1) / 4
    "continuity": 0.10,  # continuity of carer
    "completion": 0.10,  # contract completion, capped at 1
    "submitted": 0.05,  # records submitted within 24 h
    "no_exceptions": 0.10,  # 1 - exception rate
}
MIN_PERSON_TIMES = 30


def components(figures: Mapping) -> dict[str, float | None]:
    """The 0..1 components from a group's KPI figures (None: no data for it)."""
    def flip(value):
        return None if value is None else 1 - value

    satisfaction = figures.get("satisfaction_mean")
    completion = figures.get("contract_completion")
    return {
        "on_time": figures.get("on_time_rate"),
        "not_missed": flip(figures.get("missed_rate")),
        "satisfaction": None if satisfaction is None else (satisfaction - 1) / 4,
        "continuity": figures.get("continuity"),
        "completion": None if completion is None else min(1.0, completion),
        "submitted": figures.get("submitted_24h_rate"),
        "no_exceptions": flip(figures.get("exception_rate")),
    }


def composite_score(figures: Mapping, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float | None:
    """The weighted mean of the components the figures have, 0..1; None below MIN_PERSON_TIMES."""
    if (figures.get("person_times") or 0) < MIN_PERSON_TIMES:
        return None
    parts = [(weights.get(name, 0.0), value) for name, value in components(figures).items() if value is not None]
    total = sum(weight for weight, _ in parts)
    return round(sum(weight * value for weight, value in parts) / total, 4) if total else None


def checked_weights(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with `overrides` applied; raises ValueError naming an unknown component or a negative weight."""
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in (overrides or {}).items():
        if name not in DEFAULT_WEIGHTS:
            raise ValueError(f"Unknown score component: {name}")
        if float(value) < 0:
            raise ValueError(f"A weight cannot be negative: {name}")
        weights[name] = float(value)
    return weights
