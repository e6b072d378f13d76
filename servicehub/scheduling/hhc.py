"""Home health care instances (Mankowska et al. 2014, in the JSON form of Ceschia et al. 2024) as scheduling
problems, and their plans in the instances' solution form with their scores. Pure module.

An instance (../shared/bench-data/hhc/README.md): one office where every caregiver starts and ends; patients
with a start window and one or two services (a service needs a caregiver able to do it), two services
synchronised (simultaneous, or sequential with a min-max gap between their starts); a distance matrix (office
first) that is also the travel time. The latest start is soft (tardiness), the earliest hard. The score is
(distance + total tardiness + largest tardiness) / 3.

Distances and durations are fractional: the problem holds them in hundredths, travel rounded up (a start the
plan gives can always be kept in exact arithmetic) and the arc cost rounded to the nearest; the score is
recomputed from the instance's own numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from servicehub.scheduling.problem import Plan, Problem, Visit, Weights, Worker

SCALE = 100  # hundredths
SIMULTANEOUS, SEQUENTIAL = "simultaneous", "sequential"
# Drop penalties far above any day's cost (every service must be done; a dropped one shows as unplaced).
DROP = 10**9


class InstanceError(ValueError):
    """The file is not a home-care instance of this form: the message names what is wrong."""


@dataclass(frozen=True)
class Service:
    """One service a patient needs: which, how long, and its place in the patient's list."""

    patient: str
    service: str
    duration: float
    order: int  # 0 or 1


@dataclass(frozen=True)
class Instance:
    """A home-care instance, checked."""

    name: str
    patients: tuple[dict, ...]
    caregivers: tuple[dict, ...]
    services: tuple[Service, ...]
    distances: tuple[tuple[float, ...], ...]  # office, then the patients in order


def read_instance(path: str | Path) -> Instance:
    """Read and check an instance file; InstanceError names the first thing that is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InstanceError(f"{path}: cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise InstanceError(f"{path}: not JSON ({error})") from None
    return parse_instance(data, path.name)


def parse_instance(data, name: str) -> Instance:
    """Check an instance's data (as read from JSON) and return it as an Instance."""
    if not isinstance(data, dict):
        raise InstanceError(f"{name}: an instance is a JSON object")
    for key in ("patients", "services", "caregivers", "central_offices", "distances"):
        if key not in data:
            raise InstanceError(f"{name}: missing key {key!r}")
        if not isinstance(data[key], list):
            raise InstanceError(f"{name}: {key!r} must be a list")
    if len(data["central_offices"]) != 1:
        raise InstanceError(f"{name}: 'central_offices' must hold exactly one office")
    default_duration = {}
    for k, service in enumerate(data["services"]):
        _require(service, ("id",), f"{name}: services[{k}]")
        default_duration[service["id"]] = service.get("default_duration")
    abilities: set[str] = set()
    for k, caregiver in enumerate(data["caregivers"]):
        _require(caregiver, ("id", "abilities"), f"{name}: caregivers[{k}]")
        abilities |= set(caregiver["abilities"])
    if not data["caregivers"]:
        raise InstanceError(f"{name}: 'caregivers' is empty")
    services = [service for k, patient in enumerate(data["patients"])
                for service in _patient_services(patient, name, k, default_duration, abilities)]
    size = len(data["patients"]) + 1
    matrix = data["distances"]
    if len(matrix) != size or any(not isinstance(row, list) or len(row) != size for row in matrix):
        raise InstanceError(f"{name}: 'distances' must be a {size}x{size} matrix (the office, then "
                            f"{size - 1} patients)")
    if any(not _number(d) or d < 0 for row in matrix for d in row):
        raise InstanceError(f"{name}: 'distances' must hold non-negative numbers")
    return Instance(name=name.removesuffix(".json"), patients=tuple(data["patients"]),
                    caregivers=tuple(data["caregivers"]), services=tuple(services),
                    distances=tuple(tuple(float(d) for d in row) for row in matrix))


def _patient_services(patient, name: str, k: int, default_duration: dict, abilities: set[str]) -> list[Service]:
    """A patient's services, checked: its window, one or two services each known and doable with a duration, and
    the synchronisation two services need."""
    where = f"{name}: patient {patient['id']!r}" if isinstance(patient, dict) and "id" in patient \
        else f"{name}: patients[{k}]"
    _require(patient, ("id", "time_window", "required_caregivers"), where)
    window = patient["time_window"]
    if not (isinstance(window, list) and len(window) == 2 and all(_number(t) for t in window)
            and 0 <= window[0] <= window[1]):
        raise InstanceError(f"{where}: 'time_window' must be [earliest, latest] with 0 <= earliest <= latest")
    needed = patient["required_caregivers"]
    if not isinstance(needed, list) or not 1 <= len(needed) <= 2:
        raise InstanceError(f"{where}: 'required_caregivers' must list one or two services")
    services = []
    for order, required in enumerate(needed):
        _require(required, ("service",), f"{where}: required_caregivers[{order}]")
        service = required["service"]
        if service not in default_duration:
            raise InstanceError(f"{where}: service {service!r} is not in 'services'")
        if service not in abilities:
            raise InstanceError(f"{where}: no caregiver can do service {service!r}")
        duration = required.get("duration", default_duration[service])
        if not _number(duration) or duration < 0:
            raise InstanceError(f"{where}: service {service!r} has no duration (neither its own nor a "
                                "default_duration)")
        services.append(Service(patient["id"], service, float(duration), order))
    sync = patient.get("synchronization")
    if len(needed) == 2:
        if not isinstance(sync, dict) or sync.get("type") not in (SIMULTANEOUS, SEQUENTIAL):
            raise InstanceError(f"{where}: two services need 'synchronization' of type 'simultaneous' or "
                                "'sequential'")
        gap = sync.get("distance")
        if sync["type"] == SEQUENTIAL and not (isinstance(gap, list) and len(gap) == 2
                                                and all(_number(g) for g in gap) and 0 <= gap[0] <= gap[1]):
            raise InstanceError(f"{where}: a sequential synchronization needs 'distance' [min, max], "
                                "0 <= min <= max")
    elif sync:
        raise InstanceError(f"{where}: 'synchronization' needs two services")
    return services


