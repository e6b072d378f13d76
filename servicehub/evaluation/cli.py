"""`servicehub reports …`: freeze a contract's month, run the monthly close, print organisation scores."""

from __future__ import annotations

import click

from servicehub.cli import app_command


@click.group("reports")
def reports_cli() -> None:
    """Evaluation reports (效能评估)."""


@reports_cli.command("freeze")
@click.option("--contract-id", type=int, required=True)
@click.option("--month", required=True, help="YYYY-MM, a month that is over")
@click.option("--accept-open-exceptions", is_flag=True, default=False,
              help="Freeze even though some of the month's exceptions are not decided yet (the settlement lists them)")
@app_command
def freeze_command(contract_id: int, month: str, accept_open_exceptions: bool) -> None:
    """Freeze a contract's monthly report and settlement (once; they read the same forever). A month with
    undecided exceptions is refused unless --accept-open-exceptions says to freeze it with them open."""
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.evaluation.services import freeze_contract_month

    frozen = freeze_contract_month(COMMAND_LINE, contract_id, month, accept_open_exceptions=accept_open_exceptions)
    total = frozen.settlement["total_fen"]
    click.echo(f"frozen report {frozen.id}: {frozen.record_count} records, sha256 {frozen.content_hash}; "
               f"settlement ¥{total // 100:,}.{total % 100:02d}, {frozen.open_exceptions} exceptions undecided")


@reports_cli.command("close-month")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Act as if today were this day")
@app_command
def close_month_command(today) -> None:
    """What the scheduler does on the 1st: freeze last month for every contract, score the organisations."""
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.evaluation.services import monthly_close

    result = monthly_close(COMMAND_LINE, today.date() if today else None)
    click.echo(f"{result['frozen']} monthly reports frozen, {result['scored']} organisations scored")


@reports_cli.command("scores")
@app_command
def scores_command() -> None:
    """Each organisation's latest composite score and its components."""
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.evaluation.services import scores_visible

    for row in scores_visible(COMMAND_LINE):
        value = "—" if row.score is None else f"{row.score:.3f}"
        parts = ", ".join(f"{k} {v:.2f}" for k, v in row.components.items() if v is not None)
        click.echo(f"organisation {row.organisation_id} {row.period_start}..{row.period_end}: {value} "
                   f"({row.person_times} person-times; {parts})")
