"""The `servicehub` command line: a Flask CLI group with ServiceHub's own commands."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup, with_appcontext

from servicehub.errors import DomainError


def _create_app():
    from servicehub.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """ServiceHub: service-type social assistance (服务类社会救助)."""


def fail_on_domain_error(func):
    """Turn a DomainError into a clear CLI error (exit 1) instead of a traceback."""
    from functools import wraps

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DomainError as exc:
            details = "".join(f"\n  {field}: {msgs}" for field, msgs in (exc.errors or {}).items())
            raise click.ClickException(f"{exc.message}{details}") from exc

    return wrapper


@click.group("seed")
def seed_cli() -> None:
    """Load reference and demo data."""


@seed_cli.command("catalog")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Catalogue TOML file")
@with_appcontext
@fail_on_domain_error
def seed_catalog_command(path: str | None) -> None:
    """Load the service catalogue (idempotent: a second run changes nothing)."""
    from servicehub.catalog import services
    from servicehub.catalog.codes import CATALOG_FILE

    report = services.seed_catalog(services.read_catalog_file(path or CATALOG_FILE))
    click.echo(report.summary())


@click.group("catalog")
def catalog_cli() -> None:
    """Manage the service catalogue."""


@catalog_cli.command("deactivate")
@click.argument("code")
@with_appcontext
@fail_on_domain_error
def deactivate_command(code: str) -> None:
    """Retire a service type (it stays, and stays referenced, but is no longer offered)."""
    from servicehub.catalog import services

    services.set_service_type_active(code, False)
    click.echo(f"{code} deactivated")


@catalog_cli.command("activate")
@click.argument("code")
@with_appcontext
@fail_on_domain_error
def activate_command(code: str) -> None:
    """Offer a retired service type again."""
    from servicehub.catalog import services

    services.set_service_type_active(code, True)
    click.echo(f"{code} activated")
