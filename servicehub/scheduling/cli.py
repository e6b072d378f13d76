"""Scheduling commands: `servicehub schedule generate`, `servicehub demo serve`, `servicehub bench solomon FILE`."""

from __future__ import annotations

import json

import click

from servicehub.cli import app_command, bench_cli, demo_cli


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
