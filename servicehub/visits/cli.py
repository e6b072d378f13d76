"""`servicehub audit verify`: recompute every organisation's service-record chain; `servicehub audit
rebuild-deliveries`: rebuild the deliveries in force from the ledger; `servicehub audit rebuild-exceptions`: the
exception queue recomputed from the ledger; `servicehub demo history`: two years of
service records for the demo district."""

from __future__ import annotations

import sys

import click

from servicehub.cli import app_command, demo_cli


@click.group("audit")
def audit_cli() -> None:
    """Checks for auditors."""


@audit_cli.command("verify")
@click.option("--organisation-id", type=int, help="Only this organisation's ledger")
@app_command
def verify_command(organisation_id: int | None) -> None:
    """Recompute the hash chains of the service records; name the first broken link (exit status 1)."""
    from servicehub.visits.services import verify_ledgers

    broken = 0
    for result in verify_ledgers(organisation_id):
        if result["ok"]:
            click.echo(f"organisation {result['organisation_id']}: {result['records']} records, chain intact")
        else:
            link = result["broken"]
            broken += 1
            click.echo(f"organisation {result['organisation_id']}: BROKEN at record #{link.sequence} "
                       f"(id {link.record_id}): {link.problem}")
    if broken:
        sys.exit(1)


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
@app_command
def demo_history_command(years: float, seed: int | None) -> None:
    """Write about two years of plausible visits and service records for the demo district (after `demo serve`).

    Idempotent: does nothing when the demo already has records before today."""
    from servicehub.visits.history import DEFAULT_SEED, write_demo_history

    report = write_demo_history(years=years, seed=DEFAULT_SEED if seed is None else seed)
    click.echo(report.summary())
