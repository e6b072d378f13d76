"""Travel times between coordinates: great-circle distance x detour factor / speed of the travel mode.

Pure module. `TravelTimeSource` is the interface a road-network source could implement instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

EARTH_RADIUS_M = 6_371_008.8

Point = tuple[float, float]  # (latitude, longitude) in degrees


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class TravelTimeSource(Protocol):
    """Anything that can give whole-minute travel times between points."""

    def minutes(self, a: Point, b: Point, mode: str) -> int:
        """Travel time from a to b in whole minutes (rounded up)."""

    def matrix(self, points: Sequence[Point], mode: str) -> list[list[int]]:
        """Square matrix of travel minutes between all points."""


@dataclass(frozen=True)
class HaversineTravel:
    """Straight-line distance stretched by a detour factor, at a fixed speed per travel mode."""

    detour_factor: float = 1.35
    speeds_kmh: dict[str, float] = field(
        default_factory=lambda: {"walk": 4.5, "bicycle": 12.0, "ebike": 18.0, "car": 25.0}
    )

    def minutes(self, a: Point, b: Point, mode: str) -> int:
        """Travel time from a to b in whole minutes, rounded up (0 for the same place)."""
        metres = haversine_m(a, b) * self.detour_factor
        if metres < 1:
            return 0
        return math.ceil(metres / (self.speeds_kmh[mode] * 1000 / 60))

    def matrix(self, points: Sequence[Point], mode: str) -> list[list[int]]:
        """Square matrix of travel minutes between all points (vectorised: a day has hundreds of places)."""
        if not points:
            return []
        lat, lon = (np.radians(np.array([p[i] for p in points], dtype=float)) for i in (0, 1))
        h = (np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
             + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2)
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h))) * self.detour_factor
        minutes = np.ceil(metres / (self.speeds_kmh[mode] * 1000 / 60)).astype(int)
        minutes[metres < 1] = 0
        return minutes.tolist()
