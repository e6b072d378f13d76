"""`servicehub audit rebuild-deliveries`: rebuild the deliveries in force from the ledger; `servicehub audit rebuild-exceptions`: the
exception queue recomputed from the ledger; `servicehub demo history`: two years of
service records for the demo district; `servicehub demo day`: the demo's live day."""

from __future__ import annotations

import click

from servicehub.cli import app_command, demo_cli


@click.group("audit")
def audit_cli() -> None:
    """Checks for auditors."""


@audit_cli.command("rebuild-deliveries")
@app_command
def rebuild_deliveries_command() -> None:
    """Rebuild every visit's delivery in force (what reports sum) from the ledger, in one transaction."""
    from servicehub.auth.audit import record_event
    from servicehub.extensions import db
    from servicehub.visits.deliveries import rebuild_deliveries

    delivered = rebuild_deliveries(db.session)
    record_event(db.session, "deliveries_rebuilt", "visits", None, delivered=delivered)
    db.session.commit()
    click.echo(f"{delivered} delivered visits: deliveries in force rebuilt from the ledger")


@audit_cli.command("rebuild-exceptions")
@app_command
def rebuild_exceptions_command() -> None:
    """Recompute every visit's EVV exceptions from the ledger, in one transaction: new ones open, ones that no
    longer apply cleared, decided ones whose figures changed open again (decisions on unchanged ones stand)."""
    from servicehub.auth.audit import record_event
    from servicehub.extensions import db
    from servicehub.visits.verification import rebuild_exceptions

    visits = rebuild_exceptions(db.session)
    record_event(db.session, "exceptions_rebuilt", "visits", None, visits_with_exceptions=visits)
    db.session.commit()
    click.echo(f"{visits} visits have exceptions: the exception queue is current with the ledger")


@demo_cli.command("history")
@click.option("--years", type=click.FloatRange(min=0, min_open=True, max=10), default=2.0, show_default=True,
              help="How far back from yesterday")
@click.option("--seed", type=int, default=None, help="Random seed (default: the fixed demo seed)")
@click.option("--leave-open", type=click.IntRange(min=0, max=20), default=0, show_default=True,
              help="Leave the last day's last N visits published and unrecorded (for the missed-visit check)")
@app_command
def demo_history_command(years: float, seed: int | None, leave_open: int) -> None:
    """Write about two years of plausible visits and service records for the demo district (after `demo serve`).

    Idempotent: does nothing when the demo already has records before today."""
    from servicehub.visits.history import DEFAULT_SEED, write_demo_history

    report = write_demo_history(years=years, seed=DEFAULT_SEED if seed is None else seed, leave_open=leave_open)
    click.echo(report.summary())


@demo_cli.command("day")
@click.option("--seed", type=int, default=None, help="Random seed (default: the fixed demo seed)")
@click.option("--time-limit", type=click.FloatRange(min=0.1, max=60), default=None,
              help="Seconds of search for each organisation's day (default: 1)")
@app_command
def demo_day_command(seed: int | None, time_limit: float | None) -> None:
    """The demo's live day (run by `make run` after `demo users`): confirmation cards, today and tomorrow planned and
    published, the demo caregiver on a worker with visits today, the morning so far recorded as it happened.

    Once a day; days missed since the last start are caught up first (at most the last seven)."""
    from servicehub.visits.demo_day import DEFAULT_SEED, SOLVER_SECONDS, live_demo_day

    report = live_demo_day(DEFAULT_SEED if seed is None else seed, time_limit or SOLVER_SECONDS)
    click.echo(report.summary())
