"""Benchmarking real days (`servicehub bench day`, bench/roster_day.py): a scale district prepared into a
throw-away SQLite database and put in service, and one organisation's day planned as a run plans it.

Preparing: the database is migrated under an app of its own (never the instance's database), gets the
catalogue and the demo's reference parts, the scale district of `servicehub demo generate` and then
`serve_demo_district()` (`servicehub demo serve`: matching, every proposal offered and accepted, referrals
activated, visits generated over the horizon from the district's today). The day is the first `weekday`
after today. A prepared district is kept beside its description (JSON) and reused the same district day.

Measuring: `measure_day` loads the day (`services.load_day`), solves it at the run's limit as the service
cuts it (`services.search_seconds`) and validates the plan; then the numbers of the problem (feasible
visits, an upper bound on what any plan places) and of the plan. `extras` add numbers of their own.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from servicehub.config import DEFAULT_TIMEZONE
from servicehub.extensions import db
from servicehub.registry import demo
from servicehub.scheduling import services
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.scheduling.problem import Problem
from servicehub.scheduling.solver import PYVRP, SolveOptions, relaxed_plan, solve, why_unplaceable
from servicehub.scheduling.validate import plan_violations

WEEKDAYS = services.WEEKDAYS[:5]  # the days a benchmark may plan (the generator's needs are on weekdays)

# A number of its own for a day (e.g. a reference solver's): called with the day's problem and the search
# seconds the run applied; the dict it returns joins the day's numbers.
DayExtra = Callable[[Problem, float], dict]


@dataclass(frozen=True)
class District:
    """Which scale district to prepare, and which weekday of it to plan."""

    recipients: int
    workers: int
    organisations: int
    staffing: str = "profile"
    seed: int = demo.DEMO_SEED
    weekday: str = "wed"

    @property
    def name(self) -> str:
        """The file name (without suffix) a prepared district is kept under."""
        return (f"district_{self.recipients}_{self.workers}_{self.organisations}_{self.staffing}_{self.seed}"
                f"_{self.weekday}")


def district_app(database: Path, **config):
    """An app of its own on a district's SQLite file; its folder is the instance folder (the data key)."""
    from servicehub.app import create_app

    return create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                       "INSTANCE_PATH": str(database.parent), **config})


def district_today() -> date:
    """Today in the district's default time zone (the app's SERVICEHUB_TIMEZONE default)."""
    return datetime.now(ZoneInfo(DEFAULT_TIMEZONE)).date()


