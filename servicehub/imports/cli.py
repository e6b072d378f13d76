"""Import commands: `servicehub import FILE --kind recipients|needs|workers [--dry-run]` and
`servicehub imports samples` (write seed_data/samples/ again)."""

from __future__ import annotations

from pathlib import Path

import click

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.cli import app_command
from servicehub.imports import samples, services


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--kind", required=True, type=click.Choice([k.value for k in services.ImportKind]),
              help="What the file holds")
@click.option("--dry-run", is_flag=True, help="Only check every row; write nothing")
@app_command
def import_command(file: Path, kind: str, dry_run: bool) -> None:
    """Import a spreadsheet (.xlsx or CSV): every row is checked; all rows are written, or none."""
    with file.open("rb") as source:
        report = services.run_import(COMMAND_LINE, kind, source, file.name, dry_run=dry_run)
    where = f"{report.file_format}" + (f", {report.encoding}" if report.encoding else "")
    click.echo(f"{report.file_name} ({where}): {report.rows} rows, {report.valid} valid, {report.invalid} invalid, "
               f"{report.duplicates} duplicates")
    if report.ignored_columns:
        click.echo(f"columns not used: {', '.join(report.ignored_columns)}")
    for p in report.problems:
        click.echo(f"  row {p.row}, {p.column or p.field or '-'}: {p.reason}")
    if report.problems:
        raise click.ClickException(report.message)
    click.echo(report.message)


@click.group("imports")
def imports_cli() -> None:
    """Spreadsheet imports: the sample files."""


@imports_cli.command("samples")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=services.SAMPLES_DIR,
              show_default=True)
def samples_command(directory: Path) -> None:
    """Write the sample import files (.xlsx and .csv for recipients, needs and workers)."""
    for path in samples.write_samples(directory):
        click.echo(f"wrote {path}")
