"""Scheduling commands: `servicehub bench solomon FILE`."""

from __future__ import annotations

import json

import click

from servicehub.cli import bench_cli


@bench_cli.command("solomon")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds of search")
@click.option("--vehicles", type=int, help="Fleet size (default: the instance's)")
@click.option("--processes", default=2, show_default=True, help="Independent searches in parallel")
def solomon_command(path: str, time_limit: float, vehicles: int | None, processes: int) -> None:
    """Solve a Solomon VRPTW instance (original text format); print one JSON line (DIMACS distances)."""
    from servicehub.scheduling.benchmark import solve_solomon

    click.echo(json.dumps(solve_solomon(path, time_limit, vehicles, processes)))