def the_day(today: date, weekday: str) -> date:
    """The first `weekday` after today."""
    ahead = (services.WEEKDAYS.index(weekday) - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


# --- preparing the district ----------------------------------------------------------------------


def day_counts(day: date) -> list[dict]:
    """Per organisation: visits of the day (not cancelled) and workers on shift (available that day)."""
    from servicehub.registry.models import Organisation, Worker

    visits = dict(db.session.execute(
        sa.select(Visit.organisation_id, sa.func.count()).where(
            Visit.service_date == day, Visit.status != VisitStatus.CANCELLED).group_by(Visit.organisation_id)).all())
    on_shift: Counter = Counter()
    for worker in db.session.scalars(sa.select(Worker).where(Worker.active.is_(True))):
        if services.worker_intervals(worker, day):
            on_shift[worker.organisation_id] += 1
    names = dict(db.session.execute(sa.select(Organisation.id, Organisation.name_en)).all())
    return [{"organisation_id": org, "name": names[org], "visits": visits.get(org, 0), "workers": on_shift[org]}
            for org in sorted(set(visits) | set(on_shift))]


def prepare_district(database: Path, district: District,
                     around_serve: AbstractContextManager | None = None) -> dict:
    """Build the district into the SQLite file `database` and serve it (visits over the horizon); its numbers.
    `around_serve` is entered around `serve_demo_district` (a timer of its parts)."""
    import flask_migrate

    from servicehub.auth.audit import Actor, acting_as
    from servicehub.catalog import services as catalog_services
    from servicehub.registry import demo_loader
    from servicehub.registry.cli import read_demo_files
    from servicehub.scheduling.demo import serve_demo_district

    shape = demo.Shape(recipients=district.recipients, workers=district.workers,
                       organisations=district.organisations, scale=True, staffing=district.staffing)
    app = district_app(database)
    with app.app_context():
        started = time.perf_counter()
        flask_migrate.upgrade()
        catalog_services.seed_catalog(catalog_services.read_catalog_file())
        demo_loader.load_demo({part: rows for part, rows in read_demo_files().items()
                               if part in demo_loader.REFERENCE_PARTS})
        with acting_as(Actor("cli:bench")):
            written = demo_loader.generate_scale_district(shape, seed=district.seed)
            generated = time.perf_counter()
            with around_serve or nullcontext():
                accepted, report = serve_demo_district()
            served = time.perf_counter()
        today = services.district_today()
        day = the_day(today, district.weekday)
        counts = day_counts(day)
        db.session.remove()
        db.engine.dispose()
    return {
        "shape": asdict(district),
        "written": written, "accepted": accepted,
        "visits_generated": report.created, "horizon": [report.date_from.isoformat(), report.date_to.isoformat()],
        "prepared_on": today.isoformat(), "day": day.isoformat(), "weekday": district.weekday,
        "seconds": {"generate": round(generated - started, 1), "serve": round(served - generated, 1)},
        "day_visits": sum(c["visits"] for c in counts), "day_workers": sum(c["workers"] for c in counts),
        "organisations_with_visits": sum(1 for c in counts if c["visits"]),
        "organisations_with_workers": sum(1 for c in counts if c["workers"]),
        "by_organisation": counts,
    }


def prepared_district(directory: Path, district: District,
                      prepare: Callable[[Path, District], dict] = prepare_district) -> tuple[Path, dict, bool]:
    """The district's database in `directory` and its numbers: reused if it was prepared there the same district
    day, else prepared by `prepare(database, district)` (default: in this process). The last item: reused."""
    database, meta_path = directory / f"{district.name}.db", directory / f"{district.name}.json"
    if database.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["prepared_on"] == district_today().isoformat():
            return database, meta, True
    database.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    meta = prepare(database, district)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False))
    return database, meta, False


# --- one organisation's day ------------------------------------------------------------------------


def problem_numbers(problem: Problem) -> dict:
    """Visits, workers, what could be placed at all, and an upper bound on what any plan places."""
    reasons = {v.id: why_unplaceable(problem, v) for v in problem.visits}
    feasible = [v for v in problem.visits if reasons[v.id] is None]
    caps = [w.max_visits if w.max_visits is not None else math.inf for w in problem.workers]
    minutes = 0
    for w in problem.workers:
        span = w.shift[1] - w.shift[0]
        span = min(span, w.max_work) if w.max_work is not None else span
        minutes += max(0, span - sum(b.duration for b in w.breaks))
    fit, used = 0, 0
    for duration in sorted(v.duration for v in feasible):
        if used + duration > minutes:
            break
        used, fit = used + duration, fit + 1
    boxes = sum(w.capacity for w in problem.workers if w.capacity is not None) if any(
        w.capacity is not None for w in problem.workers) else math.inf
    meals = sum(1 for v in feasible if v.demand)
    bound = min(len(feasible), sum(caps), fit, len(feasible) - meals + min(meals, boxes))
    return {
        "visits": len(problem.visits), "workers": len(problem.workers),
        "feasible": len(feasible),
        "infeasible": dict(Counter(r for r in reasons.values() if r is not None)),
        "pairs": len({v.pair for v in problem.visits if v.pair}), "meals": sum(1 for v in problem.visits if v.demand),
        "urgent": sum(1 for v in problem.visits if v.urgent),
        "visit_minutes": sum(v.duration for v in problem.visits), "working_minutes": minutes,
        "bound": int(bound), "bound_parts": {"visit_caps": sum(caps) if math.isfinite(sum(caps)) else None,
                                             "minutes": fit, "meal_boxes": boxes if math.isfinite(boxes) else None},
    }


