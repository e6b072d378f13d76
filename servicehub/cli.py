"""The `servicehub` command line: a Flask CLI group; each domain adds its commands in its cli.py."""

from __future__ import annotations

import getpass
from functools import wraps
from pathlib import Path

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
    "servicehub.integrity.cli",
)


def _create_app():
    from servicehub.app import create_app
    from servicehub.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:  # a clear message and exit status 1, not a traceback
        raise click.ClickException(str(exc)) from exc


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


@click.command("check-config")
@with_appcontext
def check_config_command() -> None:
    """Check the settings against what production needs (PostgreSQL, secrets from the environment, no debug,
    secure cookies) and that the database answers; exit status 1 when anything is missing.

    With SERVICEHUB_ENV=production the app refuses to start on the same problems."""
    from flask import current_app
    from sqlalchemy import text

    from servicehub.extensions import db

    config = current_app.config
    try:
        db.session.execute(text("SELECT 1"))
        click.echo(f"database: {db.engine.dialect.name}, answering")
    except Exception as exc:  # any driver error: the message says which
        raise click.ClickException(f"The database does not answer: {exc}") from exc
    problems = config["SERVICEHUB_PRODUCTION_PROBLEMS"]
    if problems:
        click.echo(f"SERVICEHUB_ENV={config['SERVICEHUB_ENV']}: not fit for production:")
        for problem in problems:
            click.echo(f"  - {problem}")
        raise SystemExit(1)
    click.echo(f"SERVICEHUB_ENV={config['SERVICEHUB_ENV']}: fit for production")


@click.command("backup")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write it (default: instance/backups)")
@click.option("--keep", type=click.IntRange(min=1), default=None, help="Then delete all but the newest N backups there")
@app_command
def backup_command(directory: Path | None, keep: int | None) -> None:
    """Back the whole database up (pg_dump on PostgreSQL, the online backup on SQLite) with a manifest of its
    schema revision, row counts and SHA-256. The data key is not in it: keep that apart (docs/deploy.md)."""
    from servicehub.auth.audit import record_event
    from servicehub.backup import make_backup
    from servicehub.extensions import db

    manifest = make_backup(directory, keep)
    record_event(db.session, "backup_made", "database", None, file=manifest["file"], sha256=manifest["sha256"],
                 removed=manifest["removed"])
    db.session.commit()
    click.echo(f"{manifest['file']}: {manifest['bytes']:,} bytes, revision {manifest['revision']}, "
               f"{manifest['counts'].get('service_records', 0):,} service records, sha256 {manifest['sha256']}")
    for name in manifest["removed"]:
        click.echo(f"  removed {name}")


@click.command("restore")
@click.argument("backup", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Yes, replace the whole database with the backup")
@app_command
def restore_command(backup: Path, yes: bool) -> None:
    """Replace the whole database with a backup, after checking it against its manifest; the restored rows are
    checked against the manifest too. Stop the web and scheduler processes first."""
    from servicehub.auth.audit import record_event
    from servicehub.backup import read_manifest, restore_backup
    from servicehub.extensions import db

    manifest = read_manifest(backup)
    if not yes:
        raise click.ClickException(f"This replaces the whole database with {manifest['file']} of "
                                   f"{manifest['created_at']}; say --yes.")
    restored = restore_backup(backup)
    record_event(db.session, "backup_restored", "database", None, file=restored["file"],
                 revision=restored["revision"])
    db.session.commit()
    click.echo(f"restored {restored['file']} (revision {restored['revision']}): "
               + ", ".join(f"{name} {count:,}" for name, count in restored["counts"].items()))


@click.command("grant-app-role")
@click.argument("role")
@app_command
def grant_app_role_command(role: str) -> None:
    """Let ROLE (the one DATABASE_URL connects as) read every table, add rows to the append-only ones (ledgers,
    frozen reports, the audit log …) but never UPDATE, DELETE or TRUNCATE them, change the others, and the same on
    tables later migrations make. Run as the owner of the tables (SERVICEHUB_MIGRATION_DATABASE_URL); again after
    every migration or restore, it leaves the same."""
    from servicehub.auth.audit import record_event
    from servicehub.extensions import db
    from servicehub.privileges import grant_app_role

    granted = grant_app_role(role)
    record_event(db.session, "app_role_granted", "database", None, role=role, schema=granted["schema"],
                 append_only=granted["append_only"], read_only=granted["read_only"],
                 read_write=len(granted["read_write"]))
    db.session.commit()
    click.echo(f"{role} in schema {granted['schema']}: reads and adds to {len(granted['append_only'])} append-only "
               f"tables ({', '.join(granted['append_only'])}), reads {', '.join(granted['read_only']) or 'nothing else'}, "
               f"reads and changes {len(granted['read_write'])} others; the same on tables made later")


def register_cli(app) -> None:
    """Attach the ServiceHub command groups to the app's CLI."""
    from importlib import import_module

    from flask_migrate.cli import db as db_cli

    for module_name in CLI_MODULES:
        import_module(module_name)
    db_cli.add_command(grant_app_role_command)  # beside Flask-Migrate's `db upgrade`
    for group in (seed_cli, demo_cli, bench_cli, check_config_command, backup_command, restore_command,
                  *_domain_groups()):
        app.cli.add_command(group)


def _domain_groups():
    from servicehub.auth.cli import users_cli
    from servicehub.catalog.cli import catalog_cli
    from servicehub.evaluation.cli import reports_cli
    from servicehub.imports.cli import import_command, imports_cli
    from servicehub.intake.cli import intake_cli
    from servicehub.jobs.cli import scheduler_command, serve_command
    from servicehub.scheduling.cli import schedule_cli
    from servicehub.visits.cli import audit_cli

    return (catalog_cli, users_cli, import_command, imports_cli, schedule_cli, audit_cli, scheduler_command,
            serve_command, reports_cli, intake_cli)
