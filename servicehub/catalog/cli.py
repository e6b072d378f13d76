"""Catalogue commands: `servicehub seed catalog`, `servicehub catalog activate|deactivate CODE`."""

import click

from servicehub.catalog import services
from servicehub.catalog.codes import CATALOG_FILE
from servicehub.cli import app_command, seed_cli


@seed_cli.command("catalog")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Catalogue TOML file")
@app_command
def seed_catalog_command(path: str | None) -> None:
    """Load the service catalogue (idempotent: a second run changes nothing)."""
    report = services.seed_catalog(services.read_catalog_file(path or CATALOG_FILE))
    click.echo(report.summary())


@click.group("catalog")
def catalog_cli() -> None:
    """Manage the service catalogue."""


@catalog_cli.command("deactivate")
@click.argument("code")
@app_command
def deactivate_command(code: str) -> None:
    """Retire a service type (it stays, and stays referenced, but is no longer offered)."""
    services.set_service_type_active(code, False)
    click.echo(f"{code} deactivated")


@catalog_cli.command("activate")
@click.argument("code")
@app_command
def activate_command(code: str) -> None:
    """Offer a retired service type again."""
    services.set_service_type_active(code, True)
    click.echo(f"{code} activated")