def plan_numbers(problem: Problem, plan, seconds: float, violations: list[str] | None = None) -> dict:
    """What a plan placed (urgent visits too), its travel, why the rest is out, and whether it keeps every hard
    rule (`violations`: plan_violations' answer when the caller has it already)."""
    placed = len(problem.visits) - len(plan.unplaced)
    violations = plan_violations(problem, plan) if violations is None else violations
    return {"seconds": round(seconds, 2), "placed": placed,
            "urgent_placed": sum(1 for v in problem.visits if v.urgent and v.id not in plan.unplaced),
            "travel": plan.travel, "travel_per_visit": round(plan.travel / placed, 1) if placed else None,
            "workers_used": sum(1 for r in plan.routes.values() if r.stops),
            "unplaced": dict(Counter(plan.unplaced.values())), "status": plan.status,
            "violations": len(violations), "violation_examples": violations[:3]}


def measure_day(organisation_id: int, day: date, limit: float, processes: int = 1, *, first: bool = False,
                extras: Sequence[DayExtra] = (), first_solution: str = PYVRP) -> dict:
    """Plan one organisation's day as a run does (load, solve at the service's cut of `limit`, validate) and
    return plain numbers: `seconds` is the wall time of those three steps. `first`: also the first solution
    alone; `extras`: numbers of their own for the day's problem (DayExtra)."""
    started = time.perf_counter()
    loaded = services.load_day(organisation_id, day)
    loaded_at = time.perf_counter()
    problem = loaded.problem
    effective = services.search_seconds(limit, problem)
    plan = solve(problem, SolveOptions(time_limit_s=effective, processes=processes, first_solution=first_solution))
    solved_at = time.perf_counter()
    violations = plan_violations(problem, plan)
    validated_at = time.perf_counter()
    result = {"organisation_id": organisation_id, "seconds": round(validated_at - started, 2),
              "load_s": round(loaded_at - started, 2), "validate_s": round(validated_at - solved_at, 2),
              "limit_s": round(effective, 2), **problem_numbers(problem),
              "plan": plan_numbers(problem, plan, solved_at - loaded_at, violations)}
    if first:
        started = time.perf_counter()
        alone = solve(problem, SolveOptions(time_limit_s=effective, solution_limit=1))
        result["first_solution"] = plan_numbers(problem, alone, time.perf_counter() - started)
    # Per service type (and duration): visits of the day, and how many the plan left out.
    types = {v.id: f"{v.service_type.code} {v.duration_min} min" for v in loaded.visits}
    left_out = Counter(types[visit_id] for visit_id in plan.unplaced)
    result["by_type"] = {t: [n, left_out[t]] for t, n in sorted(Counter(types[v.id] for v in problem.visits).items())}
    result["extras"] = {}
    for extra in extras:
        result["extras"].update(extra(problem, effective))
    return result


def pyvrp_anchor(problem: Problem, limit: float) -> dict:
    """The anchor's numbers for a day: what PyVRP alone places on the relaxed day in the same time (breaks repaired
    afterwards, as `solver.relaxed_plan` does), its urgent visits and travel."""
    routes = relaxed_plan(problem, limit)
    visits = {v.id: v for v in problem.visits}
    workers = {w.id: w for w in problem.workers}
    travel = 0
    for worker_id, ids in routes.items():
        worker = workers[worker_id]
        places = [worker.start_location] + [visits[i].location for i in ids] + [worker.end_location]
        travel += sum(problem.travel_time(worker, a, b) for a, b in zip(places, places[1:], strict=False))
    placed = [visits[i] for ids in routes.values() for i in ids]
    return {"anchor_placed": len(placed), "anchor_urgent_placed": sum(1 for v in placed if v.urgent),
            "anchor_travel_min": travel}


def day_line(result: dict, name: str) -> dict:
    """The JSON line `servicehub bench day` prints for a day measured by `measure_day` (its extras' numbers last)."""
    plan = result["plan"]
    return {"organisation": result["organisation_id"], "name": name, "visits": result["visits"],
            "workers": result["workers"], "placed": plan["placed"], "bound": result["bound"],
            "urgent_placed": plan["urgent_placed"], "urgent": result["urgent"], "travel_min": plan["travel"],
            "seconds": result["seconds"], "violations": plan["violations"], "status": plan["status"],
            "unplaced": plan["unplaced"], "limit_s": result["limit_s"], **result["extras"]}
