"""The `servicehub` command line: a Flask CLI group; each domain adds its commands in its cli.py."""

from __future__ import annotations

import getpass
from functools import wraps

import click
from flask.cli import FlaskGroup, with_appcontext

from servicehub.errors import DomainError, flatten_errors

# Domain modules that attach commands to the groups below.
CLI_MODULES = (
    "servicehub.catalog.cli",
    "servicehub.auth.cli",
    "servicehub.registry.cli",
    "servicehub.imports.cli",
    "servicehub.scheduling.cli",
    "servicehub.visits.cli",
    "servicehub.jobs.cli",
    "servicehub.evaluation.cli",
    "servicehub.intake.cli",
)


def _create_app():
    from servicehub.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """ServiceHub: service-type social assistance (服务类社会救助)."""


@click.group("seed")
def seed_cli() -> None:
    """Load reference and demo data (idempotent)."""


@click.group("demo")
def demo_cli() -> None:
    """Build and load the demo district, and its demo accounts."""


@click.group("bench")
def bench_cli() -> None:
    """Benchmarks (see bench/README.md)."""


def app_command(func):
    """A command that runs in the app context, is audited as `cli:<os user>`, and turns domain
    errors into a clear message with exit status 1 instead of a traceback."""

    @wraps(func)
    @with_appcontext
    def wrapper(*args, **kwargs):
        from servicehub.auth.audit import Actor, acting_as

        try:
            with acting_as(Actor(f"cli:{getpass.getuser()}")):
                return func(*args, **kwargs)
        except DomainError as exc:
            details = "".join(f"\n  {field}: {message}" for field, message in flatten_errors(exc.errors))
            raise click.ClickException(f"{exc.message}{details}") from exc

    return wrapper


def register_cli(app) -> None:
    """Attach the ServiceHub command groups to the app's CLI."""
    from importlib import import_module

    for module_name in CLI_MODULES:
        import_module(module_name)
    for group in (seed_cli, demo_cli, bench_cli, *_domain_groups()):
        app.cli.add_command(group)


def _domain_groups():
    from servicehub.auth.cli import users_cli
    from servicehub.catalog.cli import catalog_cli
    from servicehub.evaluation.cli import reports_cli
    from servicehub.imports.cli import import_command, imports_cli
    from servicehub.intake.cli import intake_cli
    from servicehub.jobs.cli import scheduler_command
    from servicehub.scheduling.cli import schedule_cli
    from servicehub.visits.cli import audit_cli

    return (catalog_cli, users_cli, import_command, imports_cli, schedule_cli, audit_cli, scheduler_command,
            reports_cli, intake_cli)
