"""`servicehub audit verify`: recompute every organisation's service-record chain."""

from __future__ import annotations

import sys

import click

from servicehub.cli import app_command


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