def _require(item, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(item, dict):
        raise InstanceError(f"{where}: must be an object")
    for key in keys:
        if key not in item:
            raise InstanceError(f"{where}: missing key {key!r}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def visit_id(service: Service) -> str:
    """The problem's visit id of a patient's service."""
    return f"{service.patient}/{service.service}"


def to_problem(instance: Instance) -> Problem:
    """The instance as a scheduling problem: a visit per service (skill = the service), windows hard at the
    earliest and soft (`due`) at the latest, a pair per synchronised patient, a worker per caregiver."""
    location = {p["id"]: k + 1 for k, p in enumerate(instance.patients)}
    patient = {p["id"]: p for p in instance.patients}
    travel = tuple(tuple(math.ceil(d * SCALE - 1e-6) for d in row) for row in instance.distances)
    cost = tuple(tuple(round(d * SCALE) for d in row) for row in instance.distances)
    # No shift is given: the day is long enough for every service done one after another from the latest window.
    horizon = (math.ceil(max((p["time_window"][1] for p in instance.patients), default=0) * SCALE)
               + sum(math.ceil(s.duration * SCALE) for s in instance.services)
               + 2 * max((max(row) for row in travel), default=0) * (len(instance.services) + 1))
    visits = []
    for service in instance.services:
        p = patient[service.patient]
        earliest, latest = (round(t * SCALE) for t in p["time_window"])
        sync = p.get("synchronization") or {}
        gap = None
        if sync.get("type") == SEQUENTIAL and service.order == 1:
            low, high = sync["distance"]
            gap = (math.ceil(low * SCALE), math.floor(high * SCALE))
        visits.append(Visit(id=visit_id(service), location=location[service.patient],
                            duration=math.ceil(service.duration * SCALE - 1e-6), window=(earliest, horizon),
                            due=latest, skills=frozenset({service.service}), pair=service.patient if sync else None,
                            pair_gap=gap))
    workers = tuple(Worker(id=c["id"], start_location=0, end_location=0, shift=(0, horizon),
                           skills=frozenset(c["abilities"])) for c in instance.caregivers)
    return Problem(visits=tuple(visits), workers=workers, travel={"default": travel}, cost=cost,
                   weights=Weights(drop=DROP, drop_urgent=DROP, tardiness=1, max_tardiness=1), balance=False)


def solution_routes(instance: Instance, plan: Plan) -> list[dict]:
    """The plan in the instances' solution form: per caregiver, its patients and services in order, with arrival
    (= start) and departure times."""
    by_id = {visit_id(s): s for s in instance.services}
    routes = []
    for caregiver in instance.caregivers:
        route = plan.routes.get(caregiver["id"])
        stops = route.stops if route else []
        routes.append({"caregiver_id": caregiver["id"], "locations": [
            {"patient_id": by_id[stop.visit_id].patient, "service_id": by_id[stop.visit_id].service,
             "arrival_time": round(stop.start / SCALE, 2),
             "departure_time": round(stop.start / SCALE + by_id[stop.visit_id].duration, 2)}
            for stop in stops]})
    return routes


def score(instance: Instance, routes: list[dict]) -> dict:
    """Distance, total and largest tardiness and the total cost of routes in solution form, from the instance's
    own numbers."""
    location = {p["id"]: k + 1 for k, p in enumerate(instance.patients)}
    latest = {p["id"]: p["time_window"][1] for p in instance.patients}
    distance, late = 0.0, []
    for route in routes:
        here = 0
        for stop in route["locations"]:
            there = location[stop["patient_id"]]
            distance += instance.distances[here][there]
            here = there
            late.append(max(0.0, stop["arrival_time"] - latest[stop["patient_id"]]))
        if route["locations"]:
            distance += instance.distances[here][0]
    total, largest = sum(late), max(late, default=0.0)
    return {"distance": round(distance, 3), "total_tardiness": round(total, 3), "max_tardiness": round(largest, 3),
            "total_cost": round((distance + total + largest) / 3, 3)}
