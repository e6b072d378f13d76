"""Scheduling commands: `servicehub schedule generate`, `servicehub demo serve`, `servicehub bench solomon FILE`,
`servicehub bench hhc FILE`, `servicehub bench day`."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import click

from servicehub.cli import app_command, bench_cli, demo_cli
from servicehub.registry.demo import DEMO_SEED, STAFFING
from servicehub.scheduling.bench_day import WEEKDAYS
from servicehub.scheduling.services import MAX_TIME_LIMIT_S
from servicehub.scheduling.solver import FIRST_SOLUTIONS, PYVRP


@click.group("schedule")
def schedule_cli() -> None:
    """Visits and rosters."""


@bench_cli.command("solomon")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds of search")
@click.option("--vehicles", type=int, help="Fleet size (default: the instance's)")
@click.option("--processes", default=2, show_default=True, help="Independent searches in parallel")
def solomon_command(path: str, time_limit: float, vehicles: int | None, processes: int) -> None:
    """Solve a Solomon VRPTW instance (original text format); print one JSON line (DIMACS distances)."""
    from servicehub.scheduling.benchmark import solve_solomon

    click.echo(json.dumps(solve_solomon(path, time_limit, vehicles, processes)))


@bench_cli.command("hhc")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True,
              help="Seconds of search")
@click.option("--processes", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Independent searches in parallel")
def hhc_command(path: str, time_limit: float, processes: int) -> None:
    """Solve a home-health-care instance (Mankowska et al., JSON form of ../shared/bench-data/hhc/); print one JSON
    line with the score and the routes in the instance's solution form. Exit 2 if the file is not an instance."""
    from servicehub.scheduling.benchmark import solve_hhc
    from servicehub.scheduling.hhc import InstanceError

    try:
        result = solve_hhc(path, time_limit, processes)
    except InstanceError as error:
        raise click.BadParameter(str(error), param_hint="'PATH'") from None
    click.echo(json.dumps(result))


@bench_cli.command("day")
@click.option("--recipients", type=click.IntRange(1, 1_000_000), default=3_200, show_default=True)
@click.option("--workers", type=click.IntRange(1, 100_000), default=150, show_default=True)
@click.option("--organisations", type=click.IntRange(1, 10_000), default=12, show_default=True)
@click.option("--staffing", type=click.Choice(STAFFING), default="profile", show_default=True,
              help="Share the workers by the profiles' head counts or by the workload of the needs (as `demo generate`)")
@click.option("--seed", type=int, default=DEMO_SEED, show_default=True, help="Random seed of the district")
@click.option("--organisation", type=click.IntRange(min=1), help="Only this organisation (id; default: every one "
              "with visits that day)")
@click.option("--weekday", type=click.Choice(WEEKDAYS), default="wed", show_default=True,
              help="Plan the first such day after the district's today")
@click.option("--time-limit", type=click.FloatRange(0, MAX_TIME_LIMIT_S, min_open=True),
              help="Seconds of search per day, cut for small days as a run cuts it (default "
                   "SERVICEHUB_SCHEDULE_TIME_LIMIT)")
@click.option("--processes", type=click.IntRange(1, 64), help="Searches side by side per day (default "
              "SERVICEHUB_SOLVER_PROCESSES)")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the prepared district in this folder and reuse it the same district day (preparing takes "
                   "minutes)")
@click.option("--anchor", is_flag=True, help="Also PyVRP alone on the relaxed day for the same time (breaks "
              "repaired): anchor_placed, anchor_urgent_placed, anchor_travel_min")
@click.option("--first-solution", type=click.Choice([PYVRP, *FIRST_SOLUTIONS]), default=PYVRP, show_default=True,
              help="How the first plan is made: PyVRP on the relaxed day, or one of OR-Tools' insertion heuristics")
def bench_day_command(recipients: int, workers: int, organisations: int, staffing: str, seed: int,
                      organisation: int | None, weekday: str, time_limit: float | None, processes: int | None,
                      keep: Path | None, anchor: bool, first_solution: str) -> None:
    """Plan every organisation's day of a scale district as the service does (load, solve, validate) in a
    throw-away database; print one JSON line per organisation (bench/README.md)."""
    from servicehub.extensions import db
    from servicehub.scheduling import bench_day

    district = bench_day.District(recipients, workers, organisations, staffing, seed, weekday)
    with tempfile.TemporaryDirectory() as scratch:
        directory = keep or Path(scratch)
        database, meta, reused = bench_day.prepared_district(directory, district, _preparing)
        day = meta["day"]
        click.echo(f"{'reused' if reused else 'prepared'}: {meta['day_visits']} visits on {day}, "
                   f"{meta['day_workers']} workers on shift", err=True)
        days = [c for c in meta["by_organisation"] if c["visits"]]
        if organisation is not None:
            days = [c for c in days if c["organisation_id"] == organisation]
            if not days:
                known = ", ".join(str(c["organisation_id"]) for c in meta["by_organisation"] if c["visits"])
                raise click.BadParameter(f"organisation {organisation} has no visits on {day} (those with visits: "
                                         f"{known or 'none'})", param_hint="'--organisation'")
        app = bench_day.district_app(database)
        with app.app_context():
            limit = time_limit or app.config["SERVICEHUB_SCHEDULE_TIME_LIMIT"]
            processes = processes or app.config["SERVICEHUB_SOLVER_PROCESSES"] or 1
            for c in days:
                result = bench_day.measure_day(c["organisation_id"], date.fromisoformat(day), limit, processes,
                                               extras=[bench_day.pyvrp_anchor] if anchor else [],
                                               first_solution=first_solution)
                click.echo(json.dumps({"day": day, **bench_day.day_line(result, c["name"])}, ensure_ascii=False))
            db.session.remove()
            db.engine.dispose()


def _preparing(database: Path, district) -> dict:
    """Prepare a district for `bench day`, saying so first (it takes minutes for thousands of recipients)."""
    from servicehub.scheduling.bench_day import prepare_district

    click.echo(f"preparing {database} ...", err=True)
    return prepare_district(database, district)


@demo_cli.command("serve")
@app_command
def serve_demo_command() -> None:
    """Put the demo district in service: match, offer and accept every need, generate visits."""
    from servicehub.scheduling.demo import serve_demo_district

    accepted, report = serve_demo_district()
    click.echo(f"{accepted} referrals accepted; visits {report.date_from}..{report.date_to}: "
               f"{report.created} created, {report.kept} already there")


@schedule_cli.command("generate")
@click.option("--organisation-id", type=int, help="Only this organisation (default: all)")
@click.option("--days", type=click.IntRange(1, 93), help="Horizon in days (default SERVICEHUB_HORIZON_DAYS)")
@app_command
def generate_command(organisation_id: int | None, days: int | None) -> None:
    """Expand accepted and active referrals into visits over the rolling horizon (run it daily)."""
    from datetime import timedelta

    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.scheduling.services import generate_visits
    from servicehub.timeutil import district_today

    today = district_today()
    report = generate_visits(COMMAND_LINE, organisation_id, today, today + timedelta(days=days - 1) if days else None)
    click.echo(f"visits {report.date_from}..{report.date_to}: {report.created} created, {report.cancelled} "
               f"cancelled, {report.restored} restored, {report.kept} kept")
