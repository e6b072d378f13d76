"""`servicehub audit checkpoint`: sign the chains' heads, the frozen reports and the audit log's head into a file an
auditor copies away; `servicehub audit verify`: check the database against its chains, its ledger and every
checkpoint (exit status 1 on any break, naming it); `servicehub audit public-key`: the key auditors check with."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from servicehub.cli import app_command
from servicehub.visits.cli import audit_cli


@audit_cli.command("checkpoint")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write it into (default: SERVICEHUB_CHECKPOINT_DIR or instance/checkpoints)")
@app_command
def checkpoint_command(out_dir: Path | None) -> None:
    """Write a signed checkpoint: every organisation's chain head, every frozen report's hash, the audit log's head."""
    from servicehub.integrity.services import take_checkpoint

    taken = take_checkpoint(out_dir)
    click.echo(f"{taken['path']}: {taken['chains']} chains ({taken['records']:,} records), "
               f"{taken['frozen_reports']} frozen reports, audit log at #{taken['audit_records']:,}; "
               f"signed by key {taken['key_id']}")


@audit_cli.command("verify")
@click.option("--checkpoints", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="A folder of checkpoints to check against (default: SERVICEHUB_CHECKPOINT_DIR or "
                   "instance/checkpoints)")
@click.option("--public-key", type=click.File("r"),
              help="The public key the checkpoints must be signed with (PEM or base64; default: this server's)")
@app_command
def verify_command(directory: Path | None, public_key) -> None:
    """Recompute every chain (service records, audit log), re-derive from the ledger what reports sum, and check
    the database against every checkpoint; name every break (exit status 1)."""
    from servicehub.integrity.checkpoints import CheckpointError, load_public_key
    from servicehub.integrity.services import verify

    public = None
    if public_key is not None:
        try:
            public = load_public_key(public_key.read())
        except CheckpointError as exc:
            raise click.ClickException(f"--public-key: {exc}") from exc
    found = verify(directory, public)
    for result in found.chains:
        # A chain that holds in itself but not against a checkpoint (rewritten, behind) is not called intact.
        if f"organisation:{result['organisation_id']}" not in found.flagged:
            click.echo(f"organisation {result['organisation_id']}: {result['records']} records, chain intact")
    click.echo(f"audit log: {found.audit_records:,} entries; {found.visits_checked:,} visits re-derived from the "
               f"ledger; {len(found.checkpoints)} checkpoints checked")
    if not found.checkpoints:
        click.echo("no checkpoint to check against: a rewrite with every later hash recomputed, a cut tail or a "
                   "replaced frozen report cannot be found without one (servicehub audit checkpoint)")
    for problem in found.problems:
        click.echo(f"BROKEN: {problem}")
    if not found.ok:
        sys.exit(1)
    click.echo("everything holds")


@audit_cli.command("public-key")
@app_command
def public_key_command() -> None:
    """Print the public key checkpoints are signed with (PEM), for auditors to keep."""
    from servicehub.integrity.services import public_key_info

    info = public_key_info()
    click.echo(f"# key id {info['key_id']}")
    click.echo(info["pem"], nl=False)
